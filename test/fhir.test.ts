/**
 * The FHIR R4 facade end to end through HTTP on a real node (SQLite, solo orderer, hospital A's
 * vault): every answer — Bundle, resource, OperationOutcome, CapabilityStatement — is checked
 * against the official R4 JSON Schema; DocumentReference search and Binary retrieval decide
 * exactly as the vault does, with the same access-log entries; a posted Consent grants it and
 * bad ones change nothing; AuditEvents match the access log one to one; Provenance carries
 * block time, author and a signature that verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Consent as FhirConsent, DocumentReference, OperationOutcome, Provenance, AuditEvent } from '@medplum/fhirtypes';
import type { Identity } from '@medledger/core/client/identity';
import { VaultClient } from '@medledger/core/client/vault-client';
import { recordAad } from '@medledger/core/client/seal-record';
import { fromBase64Url, utf8, fromUtf8 } from '@medledger/core/codec/bytes';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { AccessLogEntry, Consent, RecordEntry } from '@medledger/core/contracts/state';
import { verify } from '@medledger/core/crypto/ed25519';
import { sha256Hex } from '@medledger/core/crypto/hash';
import { unwrapDataKey } from '@medledger/core/crypto/record-envelope';
import { decryptBytes } from '@medledger/core/crypto/stream-aead';
import { fhirConsentForGrant, withSignedGrant, type GrantBodyValue } from '@medledger/core/fhir/consent';
import { Hl7Systems, MedledgerSystems, fromBase64, instantOf } from '@medledger/core/fhir/systems';
import { signRequest } from '@medledger/core/http/message-signatures';
import { txSigningMessage } from '@medledger/core/ledger/tx';
import type { Purpose } from '@medledger/core/policy/purposes';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { assertValidFhir } from './fhir-schema.ts';
import { enrolCast, http, makeNetwork, observation, send, type Cast, type TestNetwork } from './test-network.ts';

let net: TestNetwork;
let node: LedgerNode;
let base: string;
let cast: Cast;
let patient: { identity: Identity; code: string };
let other: { identity: Identity; code: string };
/** records of `patient` at hosp-a, oldest first: two Observations, a Condition, and an amendment of the first */
const records: { id: string; resource: JsonObject; category: string }[] = [];

const staff = (id: string): Identity => cast.staff.get(id)!;

interface Answer<T> {
  status: number;
  body: T;
  location: string | null;
}

/** A signed FHIR request; every answer must be application/fhir+json and valid R4. */
async function fhir<T = Bundle>(who: Identity | null, method: string, path: string, body?: unknown): Promise<Answer<T>> {
  const url = path.startsWith('http') ? path : `${base}/fhir${path}`;
  const bytes = body === undefined ? null : utf8(JSON.stringify(body));
  const signed =
    who === null ? {} : await signRequest({ method, url, body: bytes, keyId: who.keyId, privateKey: who.file.signing.privateKey });
  const res = await fetch(url, {
    method,
    headers: { accept: 'application/fhir+json', ...(bytes === null ? {} : { 'content-type': 'application/fhir+json' }), ...signed },
    ...(bytes === null ? {} : { body: bytes }),
  });
  expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  const json = (await res.json()) as T;
  assertValidFhir(json);
  return { status: res.status, body: json, location: res.headers.get('location') };
}

function expectOutcome(a: Answer<unknown>, status: number, issue: string, code: string): void {
  expect({ status: a.status, body: a.body }).toMatchObject({
    status,
    body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: issue, details: { coding: [{ code }] } }] },
  });
  expect(JSON.stringify(a.body)).not.toContain(patient.code);
}

async function settle(): Promise<void> {
  await node.vault!.idle();
}

async function ok(who: Identity, type: Parameters<typeof send>[3], body: JsonObject): Promise<string> {
  const r = await send(base, net.network, who, type, body);
  expect(r.code, `${type}: ${JSON.stringify(r.answer.body)}`).toBe('OK');
  return r.txId;
}

