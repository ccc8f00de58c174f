/**
 * The command set of the model-based contract tests: each command is one transaction, sent both
 * to the reference model (`model.test-fixture.ts`) and to a real ledger (signed, executed in its
 * own block by the real contracts); the code must agree, a rejection must leave the state as it
 * was, and after an accepted one the ledger's state must read as the model says.
 */
import { expect } from 'vitest';
import fc from 'fast-check';
import type { JsonObject } from '../codec/canonical-json.ts';
import { Identity } from '../client/identity.ts';
import type { BlockEntry, TxCode } from '../ledger/execute.ts';
import { amendBody, BLOCK_INTERVAL, FOUNDERS, recordBody, STAFF, TestLedger } from '../ledger/test-network.test-fixture.ts';
import type * as State from './state.ts';
import * as rules from './model.test-fixture.ts';
import type {
  GuardianAction,
  Grantee,
  Holder,
  Kind,
  Level,
  Model,
  Outcome,
  PurposeCode,
  RecordVersion,
  Role,
  Scope,
  TxType,
} from './model.test-fixture.ts';

// ------------------------------------------------------------------ the cast

const FOUNDER_IDS = FOUNDERS.map((f) => f.id);
/** Institutions that may be proposed for admission, each with a key of its own. */
const NEWCOMERS: readonly { id: string; kind: Kind }[] = [
  { id: 'hosp-f', kind: 'hospital' },
  { id: 'lab-g', kind: 'laboratory' },
];
const STAFF_IDS = STAFF.map(([inst, local]) => `${inst}/${local}`);
/** Keys for staff enrolled during a run. */
const SPARE_KEYS = ['spare-1', 'spare-2', 'spare-3'];
/** Patients by name; dave is not registered when a run starts. */
const NATIONAL_IDS: Record<string, string> = { alice: '123-45-678', bob: '987-65-432', carol: '555-01-234', dave: '555-02-468' };
const PATIENTS = Object.keys(NATIONAL_IDS);
/** Who registers the first patients, which makes the registering institution their home. */
const FIRST_PATIENTS = [
  ['alice', 'hosp-a/op-a'],
  ['bob', 'hosp-a/dr-kim'],
  ['carol', 'clinic-c/dr-choi'],
] as const;
/** Every key label: the Issuer, institutions, staff, spares and patients. */
export const KEY_LABELS = ['issuer', ...FOUNDER_IDS, ...NEWCOMERS.map((n) => n.id), ...STAFF_IDS, ...SPARE_KEYS, ...PATIENTS];
const CATEGORIES = ['Condition', 'Observation'];
const UNKNOWN_ID = 'e'.repeat(64);

/** Key pairs other than the network's own (Issuer, founders), made once: each run is a fresh ledger. */
let pool: Promise<Map<string, Identity>> | undefined;
function keyPool(): Promise<Map<string, Identity>> {
  const labels = KEY_LABELS.filter((l) => l !== 'issuer' && !FOUNDER_IDS.includes(l));
  pool ??= Promise.all(labels.map(async (l) => [l, await Identity.generate(l)] as const)).then((e) => new Map(e));
  return pool;
}

export interface World {
  ledger: TestLedger;
  key(label: string): Identity;
  patientCode(name: string): string;
}

/**
 * A fresh five-member network in one block: the staff of `STAFF` enrolled, alice and bob
 * registered at hosp-a, carol at clinic-c, and three records of alice and bob, so runs spend
 * their length on what follows.
 */
export async function createWorld(): Promise<{ model: Model; world: World }> {
  const keys = await keyPool();
  const ledger = await TestLedger.create();
  const key = (label: string): Identity =>
    label === 'issuer' ? ledger.net.issuer : FOUNDER_IDS.includes(label) ? ledger.institution(label) : keys.get(label)!;
  const codes = new Map(PATIENTS.map((name) => [name, ledger.patientCode(NATIONAL_IDS[name]!)]));
  const world: World = { ledger, key, patientCode: (name) => codes.get(name)! };
  const entries: BlockEntry[] = [];
  for (const staffId of STAFF_IDS) {
    const [, localId, role] = STAFF.find(([i, l]) => `${i}/${l}` === staffId)!;
    const id = key(staffId);
    const body = { localId, role, signingKey: id.signingKey, encryptionKey: id.encryptionKey, displayName: localId };
    entries.push(await ledger.tx(key(staffId.split('/')[0]!), 'identity.enrolStaff', body));
  }
  for (const [name, by] of FIRST_PATIENTS) {
    const body = await ledger.registerPatientBody(key(name), NATIONAL_IDS[name]!, by.split('/')[0]);
    entries.push(await ledger.tx(key(by), 'identity.registerPatient', body));
  }
  const firstRecords = [
    ['alice', 'Condition'],
    ['bob', 'Observation'],
    ['alice', 'Observation'],
  ] as const;
  const recordEntries: BlockEntry[] = [];
  for (const [name, category] of firstRecords) {
    recordEntries.push(await ledger.tx(key('hosp-a/dr-kim'), 'records.register', recordBody(world.patientCode(name), { category })));
  }
  const exec = await ledger.run([...entries, ...recordEntries]);
  if (exec.codes.some((c) => c !== 'OK')) throw new Error(`setup failed: ${exec.codes.join(', ')}`);

  const model: Model = {
    time: ledger.time,
    keys: new Map<string, Holder>([
      ['issuer', { kind: 'issuer' }],
      ...FOUNDER_IDS.map((id) => [id, { kind: 'institution', id }] as const),
      ...STAFF_IDS.map((staffId) => [staffId, { kind: 'staff', staffId }] as const),
      ...FIRST_PATIENTS.map(([name]) => [name, { kind: 'patient', name }] as const),
    ]),
    members: new Map(FOUNDERS.map((f) => [f.id, { kind: f.kind, active: true }])),
    staff: new Map(STAFF.map(([institution, local, role]) => [`${institution}/${local}`, { institution, role, active: true }])),
    patients: new Map(FIRST_PATIENTS.map(([name, by]) => [name, { home: by.split('/')[0]! }])),
    proposals: [],
    records: firstRecords.map(([patient, category], i) => {
      const id = recordEntries[i]!.txId;
      return { id, patient, category, custodian: 'hosp-a', state: 'active', lineage: id, supersedes: null, supersededBy: null };
    }),
    regRequests: [],
    consents: [],
    accessRequests: [],
    guardianships: [],
  };
  return { model, world };
}

