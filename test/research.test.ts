/**
 * Research without identities, end to end on a real JetStream server with three custodian nodes
 * (hospital A, hospital B, clinic C, each with its own vault) and a laboratory that is a member
 * but never answers (the custodian that drops out):
 *
 * - a study's query runs at the custodians over their consenting patients; the released total
 *   equals the plain sum, small cells are suppressed, and what the requester can see (the round
 *   on the ledger) does not give away any custodian's own numbers;
 * - a custodian that drops out is handled (the survivors reveal their seeds after the deadline);
 * - the privacy budget refuses a round that would exceed it;
 * - a researcher fetches records de-identified for the study, with a pseudonym stable across
 *   custodians within the study and different in another study;
 * - a researcher trying every other path to identified data is refused with a code and an audit
 *   entry each time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '@medledger/core/client/identity';
import { VaultClient } from '@medledger/core/client/vault-client';
import { unwrapDataKey } from '@medledger/core/crypto/record-envelope';
import { openSealed } from '@medledger/core/crypto/record-envelope';
import { decodeVector, toSigned } from '@medledger/core/research/secure-aggregation';
import { vectorLength, type StudyQuery } from '@medledger/core/research/study-query';
import { canonicalBytes, type JsonObject } from '@medledger/core/codec/canonical-json';
import { sha256Hex } from '@medledger/core/crypto/hash';
import type { AccessLogEntry, AggregationRound, RecordEntry } from '@medledger/core/contracts/state';
import type { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { SHARE_INFO } from '../packages/node/src/vault/research-service.ts';
import { NatsCluster } from './nats-cluster.ts';
import { enrolCast, http, makeNetwork, send, startVaultNode, type Cast, type TestNetwork } from './test-network.ts';

const INSTITUTIONS = [
  { id: 'hosp-a', name: 'Hospital A', kind: 'hospital', validator: true },
  { id: 'hosp-b', name: 'Hospital B', kind: 'hospital', validator: true },
  { id: 'clinic-c', name: 'Clinic C', kind: 'clinic', validator: true },
  { id: 'lab-d', name: 'Laboratory D', kind: 'laboratory', validator: false },
  { id: 'res-e', name: 'Research E', kind: 'research', validator: false },
] as const;
const CUSTODIANS = ['hosp-a', 'hosp-b', 'clinic-c'] as const;
type Custodian = (typeof CUSTODIANS)[number];

const SNOMED = 'http://snomed.info/sct';
const DIABETES = { system: SNOMED, code: '44054006' };
const HBA1C = { system: 'http://loinc.org', code: '4548-4' };
const QUERY = {
  cohort: { codes: [DIABETES] },
  measure: { kind: 'mean', code: HBA1C, lower: 3, upper: 20 },
  groupBy: ['sex'],
};

let nats: NatsCluster;
let net: TestNetwork;
const nodes = new Map<Custodian, LedgerNode>();
let cast: Cast;
let researcher: Identity;

/**
 * The synthetic population: per custodian, who they are and whether they consent. Women reach
 * k = 5 across custodians (7); men do not (3), so their cell is suppressed.
 */
interface Person {
  index: number;
  at: Custodian;
  gender: 'female' | 'male';
  hba1c: number;
  consent: 'study' | 'research' | 'none';
}
const PEOPLE: Person[] = [
  { index: 0, at: 'hosp-a', gender: 'female', hba1c: 7.1, consent: 'study' },
  { index: 1, at: 'hosp-a', gender: 'female', hba1c: 8.4, consent: 'study' },
  { index: 2, at: 'hosp-a', gender: 'male', hba1c: 6.5, consent: 'study' },
  { index: 3, at: 'hosp-a', gender: 'female', hba1c: 9.9, consent: 'none' },
  { index: 4, at: 'hosp-b', gender: 'female', hba1c: 6.8, consent: 'research' },
  { index: 5, at: 'hosp-b', gender: 'female', hba1c: 7.7, consent: 'study' },
  { index: 6, at: 'hosp-b', gender: 'male', hba1c: 25.0, consent: 'study' },
  { index: 7, at: 'clinic-c', gender: 'female', hba1c: 6.2, consent: 'study' },
  { index: 8, at: 'clinic-c', gender: 'female', hba1c: 7.0, consent: 'study' },
  { index: 9, at: 'clinic-c', gender: 'male', hba1c: 8.0, consent: 'study' },
  { index: 10, at: 'clinic-c', gender: 'female', hba1c: 5.5, consent: 'none' },
];
const recordsOf = new Map<number, { patient: string; condition: string; observation: string }>();

