/** Identity: institutions enrol their staff; care staff register patients who prove key possession. */
import { beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Identity } from '../client/identity.ts';
import { toBase64Url } from '../codec/bytes.ts';
import type { JsonObject } from '../codec/canonical-json.ts';
import { sign } from '../crypto/ed25519.ts';
import { createCast, recordBody, TestLedger, type Cast } from '../ledger/test-network.test-fixture.ts';
import { patientCodeOf, patientPossessionMessage, patientRotationMessage } from './identity.ts';
import type { Consent, KeyEntry, Patient, Staff } from './state.ts';

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

/** A rotation body for `patientCode` taking `next`'s keys, the proof signed by `prover` (default: `next`). */
async function rotationBody(
  ledger: TestLedger,
  patientCode: string,
  next: Identity,
  o: { prover?: Identity; network?: string; encryptionKey?: string } = {},
): Promise<JsonObject> {
  const encryptionKey = o.encryptionKey ?? next.encryptionKey;
  const message = patientRotationMessage(o.network ?? ledger.network, patientCode, next.signingKey, encryptionKey);
  const possession = toBase64Url(await sign((o.prover ?? next).file.signing.privateKey, message));
  return { patientCode, signingKey: next.signingKey, encryptionKey, possession };
}

function grantBody(patientCode: string, institution = 'hosp-b'): JsonObject {
  return {
    patientCode,
    grantee: { kind: 'institution', institution },
    scope: { kind: 'all' },
    purposes: ['TREAT'],
    period: { from: 0, to: null },
    deidentification: 'identified',
  };
}