// ------------------------------------------------------------------ commands

/** A scope as drawn: record scopes pick among the records the run has made so far. */
type ScopeDraw = { kind: 'all' } | { kind: 'categories'; categories: string[] } | { kind: 'records'; picks: number[] };

/**
 * One transaction as drawn: its kind `t`, the signer `by` (see `signer`), the `gap` since the
 * last block, and what it is about; `pick`s choose among what the run has made (see `picked`).
 */
export type Op = { gap: number; by: string } & (
  | {
      t: 'admit';
      id: string;
      /** the label of the key the newcomer is admitted with; null for its own */
      key: string | null;
    }
  | { t: 'remove'; id: string }
  | { t: 'vote'; pick: number; approve: boolean }
  | { t: 'endpoint'; url: string | null }
  | { t: 'enrol'; localId: string; role: Role; key: string }
  | { t: 'revokeStaff'; staffId: string }
  | {
      t: 'registerPatient';
      patient: string;
      /** the label of the key registered for the patient; null for their own */
      key: string | null;
      /** whether the proof of possession names the registering institution */
      provedAtOwn: boolean;
    }
  | { t: 'register'; patient: string; category: string; request: number | null }
  /** registers the record a registration request asked for (its patient and category) */
  | { t: 'registerAsked'; pick: number }
  | { t: 'amend'; pick: number; keepCategory: boolean }
  | { t: 'retract'; pick: number }
  | { t: 'erase'; pick: number }
  | { t: 'askRegistration'; patient: string; category: string }
  | { t: 'answerRegistration'; pick: number; accept: boolean }
  | {
      t: 'grant';
      patient: string;
      grantee: Grantee;
      scope: ScopeDraw;
      purposes: PurposeCode[];
      fromOffset: number;
      duration: number | null;
      level: Level;
    }
  | {
      t: 'narrow';
      pick: number;
      scope: ScopeDraw | 'same';
      purposes: PurposeCode[] | 'same';
      fromShift: number;
      toShift: number | null | 'same';
      level: Level | 'same';
    }
  | { t: 'revoke'; pick: number }
  | { t: 'askAccess'; patient: string; scope: ScopeDraw; purpose: PurposeCode; level: Level }
  | { t: 'decide'; pick: number; approve: boolean; durationMs: number | null }
  /**
   * `requester`: a staff id, or `asker` to serve what the newest access request asked for (its
   * requester, purpose and level); `late`: only once some consent exists; `edge`: at the start
   * or the end of the newest consent's period, when that is ahead, instead of `gap` later
   */
  | { t: 'served'; pick: number; requester: string; purpose: PurposeCode; level: Level; late: boolean; edge: 'from' | 'to' | null }
  /** issue 7: a patient appoints a guardian; `pick` chooses a guardianship to end */
  | {
      t: 'appoint';
      patient: string;
      guardian: string;
      actions: GuardianAction[];
      categories: string[] | null;
      purposes: PurposeCode[];
      fromOffset: number;
      duration: number | null;
    }
  | { t: 'unappoint'; pick: number }
);

/** Picks count back from the newest item, so small picks meet what the run just made; -1 is an unknown id. */
function picked<T>(list: readonly T[], pick: number): T | undefined {
  return pick < 0 || list.length === 0 ? undefined : list[list.length - 1 - (pick % list.length)];
}

function scopeOf(m: Model, s: ScopeDraw): Scope {
  if (s.kind !== 'records') return s;
  return { kind: 'records', recordIds: [...new Set(s.picks.map((p) => picked(m.records, p)?.id ?? UNKNOWN_ID))] };
}

/**
 * What the runs reached, counted: each `type code`, each `signer-kind code` (e.g. `staff
 * NOT_A_MEMBER`: a removed institution's staff refused) and each decided proposal. The suite
 * checks that every rule was reached, so it cannot pass vacuously.
 */
export const seen = new Map<string, number>();
const count = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);

interface Plan {
  /** the key label that signs */
  by: string;
  type: TxType;
  body: JsonObject;
  outcome: Outcome;
  /** more to check once an accepted transaction is in; may name what it reached */
  after?: (txId: string) => string | undefined;
}

/** The label of the key that signs for a holder now (the label itself when there is none). */
function keyOf(m: Model, holds: (h: Holder) => boolean, fallback: string): string {
  return [...m.keys].find(([, h]) => holds(h))?.[0] ?? fallback;
}
const institutionKey = (m: Model, id: string) => keyOf(m, (h) => h.kind === 'institution' && h.id === id, id);
const staffKey = (m: Model, staffId: string) => keyOf(m, (h) => h.kind === 'staff' && h.staffId === staffId, staffId);
const patientKey = (m: Model, name: string) => keyOf(m, (h) => h.kind === 'patient' && h.name === name, name);