const node = (id: Custodian): LedgerNode => nodes.get(id)!;
const staffAt = (id: Custodian): Identity => cast.staff.get(`${id}/op-${id}`)!;

async function ok(who: Identity, type: Parameters<typeof send>[3], body: JsonObject): Promise<string> {
  const r = await send(node('hosp-a').url, net.network, who, type, body);
  expect(r.code, `${type}: ${JSON.stringify(r.answer.body)}`).toBe('OK');
  return r.txId;
}

/** Waits until every node has applied the same height and its vault has done its ledger work. */
async function settle(): Promise<void> {
  const height = (): number[] => [...nodes.values()].map((n) => n.peer.store.head().height);
  for (let i = 0; i < 400 && new Set(height()).size > 1; i++) await new Promise((r) => setTimeout(r, 25));
  for (const n of nodes.values()) await n.vault!.idle();
}

const startNode = (id: Custodian): Promise<LedgerNode> => startVaultNode(net, nats.urls, 'RS', id);

function patientResource(p: Person): JsonObject {
  return {
    resourceType: 'Patient',
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.4.1', value: `900-00-${String(1000 + p.index)}` }],
    name: [{ family: `Family${p.index}`, given: [`Given${p.index}`] }],
    telecom: [{ system: 'phone', value: `+1-555-010-${String(1000 + p.index)}` }],
    gender: p.gender,
    birthDate: `19${String(50 + p.index)}-03-14`,
    address: [{ line: [`${p.index} Main Street`], city: 'Springfield', postalCode: '94110', state: 'CA' }],
  };
}

function conditionResource(p: Person): JsonObject {
  return {
    resourceType: 'Condition',
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ ...DIABETES, display: 'Diabetes mellitus type 2' }] },
    subject: { reference: `Patient/p${p.index}`, display: `Given${p.index} Family${p.index}` },
    onsetDateTime: '2024-05-02',
    recordedDate: '2024-05-03',
    note: [{ text: `Seen with Given${p.index} Family${p.index}, phone +1-555-010-${String(1000 + p.index)}` }],
  };
}

function observationResource(p: Person): JsonObject {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ ...HBA1C, display: 'Hemoglobin A1c' }] },
    subject: { reference: `Patient/p${p.index}` },
    effectiveDateTime: '2026-10-01T09:30:00Z',
    valueQuantity: { value: p.hba1c, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
  };
}

/** Stores a resource in the custodian's vault and registers it (asking the patient first when not at home). */
async function keep(at: Custodian, patient: Cast['patients'][number], resource: JsonObject): Promise<string> {
  const author = staffAt(at);
  const client = new VaultClient(author);
  const stored = await client.store(node(at).url, at, { patientCode: patient.code, resource });
  let registrationRequestId: string | null = null;
  if (patient.home !== at) {
    registrationRequestId = await ok(author, 'consent.requestRegistration', {
      patientCode: patient.code,
      category: resource['resourceType'] as string,
      purpose: 'TREAT',
      note: 'care record',
    });
    await ok(patient.identity, 'consent.answerRegistration', { requestId: registrationRequestId, accept: true });
  }
  return ok(author, 'records.register', { patientCode: patient.code, registrationRequestId, ...stored.index });
}

function grantFor(p: Person, grantee: JsonObject): Promise<string> {
  const patient = cast.patients[p.index]!;
  return ok(patient.identity, 'consent.grant', {
    patientCode: patient.code,
    grantee,
    scope: { kind: 'all' },
    purposes: ['HRESCH'],
    period: { from: Date.now() - 60_000, to: null },
    deidentification: 'pseudonymised',
  });
}

async function registerStudy(studyId: string, overrides: JsonObject = {}): Promise<void> {
  await ok(researcher, 'research.registerStudy', {
    studyId,
    title: `Diabetes control by sex (${studyId})`,
    purpose: 'HRESCH',
    categories: ['Patient', 'Condition', 'Observation'],
    query: QUERY,
    deidentification: 'pseudonymised',
    k: 5,
    epsilonBudgetMilli: null,
    ...overrides,
  });
}

