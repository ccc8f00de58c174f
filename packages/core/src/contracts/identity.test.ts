/** Identity: institutions enrol their staff; care staff register patients who prove key possession. */
import { beforeEach, describe, expect, it } from 'vitest';
import { Identity } from '../client/identity.ts';
import { createCast, TestLedger, type Cast } from '../ledger/test-network.test-fixture.ts';
import { patientCodeOf } from './identity.ts';
import type { KeyEntry, Patient, Staff } from './state.ts';

describe('identity.enrolStaff', () => {
  let ledger: TestLedger;
  beforeEach(async () => {
    ledger = await TestLedger.create();
  });

  async function enrolBody(localId: string, role = 'doctor', id?: Identity) {
    const staff = id ?? (await Identity.generate(localId));
    return {
      staff,
      body: { localId, role, signingKey: staff.signingKey, encryptionKey: staff.encryptionKey, displayName: `Staff ${localId}` },
    };
  }

  it('lets an institution enrol a member of staff under its own id, with their key', async () => {
    const { staff, body } = await enrolBody('dr-kim');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', body))).toBe('OK');
    expect(ledger.get<Staff>('staff', 'hosp-a/dr-kim')).toEqual({
      staffId: 'hosp-a/dr-kim',
      institution: 'hosp-a',
      role: 'doctor',
      signingKey: staff.signingKey,
      encryptionKey: staff.encryptionKey,
      displayName: 'Staff dr-kim',
      status: 'active',
      enrolledAt: ledger.time,
    });
    expect(ledger.get<KeyEntry>('keys', staff.keyId)).toEqual({
      keyId: staff.keyId,
      publicKey: staff.signingKey,
      owner: { kind: 'staff', staffId: 'hosp-a/dr-kim', institution: 'hosp-a' },
      status: 'active',
    });
  });

  it('refuses a research institute enrolling clinical staff', async () => {
    for (const role of ['doctor', 'nurse'] as const) {
      const { body } = await enrolBody(`x-${role}`, role);
      expect(await ledger.code(ledger.tx(ledger.institution('res-e'), 'identity.enrolStaff', body))).toBe('ROLE_FORBIDDEN');
    }
  });

  it('lets a research institute enrol its researchers', async () => {
    const { body } = await enrolBody('res-1', 'researcher');
    expect(await ledger.code(ledger.tx(ledger.institution('res-e'), 'identity.enrolStaff', body))).toBe('OK');
  });

  it('refuses authors that are not institutions with ROLE_FORBIDDEN', async () => {
    const doctor = await ledger.enrol('hosp-a', 'dr-kim', 'doctor');
    const { patient } = await ledger.registerPatient(doctor, '1');
    for (const author of [doctor, patient, ledger.net.issuer]) {
      const { body } = await enrolBody('intruder');
      expect(await ledger.code(ledger.tx(author, 'identity.enrolStaff', body)), author.label).toBe('ROLE_FORBIDDEN');
    }
    expect(ledger.get('staff', 'hosp-a/intruder')).toBeUndefined();
  });

  it('refuses a taken staff id or signing key with ALREADY_EXISTS', async () => {
    const first = await enrolBody('dr-kim');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', first.body))).toBe('OK');
    const sameId = await enrolBody('dr-kim');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', sameId.body))).toBe('ALREADY_EXISTS');
    const sameKey = await enrolBody('dr-kim2', 'nurse', first.staff);
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', sameKey.body))).toBe('ALREADY_EXISTS');
    // The same key at another institution is still the same key.
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'identity.enrolStaff', sameKey.body))).toBe('ALREADY_EXISTS');
    // An institution's own key cannot become a member of staff's.
    const instKey = { ...sameId.body, localId: 'x', signingKey: ledger.institution('hosp-b').signingKey };
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'identity.enrolStaff', instKey))).toBe('ALREADY_EXISTS');
  });

  it('allows the same local id at two institutions', async () => {
    const a = await enrolBody('op');
    const b = await enrolBody('op');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', a.body))).toBe('OK');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'identity.enrolStaff', b.body))).toBe('OK');
    expect(ledger.get<Staff>('staff', 'hosp-b/op')?.institution).toBe('hosp-b');
  });

  it('refuses an unknown role and a malformed local id with TX_BODY_INVALID', async () => {
    const { body } = await enrolBody('dr-kim');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', { ...body, role: 'surgeon' }))).toBe(
      'TX_BODY_INVALID',
    );
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', { ...body, localId: 'Dr/Kim' }))).toBe(
      'TX_BODY_INVALID',
    );
  });
});