/** The newest access request, when a served access serves what it asked for. */
const askedFor = (m: Model, op: Op) => (op.t === 'served' && op.requester === 'asker' ? picked(m.accessRequests, 0) : undefined);

/** The record an op picks; serving what a request asked for, one of that request's patient. */
function recordOf(m: Model, op: Op & { pick: number }): RecordVersion | undefined {
  const asked = askedFor(m, op);
  const theirs = asked === undefined ? [] : m.records.filter((r) => r.patient === asked.patient);
  return picked(theirs, op.pick) ?? picked(m.records, op.pick);
}

/** The patient the item an op picks belongs to. */
function ownerOf(m: Model, op: Op & { pick: number }): string {
  const list: readonly { patient: string }[] =
    op.t === 'decide'
      ? m.accessRequests
      : op.t === 'answerRegistration'
        ? m.regRequests
        : op.t === 'narrow' || op.t === 'revoke'
          ? m.consents
          : op.t === 'unappoint'
            ? m.guardianships
            : m.records;
  return picked(list, op.pick)?.patient ?? 'alice';
}

/** issue 7: the guardian a patient appointed most recently (any state), else the patient. */
function guardianOf(m: Model, patient: string): string {
  return m.guardianships.filter((g) => g.patient === patient).at(-1)?.guardian ?? patient;
}

/**
 * The signer: a key label, or one named by its part in the op, so that most ops get past the
 * author checks to the rule itself: `custodian` (of the record picked), `employer` (of the staff
 * member named), `owner` (the patient whose item is picked), `asker` (who made the registration
 * request picked), `home` (the first staff member of the patient's home institution).
 */
function signer(m: Model, op: Op): string {
  if (op.by === 'custodian' && 'pick' in op) return institutionKey(m, recordOf(m, op)?.custodian ?? 'hosp-a');
  if (op.by === 'employer' && 'staffId' in op) return institutionKey(m, m.staff.get(op.staffId)?.institution ?? 'hosp-a');
  if (op.by === 'owner' && 'pick' in op) return patientKey(m, ownerOf(m, op));
  if (op.by === 'guardian' && 'pick' in op) return patientKey(m, guardianOf(m, ownerOf(m, op)));
  if (op.by === 'guardian' && 'patient' in op) return patientKey(m, guardianOf(m, op.patient));
  if (op.by === 'owner-of-appointment' && op.t === 'appoint') return patientKey(m, op.patient);
  if (op.by === 'asker' && 'pick' in op) return staffKey(m, picked(m.regRequests, op.pick)?.requester ?? 'hosp-b/dr-park');
  if (op.by === 'home' && 'patient' in op) {
    const home = m.patients.get(op.patient)?.home;
    return staffKey(m, [...m.staff].find(([, s]) => s.institution === home)?.[0] ?? 'hosp-a/dr-kim');
  }
  return op.by;
}

/** The transaction an op sends and the outcome the model expects, at the model's time. */
async function plan(m: Model, w: World, op: Op): Promise<Plan> {
  const by = signer(m, op);
  return { by, ...(await planFor(m, w, op, by)) };
}

