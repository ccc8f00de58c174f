/**
 * Model-based test of the consent and access contracts (issue 9's first part): a small reference
 * model in plain TypeScript — who may register a record, grant and revoke consent, and be served
 * a record, with the reason for each refusal — written from the rules, not from the contracts.
 * fast-check draws random command sequences and applies each to the model and to a real ledger
 * (signed transactions, executed in blocks); every outcome and rejection code must agree, a
 * rejected transaction must leave the state untouched, and shrinking gives the shortest sequence
 * that disagrees.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCast, recordBody, BLOCK_INTERVAL, STAFF, type Cast } from '../ledger/test-network.test-fixture.ts';
import type { Consent } from './state.ts';
import type { JsonObject } from '../codec/canonical-json.ts';

type Level = 'identified' | 'pseudonymised' | 'anonymised';
type PurposeCode = 'TREAT' | 'CAREMGT' | 'HRESCH' | 'HPAYMT';
type Grantee =
  | { kind: 'institution'; institution: string }
  | { kind: 'person'; staffId: string }
  | { kind: 'role'; role: string; institution: string | null };
type Scope = { kind: 'all' } | { kind: 'categories'; categories: string[] } | { kind: 'records'; recordIds: string[] };

const KINDS: Record<string, 'hospital' | 'clinic' | 'laboratory' | 'research'> = {
  'hosp-a': 'hospital',
  'hosp-b': 'hospital',
  'clinic-c': 'clinic',
  'lab-d': 'laboratory',
  'res-e': 'research',
};
const INSTITUTIONS = Object.keys(KINDS);
const STAFF_IDS = STAFF.map(([inst, local]) => `${inst}/${local}`);
const ROLE = new Map(STAFF.map(([inst, local, role]) => [`${inst}/${local}`, role as string]));
const CATEGORIES = ['Condition', 'Observation'];
const LEVELS: Level[] = ['identified', 'pseudonymised', 'anonymised'];
const PATIENTS = ['alice', 'bob'] as const;
type PatientName = (typeof PATIENTS)[number];

interface ModelRecord {
  id: string;
  patient: PatientName;
  category: string;
  custodian: string;
}
interface ModelConsent {
  id: string;
  patient: PatientName;
  grantee: Grantee;
  scope: Scope;
  purposes: PurposeCode[];
  from: number;
  to: number | null;
  level: Level;
  revoked: boolean;
  updatedAt: number;
}
interface Model {
  time: number;
  records: ModelRecord[];
  consents: ModelConsent[];
}
interface Real {
  cast: Cast;
}

const instOf = (staffId: string): string => staffId.split('/')[0]!;
const care = (inst: string): boolean => KINDS[inst] !== 'research';

// ------------------------------------------------------------------ the rules, as the model states them

function registerOutcome(staffId: string): string {
  const role = ROLE.get(staffId)!;
  const inst = instOf(staffId);
  if (!['doctor', 'nurse', 'operator'].includes(role) || !care(inst)) return 'ROLE_FORBIDDEN';
  // Both patients' home is hosp-a: only a hospital registers its own patients without asking.
  return inst === 'hosp-a' ? 'OK' : 'CONSENT_REQUIRED';
}

function covers(g: Grantee, staffId: string): boolean {
  if (g.kind === 'institution') return g.institution === instOf(staffId);
  if (g.kind === 'person') return g.staffId === staffId;
  return g.role === ROLE.get(staffId) && (g.institution === null || g.institution === instOf(staffId));
}

function inScope(s: Scope, r: ModelRecord): boolean {
  if (s.kind === 'all') return true;
  if (s.kind === 'categories') return s.categories.includes(r.category);
  return s.recordIds.includes(r.id);
}

function servedOutcome(
  m: Model,
  submitter: string,
  record: ModelRecord | undefined,
  requester: string,
  purpose: PurposeCode,
  level: Level,
  time: number,
): string {
  if (!care(submitter)) return 'ROLE_FORBIDDEN';
  if (record === undefined) return 'RECORD_NOT_FOUND';
  if (record.custodian !== submitter) return 'RECORD_NOT_CUSTODIAN';
  const role = ROLE.get(requester)!;
  if (role === 'researcher') return level === 'identified' ? 'DEIDENTIFICATION_REQUIRED' : 'STUDY_REQUIRED';
  if (instOf(requester) === record.custodian && role !== 'auditor' && ['TREAT', 'CAREMGT'].includes(purpose)) return 'OK';
  const strict = (given: Level, required: Level) => LEVELS.indexOf(given) >= LEVELS.indexOf(required);
  let miss = 'CONSENT_REQUIRED';
  let missAt = -1;
  for (const c of [...m.consents].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (c.patient !== record.patient || !covers(c.grantee, requester) || !inScope(c.scope, record)) continue;
    const why = c.revoked
      ? 'CONSENT_REVOKED'
      : !c.purposes.includes(purpose)
        ? 'CONSENT_PURPOSE_MISMATCH'
        : time < c.from
          ? 'CONSENT_NOT_YET_VALID'
          : c.to !== null && time >= c.to
            ? 'CONSENT_EXPIRED'
            : !strict(level, c.level)
              ? 'DEIDENTIFICATION_REQUIRED'
              : null;
    if (why === null) return 'OK';
    if (c.updatedAt >= missAt) [miss, missAt] = [why, c.updatedAt];
  }
  return miss;
}

// ------------------------------------------------------------------ commands

/** Every (type, code) the runs reached: the suite checks it covers each rule, so it cannot pass vacuously. */
const seen = new Set<string>();