describe('identity.rotatePatientKeys', () => {
  let cast: Cast;
  let next: Identity;
  beforeEach(async () => {
    cast = await createCast();
    next = await Identity.generate('alice-new-device');
  });

  it('lets the patient replace their keys with their current key: the old key is revoked, the code keeps its data', async () => {
    const { ledger, alice } = cast;
    const consent = await ledger.ok(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode)));
    const record = await ledger.ok(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(alice.patientCode)));
    const before = ledger.get<Patient>('patients', alice.patientCode)!;

    const exec = await ledger.run([
      await ledger.tx(alice.patient, 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, next)),
    ]);
    expect(exec.codes).toEqual(['OK']);
    expect(ledger.get<Patient>('patients', alice.patientCode)).toEqual({
      ...before,
      signingKey: next.signingKey,
      encryptionKey: next.encryptionKey,
      keyId: next.keyId,
      previousKeyIds: [alice.patient.keyId],
      keysRotatedAt: ledger.time,
    });
    expect(ledger.get<KeyEntry>('keys', alice.patient.keyId)?.status).toBe('revoked');
    expect(ledger.get<KeyEntry>('keys', next.keyId)).toEqual({
      keyId: next.keyId,
      publicKey: next.signingKey,
      owner: { kind: 'patient', patientCode: alice.patientCode },
      status: 'active',
    });
    expect(exec.events.map((e) => e.event)).toEqual([
      {
        type: 'identity.patientKeysRotated',
        patientCode: alice.patientCode,
        data: { mode: 'planned', by: 'patient', keyId: next.keyId, previousKeyId: alice.patient.keyId },
      },
    ]);

    // The old key is refused from now on; the new one acts for the same code, on the same consents and records.
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode, 'clinic-c')))).toBe('IDENTITY_REVOKED');
    expect(ledger.get<Consent>('consents', consent.txId)?.status).toBe('active');
    expect(await ledger.code(ledger.tx(next, 'consent.revoke', { consentId: consent.txId }))).toBe('OK');
    expect(ledger.get<Consent>('consents', consent.txId)?.status).toBe('revoked');
    expect(await ledger.code(ledger.tx(next, 'records.erase', { recordId: record.txId }))).toBe('OK');
  });

  it('takes effect inside the committing block: a later tx of the old key in the same block is refused', async () => {
    const { ledger, alice } = cast;
    const exec = await ledger.run([
      await ledger.tx(alice.patient, 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, next)),
      await ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode)),
      await ledger.tx(next, 'consent.grant', grantBody(alice.patientCode)),
    ]);
    expect(exec.codes).toEqual(['OK', 'IDENTITY_REVOKED', 'OK']);
  });

  it('lets staff of the patient’s home institution recover them after a lost device, and keeps a trail of each key', async () => {
    const { ledger, alice } = cast;
    const exec = await ledger.run([
      await ledger.tx(cast.staff('hosp-a/nurse-lee'), 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, next)),
    ]);
    expect(exec.codes).toEqual(['OK']);
    expect(exec.events[0]?.event.data).toEqual({
      mode: 'recovery',
      by: 'hosp-a/nurse-lee',
      keyId: next.keyId,
      previousKeyId: alice.patient.keyId,
    });
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode)))).toBe('IDENTITY_REVOKED');
    expect(await ledger.code(ledger.tx(next, 'consent.grant', grantBody(alice.patientCode)))).toBe('OK');
    // A second recovery: every earlier key is listed and stays revoked.
    const third = await Identity.generate('alice-third-device');
    await ledger.ok(
      ledger.tx(cast.staff('hosp-a/op-a'), 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, third)),
    );
    expect(ledger.get<Patient>('patients', alice.patientCode)?.previousKeyIds).toEqual([alice.patient.keyId, next.keyId]);
    for (const kid of [alice.patient.keyId, next.keyId]) expect(ledger.get<KeyEntry>('keys', kid)?.status).toBe('revoked');
    expect(ledger.get<Patient>('patients', alice.patientCode)?.home).toBe('hosp-a');
  });

  it('refuses staff of another institution with NOT_HOME_INSTITUTION, and other roles with ROLE_FORBIDDEN', async () => {
    const { ledger, alice } = cast;
    const body = await rotationBody(ledger, alice.patientCode, next);
    const before = ledger.snapshot();
    for (const staffId of ['hosp-b/dr-park', 'clinic-c/op-c', 'lab-d/op-d']) {
      expect(await ledger.code(ledger.tx(cast.staff(staffId), 'identity.rotatePatientKeys', body)), staffId).toBe('NOT_HOME_INSTITUTION');
    }
    for (const author of [cast.staff('hosp-a/aud-a'), cast.staff('res-e/res-1'), ledger.institution('hosp-a'), ledger.net.issuer]) {
      expect(await ledger.code(ledger.tx(author, 'identity.rotatePatientKeys', body)), author.label).toBe('ROLE_FORBIDDEN');
    }
    // Another patient cannot replace Alice's keys either.
    expect(await ledger.code(ledger.tx(cast.bob.patient, 'identity.rotatePatientKeys', body))).toBe('ROLE_FORBIDDEN');
    expect(ledger.snapshot()).toEqual(before);
  });

  it('refuses an unknown patient code with PATIENT_UNKNOWN', async () => {
    const { ledger } = cast;
    const body = await rotationBody(ledger, ledger.patientCode('000-00-000'), next);
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'identity.rotatePatientKeys', body))).toBe('PATIENT_UNKNOWN');
  });

  it('refuses a proof that the new key did not sign for this code, network and encryption key with KEY_POSSESSION_INVALID', async () => {
    const { ledger, alice } = cast;
    const mallory = await Identity.generate('mallory');
    const registrationProof = {
      ...(await rotationBody(ledger, alice.patientCode, next)),
      possession: toBase64Url(
        await sign(
          next.file.signing.privateKey,
          patientPossessionMessage(ledger.network, alice.patientCode, next.signingKey, next.encryptionKey, 'hosp-a'),
        ),
      ),
    };
    const bodies = [
      await rotationBody(ledger, alice.patientCode, next, { prover: mallory }),
      await rotationBody(ledger, alice.patientCode, next, { prover: alice.patient }),
      { ...(await rotationBody(ledger, cast.bob.patientCode, next)), patientCode: alice.patientCode },
      await rotationBody(ledger, alice.patientCode, next, { network: 'f'.repeat(32) }),
      { ...(await rotationBody(ledger, alice.patientCode, next)), encryptionKey: mallory.encryptionKey },
      registrationProof,
    ];
    const before = ledger.snapshot();
    for (const [i, body] of bodies.entries()) {
      expect(await ledger.code(ledger.tx(alice.patient, 'identity.rotatePatientKeys', body)), String(i)).toBe('KEY_POSSESSION_INVALID');
      expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'identity.rotatePatientKeys', body)), String(i)).toBe(
        'KEY_POSSESSION_INVALID',
      );
    }
    expect(ledger.snapshot()).toEqual(before);
  });

  it('refuses a new key that is, or was, anyone’s key with ALREADY_EXISTS', async () => {
    const { ledger, alice } = cast;
    const taken = [alice.patient, cast.bob.patient, cast.staff('hosp-a/dr-kim'), ledger.institution('hosp-b')];
    for (const who of taken) {
      const body = await rotationBody(ledger, alice.patientCode, who);
      expect(await ledger.code(ledger.tx(alice.patient, 'identity.rotatePatientKeys', body)), who.label).toBe('ALREADY_EXISTS');
    }
    // A key Alice gave up stays hers, revoked: it cannot come back.
    await ledger.ok(ledger.tx(alice.patient, 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, next)));
    const back = await rotationBody(ledger, alice.patientCode, alice.patient);
    expect(await ledger.code(ledger.tx(next, 'identity.rotatePatientKeys', back))).toBe('ALREADY_EXISTS');
    expect(ledger.get<KeyEntry>('keys', alice.patient.keyId)?.status).toBe('revoked');
  });

  it('refuses a rotation signed by a key already replaced with IDENTITY_REVOKED', async () => {
    const { ledger, alice } = cast;
    await ledger.ok(ledger.tx(alice.patient, 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, next)));
    const thief = await Identity.generate('thief');
    const body = await rotationBody(ledger, alice.patientCode, thief);
    expect(await ledger.code(ledger.tx(alice.patient, 'identity.rotatePatientKeys', body))).toBe('IDENTITY_REVOKED');
    expect(ledger.get<Patient>('patients', alice.patientCode)?.keyId).toBe(next.keyId);
  });

  it('refuses a malformed body with TX_BODY_INVALID', async () => {
    const { ledger, alice } = cast;
    const body = await rotationBody(ledger, alice.patientCode, next);
    for (const bad of [
      { ...body, possession: 'x' },
      { ...body, signingKey: 'x' },
      { ...body, home: 'hosp-b' },
      { patientCode: alice.patientCode },
    ]) {
      expect(await ledger.code(ledger.tx(alice.patient, 'identity.rotatePatientKeys', bad))).toBe('TX_BODY_INVALID');
    }
  });
});