async function planFor(m: Model, w: World, op: Op, by: string): Promise<Omit<Plan, 'by'>> {
  const code = (name: string) => w.patientCode(name);
  switch (op.t) {
    case 'admit': {
      const newcomer = { id: op.id, kind: NEWCOMERS.find((n) => n.id === op.id)?.kind ?? 'clinic', key: op.key ?? op.id };
      const k = w.key(newcomer.key);
      const institution = {
        id: op.id,
        name: op.id,
        kind: newcomer.kind,
        signingKey: k.signingKey,
        encryptionKey: k.encryptionKey,
        validator: false,
      };
      return { type: 'membership.propose', body: { action: 'admit', institution }, outcome: rules.proposeAdmission(m, by, newcomer) };
    }
    case 'remove':
      return {
        type: 'membership.propose',
        body: { action: 'remove', institutionId: op.id },
        outcome: rules.proposeRemoval(m, by, op.id),
      };
    case 'vote': {
      const p = picked(m.proposals, op.pick);
      const id = p?.id ?? UNKNOWN_ID;
      return {
        type: 'membership.vote',
        body: { proposalId: id, approve: op.approve },
        outcome: rules.vote(m, by, id, op.approve),
        after: () => (p!.status === 'open' ? undefined : p!.status === 'accepted' ? `proposal ${p!.action} accepted` : 'proposal rejected'),
      };
    }
    case 'endpoint':
      return { type: 'membership.setEndpoint', body: { vaultUrl: op.url }, outcome: rules.setEndpoint(m, by, op.url) };
    case 'enrol': {
      const k = w.key(op.key);
      return {
        type: 'identity.enrolStaff',
        body: { localId: op.localId, role: op.role, signingKey: k.signingKey, encryptionKey: k.encryptionKey, displayName: op.localId },
        outcome: rules.enrolStaff(m, by, op.localId, op.role, op.key),
      };
    }
    case 'revokeStaff':
      return { type: 'identity.revokeStaff', body: { staffId: op.staffId }, outcome: rules.revokeStaff(m, by, op.staffId) };
    case 'registerPatient': {
      // The patient proves possession for the author's institution, or (to be refused) for another.
      const holder = m.keys.get(by);
      const own = holder?.kind === 'staff' ? m.staff.get(holder.staffId)!.institution : 'hosp-a';
      const provedFor = op.provedAtOwn ? own : own === 'clinic-c' ? 'hosp-b' : 'clinic-c';
      return {
        type: 'identity.registerPatient',
        body: await w.ledger.registerPatientBody(w.key(op.key ?? op.patient), NATIONAL_IDS[op.patient]!, provedFor),
        outcome: rules.registerPatient(m, by, op.patient, op.key ?? op.patient, provedFor),
      };
    }
    case 'register': {
      const request = op.request === null ? null : (picked(m.regRequests, op.request)?.id ?? UNKNOWN_ID);
      return {
        type: 'records.register',
        body: recordBody(code(op.patient), { category: op.category, registrationRequestId: request }),
        outcome: rules.registerRecord(m, by, op.patient, op.category, request),
      };
    }
    case 'registerAsked': {
      const r = picked(m.regRequests, op.pick);
      const [patient, category, id] = r === undefined ? ['alice', 'Condition', UNKNOWN_ID] : [r.patient, r.category, r.id];
      return {
        type: 'records.register',
        body: recordBody(code(patient), { category, registrationRequestId: id }),
        outcome: rules.registerRecord(m, by, patient, category, id),
      };
    }
    case 'amend': {
      const r = picked(m.records, op.pick);
      const category = op.keepCategory ? (r?.category ?? 'Condition') : r?.category === 'Condition' ? 'Observation' : 'Condition';
      const id = r?.id ?? UNKNOWN_ID;
      return { type: 'records.amend', body: amendBody(id, { category }), outcome: rules.amend(m, by, id, category) };
    }
    case 'retract': {
      const id = picked(m.records, op.pick)?.id ?? UNKNOWN_ID;
      return { type: 'records.retract', body: { recordId: id, reason: 'entered in error' }, outcome: rules.retract(m, by, id) };
    }
    case 'erase': {
      const id = picked(m.records, op.pick)?.id ?? UNKNOWN_ID;
      return { type: 'records.erase', body: { recordId: id }, outcome: rules.erase(m, by, id) };
    }
    case 'askRegistration':
      return {
        type: 'consent.requestRegistration',
        body: { patientCode: code(op.patient), category: op.category, purpose: 'TREAT', note: 'referral' },
        outcome: rules.requestRegistration(m, by, op.patient, op.category),
      };
    case 'answerRegistration': {
      const id = picked(m.regRequests, op.pick)?.id ?? UNKNOWN_ID;
      return {
        type: 'consent.answerRegistration',
        body: { requestId: id, accept: op.accept },
        outcome: rules.answerRegistration(m, by, id, op.accept),
      };
    }
    case 'grant': {
      const from = Math.max(0, m.time + op.fromOffset);
      const c = {
        patient: op.patient,
        grantee: op.grantee,
        scope: scopeOf(m, op.scope),
        purposes: op.purposes,
        period: { from, to: op.duration === null ? null : from + op.duration },
        level: op.level,
      };
      const body = { patientCode: code(c.patient), grantee: c.grantee, scope: c.scope, purposes: c.purposes, period: c.period };
      return { type: 'consent.grant', body: { ...body, deidentification: c.level }, outcome: rules.grant(m, by, c) };
    }
    case 'appoint': {
      const from = Math.max(0, m.time + op.fromOffset);
      const g = {
        patient: op.patient,
        guardian: op.guardian,
        actions: op.actions,
        categories: op.categories,
        purposes: op.purposes,
        period: { from, to: op.duration === null ? null : from + op.duration },
      };
      const body = {
        patientCode: code(g.patient),
        guardian: code(g.guardian),
        scope: { actions: g.actions, categories: g.categories, purposes: g.purposes },
        period: g.period,
      };
      return { type: 'identity.appointGuardian', body, outcome: rules.appointGuardian(m, by, g) };
    }
    case 'unappoint': {
      const id = picked(m.guardianships, op.pick)?.id ?? UNKNOWN_ID;
      return { type: 'identity.revokeGuardian', body: { guardianshipId: id }, outcome: rules.revokeGuardian(m, by, id) };
    }
    case 'narrow': {
      const c = picked(m.consents, op.pick);
      const base = c ?? {
        scope: { kind: 'all' } as Scope,
        purposes: ['TREAT'] as PurposeCode[],
        period: { from: m.time, to: null },
        level: 'identified' as Level,
      };
      const from = Math.max(0, base.period.from + op.fromShift);
      const to =
        op.toShift === 'same' ? base.period.to : op.toShift === null ? null : (base.period.to ?? from + 60 * BLOCK_INTERVAL) + op.toShift;
      const next = {
        scope: op.scope === 'same' ? base.scope : scopeOf(m, op.scope),
        purposes: op.purposes === 'same' ? base.purposes : op.purposes,
        period: { from, to },
        level: op.level === 'same' ? base.level : op.level,
      };
      const id = c?.id ?? UNKNOWN_ID;
      return {
        type: 'consent.narrow',
        body: { consentId: id, scope: next.scope, purposes: next.purposes, period: next.period, deidentification: next.level },
        outcome: rules.narrow(m, by, id, next),
      };
    }
    case 'revoke': {
      const id = picked(m.consents, op.pick)?.id ?? UNKNOWN_ID;
      return { type: 'consent.revoke', body: { consentId: id }, outcome: rules.revokeConsent(m, by, id) };
    }
    case 'askAccess': {
      const ask = { patient: op.patient, scope: scopeOf(m, op.scope), purpose: op.purpose, level: op.level };
      return {
        type: 'access.request',
        body: { patientCode: code(op.patient), scope: ask.scope, purpose: op.purpose, deidentification: op.level, reason: 'referral' },
        outcome: rules.requestAccess(m, by, ask),
      };
    }
    case 'decide': {
      const id = picked(m.accessRequests, op.pick)?.id ?? UNKNOWN_ID;
      return {
        type: 'access.decide',
        body: { requestId: id, approve: op.approve, durationMs: op.durationMs },
        outcome: rules.decide(m, by, id, op.approve, op.durationMs),
      };
    }
    case 'served': {
      const id = recordOf(m, op)?.id ?? UNKNOWN_ID;
      const asked = askedFor(m, op);
      const { requester, purpose, level } = asked ?? { ...op, requester: op.requester === 'asker' ? 'hosp-b/dr-park' : op.requester };
      return {
        type: 'access.recordServed',
        body: { recordId: id, requester, purpose, deidentification: level },
        outcome: rules.served(m, by, id, requester, purpose, level),
        // An access the ledger admits lands in the patient's access log, with who asked and why.
        after: (txId) => {
          expect(w.ledger.get<State.AccessLogEntry>('accessLog', txId)).toMatchObject({
            recordId: id,
            actor: requester,
            purpose,
            outcome: 'served',
          });
          return undefined;
        },
      };
    }
  }
}

