/**
 * What block execution checks before any contract runs (DESIGN §4): network, author, signature,
 * replay, standing, permission and body — and that a rejected transaction writes nothing.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { Identity } from '../client/identity.ts';
import { createCast, forgedTx, recordBody, type Cast } from '../ledger/test-network.test-fixture.ts';
import { txSigningMessage } from '../ledger/tx.ts';
import { sign } from '../crypto/ed25519.ts';
import { toBase64Url } from '../codec/bytes.ts';
import type { Staff } from './state.ts';

let cast: Cast;
beforeEach(async () => {
  cast = await createCast();
});

describe('the envelope', () => {
  it('accepts a well-formed, signed transaction of a known author', async () => {
    const { ledger, alice } = cast;
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(alice.patientCode)))).toBe('OK');
  });

  it('refuses a transaction signed for another network with TX_WRONG_NETWORK', async () => {
    const { ledger, alice } = cast;
    const entry = ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(alice.patientCode), { network: 'f'.repeat(32) });
    expect(await ledger.code(entry)).toBe('TX_WRONG_NETWORK');
  });

  it('refuses an author whose key is not registered with TX_UNKNOWN_AUTHOR', async () => {
    const { ledger, alice } = cast;
    const stranger = await Identity.generate('stranger');
    expect(await ledger.code(ledger.tx(stranger, 'records.register', recordBody(alice.patientCode)))).toBe('TX_UNKNOWN_AUTHOR');
  });

  it('refuses a transaction signed by a different key than its author’s with TX_BAD_SIGNATURE', async () => {
    const { ledger, alice } = cast;
    const kim = cast.staff('hosp-a/dr-kim');
    const mallory = await Identity.generate('mallory');
    expect(await ledger.code(forgedTx(ledger.network, kim, mallory, 'records.register', recordBody(alice.patientCode)))).toBe(
      'TX_BAD_SIGNATURE',
    );
    // Another enrolled member of staff cannot sign in Dr Kim's name either.
    const lee = cast.staff('hosp-a/nurse-lee');
    expect(await ledger.code(forgedTx(ledger.network, kim, lee, 'records.register', recordBody(alice.patientCode)))).toBe(
      'TX_BAD_SIGNATURE',
    );
  });

  it('refuses a signature the author made for another transaction with TX_BAD_SIGNATURE', async () => {
    const { ledger, alice } = cast;
    const kim = cast.staff('hosp-a/dr-kim');
    const a = await ledger.tx(kim, 'records.register', recordBody(alice.patientCode));
    const b = await ledger.tx(kim, 'records.register', recordBody(alice.patientCode, { size: 1 }));
    expect(await ledger.code({ tx: { ...b.tx, signature: a.tx.signature }, txId: b.txId })).toBe('TX_BAD_SIGNATURE');
    // A valid signature over the txId without the domain prefix is not a tx signature.
    const raw = toBase64Url(await sign(kim.file.signing.privateKey, txSigningMessage(b.txId).subarray(16)));
    expect(await ledger.code({ tx: { ...b.tx, signature: raw }, txId: b.txId })).toBe('TX_BAD_SIGNATURE');
  });

  it('refuses an author without permission for the type with ROLE_FORBIDDEN', async () => {
    const { ledger, alice } = cast;
    expect(await ledger.code(ledger.tx(alice.patient, 'records.register', recordBody(alice.patientCode)))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(ledger.net.issuer, 'records.register', recordBody(alice.patientCode)))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('res-e/res-1'), 'records.register', recordBody(alice.patientCode)))).toBe(
      'ROLE_FORBIDDEN',
    );
  });

  it('refuses a body that does not match the type’s schema with TX_BODY_INVALID', async () => {
    const { ledger, alice } = cast;
    const kim = cast.staff('hosp-a/dr-kim');
    const noSize = Object.fromEntries(Object.entries(recordBody(alice.patientCode)).filter(([k]) => k !== 'size'));
    expect(await ledger.code(ledger.tx(kim, 'records.register', noSize))).toBe('TX_BODY_INVALID');
    expect(await ledger.code(ledger.tx(kim, 'records.register', recordBody(alice.patientCode, { extra: 1 })))).toBe('TX_BODY_INVALID');
    expect(await ledger.code(ledger.tx(kim, 'records.register', recordBody(alice.patientCode, { category: 'observation' })))).toBe(
      'TX_BODY_INVALID',
    );
    expect(await ledger.code(ledger.tx(kim, 'records.register', recordBody('XYZ')))).toBe('TX_BODY_INVALID');
  });
});

describe('replay', () => {
  it('refuses a second transaction with the same author and nonce with TX_REPLAY', async () => {
    const { ledger, alice } = cast;
    const kim = cast.staff('hosp-a/dr-kim');
    expect(await ledger.code(ledger.tx(kim, 'records.register', recordBody(alice.patientCode), { nonce: 'once' }))).toBe('OK');
    const again = ledger.tx(kim, 'records.register', recordBody(alice.patientCode, { size: 99 }), { nonce: 'once' });
    expect(await ledger.code(again)).toBe('TX_REPLAY');
  });

  it('refuses the very same transaction a second time with TX_REPLAY', async () => {
    const { ledger, alice } = cast;
    const entry = await ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(alice.patientCode));
    expect(await ledger.code(entry)).toBe('OK');
    expect(await ledger.code(entry)).toBe('TX_REPLAY');
  });

  it('refuses a repeated nonce within one block', async () => {
    const { ledger, alice } = cast;
    const kim = cast.staff('hosp-a/dr-kim');
    const a = await ledger.tx(kim, 'records.register', recordBody(alice.patientCode), { nonce: 'same' });
    const b = await ledger.tx(kim, 'records.register', recordBody(alice.patientCode, { size: 2 }), { nonce: 'same' });
    expect((await ledger.run([a, b])).codes).toEqual(['OK', 'TX_REPLAY']);
  });

  it('keeps nonces per author', async () => {
    const { ledger, alice } = cast;
    const a = await ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(alice.patientCode), { nonce: 'shared' });
    const b = await ledger.tx(cast.staff('hosp-a/nurse-lee'), 'records.register', recordBody(alice.patientCode), { nonce: 'shared' });
    expect((await ledger.run([a, b])).codes).toEqual(['OK', 'OK']);
  });

  it('lets the nonce of a rejected transaction be used again', async () => {
    const { ledger, alice } = cast;
    const kim = cast.staff('hosp-a/dr-kim');
    const refused = ledger.tx(kim, 'records.register', recordBody('0'.repeat(64)), { nonce: 'retry' });
    expect(await ledger.code(refused)).toBe('PATIENT_UNKNOWN');
    expect(await ledger.code(ledger.tx(kim, 'records.register', recordBody(alice.patientCode), { nonce: 'retry' }))).toBe('OK');
  });
});

describe('standing of the author', () => {
  it('refuses a revoked member of staff with IDENTITY_REVOKED', async () => {
    const { ledger, alice } = cast;
    const lee = cast.staff('hosp-a/nurse-lee');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.revokeStaff', { staffId: 'hosp-a/nurse-lee' }))).toBe('OK');
    expect(ledger.get<Staff>('staff', 'hosp-a/nurse-lee')?.status).toBe('revoked');
    expect(await ledger.code(ledger.tx(lee, 'records.register', recordBody(alice.patientCode)))).toBe('IDENTITY_REVOKED');
    expect(await ledger.code(ledger.tx(lee, 'access.request', accessRequest(alice.patientCode)))).toBe('IDENTITY_REVOKED');
  });

  it('lets only the staff’s own institution revoke them', async () => {
    const { ledger } = cast;
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'identity.revokeStaff', { staffId: 'hosp-a/nurse-lee' }))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'identity.revokeStaff', { staffId: 'hosp-a/nurse-lee' }))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.revokeStaff', { staffId: 'hosp-a/nobody' }))).toBe(
      'NOT_FOUND',
    );
    expect(ledger.get<Staff>('staff', 'hosp-a/nurse-lee')?.status).toBe('active');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.revokeStaff', { staffId: 'hosp-a/nurse-lee' }))).toBe('OK');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.revokeStaff', { staffId: 'hosp-a/nurse-lee' }))).toBe(
      'IDENTITY_REVOKED',
    );
  });
});

describe('rejected transactions', () => {
  it('write nothing: a block of rejections leaves the state as it was', async () => {
    const { ledger, alice } = cast;
    const before = ledger.snapshot();
    const kim = cast.staff('hosp-a/dr-kim');
    const stranger = await Identity.generate('stranger');
    const entries = [
      await ledger.tx(kim, 'records.register', recordBody(alice.patientCode), { network: 'e'.repeat(32) }),
      await ledger.tx(stranger, 'records.register', recordBody(alice.patientCode)),
      await forgedTx(ledger.network, kim, stranger, 'records.register', recordBody(alice.patientCode)),
      await ledger.tx(alice.patient, 'records.register', recordBody(alice.patientCode)),
      await ledger.tx(cast.staff('clinic-c/dr-choi'), 'records.register', recordBody(alice.patientCode)),
      await ledger.tx(kim, 'records.register', recordBody('0'.repeat(64))),
      await ledger.tx(cast.bob.patient, 'consent.grant', grantBody(alice.patientCode)),
    ];
    const exec = await ledger.run(entries);
    expect(exec.codes).toEqual([
      'TX_WRONG_NETWORK',
      'TX_UNKNOWN_AUTHOR',
      'TX_BAD_SIGNATURE',
      'ROLE_FORBIDDEN',
      'CONSENT_REQUIRED',
      'PATIENT_UNKNOWN',
      'ROLE_FORBIDDEN',
    ]);
    expect(exec.writes).toEqual([]);
    expect(exec.events).toEqual([]);
    expect(ledger.snapshot()).toEqual(before);
  });

  it('write nothing even when a contract rejects late', async () => {
    const { ledger } = cast;
    // The patient and key are checked, then the possession proof fails: nothing of it may stay.
    const newcomer = await Identity.generate('newcomer');
    const impostor = await Identity.generate('impostor');
    const body = await ledger.registerPatientBody(newcomer, '555-55-555');
    body['possession'] = await impostor.possessionProof(ledger.network, ledger.patientCode('555-55-555'), 'hosp-a');
    const before = ledger.snapshot();
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'identity.registerPatient', body))).toBe('KEY_POSSESSION_INVALID');
    expect(ledger.snapshot()).toEqual(before);
  });

  it('keep their place and code between accepted ones, whose writes alone are applied', async () => {
    const { ledger, alice } = cast;
    const kim = cast.staff('hosp-a/dr-kim');
    const ok1 = await ledger.tx(kim, 'records.register', recordBody(alice.patientCode));
    const bad = await ledger.tx(cast.staff('clinic-c/dr-choi'), 'records.register', recordBody(alice.patientCode));
    const ok2 = await ledger.tx(kim, 'records.register', recordBody(alice.patientCode, { size: 7 }));
    const exec = await ledger.run([ok1, bad, ok2]);
    expect(exec.codes).toEqual(['OK', 'CONSENT_REQUIRED', 'OK']);
    expect(ledger.get('records', ok1.txId)).toBeDefined();
    expect(ledger.get('records', bad.txId)).toBeUndefined();
    expect(ledger.get('records', ok2.txId)).toBeDefined();
    expect(exec.writes.map((w) => `${w.table}/${w.key}`)).toEqual([`records/${ok1.txId}`, `records/${ok2.txId}`].sort());
    expect(exec.events.map((e) => e.txIndex)).toEqual([0, 2]);
  });
});

describe('within a block', () => {
  it('an accepted transaction’s writes are seen by the ones after it', async () => {
    const { ledger } = cast;
    const newDoctor = await Identity.generate('hosp-a/dr-new');
    const patient = await Identity.generate('patient');
    const enrol = await ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', {
      localId: 'dr-new',
      role: 'doctor',
      signingKey: newDoctor.signingKey,
      encryptionKey: newDoctor.encryptionKey,
      displayName: 'Dr New',
    });
    const register = await ledger.tx(newDoctor, 'identity.registerPatient', await ledger.registerPatientBody(patient, '111'));
    const record = await ledger.tx(newDoctor, 'records.register', recordBody(ledger.patientCode('111')));
    expect((await ledger.run([enrol, register, record])).codes).toEqual(['OK', 'OK', 'OK']);
  });

  it('a transaction before the one it depends on fails', async () => {
    const { ledger } = cast;
    const newDoctor = await Identity.generate('hosp-a/dr-new');
    const enrol = await ledger.tx(ledger.institution('hosp-a'), 'identity.enrolStaff', {
      localId: 'dr-new',
      role: 'doctor',
      signingKey: newDoctor.signingKey,
      encryptionKey: null,
      displayName: 'Dr New',
    });
    const record = await ledger.tx(newDoctor, 'records.register', recordBody(cast.alice.patientCode));
    expect((await ledger.run([record, enrol])).codes).toEqual(['TX_UNKNOWN_AUTHOR', 'OK']);
  });
});

function accessRequest(patientCode: string) {
  return { patientCode, scope: { kind: 'all' }, purpose: 'TREAT', deidentification: 'identified', reason: 'referral' };
}

function grantBody(patientCode: string) {
  return {
    patientCode,
    grantee: { kind: 'institution', institution: 'hosp-b' },
    scope: { kind: 'all' },
    purposes: ['TREAT'],
    period: { from: 0, to: null },
    deidentification: 'identified',
  };
}