/** Runs one tx in a block `gap` ms after the last; checks the code and that a rejection changed nothing. */
async function apply(
  m: Model,
  r: Real,
  gap: number,
  who: Parameters<Cast['ledger']['tx']>[0],
  type: Parameters<Cast['ledger']['tx']>[1],
  body: JsonObject,
  expected: string,
): Promise<string> {
  const before = expected === 'OK' ? null : JSON.stringify(r.cast.ledger.snapshot());
  const entry = await r.cast.ledger.tx(who, type, body);
  const code = await r.cast.ledger.code(entry, m.time + gap);
  m.time += gap;
  expect(code, `${type} ${JSON.stringify(body)}`).toBe(expected);
  seen.add(`${type} ${code}`);
  if (before !== null) expect(JSON.stringify(r.cast.ledger.snapshot())).toBe(before);
  return entry.txId;
}

const patientOf = (r: Real, p: PatientName) => r.cast[p];

class Register implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly staffId: string,
    readonly patient: PatientName,
    readonly category: string,
    readonly gap: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const expected = registerOutcome(this.staffId);
    const id = await apply(
      m,
      r,
      this.gap,
      r.cast.staff(this.staffId),
      'records.register',
      recordBody(patientOf(r, this.patient).patientCode, { category: this.category }),
      expected,
    );
    if (expected === 'OK') m.records.push({ id, patient: this.patient, category: this.category, custodian: instOf(this.staffId) });
  }
  toString = () => `register(${this.staffId}, ${this.patient}, ${this.category})`;
}

class Grant implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly signer: PatientName,
    readonly target: PatientName,
    readonly grantee: Grantee,
    readonly scope: { kind: 'all' } | { kind: 'categories'; categories: string[] } | { kind: 'records'; picks: number[] },
    readonly purposes: PurposeCode[],
    readonly fromOffset: number,
    readonly duration: number | null,
    readonly level: Level,
    readonly gap: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const time = m.time + this.gap;
    const scope: Scope =
      this.scope.kind === 'records'
        ? {
            kind: 'records',
            recordIds: [...new Set(this.scope.picks.map((i) => m.records[i % Math.max(1, m.records.length)]?.id ?? '0'.repeat(64)))],
          }
        : this.scope;
    const from = Math.max(0, time + this.fromOffset);
    const to = this.duration === null ? null : from + this.duration;
    const expected = this.signer !== this.target ? 'ROLE_FORBIDDEN' : to !== null && to <= from ? 'TX_BODY_INVALID' : 'OK';
    const body = {
      patientCode: patientOf(r, this.target).patientCode,
      grantee: this.grantee,
      scope,
      purposes: this.purposes,
      period: { from, to },
      deidentification: this.level,
    };
    const id = await apply(m, r, this.gap, patientOf(r, this.signer).patient, 'consent.grant', body, expected);
    if (expected === 'OK') {
      m.consents.push({
        id,
        patient: this.target,
        grantee: this.grantee,
        scope,
        purposes: this.purposes,
        from,
        to,
        level: this.level,
        revoked: false,
        updatedAt: time,
      });
      expect(r.cast.ledger.get<Consent>('consents', id)).toMatchObject({ status: 'active', period: { from, to } });
    }
  }
  toString = () =>
    `grant(${this.signer}→${this.target}, ${JSON.stringify(this.grantee)}, ${JSON.stringify(this.scope)}, ${this.purposes.join('+')}, ${this.fromOffset}, ${String(this.duration)}, ${this.level})`;
}