/** The state the model describes, read from the model and from the ledger in the same shape. */
function described(m: Model, w: World): { model: unknown; ledger: unknown } {
  const get = <T>(table: State.StateTable, key: string) => w.ledger.get<T>(table, key);
  const status = (active: boolean, no: string) => (active ? 'active' : no);
  const owner = (h: Holder | undefined): unknown => {
    if (h === undefined) return undefined;
    switch (h.kind) {
      case 'issuer':
        return { kind: 'issuer' };
      case 'institution':
        return { kind: 'institution', institution: h.id };
      case 'staff':
        return { kind: 'staff', staffId: h.staffId, institution: m.staff.get(h.staffId)!.institution };
      case 'patient':
        return { kind: 'patient', patientCode: w.patientCode(h.name) };
    }
  };
  const keyStatus = (h: Holder | undefined) => (h?.kind === 'staff' ? status(m.staff.get(h.staffId)!.active, 'revoked') : 'active');
  const model = {
    keys: KEY_LABELS.map((l) => (m.keys.has(l) ? { owner: owner(m.keys.get(l)), status: keyStatus(m.keys.get(l)) } : null)),
    members: [...m.members].map(([id, x]) => ({ id, kind: x.kind, status: status(x.active, 'removed'), vaultUrl: x.vaultUrl })),
    staff: [...m.staff].map(([id, s]) => ({ id, institution: s.institution, role: s.role, status: status(s.active, 'revoked') })),
    patients: PATIENTS.map((p) => m.patients.get(p)?.home ?? null),
    proposals: m.proposals.map((p) => ({ action: p.action, target: p.target, votes: Object.fromEntries(p.votes), status: p.status })),
    records: m.records.map((r) => ({ ...r, patient: w.patientCode(r.patient) })),
    regRequests: m.regRequests.map((r) => ({ ...r, patient: w.patientCode(r.patient) })),
    consents: m.consents.map((c) => ({ ...c, patient: w.patientCode(c.patient) })),
    accessRequests: m.accessRequests.map((r) => ({ ...r, patient: w.patientCode(r.patient) })),
    guardianships: m.guardianships.map((g) => ({
      id: g.id,
      patient: w.patientCode(g.patient),
      guardian: w.patientCode(g.guardian),
      scope: { actions: g.actions, categories: g.categories, purposes: g.purposes },
      period: g.period,
      status: g.revoked ? 'revoked' : 'active',
    })),
  };
  const ledger = {
    keys: KEY_LABELS.map((l) => {
      const k = get<State.KeyEntry>('keys', w.key(l).keyId);
      return k === undefined ? null : { owner: k.owner, status: k.status };
    }),
    members: [...m.members.keys()].map((id) => {
      const x = get<State.Member>('members', id);
      return x && { id, kind: x.kind, status: x.status, vaultUrl: x.vaultUrl };
    }),
    staff: [...m.staff.keys()].map((id) => {
      const s = get<State.Staff>('staff', id);
      return s && { id, institution: s.institution, role: s.role, status: s.status };
    }),
    patients: PATIENTS.map((p) => get<State.Patient>('patients', w.patientCode(p))?.home ?? null),
    proposals: m.proposals.map(({ id }) => {
      const p = get<State.Proposal>('proposals', id);
      return p && { action: p.action, target: p.institutionId, votes: p.votes, status: p.status };
    }),
    records: m.records.map(({ id }) => {
      const r = get<State.RecordEntry>('records', id);
      return (
        r && {
          id,
          patient: r.patientCode,
          category: r.category,
          custodian: r.custodian,
          state: r.state,
          lineage: r.lineage,
          supersedes: r.supersedes,
          supersededBy: r.supersededBy,
        }
      );
    }),
    regRequests: m.regRequests.map(({ id }) => {
      const r = get<State.RegistrationRequest>('regRequests', id);
      return r && { id, patient: r.patientCode, custodian: r.custodian, requester: r.requester, category: r.category, status: r.status };
    }),
    consents: m.consents.map(({ id }) => {
      const c = get<State.Consent>('consents', id);
      return (
        c && {
          id,
          patient: c.patientCode,
          grantee: c.grantee,
          scope: c.scope,
          purposes: c.purposes,
          period: c.period,
          level: c.deidentification,
          revoked: c.status === 'revoked',
          updatedAt: c.updatedAt,
        }
      );
    }),
    accessRequests: m.accessRequests.map(({ id }) => {
      const r = get<State.AccessRequest>('accessRequests', id);
      return (
        r && {
          id,
          patient: r.patientCode,
          requester: r.requester,
          scope: r.scope,
          purpose: r.purpose,
          level: r.deidentification,
          status: r.status,
        }
      );
    }),
    guardianships: m.guardianships.map(({ id }) => {
      const g = get<State.Guardianship>('guardianships', id);
      return g && { id, patient: g.patientCode, guardian: g.guardian, scope: g.scope, period: g.period, status: g.status };
    }),
  };
  return { model, ledger };
}