describe('identity.registerPatient', () => {
  let cast: Cast;
  beforeEach(async () => {
    cast = await createCast();
  });

  it('registers the patient’s keys under their code, with the registering institution as home', async () => {
    const { ledger } = cast;
    const carol = await Identity.generate('carol');
    expect(
      await ledger.code(
        ledger.tx(cast.staff('hosp-b/nurse-b'), 'identity.registerPatient', await ledger.registerPatientBody(carol, '42', 'hosp-b')),
      ),
    ).toBe('OK');
    const code = ledger.patientCode('42');
    expect(ledger.get<Patient>('patients', code)).toEqual({
      patientCode: code,
      signingKey: carol.signingKey,
      encryptionKey: carol.encryptionKey,
      keyId: carol.keyId,
      home: 'hosp-b',
      registeredAt: ledger.time,
    });
    expect(ledger.get<KeyEntry>('keys', carol.keyId)?.owner).toEqual({ kind: 'patient', patientCode: code });
    // The patient can now act on the ledger in their own name.
    const grant = {
      patientCode: code,
      grantee: { kind: 'institution', institution: 'hosp-a' },
      scope: { kind: 'all' },
      purposes: ['TREAT'],
      period: { from: 0, to: null },
      deidentification: 'identified',
    };
    expect(await ledger.code(ledger.tx(carol, 'consent.grant', grant))).toBe('OK');
  });

  it('lets a laboratory register a patient', async () => {
    const { ledger } = cast;
    const dan = await Identity.generate('dan');
    expect(
      await ledger.code(
        ledger.tx(cast.staff('lab-d/op-d'), 'identity.registerPatient', await ledger.registerPatientBody(dan, '77', 'lab-d')),
      ),
    ).toBe('OK');
    expect(ledger.get<Patient>('patients', ledger.patientCode('77'))?.home).toBe('lab-d');
  });

  it('refuses a possession proof made with another key with KEY_POSSESSION_INVALID, writing nothing', async () => {
    const { ledger } = cast;
    const carol = await Identity.generate('carol');
    const mallory = await Identity.generate('mallory');
    const body = await ledger.registerPatientBody(carol, '42');
    body['possession'] = await mallory.possessionProof(ledger.network, ledger.patientCode('42'), 'hosp-a');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'identity.registerPatient', body))).toBe('KEY_POSSESSION_INVALID');
    expect(ledger.get('patients', ledger.patientCode('42'))).toBeUndefined();
    expect(ledger.get('keys', carol.keyId)).toBeUndefined();
  });

  it('refuses a proof the patient made for another code, network or encryption key', async () => {
    const { ledger } = cast;
    const carol = await Identity.generate('carol');
    const code = ledger.patientCode('42');
    const base = await ledger.registerPatientBody(carol, '42');
    const otherCode = { ...base, possession: await carol.possessionProof(ledger.network, ledger.patientCode('43'), 'hosp-a') };
    const otherNetwork = { ...base, possession: await carol.possessionProof('0'.repeat(32), code, 'hosp-a') };
    const otherEncryption = { ...base, encryptionKey: cast.bob.patient.encryptionKey };
    for (const body of [otherCode, otherNetwork, otherEncryption]) {
      expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'identity.registerPatient', body))).toBe('KEY_POSSESSION_INVALID');
    }
    expect(ledger.get('patients', code)).toBeUndefined();
  });

  it('refuses a code or key already registered with ALREADY_EXISTS', async () => {
    const { ledger, alice } = cast;
    const carol = await Identity.generate('carol');
    const sameCode = await ledger.registerPatientBody(carol, '123-45-678', 'hosp-b');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-b/dr-park'), 'identity.registerPatient', sameCode))).toBe('ALREADY_EXISTS');
    const sameKey = await ledger.registerPatientBody(alice.patient, '99');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-b/dr-park'), 'identity.registerPatient', sameKey))).toBe('ALREADY_EXISTS');
    expect(ledger.get<Patient>('patients', alice.patientCode)?.home).toBe('hosp-a');
  });

  it('is for care institutions only', async () => {
    const { ledger } = cast;
    const carol = await Identity.generate('carol');
    const body = await ledger.registerPatientBody(carol, '42');
    for (const author of [cast.staff('res-e/op-e'), cast.staff('res-e/res-1'), cast.staff('hosp-a/aud-a'), ledger.institution('hosp-a')]) {
      expect(await ledger.code(ledger.tx(author, 'identity.registerPatient', body)), author.label).toBe('ROLE_FORBIDDEN');
    }
  });
});

describe('patientCodeOf', () => {
  const key = new TextEncoder().encode('consortium secret');

  it('is a 64-hex keyed hash that ignores spaces, dashes and case', () => {
    const code = patientCodeOf(key, '123-45 678');
    expect(code).toMatch(/^[0-9a-f]{64}$/);
    expect(patientCodeOf(key, '12345678')).toBe(code);
    expect(patientCodeOf(key, 'ab-12')).toBe(patientCodeOf(key, 'AB12'));
    expect(patientCodeOf(key, '１２３４５６７８')).toBe(code); // full-width digits (NFKC)
  });

  it('differs between ids and between keys', () => {
    expect(patientCodeOf(key, '12345678')).not.toBe(patientCodeOf(key, '12345679'));
    expect(patientCodeOf(new TextEncoder().encode('other'), '12345678')).not.toBe(patientCodeOf(key, '12345678'));
  });
});