class Revoke implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly signer: PatientName,
    readonly pick: number,
    readonly gap: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const c = m.consents.length === 0 || this.pick < 0 ? undefined : m.consents[this.pick % m.consents.length];
    const id = c?.id ?? 'f'.repeat(64);
    const expected =
      c === undefined ? 'CONSENT_NOT_FOUND' : c.patient !== this.signer ? 'ROLE_FORBIDDEN' : c.revoked ? 'CONSENT_REVOKED' : 'OK';
    await apply(m, r, this.gap, patientOf(r, this.signer).patient, 'consent.revoke', { consentId: id }, expected);
    if (expected === 'OK') {
      c!.revoked = true;
      c!.updatedAt = m.time;
      expect(r.cast.ledger.get<Consent>('consents', id)!.status).toBe('revoked');
    }
  }
  toString = () => `revoke(${this.signer}, #${this.pick})`;
}

class Served implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly submitter: string,
    readonly pick: number,
    readonly requester: string,
    readonly purpose: PurposeCode,
    readonly level: Level,
    readonly gap: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const record = m.records.length === 0 || this.pick < 0 ? undefined : m.records[this.pick % m.records.length];
    const expected = servedOutcome(m, this.submitter, record, this.requester, this.purpose, this.level, m.time + this.gap);
    await apply(
      m,
      r,
      this.gap,
      r.cast.ledger.institution(this.submitter),
      'access.recordServed',
      {
        recordId: record?.id ?? 'e'.repeat(64),
        requester: this.requester,
        purpose: this.purpose,
        deidentification: this.level,
      },
      expected,
    );
  }
  toString = () => `served(${this.submitter}, #${this.pick}, ${this.requester}, ${this.purpose}, ${this.level})`;
}

/**
 * Locally every run draws new inputs; CI replays one fixed seed, so a rare input found while
 * working is fixed before it can turn main red at random. A failure prints its seed and path.
 */
const ciEnv = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
if (ciEnv?.['CI'] === 'true') fc.configureGlobal({ seed: 20261121 });

// ------------------------------------------------------------------ generators

const gap = fc.constantFrom(BLOCK_INTERVAL, 7 * BLOCK_INTERVAL, 60 * BLOCK_INTERVAL);
const patient = fc.constantFrom(...PATIENTS);
const purpose = fc.constantFrom<PurposeCode>('TREAT', 'CAREMGT', 'HRESCH', 'HPAYMT');
const level = fc.constantFrom(...LEVELS);
/** Requesters drawn mostly from a few people, so consents and requests meet often enough to test each rule. */
const FOCUS = ['hosp-b/dr-park', 'clinic-c/dr-choi', 'res-e/res-1', 'hosp-a/aud-a'];
const person = fc.oneof(
  { weight: 6, arbitrary: fc.constant(FOCUS[0]!) },
  { weight: 3, arbitrary: fc.constantFrom(...FOCUS) },
  { weight: 1, arbitrary: fc.constantFrom(...STAFF_IDS) },
);
const grantee: fc.Arbitrary<Grantee> = fc.oneof(
  fc.constantFrom(...INSTITUTIONS).map((institution) => ({ kind: 'institution' as const, institution })),
  { weight: 2, arbitrary: person.map((staffId) => ({ kind: 'person' as const, staffId })) },
  fc
    .tuple(
      fc.constantFrom('doctor', 'nurse', 'operator', 'researcher', 'auditor'),
      fc.option(fc.constantFrom(...INSTITUTIONS), { nil: null }),
    )
    .map(([role, institution]) => ({ kind: 'role' as const, role, institution })),
);
const scope = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: 'all' as const }) },
  fc.subarray(CATEGORIES, { minLength: 1 }).map((categories) => ({ kind: 'categories' as const, categories })),
  fc.array(fc.nat(20), { minLength: 1, maxLength: 3 }).map((picks) => ({ kind: 'records' as const, picks })),
);