describe('identity.freezePatient', () => {
  let cast: Cast;
  beforeEach(async () => {
    cast = await createCast();
  });

  it('lets the patient revoke their own key with no successor: the thief is stopped, home staff restore them', async () => {
    const { ledger, alice } = cast;
    const before = ledger.get<Patient>('patients', alice.patientCode)!;
    const exec = await ledger.run([await ledger.tx(alice.patient, 'identity.freezePatient', { patientCode: alice.patientCode })]);
    expect(exec.codes).toEqual(['OK']);
    expect(exec.events.map((e) => e.event)).toEqual([
      { type: 'identity.patientFrozen', patientCode: alice.patientCode, data: { by: 'patient', keyId: alice.patient.keyId } },
    ]);
    expect(ledger.get<Patient>('patients', alice.patientCode)).toEqual({ ...before, frozenAt: ledger.time });
    expect(ledger.get<KeyEntry>('keys', alice.patient.keyId)?.status).toBe('revoked');
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode)))).toBe('IDENTITY_REVOKED');

    // Back at the home hospital with a new device: recovery lifts the freeze.
    const next = await Identity.generate('alice-new-device');
    await ledger.ok(
      ledger.tx(cast.staff('hosp-a/op-a'), 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, next)),
    );
    const after = ledger.get<Patient>('patients', alice.patientCode)!;
    expect(after.frozenAt).toBeUndefined();
    expect(after).toMatchObject({ keyId: next.keyId, previousKeyIds: [alice.patient.keyId] });
    expect(await ledger.code(ledger.tx(next, 'consent.grant', grantBody(alice.patientCode)))).toBe('OK');
  });

  it('lets home staff freeze a patient, once: a second freeze is refused with PATIENT_FROZEN', async () => {
    const { ledger, alice } = cast;
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'identity.freezePatient', { patientCode: alice.patientCode }))).toBe(
      'OK',
    );
    expect(ledger.get<Patient>('patients', alice.patientCode)?.frozenAt).toBe(ledger.time);
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'identity.freezePatient', { patientCode: alice.patientCode }))).toBe(
      'PATIENT_FROZEN',
    );
    // The frozen patient cannot rotate their own keys: only their home institution restores them.
    const next = await Identity.generate('next');
    expect(
      await ledger.code(ledger.tx(alice.patient, 'identity.rotatePatientKeys', await rotationBody(ledger, alice.patientCode, next))),
    ).toBe('IDENTITY_REVOKED');
  });

  it('refuses others with NOT_HOME_INSTITUTION, ROLE_FORBIDDEN or PATIENT_UNKNOWN, changing nothing', async () => {
    const { ledger, alice } = cast;
    const body = { patientCode: alice.patientCode };
    const before = ledger.snapshot();
    expect(await ledger.code(ledger.tx(cast.staff('hosp-b/nurse-b'), 'identity.freezePatient', body))).toBe('NOT_HOME_INSTITUTION');
    expect(await ledger.code(ledger.tx(cast.bob.patient, 'identity.freezePatient', body))).toBe('ROLE_FORBIDDEN');
    for (const author of [cast.staff('hosp-a/aud-a'), ledger.institution('hosp-a'), ledger.net.issuer]) {
      expect(await ledger.code(ledger.tx(author, 'identity.freezePatient', body)), author.label).toBe('ROLE_FORBIDDEN');
    }
    expect(ledger.snapshot()).toEqual(before);
    expect(
      await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'identity.freezePatient', { patientCode: ledger.patientCode('000') })),
    ).toBe('PATIENT_UNKNOWN');
  });
});