async function accessLog(code = patient.code): Promise<AccessLogEntry[]> {
  return (await http<AccessLogEntry[]>('GET', `${base}/api/patients/${code}/access-log?limit=1000`)).body;
}

/** Waits until the patient's access log has `n` entries (refusals are written without waiting). */
async function logLength(n: number): Promise<AccessLogEntry[]> {
  for (let i = 0; i < 400; i++) {
    const log = await accessLog();
    if (log.length >= n) return log;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`access log did not reach ${n}`);
}

async function store(resource: JsonObject, amend?: string): Promise<string> {
  const author = staff('hosp-a/dr-a');
  const stored = await new VaultClient(author).store(base, 'hosp-a', { patientCode: patient.code, resource });
  const id = amend
    ? await ok(author, 'records.amend', { recordId: amend, ...stored.index })
    : await ok(author, 'records.register', { patientCode: patient.code, registrationRequestId: null, ...stored.index });
  await settle();
  return id;
}

beforeAll(async () => {
  net = await makeNetwork({ batchTimeoutMs: 5 });
  node = await LedgerNode.start({
    dataDir: net.nodeDir('hosp-a'),
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
    vault: { store: { kind: 'sqlite' }, institutions: ['hosp-a'] },
  });
  base = node.url;
  cast = await enrolCast(
    base,
    net,
    {
      'hosp-a/dr-a': 'doctor',
      'hosp-a/aud-a': 'auditor',
      'hosp-b/dr-b': 'doctor',
      'hosp-b/aud-b': 'auditor',
      'clinic-c/dr-c': 'doctor',
      'res-e/res': 'researcher',
    },
    ['hosp-a', 'hosp-a'],
  );
  [patient, other] = [cast.patients[0]!, cast.patients[1]!];
  await settle();
  const first = observation('baseline');
  records.push({ id: await store(first), resource: first, category: 'Observation' });
  const second = observation('follow-up');
  records.push({ id: await store(second), resource: second, category: 'Observation' });
  const condition: JsonObject = {
    resourceType: 'Condition',
    subject: { reference: 'Patient/synthetic-1' },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '271737000', display: 'Anaemia' }] },
  };
  records.push({ id: await store(condition), resource: condition, category: 'Condition' });
  const amended = observation('baseline, corrected');
  records.push({ id: await store(amended, records[0]!.id), resource: amended, category: 'Observation' });
}, 180_000);

afterAll(async () => {
  await node?.stop();
});

describe('metadata and errors', () => {
  it('answers a CapabilityStatement at /fhir/metadata without a signature', async () => {
    const a = await fhir<{ resourceType: string; fhirVersion: string; rest: { resource: { type: string }[] }[] }>(null, 'GET', '/metadata');
    expect(a.status).toBe(200);
    expect(a.body.fhirVersion).toBe('4.0.1');
    expect(a.body.rest[0]!.resource.map((r) => r.type)).toEqual(['DocumentReference', 'Binary', 'Consent', 'AuditEvent', 'Provenance']);
  });

  it('refuses unsigned requests, unknown parameters and unknown interactions with an OperationOutcome', async () => {
    expectOutcome(await fhir(null, 'GET', `/DocumentReference?patient=${patient.code}`), 401, 'login', 'SIGNATURE_MISSING');
    for (const q of ['foo=bar', 'patient:missing=true', '_summary=count', 'date=ne2026', '_sort=category', 'status=current', '_count=x']) {
      expectOutcome(
        await fhir(patient.identity, 'GET', `/DocumentReference?patient=${patient.code}&${q}`),
        400,
        'not-supported',
        'FHIR_SEARCH_UNSUPPORTED',
      );
    }
    expectOutcome(await fhir(patient.identity, 'GET', `/AuditEvent?subtype=read`), 400, 'not-supported', 'FHIR_SEARCH_UNSUPPORTED');
    expectOutcome(
      await fhir(patient.identity, 'GET', `/DocumentReference/${records[1]!.id}?_format=json`),
      400,
      'not-supported',
      'FHIR_SEARCH_UNSUPPORTED',
    );
    expectOutcome(await fhir(patient.identity, 'GET', '/Patient'), 404, 'not-found', 'NOT_FOUND');
  });
});