const commands = [
  fc
    .tuple(
      fc.oneof(fc.constantFrom('hosp-a/dr-kim', 'hosp-a/nurse-lee', 'hosp-a/op-a'), fc.constantFrom(...STAFF_IDS)),
      patient,
      fc.constantFrom(...CATEGORIES),
      gap,
    )
    .map(([s, p, c, g]) => new Register(s, p, c, g)),
  fc
    .tuple(
      fc.oneof({ weight: 4, arbitrary: patient.map((p) => [p, p] as const) }, { weight: 1, arbitrary: fc.tuple(patient, patient) }),
      grantee,
      scope,
      fc.subarray<PurposeCode>(['TREAT', 'CAREMGT', 'HRESCH', 'HPAYMT'], { minLength: 1 }),
      // whole blocks, so validity boundaries fall exactly on block times
      fc.integer({ min: -60, max: 120 }).map((n) => n * BLOCK_INTERVAL),
      fc.option(
        fc.integer({ min: -2, max: 120 }).map((n) => n * BLOCK_INTERVAL),
        { nil: null },
      ),
      level,
      gap,
    )
    .map(([[signer, target], g, s, ps, off, dur, l, gp]) => new Grant(signer, target, g, s, ps, off, dur, l, gp)),
  fc.tuple(patient, fc.integer({ min: -1, max: 20 }), gap).map(([p, i, g]) => new Revoke(p, i, g)),
  fc
    .tuple(fc.constantFrom(...INSTITUTIONS), fc.integer({ min: -1, max: 20 }), person, purpose, level, gap)
    .map(([s, i, q, p, l, g]) => new Served(s, i, q, p, l, g)),
];

describe('consent and access contracts against a reference model', () => {
  it('agree on every outcome and rejection code over 1,000 random command sequences', async () => {
    // MODEL_RUNS lowers the count while working on the model; CI runs the full 1,000.
    const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
    const runs = Number(env?.['MODEL_RUNS'] ?? 1000);
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 16, size: 'max' }), async (cmds) => {
        const cast = await createCast();
        // Every run starts with a few records, so sequences spend their length on consents and accesses.
        const records: ModelRecord[] = [];
        for (const [p, category] of [
          ['alice', 'Condition'],
          ['bob', 'Observation'],
          ['alice', 'Observation'],
        ] as const) {
          const entry = await cast.ledger.ok(
            cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(cast[p].patientCode, { category })),
          );
          records.push({ id: entry.txId, patient: p, category, custodian: 'hosp-a' });
        }
        const setup = () => ({ model: { time: cast.ledger.time, records, consents: [] } as Model, real: { cast } });
        await fc.asyncModelRun(setup, cmds);
      }),
      { numRuns: runs },
    );
    if (runs >= 1000)
      for (const outcome of [
        'records.register OK',
        'records.register CONSENT_REQUIRED',
        'records.register ROLE_FORBIDDEN',
        'consent.grant OK',
        'consent.grant ROLE_FORBIDDEN',
        'consent.grant TX_BODY_INVALID',
        'consent.revoke OK',
        'consent.revoke CONSENT_REVOKED',
        'consent.revoke CONSENT_NOT_FOUND',
        'consent.revoke ROLE_FORBIDDEN',
        'access.recordServed OK',
        'access.recordServed CONSENT_REQUIRED',
        'access.recordServed CONSENT_REVOKED',
        'access.recordServed CONSENT_PURPOSE_MISMATCH',
        'access.recordServed CONSENT_NOT_YET_VALID',
        'access.recordServed CONSENT_EXPIRED',
        'access.recordServed DEIDENTIFICATION_REQUIRED',
        'access.recordServed STUDY_REQUIRED',
        'access.recordServed RECORD_NOT_CUSTODIAN',
        'access.recordServed RECORD_NOT_FOUND',
        'access.recordServed ROLE_FORBIDDEN',
      ])
        expect(seen, outcome).toContain(outcome);
  }, 600_000);
});