/** Opens a round as the researcher and waits for its release (or failure). */
async function runRound(studyId: string, custodians: string[], epsilonMilli: number | null, timeoutMs: number): Promise<AggregationRound> {
  const roundId = await ok(researcher, 'research.openRound', { studyId, custodians, epsilonMilli, timeoutMs });
  const until = Date.now() + timeoutMs + 60_000;
  for (;;) {
    const round = (await http<AggregationRound>('GET', `${node('hosp-a').url}/api/rounds/${roundId}`)).body;
    if (round.status !== 'open') return round;
    if (Date.now() > until) throw new Error(`round ${roundId} still open`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The plain truth, from the synthetic population: consenting women/men, their clipped HbA1c. */
function expected(custodians: readonly string[]): Map<string, { count: number; sum: number }> {
  const out = new Map<string, { count: number; sum: number }>();
  for (const p of PEOPLE) {
    if (p.consent === 'none' || !custodians.includes(p.at)) continue;
    const cell = out.get(p.gender) ?? { count: 0, sum: 0 };
    out.set(p.gender, { count: cell.count + 1, sum: cell.sum + Math.min(20, Math.max(3, p.hba1c)) });
  }
  return out;
}

beforeAll(async () => {
  nats = await NatsCluster.start(1);
  net = await makeNetwork(
    { batchTimeoutMs: 5 },
    INSTITUTIONS.map((i) => ({ ...i })),
  );
  for (const id of CUSTODIANS) nodes.set(id, await startNode(id));
  for (const id of CUSTODIANS) await ok(net.institutions.get(id)!, 'membership.setEndpoint', { vaultUrl: node(id).url });
  cast = await enrolCast(
    node('hosp-a').url,
    net,
    {
      'hosp-a/op-hosp-a': 'operator',
      'hosp-b/op-hosp-b': 'operator',
      'clinic-c/op-clinic-c': 'operator',
      'hosp-a/aud-a': 'auditor',
      'res-e/res-1': 'researcher',
    },
    PEOPLE.map((p) => (p.at === 'clinic-c' ? 'hosp-a' : p.at)),
  );
  researcher = cast.staff.get('res-e/res-1')!;
  await settle();
  for (const p of PEOPLE) {
    const patient = cast.patients[p.index]!;
    recordsOf.set(p.index, {
      patient: await keep(p.at, patient, patientResource(p)),
      condition: await keep(p.at, patient, conditionResource(p)),
      observation: await keep(p.at, patient, observationResource(p)),
    });
  }
  await registerStudy('diabetes-sex');
  for (const p of PEOPLE) {
    if (p.consent === 'study') await grantFor(p, { kind: 'study', studyId: 'diabetes-sex' });
    if (p.consent === 'research') await grantFor(p, { kind: 'role', role: 'researcher', institution: null });
  }
  await settle();
}, 240_000);

afterAll(async () => {
  for (const n of nodes.values()) await n.stop();
  await nats?.stop();
});

describe('federated statistics with secure aggregation', () => {
  it('releases the plain total of three custodians, suppressing small cells, and the requester’s view shows no custodian’s numbers', async () => {
    const round = await runRound('diabetes-sex', [...CUSTODIANS], null, 20_000);
    expect(round).toMatchObject({ status: 'released', releaser: 'clinic-c', dropped: [] });
    const truth = expected(CUSTODIANS);
    const result = round.result as { cells: { key: { sex: string }; count: number | null; sum?: number | null; mean?: number | null }[] };
    const female = result.cells.find((c) => c.key.sex === 'female')!;
    expect(female.count).toBe(truth.get('female')!.count);
    expect(female.count).toBeGreaterThanOrEqual(5);
    expect(female.mean).toBeCloseTo(truth.get('female')!.sum / truth.get('female')!.count, 6);
    // Men: 3 consenting across custodians, under k = 5: suppressed, with their mean.
    const male = result.cells.find((c) => c.key.sex === 'male')!;
    expect(truth.get('male')!.count).toBe(3);
    expect(male).toMatchObject({ count: null, mean: null });
    expect(round.resultHash).toBe(sha256Hex(canonicalBytes(round.result as JsonObject)));

    // The requester's view: the round as any node serves it. Shares are sealed to the releaser;
    // the researcher's key opens none of them.
    const seen = (await http<AggregationRound>('GET', `${node('hosp-a').url}/api/rounds/${round.roundId}`)).body;
    for (const [c, share] of Object.entries(seen.shares)) {
      await expect(openSealed(share, researcher.file.encryption.privateKey, `${SHARE_INFO} ${round.roundId} ${c}`)).rejects.toMatchObject({
        code: 'RECORD_INTEGRITY',
      });
    }
    // Even the releaser, which opens them, sees masked vectors: none is its custodian's vector,
    // and only their sum is the total.
    const length = vectorLength(QUERY as StudyQuery);
    const releaserKey = net.institutions.get('clinic-c')!.file.encryption.privateKey;
    const total = new Array<bigint>(length).fill(0n);
    for (const c of CUSTODIANS) {
      const opened = await openSealed(seen.shares[c]!, releaserKey, `${SHARE_INFO} ${round.roundId} ${c}`);
      const masked = decodeVector(new TextDecoder().decode(opened), length);
      const own = await node(c).vault!.research.contributionOf(c, round.roundId);
      expect(own.some((v) => v !== 0n)).toBe(true);
      expect(masked.every((v, i) => v !== own[i])).toBe(true);
      own.forEach((v, i) => (total[i] = (total[i]! + v) % 2n ** 64n));
    }
    const counts = total.map((v) => Number(toSigned(v)));
    expect(counts).toContain(truth.get('female')!.count);
    expect(counts).toContain(3);
  });

  it('handles a custodian that drops out: the survivors reveal their seeds after the deadline', async () => {
    // Without a budget a study releases one exact table: this round belongs to a second study.
    await registerStudy('diabetes-sex-2');
    for (const p of PEOPLE) {
      if (p.consent === 'study') await grantFor(p, { kind: 'study', studyId: 'diabetes-sex-2' });
    }
    await settle();
    const again = await send(node('hosp-a').url, net.network, researcher, 'research.openRound', {
      studyId: 'diabetes-sex',
      custodians: [...CUSTODIANS],
      epsilonMilli: null,
      timeoutMs: 4_000,
    });
    expect(again.code).toBe('BUDGET_EXCEEDED');
    const round = await runRound('diabetes-sex-2', [...CUSTODIANS, 'lab-d'], null, 4_000);
    expect(round).toMatchObject({ status: 'released', dropped: ['lab-d'] });
    expect(Object.keys(round.reveals).sort()).toEqual([...CUSTODIANS].sort());
    const female = (round.result as { cells: { key: { sex: string }; count: number | null }[] }).cells.find((c) => c.key.sex === 'female')!;
    expect(female.count).toBe(expected(CUSTODIANS).get('female')!.count);
  });

  it('completes a round whose releasing custodian was stopped and restarted in the middle of it', async () => {
    await registerStudy('diabetes-restart', { epsilonBudgetMilli: 1000 });
    for (const p of PEOPLE.filter((x) => x.consent === 'study')) await grantFor(p, { kind: 'study', studyId: 'diabetes-restart' });
    await settle();
    await node('clinic-c').stop();
    const roundId = await ok(researcher, 'research.openRound', {
      studyId: 'diabetes-restart',
      custodians: [...CUSTODIANS],
      epsilonMilli: 500,
      timeoutMs: 20_000,
    });
    // The others contribute while the releaser is down; it takes the round up when it is back.
    await expect
      .poll(
        async () => Object.keys((await http<AggregationRound>('GET', `${node('hosp-a').url}/api/rounds/${roundId}`)).body.shares).length,
      )
      .toBe(2);
    nodes.set('clinic-c', await startNode('clinic-c'));
    let round: AggregationRound | undefined;
    for (let i = 0; i < 300 && round?.status !== 'released'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      round = (await http<AggregationRound>('GET', `${node('hosp-a').url}/api/rounds/${roundId}`)).body;
    }
    expect(round).toMatchObject({ status: 'released', dropped: [] });
    expect(round!.resultHash).toBe(sha256Hex(canonicalBytes(round!.result as JsonObject)));
  });

  it('spends the privacy budget with noise, and refuses a round that would exceed it', async () => {
    await registerStudy('diabetes-dp', { epsilonBudgetMilli: 1000 });
    for (const p of PEOPLE.filter((x) => x.consent === 'study')) await grantFor(p, { kind: 'study', studyId: 'diabetes-dp' });
    const round = await runRound('diabetes-dp', [...CUSTODIANS], 700, 20_000);
    expect(round.status).toBe('released');
    expect(round.result).toMatchObject({ mechanism: 'discrete-laplace', epsilon: 0.7, k: 5 });
    const over = await send(node('hosp-a').url, net.network, researcher, 'research.openRound', {
      studyId: 'diabetes-dp',
      custodians: [...CUSTODIANS],
      epsilonMilli: 500,
      timeoutMs: 20_000,
    });
    expect(over.code).toBe('BUDGET_EXCEEDED');
    const study = (
      await http<{ study: { epsilonSpentMilli: number }; rounds: unknown[] }>('GET', `${node('hosp-a').url}/api/studies/diabetes-dp`)
    ).body;
    expect(study.study.epsilonSpentMilli).toBe(700);
    expect(study.rounds).toHaveLength(1);
  });
});

const entry = (recordId: string): RecordEntry => node('hosp-a').peer.store.get('records', recordId) as unknown as RecordEntry;

describe('records de-identified for a study', () => {
  const fetch = (recordId: string, study: string) =>
    new VaultClient(researcher).fetchDeidentified(node(entry(recordId).custodian as Custodian).url, recordId, study, 'HRESCH');

  it('serves a consenting patient’s record without identifiers, with a pseudonym stable within the study and across custodians', async () => {
    const p = PEOPLE[0]!;
    const patient = cast.patients[p.index]!;
    // The same patient also has a record at hospital B.
    const atB = await keep('hosp-b', patient, observationResource({ ...p, hba1c: 7.3 }));
    await settle();
    const condition = await fetch(recordsOf.get(p.index)!.condition, 'diabetes-sex');
    const text = JSON.stringify(condition.resource);
    for (const marker of [`Given${p.index}`, `Family${p.index}`, '555-010', '2024-05-02']) expect(text).not.toContain(marker);
    expect(condition.resource['code']).toMatchObject({ coding: [{ code: DIABETES.code }] });
    const subject = (condition.resource['subject'] as { reference: string }).reference;
    expect(subject).toMatch(/^Patient\/[0-9a-f]{16,}$/);
    const demographics = await fetch(recordsOf.get(p.index)!.patient, 'diabetes-sex');
    expect(JSON.stringify(demographics.resource)).not.toMatch(/900-00-|Main Street|Springfield|94110/);
    const fromB = await fetch(atB, 'diabetes-sex');
    expect((fromB.resource['subject'] as { reference: string }).reference).toBe(subject);
    // Another study cannot link: the same patient has another pseudonym there.
    const otherStudy = await fetch(recordsOf.get(p.index)!.condition, 'diabetes-dp');
    expect((otherStudy.resource['subject'] as { reference: string }).reference).not.toBe(subject);
    // The patient sees the researcher and the study in their access history.
    const log = await http<AccessLogEntry[]>('GET', `${node('hosp-a').url}/api/patients/${patient.code}/access-log?limit=1000`);
    expect(log.body.some((e) => e.actor === 'res-e/res-1' && e.outcome === 'served' && e.study === 'diabetes-sex')).toBe(true);
  });
});

describe('a researcher trying every path to identified data', () => {
  const A = (): LedgerNode => node('hosp-a');
  const auditor = (): VaultClient => new VaultClient(cast.staff.get('hosp-a/aud-a')!);

  /** Runs `attempt`; expects `code`, a refused entry with it in hospital A's vault audit and, when `logged`, in the patient's access log. */
  async function refusedAtVault(attempt: () => Promise<unknown>, code: string, patientCode: string | null): Promise<void> {
    const before = (await auditor().audit(A().url, 'hosp-a', 0, 1000)).length;
    await expect(attempt()).rejects.toMatchObject({ code });
    const audit = (await auditor().audit(A().url, 'hosp-a', 0, 1000)).slice(before);
    expect(audit.some((e) => e['outcome'] === 'refused' && e['code'] === code && e['requester'] === 'res-e/res-1')).toBe(true);
    if (patientCode !== null) {
      await expect
        .poll(async () => {
          const log = await http<AccessLogEntry[]>('GET', `${A().url}/api/patients/${patientCode}/access-log?limit=1000`);
          return log.body.some((e) => e.outcome === 'refused' && e.code === code && e.actor === 'res-e/res-1');
        })
        .toBe(true);
    }
  }

  /** Submits a transaction as the researcher; expects it rejected with `code`, kept in its block with that code. */
  async function refusedOnLedger(type: Parameters<typeof send>[3], body: JsonObject, code: string): Promise<void> {
    const r = await send(A().url, net.network, researcher, type, body);
    expect(r.code).toBe(code);
    const tx = await http<{ code: string; status: string }>('GET', `${A().url}/api/tx/${r.txId}`);
    expect(tx.body).toMatchObject({ code });
  }

  it('is refused at the vault, with a code and an audit entry each time', async () => {
    const p = PEOPLE[1]!;
    const patient = cast.patients[p.index]!;
    const recordId = recordsOf.get(p.index)!.condition;
    const client = new VaultClient(researcher);
    const url = A().url;
    const index = { ...entry(recordId) };
    // Identified, as a doctor would ask.
    await refusedAtVault(() => client.fetchRecord(url, index, 'HRESCH'), 'STUDY_REQUIRED', patient.code);
    await refusedAtVault(() => client.fetchRecord(url, index, 'TREAT'), 'STUDY_REQUIRED', patient.code);
    // Naming a study but asking for identified data, or for another purpose.
    await refusedAtVault(
      () => client.get(`${url}/vault/records/${recordId}?purpose=HRESCH&study=diabetes-sex&deidentification=identified`),
      'DEIDENTIFICATION_REQUIRED',
      patient.code,
    );
    await refusedAtVault(() => client.fetchDeidentified(url, recordId, 'diabetes-sex', 'TREAT'), 'STUDY_FORBIDDEN', patient.code);
    // A patient who did not consent.
    const refuser = PEOPLE[3]!;
    await refusedAtVault(
      () => client.fetchDeidentified(url, recordsOf.get(refuser.index)!.condition, 'diabetes-sex', 'HRESCH'),
      'CONSENT_REQUIRED',
      cast.patients[refuser.index]!.code,
    );
    // Files, even after a served de-identified access.
    const served = await client.fetchDeidentified(url, recordId, 'diabetes-sex', 'HRESCH');
    await refusedAtVault(
      () => client.get(`${url}/vault/records/${recordId}/attachments/0?access=${served.accessTx!}`),
      'DEIDENTIFICATION_REQUIRED',
      null,
    );
    // The vault's audit, and storing records.
    await refusedAtVault(() => client.audit(url, 'hosp-a'), 'ROLE_FORBIDDEN', null);
    await refusedAtVault(
      () => client.store(url, 'hosp-a', { patientCode: patient.code, resource: conditionResource(p) }),
      'ROLE_FORBIDDEN',
      null,
    );
  });

  it('is refused on the ledger, each rejection kept in its block with its code', async () => {
    const patient = cast.patients[PEOPLE[1]!.index]!;
    await refusedOnLedger(
      'access.request',
      { patientCode: patient.code, scope: { kind: 'all' }, purpose: 'HRESCH', deidentification: 'identified', reason: 'study' },
      'DEIDENTIFICATION_REQUIRED',
    );
    await refusedOnLedger(
      'access.breakGlass',
      { patientCode: patient.code, reason: 'ETREAT', justification: 'not a doctor at all', durationMs: 60_000 },
      'ROLE_FORBIDDEN',
    );
    await refusedOnLedger(
      'consent.grant',
      {
        patientCode: patient.code,
        grantee: { kind: 'person', staffId: 'res-e/res-1' },
        scope: { kind: 'all' },
        purposes: ['HRESCH'],
        period: { from: 0, to: null },
        deidentification: 'identified',
      },
      'ROLE_FORBIDDEN',
    );
    // A study key the researcher made would let it compute pseudonyms: only care custodians share one.
    await refusedOnLedger('research.shareStudyKey', { studyId: 'diabetes-sex', envelopes: { 'hosp-a': 'AAAA' } }, 'ROLE_FORBIDDEN');
    await refusedOnLedger(
      'access.recordServed',
      { recordId: recordsOf.get(1)!.condition, requester: 'res-e/res-1', purpose: 'HRESCH', deidentification: 'identified' },
      'ROLE_FORBIDDEN',
    );
  });

  it('holds no key that opens what the ledger carries', async () => {
    const e = entry(recordsOf.get(1)!.condition);
    await expect(unwrapDataKey(e.keyEnvelopes!.patient, researcher.file.encryption.privateKey)).rejects.toMatchObject({
      code: 'RECORD_INTEGRITY',
    });
    await expect(unwrapDataKey(e.keyEnvelopes!.custodian, researcher.file.encryption.privateKey)).rejects.toMatchObject({
      code: 'RECORD_INTEGRITY',
    });
  });
});