/** When an op's block is cut: `gap` after the last, or exactly on a consent's boundary (see `edge`). */
function timeOf(m: Model, op: Op): number {
  const newest = m.consents.at(-1)?.period;
  const edge = op.t === 'served' && op.edge !== null && newest !== undefined ? newest[op.edge] : null;
  return edge !== null && edge > m.time ? edge : m.time + op.gap;
}

/** One transaction, in its own block, applied to the model and to the ledger. */
export class Step implements fc.AsyncCommand<Model, World> {
  constructor(readonly op: Op) {}
  /**
   * An op that picks from an empty list is skipped (unknown ids come from picks of -1), and so
   * is a late served access before any consent: most served accesses then meet a consent.
   */
  check(m: Readonly<Model>): boolean {
    const op = this.op;
    if (op.t === 'served' && op.late && m.consents.length === 0) return false;
    const list =
      op.t === 'vote'
        ? m.proposals
        : op.t === 'decide'
          ? m.accessRequests
          : op.t === 'answerRegistration' || op.t === 'registerAsked' || (op.t === 'register' && op.request !== null)
            ? m.regRequests
            : op.t === 'narrow' || op.t === 'revoke'
              ? m.consents
              : op.t === 'unappoint'
                ? m.guardianships
                : null;
    const pick = op.t === 'register' ? op.request : 'pick' in op ? op.pick : -1;
    return list === null || pick === null || pick < 0 || list.length > 0;
  }
  async run(m: Model, w: World): Promise<void> {
    m.time = timeOf(m, this.op);
    // issue 7: whose item a guardian-signed op is about, to count the guardian's outcomes apart
    const op = this.op;
    const ward = op.by !== 'guardian' ? null : op.t === 'grant' ? op.patient : 'pick' in op ? ownerOf(m, op) : null;
    const { by, type, body, outcome, after } = await plan(m, w, this.op);
    const signerKind = m.keys.get(by)?.kind ?? 'unknown';
    const before = outcome.code === 'OK' ? null : JSON.stringify(w.ledger.snapshot());
    const entry = await w.ledger.tx(w.key(by), type, body);
    const got: TxCode = await w.ledger.code(entry, m.time);
    expect(got, this.toString()).toBe(outcome.code);
    count(`${type} ${got}`);
    count(`${signerKind} ${got}`);
    if (ward !== null && by !== patientKey(m, ward)) count(`guardian ${got}`);
    if (before !== null) {
      expect(JSON.stringify(w.ledger.snapshot()), `${this.toString()} changed the state`).toBe(before);
      return;
    }
    outcome.commit?.(entry.txId);
    const reached = after?.(entry.txId);
    if (reached !== undefined) count(reached);
    const { model, ledger } = described(m, w);
    expect(ledger, `the state after ${this.toString()}`).toEqual(model);
  }
  toString = () => {
    const { t, gap, ...rest } = this.op;
    return `${t}${JSON.stringify(rest)}+${gap / BLOCK_INTERVAL}s`;
  };
}

// ------------------------------------------------------------------ generators

const gap = fc.constantFrom(BLOCK_INTERVAL, 7 * BLOCK_INTERVAL, 60 * BLOCK_INTERVAL);
const PURPOSES: PurposeCode[] = ['TREAT', 'CAREMGT', 'HRESCH', 'HPAYMT'];
const purpose = fc.oneof(
  { weight: 3, arbitrary: fc.constant<PurposeCode>('TREAT') },
  { weight: 3, arbitrary: fc.constantFrom(...PURPOSES) },
);
const purposes = fc.subarray(PURPOSES, { minLength: 1 });
const level = fc.constantFrom(...rules.LEVELS);
const category = fc.constantFrom(...CATEGORIES);
const bool = (yesWeight: number) =>
  fc.oneof({ weight: yesWeight, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });
