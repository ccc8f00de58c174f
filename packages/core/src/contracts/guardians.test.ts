/**
 * Guardians (issue 7): a patient appoints another registered person who consents on their behalf
 * within a scope and period; outside it the ledger answers a stable code; every step is in the
 * patient's history and the consent says who granted it.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../codec/canonical-json.ts';
import { createCast, DAY, HOUR, recordBody, type Cast } from '../ledger/test-network.test-fixture.ts';
import type { AccessLogEntry, Consent, Guardianship } from './state.ts';

let cast: Cast;

beforeEach(async () => {
  cast = await createCast();
});

function appointment(overrides: JsonObject = {}): JsonObject {
  const { ledger, alice, bob } = cast;
  return {
    patientCode: alice.patientCode,
    guardian: bob.patientCode,
    scope: { actions: ['consent.grant', 'consent.revoke'], categories: ['Condition'], purposes: ['TREAT'] },
    period: { from: ledger.time, to: ledger.time + 10 * DAY },
    ...overrides,
  };
}

function grantBody(overrides: JsonObject = {}): JsonObject {
  const { ledger, alice } = cast;
  return {
    patientCode: alice.patientCode,
    grantee: { kind: 'institution', institution: 'hosp-b' },
    scope: { kind: 'categories', categories: ['Condition'] },
    purposes: ['TREAT'],
    period: { from: ledger.time, to: ledger.time + 5 * DAY },
    deidentification: 'identified',
    ...overrides,
  };
}

describe('identity.appointGuardian and consents given by a guardian', () => {
  it('lets the guardian grant within scope, recorded as theirs, and refuses outside it with a stable code', async () => {
    const { ledger, alice, bob } = cast;
    const appointed = await ledger.ok(ledger.tx(alice.patient, 'identity.appointGuardian', appointment()));
    expect(ledger.get<Guardianship>('guardianships', appointed.txId)).toMatchObject({ status: 'active', guardian: bob.patientCode });
    expect(ledger.get<AccessLogEntry>('accessLog', appointed.txId)).toMatchObject({
      outcome: 'guardian-appointed',
      actor: alice.patientCode,
    });

    const granted = await ledger.ok(ledger.tx(bob.patient, 'consent.grant', grantBody()));
    expect(ledger.get<Consent>('consents', granted.txId)).toMatchObject({
      patientCode: alice.patientCode,
      grantedBy: { guardian: bob.patientCode, guardianshipId: appointed.txId },
    });
    expect(ledger.get<AccessLogEntry>('accessLog', granted.txId)).toMatchObject({
      patientCode: alice.patientCode,
      outcome: 'guardian-acted',
      actorRole: 'guardian',
      reason: 'consent.grant',
      consentId: granted.txId,
    });

    const outside: [JsonObject, string][] = [
      [grantBody({ purposes: ['HRESCH'] }), 'a purpose'],
      [grantBody({ scope: { kind: 'all' } }), 'all records'],
      [grantBody({ scope: { kind: 'categories', categories: ['Observation'] } }), 'a category'],
      [grantBody({ period: { from: ledger.time, to: null } }), 'a consent without end'],
      [grantBody({ period: { from: ledger.time, to: ledger.time + 20 * DAY } }), 'a consent outlasting the guardianship'],
    ];
    for (const [body, what] of outside)
      expect(await ledger.code(ledger.tx(bob.patient, 'consent.grant', body)), what).toBe('GUARDIAN_OUT_OF_SCOPE');
    // narrowing is not among the actions
    const narrow = {
      consentId: granted.txId,
      scope: { kind: 'categories', categories: ['Condition'] },
      purposes: ['TREAT'],
      period: { from: ledger.time, to: ledger.time + DAY },
      deidentification: 'identified',
    };
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.narrow', narrow))).toBe('GUARDIAN_OUT_OF_SCOPE');
    // a guardian's own records are not the ward's business: the ward gets no power over them
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.grant', grantBody({ patientCode: bob.patientCode })))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.revoke', { consentId: granted.txId }))).toBe('OK');
  });

  it('lets a guardian revoke only consents inside the guardianship, and never a break-glass access', async () => {
    const { ledger, alice, bob } = cast;
    await ledger.ok(ledger.tx(alice.patient, 'identity.appointGuardian', appointment()));
    // The patient's own consents: one inside the guardianship, two outside it.
    const inside = await ledger.ok(ledger.tx(alice.patient, 'consent.grant', grantBody()));
    const everything = await ledger.ok(ledger.tx(alice.patient, 'consent.grant', grantBody({ scope: { kind: 'all' } })));
    const research = await ledger.ok(ledger.tx(alice.patient, 'consent.grant', grantBody({ purposes: ['HRESCH'] })));
    for (const [consent, what] of [
      [everything, 'all records'],
      [research, 'another purpose'],
    ] as const) {
      expect(await ledger.code(ledger.tx(bob.patient, 'consent.revoke', { consentId: consent.txId })), what).toBe('GUARDIAN_OUT_OF_SCOPE');
      expect(ledger.get<Consent>('consents', consent.txId)?.status, what).toBe('active');
    }
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.revoke', { consentId: inside.txId }))).toBe('OK');

    await ledger.ok(
      ledger.tx(ledger.institution('hosp-b'), 'identity.setQualifications', { staffId: 'hosp-b/dr-park', qualifications: ['emergency'] }),
    );
    const glass = await ledger.ok(
      ledger.tx(cast.staff('hosp-b/dr-park'), 'access.breakGlass', {
        patientCode: alice.patientCode,
        reason: 'ETREAT',
        justification: 'unconscious on arrival',
        durationMs: HOUR,
      }),
    );
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.revoke', { consentId: glass.txId }))).toBe('GUARDIAN_OUT_OF_SCOPE');
  });

  it('refuses after the period, before it, and once revoked; the patient or the guardian revokes', async () => {
    const { ledger, alice, bob } = cast;
    const later = await ledger.ok(
      ledger.tx(alice.patient, 'identity.appointGuardian', appointment({ period: { from: ledger.time + DAY, to: ledger.time + 2 * DAY } })),
    );
    expect(
      await ledger.code(ledger.tx(bob.patient, 'consent.grant', grantBody({ period: { from: ledger.time, to: ledger.time + DAY } }))),
    ).toBe('GUARDIANSHIP_NOT_YET_VALID');
    const t = ledger.time + 3 * DAY;
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.grant', grantBody({ period: { from: t, to: t + DAY } })), t)).toBe(
      'GUARDIANSHIP_EXPIRED',
    );
    // only the patient or the guardian ends it; a third patient cannot
    const carol = await ledger.registerPatient(cast.staff('hosp-a/op-a'), '555-55-555');
    expect(await ledger.code(ledger.tx(carol.patient, 'identity.revokeGuardian', { guardianshipId: later.txId }))).toBe('ROLE_FORBIDDEN');
    const revoked = await ledger.ok(ledger.tx(bob.patient, 'identity.revokeGuardian', { guardianshipId: later.txId }));
    expect(ledger.get<AccessLogEntry>('accessLog', revoked.txId)).toMatchObject({ outcome: 'guardian-revoked', actor: bob.patientCode });
    expect(await ledger.code(ledger.tx(alice.patient, 'identity.revokeGuardian', { guardianshipId: later.txId }))).toBe(
      'GUARDIANSHIP_REVOKED',
    );
    const now = { from: ledger.time, to: ledger.time + DAY };
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.grant', grantBody({ period: now })))).toBe('GUARDIANSHIP_REVOKED');
    expect(await ledger.code(ledger.tx(alice.patient, 'identity.revokeGuardian', { guardianshipId: revoked.txId }))).toBe(
      'GUARDIANSHIP_NOT_FOUND',
    );
  });

  it('lets a guardian approve an access request within scope, and refuses appointments that make no sense', async () => {
    const { ledger, alice, bob } = cast;
    await ledger.ok(
      ledger.tx(
        alice.patient,
        'identity.appointGuardian',
        appointment({
          scope: { actions: ['access.decide'], categories: null, purposes: ['TREAT'] },
          period: { from: ledger.time, to: null },
        }),
      ),
    );
    const ask = (purpose: string) =>
      ledger.ok(
        ledger.tx(cast.staff('hosp-b/dr-park'), 'access.request', {
          patientCode: alice.patientCode,
          scope: { kind: 'all' },
          purpose,
          deidentification: 'identified',
          reason: 'referral',
        }),
      );
    const treat = await ask('TREAT');
    const decided = await ledger.ok(ledger.tx(bob.patient, 'access.decide', { requestId: treat.txId, approve: true, durationMs: null }));
    expect(ledger.get<Consent>('consents', decided.txId)?.grantedBy?.guardian).toBe(bob.patientCode);
    const care = await ask('CAREMGT');
    expect(await ledger.code(ledger.tx(bob.patient, 'access.decide', { requestId: care.txId, approve: true, durationMs: null }))).toBe(
      'GUARDIAN_OUT_OF_SCOPE',
    );
    // a denial, too, is the patient's to make outside the guardianship's purposes
    expect(await ledger.code(ledger.tx(bob.patient, 'access.decide', { requestId: care.txId, approve: false, durationMs: null }))).toBe(
      'GUARDIAN_OUT_OF_SCOPE',
    );
    const treatAgain = await ask('TREAT');
    expect(
      await ledger.code(ledger.tx(bob.patient, 'access.decide', { requestId: treatAgain.txId, approve: false, durationMs: null })),
    ).toBe('OK');

    expect(await ledger.code(ledger.tx(alice.patient, 'identity.appointGuardian', appointment({ guardian: alice.patientCode })))).toBe(
      'TX_BODY_INVALID',
    );
    expect(await ledger.code(ledger.tx(alice.patient, 'identity.appointGuardian', appointment({ guardian: '0'.repeat(64) })))).toBe(
      'PATIENT_UNKNOWN',
    );
    expect(await ledger.code(ledger.tx(bob.patient, 'identity.appointGuardian', appointment()))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'identity.appointGuardian', appointment()))).toBe('ROLE_FORBIDDEN');
    // records scope: allowed when each record is the ward's and of a category in scope
    await ledger.ok(ledger.tx(alice.patient, 'identity.appointGuardian', appointment()));
    const rec = await ledger.ok(
      ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(alice.patientCode, { category: 'Condition' })),
    );
    expect(
      await ledger.code(ledger.tx(bob.patient, 'consent.grant', grantBody({ scope: { kind: 'records', recordIds: [rec.txId] } }))),
    ).toBe('OK');
  });
});