describe('patient keys over random sequences of rotations, recoveries, freezes and old keys', () => {
  /** Locally each run draws new sequences; CI replays the repository's fixed seed. */
  const ci = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env['CI'] === 'true';

  type Step =
    | { kind: 'rotate'; patient: 0 | 1 }
    | { kind: 'act'; patient: 0 | 1 }
    | { kind: 'recover'; patient: 0 | 1; staff: string }
    | { kind: 'freeze'; patient: 0 | 1; by: string }
    | { kind: 'oldKey'; patient: 0 | 1; pick: number };
  const patientIx = fc.constantFrom<0 | 1>(0, 1);
  const staffIds = fc.constantFrom('hosp-a/op-a', 'hosp-a/nurse-lee', 'hosp-b/dr-park', 'clinic-c/op-c');
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant<'rotate'>('rotate'), patient: patientIx }),
    fc.record({ kind: fc.constant<'act'>('act'), patient: patientIx }),
    fc.record({ kind: fc.constant<'recover'>('recover'), patient: patientIx, staff: staffIds }),
    fc.record({ kind: fc.constant<'freeze'>('freeze'), patient: patientIx, by: fc.oneof(fc.constant('patient'), staffIds) }),
    fc.record({ kind: fc.constant<'oldKey'>('oldKey'), patient: patientIx, pick: fc.nat() }),
  );

  it('keeps exactly the current key active (none while frozen), every earlier key revoked, and each code as the rules say', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const cast = await createCast();
        const { ledger } = cast;
        const model = [cast.alice, cast.bob].map((p) => ({
          code: p.patientCode,
          current: p.patient,
          earlier: [] as Identity[],
          frozen: false,
        }));
        for (const s of steps) {
          const m = model[s.patient]!;
          let expected: string;
          let entry;
          if (s.kind === 'rotate' || s.kind === 'recover') {
            const next = await Identity.generate('next');
            const staff = s.kind === 'recover' ? s.staff : null;
            const author = staff === null ? m.current : cast.staff(staff);
            entry = ledger.tx(author, 'identity.rotatePatientKeys', await rotationBody(ledger, m.code, next));
            expected =
              staff === null ? (m.frozen ? 'IDENTITY_REVOKED' : 'OK') : staff.startsWith('hosp-a/') ? 'OK' : 'NOT_HOME_INSTITUTION';
            expect(await ledger.code(entry), JSON.stringify(s)).toBe(expected);
            if (expected === 'OK') Object.assign(m, { earlier: [...m.earlier, m.current], current: next, frozen: false });
          } else if (s.kind === 'freeze') {
            const author = s.by === 'patient' ? m.current : cast.staff(s.by);
            expected =
              s.by === 'patient'
                ? m.frozen
                  ? 'IDENTITY_REVOKED'
                  : 'OK'
                : !s.by.startsWith('hosp-a/')
                  ? 'NOT_HOME_INSTITUTION'
                  : m.frozen
                    ? 'PATIENT_FROZEN'
                    : 'OK';
            expect(await ledger.code(ledger.tx(author, 'identity.freezePatient', { patientCode: m.code })), JSON.stringify(s)).toBe(
              expected,
            );
            if (expected === 'OK') m.frozen = true;
          } else {
            const who = s.kind === 'act' || m.earlier.length === 0 ? m.current : m.earlier[s.pick % m.earlier.length]!;
            expected = who === m.current && !m.frozen ? 'OK' : 'IDENTITY_REVOKED';
            expect(await ledger.code(ledger.tx(who, 'consent.grant', grantBody(m.code))), JSON.stringify(s)).toBe(expected);
          }
          for (const p of model) {
            const row = ledger.get<Patient>('patients', p.code)!;
            expect(row.keyId).toBe(p.current.keyId);
            expect(row.previousKeyIds ?? []).toEqual(p.earlier.map((e) => e.keyId));
            expect(row.frozenAt !== undefined).toBe(p.frozen);
            expect(ledger.get<KeyEntry>('keys', p.current.keyId)?.status).toBe(p.frozen ? 'revoked' : 'active');
            for (const e of p.earlier)
              expect(ledger.get<KeyEntry>('keys', e.keyId)).toMatchObject({ status: 'revoked', owner: { patientCode: p.code } });
          }
        }
      }),
      { numRuns: 40, ...(ci ? { seed: 20261121 } : {}) },
    );
  }, 120_000);
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