const pick = fc.oneof({ weight: 6, arbitrary: fc.nat(3) }, { weight: 3, arbitrary: fc.nat(30) }, { weight: 1, arbitrary: fc.constant(-1) });
const patient = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('alice', 'bob', 'carol') }, { weight: 1, arbitrary: fc.constant('dave') });
const patientLabel = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('alice', 'bob', 'carol') },
  { weight: 1, arbitrary: fc.constantFrom(...PATIENTS) },
);
const anyKey = fc.constantFrom(...KEY_LABELS);
/** Voters: mostly the founders, whose votes decide. */
const voter = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...FOUNDER_IDS) },
  { weight: 1, arbitrary: fc.constantFrom(...NEWCOMERS.map((n) => n.id)) },
  { weight: 1, arbitrary: fc.constantFrom('issuer', 'hosp-a/dr-kim') },
);
/** Institutions acting, mostly founders; now and then someone who may not. */
const institution = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...FOUNDER_IDS) },
  { weight: 3, arbitrary: fc.constantFrom(...NEWCOMERS.map((n) => n.id)) },
  { weight: 1, arbitrary: fc.constantFrom('issuer', 'hosp-a/dr-kim', 'alice') },
);
/** Staff acting: mostly hosp-a's clinicians, who hold the first records and patients. */
const staff = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('hosp-a/dr-kim', 'hosp-a/nurse-lee', 'hosp-a/op-a') },
  { weight: 4, arbitrary: fc.constantFrom(...STAFF_IDS) },
  { weight: 2, arbitrary: fc.constantFrom(...SPARE_KEYS) },
  { weight: 1, arbitrary: fc.constantFrom('issuer', 'hosp-b', 'alice') },
);
/** People asked about: mostly a few, so consents and accesses meet often enough to test each rule. */
const FOCUS = ['hosp-b/dr-park', 'clinic-c/dr-choi', 'res-e/res-1', 'hosp-a/aud-a'];
const ENROLLED_LATER = ['hosp-b/dr-new', 'hosp-f/dr-new', 'res-e/res-2', 'lab-g/nurse-new'];
const person = fc.oneof(
  { weight: 6, arbitrary: fc.constant(FOCUS[0]!) },
  { weight: 3, arbitrary: fc.constantFrom(...FOCUS) },
  { weight: 1, arbitrary: fc.constantFrom(...STAFF_IDS, ...ENROLLED_LATER, 'hosp-a/ghost') },
);
const INSTITUTION_IDS = [...FOUNDER_IDS, ...NEWCOMERS.map((n) => n.id)];
const grantee: fc.Arbitrary<Grantee> = fc.oneof(
  fc.constantFrom(...INSTITUTION_IDS).map((i) => ({ kind: 'institution' as const, institution: i })),
  { weight: 2, arbitrary: person.map((staffId) => ({ kind: 'person' as const, staffId })) },
  fc
    .tuple(
      fc.constantFrom<Role>('doctor', 'nurse', 'operator', 'researcher', 'auditor'),
      fc.option(fc.constantFrom(...INSTITUTION_IDS), { nil: null }),
    )
    .map(([role, i]) => ({ kind: 'role' as const, role, institution: i })),
);
const scope: fc.Arbitrary<ScopeDraw> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: 'all' as const }) },
  fc.subarray(CATEGORIES, { minLength: 1 }).map((categories) => ({ kind: 'categories' as const, categories })),
  fc.array(pick, { minLength: 1, maxLength: 3 }).map((picks) => ({ kind: 'records' as const, picks })),
);
/** Whole blocks, so validity boundaries fall exactly on block times. */
const blocks = (min: number, max: number) => fc.integer({ min, max }).map((n) => n * BLOCK_INTERVAL);
const same = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant('same' as const) }, { weight: 1, arbitrary: a });
/** A signer named by its part in the op (see `signer`) three times in four, else anyone `others` draws. */
const mostly = (part: 'custodian' | 'employer' | 'owner' | 'asker' | 'guardian', others: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(part) }, { weight: 1, arbitrary: others });
const latest = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: pick });

type OpOf<T extends Op['t']> = Extract<Op, { t: T }>;
function step<T extends Op['t']>(
  t: T,
  fields: { [K in Exclude<keyof OpOf<T>, 't' | 'gap'>]: fc.Arbitrary<OpOf<T>[K]> },
): fc.Arbitrary<Step> {
  return fc.record({ ...fields, gap }).map((f) => new Step({ ...f, t } as OpOf<T>));
}