describe('DocumentReference search (ITI-67)', () => {
  it('shows a patient their own index, newest first, with paging links and totals', async () => {
    const all = await fhir(patient.identity, 'GET', `/DocumentReference?patient=Patient/${patient.code}&_count=100`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ type: 'searchset', total: 4 });
    const docs = all.body.entry!.map((e) => e.resource as DocumentReference);
    expect(docs.map((d) => d.id)).toEqual([...records].reverse().map((r) => r.id));
    const first = docs.find((d) => d.id === records[0]!.id)!;
    expect(first.status).toBe('superseded');
    const amendment = docs.find((d) => d.id === records[3]!.id)!;
    expect(amendment).toMatchObject({
      status: 'current',
      subject: { identifier: { system: MedledgerSystems.patientCode, value: patient.code } },
      custodian: { identifier: { value: 'hosp-a' } },
      relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${records[0]!.id}` } }],
      content: [{ attachment: { contentType: 'application/fhir+json', url: `${base}/fhir/Binary/${records[3]!.id}` } }],
    });

    // Pages of one, oldest first, followed by their next links to the end.
    const seen: string[] = [];
    let next: string | undefined = `${base}/fhir/DocumentReference?patient=${patient.code}&_count=1&_sort=date`;
    while (next !== undefined) {
      const page: Answer<Bundle> = await fhir(patient.identity, 'GET', next);
      expect(page.body.total).toBe(4);
      seen.push(...page.body.entry!.map((e) => e.resource!.id!));
      next = page.body.link!.find((l) => l.relation === 'next')?.url;
    }
    expect(seen).toEqual(records.map((r) => r.id));
  });

  it('filters by category / type, custodian and date', async () => {
    const q = (s: string) => fhir(patient.identity, 'GET', `/DocumentReference?${s}`);
    const ids = (b: Answer<Bundle>) => b.body.entry!.map((e) => e.resource!.id);
    expect(ids(await q(`patient=${patient.code}&category=Condition`))).toEqual([records[2]!.id]);
    expect(ids(await q(`patient=${patient.code}&type=${encodeURIComponent(`${Hl7Systems.resourceTypes}|Condition`)}`))).toEqual([
      records[2]!.id,
    ]);
    expect((await q(`patient=${patient.code}&category=Condition&type=Observation`)).body.total).toBe(0);
    const byIdentifier = encodeURIComponent(`${MedledgerSystems.patientCode}|${patient.code}`);
    expect((await q(`patient.identifier=${byIdentifier}&category=Condition`)).body.total).toBe(1);
    expect(
      (await fhir(patient.identity, 'GET', `/DocumentReference?patient.identifier=${encodeURIComponent(`urn:other|${patient.code}`)}`))
        .status,
    ).toBe(400);
    expect((await q(`patient=${patient.code}&custodian=Organization/hosp-b`)).body.total).toBe(0);
    const entries = records.map((r) => node.peer.store.get('records', r.id) as unknown as RecordEntry);
    const t = entries[2]!.registeredAt;
    const at = encodeURIComponent(instantOf(t));
    expect(ids(await q(`patient=${patient.code}&date=ge${at}&date=le${at}&_sort=date`))).toEqual(
      entries.filter((e) => e.registeredAt === t).map((e) => e.recordId),
    );
    expect((await q(`patient=${patient.code}&date=lt2000-01-01`)).body.total).toBe(0);
  });

  it('keeps a patient to their own and staff to the rules of /api/records', async () => {
    expectOutcome(await fhir(patient.identity, 'GET', `/DocumentReference?patient=${other.code}`), 403, 'forbidden', 'ROLE_FORBIDDEN');
    expectOutcome(await fhir(other.identity, 'GET', `/DocumentReference/${records[1]!.id}`), 403, 'forbidden', 'ROLE_FORBIDDEN');
    // A doctor of another hospital finds the index entries, as /api/records shows them, one for one.
    const found = await fhir(staff('hosp-b/dr-b'), 'GET', `/DocumentReference?patient=${patient.code}&_count=100`);
    const api = await http<RecordEntry[]>('GET', `${base}/api/records?patientCode=${patient.code}`);
    expect(found.body.entry!.map((e) => e.resource!.id).sort()).toEqual(api.body.map((r) => r.recordId).sort());
    expectOutcome(await fhir(staff('hosp-b/dr-b'), 'GET', '/DocumentReference'), 400, 'invalid', 'BAD_REQUEST');
    // Auditors read audit trails only; researchers never see identified index entries.
    for (const who of ['hosp-a/aud-a', 'res-e/res']) {
      expectOutcome(await fhir(staff(who), 'GET', `/DocumentReference?patient=${patient.code}`), 403, 'forbidden', 'ROLE_FORBIDDEN');
    }
  });

  it('puts every answer it decides in the vault’s audit trail, served or refused with its code', async () => {
    const auditor = new VaultClient(staff('hosp-a/aud-a'));
    const seqOf = (e: JsonObject): number => e['seq'] as number;
    const last = Math.max(0, ...(await auditor.audit(base, 'hosp-a', 0, 1000)).map(seqOf));
    expect((await fhir(staff('hosp-b/dr-b'), 'GET', `/DocumentReference?patient=${patient.code}`)).status).toBe(200);
    expect((await fhir(staff('hosp-a/aud-a'), 'GET', `/DocumentReference?patient=${patient.code}`)).status).toBe(403);
    expect((await fhir(patient.identity, 'GET', `/Consent?patient=${other.code}`)).status).toBe(403);
    const facade = (await auditor.audit(base, 'hosp-a', last, 1000)).filter(
      (e) => typeof e['action'] === 'string' && e['action'].includes('/fhir/'),
    );
    expect(facade.map((e) => [e['requester'], e['action'], e['outcome'], e['code']])).toEqual([
      ['hosp-b/dr-b', 'GET /fhir/DocumentReference', 'served', null],
      ['hosp-a/aud-a', 'GET /fhir/DocumentReference', 'refused', 'ROLE_FORBIDDEN'],
      [`patient:${patient.identity.keyId}`, 'GET /fhir/Consent', 'refused', 'ROLE_FORBIDDEN'],
    ]);
  });
});

describe('content retrieval (ITI-68) decides exactly as the vault', () => {
  /** The same question asked of the vault route and of the facade: same answer code, same log entry. */
  async function both(who: Identity, recordId: string, purpose: Purpose): Promise<{ code: string; entries: AccessLogEntry[] }> {
    const before = (await accessLog()).length;
    let vaultCode = 'OK';
    try {
      await new VaultClient(who).fetchRecord(base, node.peer.store.get('records', recordId) as unknown as RecordEntry, purpose);
    } catch (e) {
      vaultCode = (e as { code: string }).code;
    }
    const a = await fhir<JsonObject>(who, 'GET', `/Binary/${recordId}?purpose=${purpose}`);
    const fhirCode = a.status === 200 ? 'OK' : ((a.body as unknown as OperationOutcome).issue[0]!.details!.coding![0]!.code ?? '');
    expect(fhirCode, who.label).toBe(vaultCode);
    await settle();
    // Staff answers, served or refused, reach the access log (refusals without waiting for them).
    const log = who.label.includes('/') ? await logLength(before + 2) : await accessLog();
    return { code: fhirCode, entries: log.slice(0, log.length - before) };
  }
  const strip = (e: AccessLogEntry) => ({ ...e, entryId: '', time: 0, height: 0 });

  it('refuses and serves the same requests, with the same access-log entries', async () => {
    const id = records[3]!.id;
    const cases: [string, Identity, Purpose, string][] = [
      ['another hospital’s doctor without consent', staff('hosp-b/dr-b'), 'TREAT', 'CONSENT_REQUIRED'],
      ['the custodian’s own doctor, for treatment', staff('hosp-a/dr-a'), 'TREAT', 'OK'],
      ['the custodian’s own doctor, for research', staff('hosp-a/dr-a'), 'HRESCH', 'CONSENT_REQUIRED'],
      ['a researcher', staff('res-e/res'), 'HRESCH', 'STUDY_REQUIRED'],
      // The vault decides the consent before the role table's records.read (as the vault route does).
      ['an auditor', staff('hosp-a/aud-a'), 'TREAT', 'CONSENT_REQUIRED'],
      ['the patient', patient.identity, 'PATRQT', 'OK'],
      ['another patient', other.identity, 'PATRQT', 'ROLE_FORBIDDEN'],
    ];
    for (const [what, who, purpose, expected] of cases) {
      const { code, entries } = await both(who, id, purpose);
      expect(code, what).toBe(expected);
      // Staff answers are on the ledger twice — once per route — and alike; patients' are not logged.
      if (who.label.includes('/')) {
        expect(entries.length, what).toBe(2);
        expect(strip(entries[0]!), what).toEqual(strip(entries[1]!));
        expect(entries[0]!.outcome, what).toBe(expected === 'OK' ? 'served' : 'refused');
      } else expect(entries.length, what).toBe(0);
    }
    expectOutcome(await fhir(staff('hosp-b/dr-b'), 'GET', `/Binary/${id}`), 400, 'invalid', 'BAD_REQUEST');
    expectOutcome(
      await fhir(staff('hosp-b/dr-b'), 'GET', `/Binary/${id}?purpose=TREAT&x=1`),
      400,
      'not-supported',
      'FHIR_SEARCH_UNSUPPORTED',
    );
  });

  it('serves the sealed record, which opens to the resource and matches the index', async () => {
    const r = records[2]!;
    const a = await fhir<{ contentType: string; data: string }>(patient.identity, 'GET', `/Binary/${r.id}?purpose=PATRQT`);
    expect(a.status).toBe(200);
    expect(a.body.contentType).toBe('application/vnd.medledger.sealed-record+json');
    const sealed = JSON.parse(fromUtf8(fromBase64(a.body.data)!)) as { keyEnvelope: string; ciphertext: string };
    const entry = node.peer.store.get('records', r.id) as unknown as RecordEntry;
    const ciphertext = fromBase64Url(sealed.ciphertext);
    expect(sha256Hex(ciphertext)).toBe(entry.ciphertextHash);
    const key = await unwrapDataKey(sealed.keyEnvelope, patient.identity.file.encryption.privateKey);
    const plaintext = await decryptBytes(key, recordAad(patient.code, r.category), ciphertext);
    expect(sha256Hex(plaintext)).toBe(entry.hash);
    expect(JSON.parse(fromUtf8(plaintext))).toEqual(r.resource);
  });
});

describe('Consent', () => {
  const grantFor = (over: Partial<GrantBodyValue> = {}): GrantBodyValue => ({
    patientCode: patient.code,
    grantee: { kind: 'person', staffId: 'hosp-b/dr-b' },
    scope: { kind: 'categories', categories: ['Condition'] },
    purposes: ['TREAT'],
    period: { from: Date.now() - 60_000, to: Date.now() + 86_400_000 },
    deidentification: 'identified',
    ...over,
  });
  const signed = async (who: Identity, g: GrantBodyValue, body = g): Promise<FhirConsent> =>
    withSignedGrant(fhirConsentForGrant(g), (await who.tx(net.network, 'consent.grant', body)).tx);

  const snapshot = async () => {
    await settle();
    return { height: node.peer.store.head().height, consents: [...node.peer.store.stateRows('consents')] };
  };

  it('refuses bad Consents with a stable code and changes nothing', async () => {
    const before = await snapshot();
    const g = grantFor();
    const cases: [string, Identity, unknown, number, string, string][] = [
      [
        'signed terms differ',
        patient.identity,
        await signed(patient.identity, g, { ...g, purposes: ['TREAT', 'HRESCH'] }),
        422,
        'invalid',
        'FHIR_CONSENT_MISMATCH',
      ],
      ['signed by another key', patient.identity, await signed(other.identity, g), 422, 'invalid', 'FHIR_CONSENT_MISMATCH'],
      ['for another patient', other.identity, await signed(other.identity, g), 403, 'forbidden', 'ROLE_FORBIDDEN'],
      ['posted by staff', staff('hosp-a/dr-a'), await signed(patient.identity, g), 403, 'forbidden', 'ROLE_FORBIDDEN'],
      ['without the signed grant', patient.identity, fhirConsentForGrant(g), 422, 'invalid', 'FHIR_CONSENT_INVALID'],
      [
        'with a nested provision',
        patient.identity,
        { ...(await signed(patient.identity, g)), provision: { ...fhirConsentForGrant(g).provision, provision: [{ type: 'deny' }] } },
        422,
        'invalid',
        'FHIR_CONSENT_INVALID',
      ],
      ['not a Consent', patient.identity, { resourceType: 'Patient' }, 422, 'invalid', 'FHIR_CONSENT_INVALID'],
    ];
    for (const [what, who, body, status, issue, code] of cases) {
      const a = await fhir(who, 'POST', '/Consent', body);
      expect(a.status, what).toBe(status);
      expectOutcome(a, status, issue, code);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('grants a posted Consent signed by the patient, reads it back, and the vault honours it', async () => {
    const r = records[2]!;
    const g = grantFor();
    const request = await signed(patient.identity, g);
    const posted = await fhir<FhirConsent>(patient.identity, 'POST', '/Consent', request);
    expect(posted.status).toBe(201);
    const id = posted.body.id!;
    expect(posted.location).toBe(`${base}/fhir/Consent/${id}`);
    const onLedger = node.peer.store.get('consents', id) as unknown as Consent;
    expect(onLedger).toMatchObject({ ...g, status: 'active', source: 'grant' });
    expect(posted.body.provision).toMatchObject({
      actor: [{ reference: { identifier: { system: MedledgerSystems.staff, value: 'hosp-b/dr-b' } } }],
      purpose: [{ system: Hl7Systems.actReason, code: 'TREAT' }],
      class: [{ code: 'Condition' }],
      period: { start: instantOf(g.period.from), end: instantOf(g.period.to!) },
    });
    expect((await fhir<FhirConsent>(patient.identity, 'GET', `/Consent/${id}`)).body).toEqual(posted.body);

    // The grantee sees it; another doctor does not.
    const mine = await fhir(staff('hosp-b/dr-b'), 'GET', `/Consent?patient=${patient.code}`);
    expect(mine.body.entry!.map((e) => e.resource!.id)).toEqual([id]);
    expect((await fhir(staff('clinic-c/dr-c'), 'GET', `/Consent?patient=${patient.code}`)).body.total).toBe(0);
    expectOutcome(await fhir(staff('clinic-c/dr-c'), 'GET', `/Consent/${id}`), 403, 'forbidden', 'ROLE_FORBIDDEN');
    const all = await fhir(patient.identity, 'GET', `/Consent?_sort=date`);
    const api = await http<Consent[]>('GET', `${base}/api/patients/${patient.code}/consents`);
    expect(all.body.entry!.map((e) => e.resource!.id).sort()).toEqual(api.body.map((c) => c.consentId).sort());

    // The grant covers the Condition, not the Observations.
    const b = await fhir<{ data: string }>(staff('hosp-b/dr-b'), 'GET', `/Binary/${r.id}?purpose=TREAT`);
    expect(b.status).toBe(200);
    const sealed = JSON.parse(fromUtf8(fromBase64(b.body.data)!)) as { keyEnvelope: string; ciphertext: string; accessTx: string };
    const key = await unwrapDataKey(sealed.keyEnvelope, staff('hosp-b/dr-b').file.encryption.privateKey);
    const plaintext = await decryptBytes(key, recordAad(patient.code, r.category), fromBase64Url(sealed.ciphertext));
    expect(JSON.parse(fromUtf8(plaintext))).toEqual(r.resource);
    await settle();
    expect((await accessLog()).find((e) => e.entryId === sealed.accessTx)).toMatchObject({ outcome: 'served', consentId: id });
    expectOutcome(await fhir(staff('hosp-b/dr-b'), 'GET', `/Binary/${records[3]!.id}?purpose=TREAT`), 403, 'forbidden', 'CONSENT_REQUIRED');

    // Posting the same signed Consent again (a client's retry) grants nothing more and answers what it made.
    const before = node.peer.store.query('consents', { patient_code: patient.code }, null, null, 1000).length;
    const again = await fhir<FhirConsent>(patient.identity, 'POST', '/Consent', request);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(id);
    expect(node.peer.store.query('consents', { patient_code: patient.code }, null, null, 1000).length).toBe(before);
  });
});

describe('AuditEvent', () => {
  it('is the access log, one event per entry, served, refused and break-glass', async () => {
    // Only a doctor the institution qualified for emergencies may break the glass.
    await ok(net.institutions.get('hosp-a')!, 'identity.setQualifications', { staffId: 'hosp-a/dr-a', qualifications: ['emergency'] });
    await ok(staff('hosp-a/dr-a'), 'access.breakGlass', {
      patientCode: patient.code,
      reason: 'ETREAT',
      justification: 'unconscious on arrival, no records at hand',
      durationMs: 3_600_000,
    });
    await settle();
    const log = await logLength(1);
    expect(new Set(log.map((e) => e.outcome))).toEqual(new Set(['served', 'refused', 'break-glass']));
    const events: AuditEvent[] = [];
    let next: string | undefined = `${base}/fhir/AuditEvent?patient=${patient.code}&_count=7`;
    while (next !== undefined) {
      const page: Answer<Bundle> = await fhir(patient.identity, 'GET', next);
      expect(page.body.total).toBe(log.length);
      events.push(...page.body.entry!.map((e) => e.resource as AuditEvent));
      next = page.body.link!.find((l) => l.relation === 'next')?.url;
    }
    expect(events.map((e) => e.id).sort()).toEqual(log.map((e) => e.entryId).sort());
    for (const entry of log) {
      const ev = events.find((e) => e.id === entry.entryId)!;
      expect(ev, entry.outcome).toMatchObject({
        recorded: instantOf(entry.time),
        outcome: entry.outcome === 'refused' ? '4' : '0',
        action: entry.outcome === 'break-glass' ? 'E' : 'R',
        purposeOfEvent: [{ coding: [{ system: Hl7Systems.actReason, code: entry.purpose }] }],
        agent: [
          { who: { identifier: { system: MedledgerSystems.staff, value: entry.actor } }, requestor: true },
          { who: { identifier: { system: MedledgerSystems.institution, value: entry.institution } } },
        ],
        source: { observer: { identifier: { value: entry.custodian ?? entry.institution } } },
      });
      expect(ev.outcomeDesc).toBe(entry.code ?? undefined);
      const what = ev.entity!.map((x) => x.what!.reference ?? x.what!.identifier!.value);
      expect(what).toEqual([
        patient.code,
        ...(entry.recordId === null ? [] : [`DocumentReference/${entry.recordId}`]),
        ...(entry.consentId === null ? [] : [`Consent/${entry.consentId}`]),
      ]);
    }
    // Oldest first with _sort=date.
    const asc = await fhir(patient.identity, 'GET', `/AuditEvent?_sort=date&_count=100`);
    const times = asc.body.entry!.map((e) => Date.parse((e.resource as AuditEvent).recorded));
    expect(times).toEqual([...times].sort((x, y) => x - y));
  });

  it('shows auditors their institution’s entries only, and nobody else’s log', async () => {
    const log = await accessLog();
    const forB = await fhir(staff('hosp-b/aud-b'), 'GET', `/AuditEvent?patient=${patient.code}&_count=100`);
    expect(forB.body.entry!.map((e) => e.resource!.id).sort()).toEqual(
      log
        .filter((e) => e.institution === 'hosp-b' || e.custodian === 'hosp-b')
        .map((e) => e.entryId)
        .sort(),
    );
    expectOutcome(await fhir(staff('hosp-b/dr-b'), 'GET', `/AuditEvent?patient=${patient.code}`), 403, 'forbidden', 'ROLE_FORBIDDEN');
    expectOutcome(await fhir(other.identity, 'GET', `/AuditEvent?patient=${patient.code}`), 403, 'forbidden', 'ROLE_FORBIDDEN');
    const one = log[0]!;
    expect((await fhir<AuditEvent>(patient.identity, 'GET', `/AuditEvent/${one.entryId}`)).body.id).toBe(one.entryId);
  });
});

describe('Provenance', () => {
  it('names the block time, the author and their institution, and a signature that verifies', async () => {
    const found = await fhir(patient.identity, 'GET', `/Provenance?patient=${patient.code}&_sort=date&_count=100`);
    expect(found.body.entry!.map((e) => e.resource!.id)).toEqual(records.map((r) => r.id));
    const drA = staff('hosp-a/dr-a');
    for (const [i, r] of records.entries()) {
      const p = (await fhir(staff('hosp-b/dr-b'), 'GET', `/Provenance?target=DocumentReference/${r.id}`)).body.entry![0]!
        .resource as Provenance;
      const entry = node.peer.store.get('records', r.id) as unknown as RecordEntry;
      const block = node.peer.store.block(entry.height)!.block;
      expect(p).toMatchObject({
        target: [{ reference: `DocumentReference/${r.id}` }],
        recorded: instantOf(block.header.time),
        activity: { coding: [{ code: i === 3 ? 'UPDATE' : 'CREATE' }] },
        agent: [
          { who: { identifier: { value: 'hosp-a/dr-a' } }, onBehalfOf: { identifier: { value: 'hosp-a' } } },
          { who: { identifier: { value: 'hosp-a' } } },
        ],
      });
      if (i === 3) expect(p.entity).toEqual([{ role: 'revision', what: { reference: `DocumentReference/${records[0]!.id}` } }]);
      const sig = p.signature![0]!;
      expect(sig.who.identifier!.value).toBe(drA.keyId);
      expect(await verify(drA.signingKey, txSigningMessage(r.id), fromBase64(sig.data!)!)).toBe(true);
    }
    expect((await fhir<Provenance>(patient.identity, 'GET', `/Provenance/${records[1]!.id}`)).body.id).toBe(records[1]!.id);
    expectOutcome(await fhir(other.identity, 'GET', `/Provenance/${records[1]!.id}`), 403, 'forbidden', 'ROLE_FORBIDDEN');
  });
});

describe('a node without a vault', () => {
  it('answers its metadata, and refuses what it cannot authenticate with an OperationOutcome', async () => {
    const bare = await LedgerNode.start({
      dataDir: net.nodeDir('hosp-b'),
      genesis: net.genesis,
      institution: 'hosp-b',
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const saved = base;
      base = bare.url;
      try {
        expect((await fhir(null, 'GET', '/metadata')).status).toBe(200);
        expectOutcome(await fhir(patient.identity, 'GET', '/AuditEvent'), 503, 'transient', 'NODE_UNAVAILABLE');
      } finally {
        base = saved;
      }
    } finally {
      await bare.stop();
    }
  });
});
