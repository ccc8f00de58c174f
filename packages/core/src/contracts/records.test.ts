/**
 * Records: a hospital registers its own patients' records without asking (TMSMD §4.2); anyone
 * else needs the patient's accepted registration request. Amendments add versions; only the
 * custodian changes a record.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { amendBody, createCast, recordBody, type Cast } from '../ledger/test-network.test-fixture.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { RecordEntry, RegistrationRequest } from './state.ts';

let cast: Cast;
beforeEach(async () => {
  cast = await createCast();
});

async function register(staffId: string, patientCode: string, overrides = {}) {
  const entry = await cast.ledger.tx(cast.staff(staffId), 'records.register', recordBody(patientCode, overrides));
  return { ...entry, code: await cast.ledger.code(entry) };
}

async function requestRegistration(staffId: string, patientCode: string, category = 'Observation') {
  return cast.ledger.ok(
    cast.ledger.tx(cast.staff(staffId), 'consent.requestRegistration', { patientCode, category, purpose: 'TREAT', note: 'lab results' }),
  );
}

describe('records.register without a registration request', () => {
  it('lets a hospital register a record of its own patient', async () => {
    const { ledger, alice } = cast;
    const r = await register('hosp-a/dr-kim', alice.patientCode);
    expect(r.code).toBe('OK');
    const body = recordBody(alice.patientCode);
    expect(ledger.get<RecordEntry>('records', r.txId)).toEqual({
      recordId: r.txId,
      state: 'active',
      patientCode: alice.patientCode,
      groupKeyId: null,
      hashAlg: 'sha-256',
      hashLength: 32,
      hash: body['hash'],
      custodian: 'hosp-a',
      category: 'Observation',
      ciphertextHash: body['ciphertextHash'],
      size: 1234,
      storage: 'vault',
      pointer: 'vault://record/1',
      ciphertext: null,
      keyEnvelopes: body['keyEnvelopes'],
      author: 'hosp-a/dr-kim',
      registeredAt: ledger.time,
      height: ledger.height,
      version: 1,
      lineage: r.txId,
      supersedes: null,
      supersededBy: null,
      registrationRequestId: null,
    });
  });

  it('lets a hospital’s nurse and operator register too', async () => {
    expect((await register('hosp-a/nurse-lee', cast.alice.patientCode)).code).toBe('OK');
    expect((await register('hosp-a/op-a', cast.alice.patientCode)).code).toBe('OK');
  });

  it('refuses a clinic with CONSENT_REQUIRED', async () => {
    const r = await register('clinic-c/dr-choi', cast.alice.patientCode);
    expect(r.code).toBe('CONSENT_REQUIRED');
    expect(cast.ledger.get('records', r.txId)).toBeUndefined();
  });

  it('refuses a hospital that is not the patient’s home, and a laboratory, with CONSENT_REQUIRED', async () => {
    expect((await register('hosp-b/dr-park', cast.alice.patientCode)).code).toBe('CONSENT_REQUIRED');
    expect((await register('lab-d/op-d', cast.alice.patientCode)).code).toBe('CONSENT_REQUIRED');
  });

  it('refuses an unknown patient with PATIENT_UNKNOWN', async () => {
    expect((await register('hosp-a/dr-kim', sha256Hex('nobody'))).code).toBe('PATIENT_UNKNOWN');
  });

  it('refuses research institute staff and auditors with ROLE_FORBIDDEN', async () => {
    expect((await register('res-e/op-e', cast.alice.patientCode)).code).toBe('ROLE_FORBIDDEN');
    expect((await register('res-e/res-1', cast.alice.patientCode)).code).toBe('ROLE_FORBIDDEN');
    expect((await register('hosp-a/aud-a', cast.alice.patientCode)).code).toBe('ROLE_FORBIDDEN');
  });

  it('keeps vault and on-chain storage apart', async () => {
    const { alice } = cast;
    expect((await register('hosp-a/dr-kim', alice.patientCode, { storage: 'chain', pointer: null, ciphertext: 'Y2lwaGVy' })).code).toBe(
      'OK',
    );
    expect((await register('hosp-a/dr-kim', alice.patientCode, { ciphertext: 'Y2lwaGVy' })).code).toBe('TX_BODY_INVALID');
    expect((await register('hosp-a/dr-kim', alice.patientCode, { pointer: null })).code).toBe('TX_BODY_INVALID');
    expect((await register('hosp-a/dr-kim', alice.patientCode, { storage: 'chain', ciphertext: 'Y2lwaGVy' })).code).toBe('TX_BODY_INVALID');
    expect((await register('hosp-a/dr-kim', alice.patientCode, { storage: 'chain', pointer: null })).code).toBe('TX_BODY_INVALID');
  });
});

describe('records.register with a registration request (TMSMD §4.2)', () => {
  it('refuses a pending request with CONSENT_PENDING', async () => {
    const req = await requestRegistration('clinic-c/op-c', cast.alice.patientCode);
    expect(cast.ledger.get<RegistrationRequest>('regRequests', req.txId)?.status).toBe('pending');
    expect((await register('clinic-c/op-c', cast.alice.patientCode, { registrationRequestId: req.txId })).code).toBe('CONSENT_PENDING');
  });

  it('refuses a refused request with CONSENT_REFUSED', async () => {
    const { ledger, alice } = cast;
    const req = await requestRegistration('clinic-c/op-c', alice.patientCode);
    await ledger.ok(ledger.tx(alice.patient, 'consent.answerRegistration', { requestId: req.txId, accept: false }));
    expect(ledger.get<RegistrationRequest>('regRequests', req.txId)).toMatchObject({ status: 'refused', answeredAt: ledger.time });
    expect((await register('clinic-c/op-c', alice.patientCode, { registrationRequestId: req.txId })).code).toBe('CONSENT_REFUSED');
  });

  it('accepts an accepted request once, then refuses it with REQUEST_CLOSED', async () => {
    const { ledger, alice } = cast;
    const req = await requestRegistration('clinic-c/op-c', alice.patientCode);
    await ledger.ok(ledger.tx(alice.patient, 'consent.answerRegistration', { requestId: req.txId, accept: true }));
    const r = await register('clinic-c/dr-choi', alice.patientCode, { registrationRequestId: req.txId });
    expect(r.code).toBe('OK');
    expect(ledger.get<RecordEntry>('records', r.txId)).toMatchObject({ custodian: 'clinic-c', registrationRequestId: req.txId });
    expect(ledger.get<RegistrationRequest>('regRequests', req.txId)).toMatchObject({ status: 'used', recordId: r.txId });
    expect((await register('clinic-c/dr-choi', alice.patientCode, { registrationRequestId: req.txId })).code).toBe('REQUEST_CLOSED');
  });

  it('binds the request to its patient, custodian and category', async () => {
    const { ledger, alice, bob } = cast;
    const req = await requestRegistration('lab-d/op-d', alice.patientCode, 'Observation');
    await ledger.ok(ledger.tx(alice.patient, 'consent.answerRegistration', { requestId: req.txId, accept: true }));
    expect((await register('lab-d/op-d', alice.patientCode, { registrationRequestId: req.txId, category: 'Condition' })).code).toBe(
      'CONSENT_REQUIRED',
    );
    expect((await register('clinic-c/op-c', alice.patientCode, { registrationRequestId: req.txId })).code).toBe('CONSENT_REQUIRED');
    expect((await register('lab-d/op-d', bob.patientCode, { registrationRequestId: req.txId })).code).toBe('CONSENT_REQUIRED');
    expect(ledger.get<RegistrationRequest>('regRequests', req.txId)?.status).toBe('accepted');
    expect((await register('lab-d/op-d', alice.patientCode, { registrationRequestId: req.txId })).code).toBe('OK');
  });

  it('refuses an unknown request with REQUEST_NOT_FOUND', async () => {
    expect((await register('clinic-c/op-c', cast.alice.patientCode, { registrationRequestId: 'f'.repeat(64) })).code).toBe(
      'REQUEST_NOT_FOUND',
    );
  });
});

describe('consent.requestRegistration and answerRegistration', () => {
  it('records who asks, for which patient and category', async () => {
    const req = await requestRegistration('clinic-c/op-c', cast.alice.patientCode, 'Condition');
    expect(cast.ledger.get<RegistrationRequest>('regRequests', req.txId)).toEqual({
      requestId: req.txId,
      patientCode: cast.alice.patientCode,
      custodian: 'clinic-c',
      requester: 'clinic-c/op-c',
      category: 'Condition',
      purpose: 'TREAT',
      status: 'pending',
      createdAt: cast.ledger.time,
      answeredAt: null,
      recordId: null,
    });
  });

  it('refuses a request for an unknown patient with PATIENT_UNKNOWN', async () => {
    const entry = cast.ledger.tx(cast.staff('clinic-c/op-c'), 'consent.requestRegistration', {
      patientCode: sha256Hex('nobody'),
      category: 'Observation',
      purpose: 'TREAT',
      note: '',
    });
    expect(await cast.ledger.code(entry)).toBe('PATIENT_UNKNOWN');
  });

  it('lets only the patient answer, once', async () => {
    const { ledger, alice, bob } = cast;
    const req = await requestRegistration('clinic-c/op-c', alice.patientCode);
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.answerRegistration', { requestId: req.txId, accept: true }))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(
      await ledger.code(ledger.tx(cast.staff('clinic-c/op-c'), 'consent.answerRegistration', { requestId: req.txId, accept: true })),
    ).toBe('ROLE_FORBIDDEN');
    expect(ledger.get<RegistrationRequest>('regRequests', req.txId)?.status).toBe('pending');
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.answerRegistration', { requestId: req.txId, accept: false }))).toBe('OK');
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.answerRegistration', { requestId: req.txId, accept: true }))).toBe(
      'REQUEST_CLOSED',
    );
    expect(ledger.get<RegistrationRequest>('regRequests', req.txId)?.status).toBe('refused');
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.answerRegistration', { requestId: 'e'.repeat(64), accept: true }))).toBe(
      'REQUEST_NOT_FOUND',
    );
  });
});

describe('records.amend', () => {
  it('adds a new version linked to the old, which becomes superseded', async () => {
    const { ledger, alice } = cast;
    const v1 = await register('hosp-a/dr-kim', alice.patientCode);
    const v2 = await ledger.ok(
      ledger.tx(cast.staff('hosp-a/nurse-lee'), 'records.amend', amendBody(v1.txId, { hash: sha256Hex('v2'), size: 99 })),
    );
    const old = ledger.get<RecordEntry>('records', v1.txId)!;
    const neu = ledger.get<RecordEntry>('records', v2.txId)!;
    expect(old).toMatchObject({ state: 'superseded', supersededBy: v2.txId, version: 1, hash: sha256Hex('plaintext'), size: 1234 });
    expect(neu).toMatchObject({
      recordId: v2.txId,
      state: 'active',
      patientCode: alice.patientCode,
      custodian: 'hosp-a',
      author: 'hosp-a/nurse-lee',
      version: 2,
      lineage: v1.txId,
      supersedes: v1.txId,
      supersededBy: null,
      hash: sha256Hex('v2'),
      size: 99,
    });
    const v3 = await ledger.ok(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.amend', amendBody(v2.txId)));
    expect(ledger.get<RecordEntry>('records', v3.txId)).toMatchObject({ version: 3, lineage: v1.txId, supersedes: v2.txId });
    expect(ledger.get<RecordEntry>('records', v2.txId)).toMatchObject({ state: 'superseded', supersededBy: v3.txId });
  });

  it('refuses an amendment of a superseded version with RECORD_RETRACTED', async () => {
    const { ledger, alice } = cast;
    const v1 = await register('hosp-a/dr-kim', alice.patientCode);
    await ledger.ok(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.amend', amendBody(v1.txId)));
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.amend', amendBody(v1.txId, { size: 5 })))).toBe(
      'RECORD_RETRACTED',
    );
  });

  it('lets only the custodian amend, refusing others with RECORD_NOT_CUSTODIAN', async () => {
    const { ledger, alice } = cast;
    const v1 = await register('hosp-a/dr-kim', alice.patientCode);
    for (const staffId of ['clinic-c/dr-choi', 'hosp-b/dr-park', 'lab-d/op-d']) {
      expect(await ledger.code(ledger.tx(cast.staff(staffId), 'records.amend', amendBody(v1.txId))), staffId).toBe('RECORD_NOT_CUSTODIAN');
    }
    expect(ledger.get<RecordEntry>('records', v1.txId)?.state).toBe('active');
  });

  it('keeps the registration request of the first version', async () => {
    const { ledger, alice } = cast;
    const req = await requestRegistration('clinic-c/op-c', alice.patientCode);
    await ledger.ok(ledger.tx(alice.patient, 'consent.answerRegistration', { requestId: req.txId, accept: true }));
    const v1 = await register('clinic-c/op-c', alice.patientCode, { registrationRequestId: req.txId });
    const v2 = await ledger.ok(ledger.tx(cast.staff('clinic-c/dr-choi'), 'records.amend', amendBody(v1.txId)));
    expect(ledger.get<RecordEntry>('records', v2.txId)).toMatchObject({ custodian: 'clinic-c', registrationRequestId: req.txId });
  });

  it('refuses an unknown record with RECORD_NOT_FOUND', async () => {
    expect(await cast.ledger.code(cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.amend', amendBody('d'.repeat(64))))).toBe(
      'RECORD_NOT_FOUND',
    );
  });
});

describe('records.retract', () => {
  it('marks the record retracted; it cannot be retracted or amended again', async () => {
    const { ledger, alice } = cast;
    const r = await register('hosp-a/dr-kim', alice.patientCode);
    const kim = cast.staff('hosp-a/dr-kim');
    expect(await ledger.code(ledger.tx(kim, 'records.retract', { recordId: r.txId, reason: 'entered for the wrong patient' }))).toBe('OK');
    expect(ledger.get<RecordEntry>('records', r.txId)).toMatchObject({ state: 'retracted', supersededBy: null });
    expect(await ledger.code(ledger.tx(kim, 'records.retract', { recordId: r.txId, reason: 'again' }))).toBe('RECORD_RETRACTED');
    expect(await ledger.code(ledger.tx(kim, 'records.amend', amendBody(r.txId)))).toBe('RECORD_RETRACTED');
  });

  it('is for the custodian’s doctors and operators only', async () => {
    const { ledger, alice } = cast;
    const r = await register('hosp-a/dr-kim', alice.patientCode);
    const body = { recordId: r.txId, reason: 'x' };
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/nurse-lee'), 'records.retract', body))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('clinic-c/dr-choi'), 'records.retract', body))).toBe('RECORD_NOT_CUSTODIAN');
    expect(ledger.get<RecordEntry>('records', r.txId)?.state).toBe('active');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'records.retract', body))).toBe('OK');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'records.retract', { recordId: 'a'.repeat(64), reason: 'x' }))).toBe(
      'RECORD_NOT_FOUND',
    );
  });
});

describe('records.erase', () => {
  it('lets the patient erase every version of a record; the index keeps only hashes', async () => {
    const { ledger, alice } = cast;
    const r1 = await register('hosp-a/dr-kim', alice.patientCode);
    const amended = await cast.ledger.ok(cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.amend', amendBody(r1.txId)));
    const erase = await ledger.ok(ledger.tx(alice.patient, 'records.erase', { recordId: r1.txId }));
    for (const id of [r1.txId, amended.txId]) {
      const e = ledger.get<RecordEntry>('records', id)!;
      expect(e).toMatchObject({ state: 'erased', keyEnvelopes: null, ciphertext: null, erasureTx: erase.txId, erasedAt: ledger.time });
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(e.ciphertextHash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(await ledger.code(ledger.tx(alice.patient, 'records.erase', { recordId: amended.txId }))).toBe('RECORD_ERASED');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.amend', amendBody(amended.txId)))).toBe('RECORD_ERASED');
  });

  it('refuses anyone but the record’s patient', async () => {
    const { ledger, alice, bob } = cast;
    const r = await register('hosp-a/dr-kim', alice.patientCode);
    expect(await ledger.code(ledger.tx(bob.patient, 'records.erase', { recordId: r.txId }))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.erase', { recordId: r.txId }))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(alice.patient, 'records.erase', { recordId: '0'.repeat(64) }))).toBe('RECORD_NOT_FOUND');
    expect(ledger.get<RecordEntry>('records', r.txId)!.state).toBe('active');
  });
});