/** Each transaction type the model knows, with generators aimed at both acceptance and each refusal. */
export const ops = {
  admit: step('admit', {
    by: institution,
    id: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...NEWCOMERS.map((n) => n.id)) },
      { weight: 1, arbitrary: fc.constant('clinic-c') },
    ),
    key: fc.option(anyKey, { freq: 6, nil: null }),
  }),
  remove: step('remove', {
    by: institution,
    // hosp-a now and then too: its staff act most, so they show what a removal stops.
    id: fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom('clinic-c', 'hosp-b', 'lab-d', 'res-e', 'hosp-f') },
      { weight: 2, arbitrary: fc.constant('hosp-a') },
      { weight: 1, arbitrary: fc.constant('hosp-z') },
    ),
  }),
  vote: step('vote', {
    by: voter,
    pick: latest,
    approve: bool(2),
  }),
  endpoint: step('endpoint', {
    by: institution,
    url: fc.constantFrom('https://vault.example:8443/base', 'http://10.0.0.7', null, 'ftp://vault.example', 'https://h/?q=1'),
  }),
  enrol: step('enrol', {
    by: fc.oneof({ weight: 6, arbitrary: institution }, { weight: 1, arbitrary: staff }),
    localId: fc.constantFrom('dr-new', 'nurse-new', 'res-2', 'dr-kim'),
    role: fc.constantFrom<Role>('doctor', 'nurse', 'operator', 'researcher', 'auditor'),
    key: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...SPARE_KEYS) }, { weight: 1, arbitrary: anyKey }),
  }),
  revokeStaff: step('revokeStaff', {
    by: mostly('employer', institution),
    staffId: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...FOCUS, 'hosp-a/dr-kim', 'hosp-a/op-a') },
      { weight: 2, arbitrary: fc.constantFrom(...STAFF_IDS, ...ENROLLED_LATER, 'hosp-a/ghost') },
    ),
  }),
  registerPatient: step('registerPatient', {
    // any care institution's staff, so patients get homes other than hosp-a
    by: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...STAFF_IDS) }, { weight: 1, arbitrary: staff }),
    patient: fc.oneof({ weight: 5, arbitrary: fc.constant('dave') }, { weight: 1, arbitrary: fc.constantFrom('alice', 'carol') }),
    key: fc.option(anyKey, { freq: 6, nil: null }),
    provedAtOwn: bool(3),
  }),
  register: step('register', {
    by: fc.oneof({ weight: 1, arbitrary: fc.constant('home') }, { weight: 3, arbitrary: staff }),
    patient,
    category,
    request: fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: pick }),
  }),
  registerAsked: step('registerAsked', { by: mostly('asker', staff), pick: latest }),
  amend: step('amend', { by: staff, pick, keepCategory: bool(6) }),
  retract: step('retract', { by: staff, pick }),
  erase: step('erase', { by: mostly('owner', patientLabel), pick }),
  askRegistration: step('askRegistration', {
    by: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('hosp-b/dr-park', 'clinic-c/dr-choi', 'lab-d/op-d') },
      { weight: 1, arbitrary: staff },
    ),
    patient,
    category,
  }),
  answerRegistration: step('answerRegistration', {
    by: mostly('owner', patientLabel),
    pick: latest,
    accept: bool(3),
  }),
  grant: fc
    .tuple(
      fc.oneof(
        { weight: 4, arbitrary: patient.map((p) => [p, p] as const) },
        { weight: 1, arbitrary: fc.tuple(patientLabel, patient) },
        // issue 7: the patient's guardian, when they have one
        { weight: 2, arbitrary: patient.map((p) => ['guardian', p] as const) },
      ),
      grantee,
      scope,
      purposes,
      blocks(-60, 120),
      // now and then a period that ends before it starts
      fc.option(fc.oneof({ weight: 8, arbitrary: blocks(1, 120) }, { weight: 1, arbitrary: blocks(-2, 0) }), { nil: null }),
      level,
      gap,
    )
    .map(
      ([[by, p], g, s, ps, from, duration, l, gp]) =>
        new Step({ t: 'grant', by, patient: p, grantee: g, scope: s, purposes: ps, fromOffset: from, duration, level: l, gap: gp }),
    ),
  narrow: step('narrow', {
    by: fc.oneof({ weight: 3, arbitrary: mostly('owner', patientLabel) }, { weight: 1, arbitrary: fc.constant('guardian') }),
    pick,
    scope: same(scope),
    purposes: same(purposes),
    fromShift: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: blocks(-2, 30) }),
    toShift: same(fc.option(blocks(-40, 5), { nil: null })),
    level: same(level),
  }),
  revoke: step('revoke', {
    by: fc.oneof({ weight: 3, arbitrary: mostly('owner', patientLabel) }, { weight: 1, arbitrary: fc.constant('guardian') }),
    pick,
  }),
  askAccess: step('askAccess', {
    by: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FOCUS) }, { weight: 1, arbitrary: staff }),
    patient,
    scope,
    purpose,
    level,
  }),
  decide: step('decide', {
    by: fc.oneof({ weight: 3, arbitrary: mostly('owner', patientLabel) }, { weight: 1, arbitrary: fc.constant('guardian') }),
    pick: latest,
    approve: bool(3),
    durationMs: fc.constantFrom(null, 60_000, 600_000),
  }),
  served: step('served', {
    by: mostly('custodian', fc.constantFrom(...FOUNDER_IDS, 'hosp-a/op-a', 'clinic-c/op-c', 'hosp-a/dr-kim')),
    pick,
    requester: fc.oneof({ weight: 1, arbitrary: fc.constant('asker') }, { weight: 2, arbitrary: person }),
    purpose,
    level,
    late: bool(3),
    edge: fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom<'from' | 'to'>('from', 'to') }),
  }),
  // issue 7: guardians, mostly among the first patients so their consents meet them
  appoint: step('appoint', {
    by: fc.oneof({ weight: 6, arbitrary: fc.constant('owner-of-appointment') }, { weight: 1, arbitrary: patientLabel }),
    patient,
    guardian: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('alice', 'bob', 'carol') }, { weight: 1, arbitrary: fc.constant('dave') }),
    actions: fc.subarray<GuardianAction>(['consent.grant', 'consent.narrow', 'consent.revoke', 'access.decide'], { minLength: 1 }),
    categories: fc.option(fc.subarray(CATEGORIES, { minLength: 1 }), { nil: null }),
    purposes,
    fromOffset: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: blocks(-10, 30) }),
    duration: fc.option(fc.oneof({ weight: 8, arbitrary: blocks(1, 240) }, { weight: 1, arbitrary: blocks(-2, 0) }), { nil: null }),
  }),
  unappoint: step('unappoint', {
    by: fc.oneof({ weight: 3, arbitrary: mostly('owner', patientLabel) }, { weight: 1, arbitrary: fc.constant('guardian') }),
    pick: latest,
  }),
} satisfies Record<Op['t'], fc.Arbitrary<Step>>;
