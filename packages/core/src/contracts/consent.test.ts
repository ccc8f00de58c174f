/** Consent: the patient grants, narrows (never widens) and revokes, for themselves only. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../codec/canonical-json.ts';
import { createCast, DAY, type Cast } from '../ledger/test-network.test-fixture.ts';
import type { Consent } from './state.ts';

let cast: Cast;
beforeEach(async () => {
  cast = await createCast();
});

function grantBody(patientCode: string, overrides: JsonObject = {}): JsonObject {
  return {
    patientCode,
    grantee: { kind: 'institution', institution: 'hosp-b' },
    scope: { kind: 'categories', categories: ['Observation', 'Condition'] },
    purposes: ['TREAT', 'CAREMGT'],
    period: { from: cast.ledger.time, to: cast.ledger.time + 30 * DAY },
    deidentification: 'identified',
    ...overrides,
  };
}

async function grant(overrides: JsonObject = {}): Promise<{ consentId: string; consent: Consent }> {
  const { ledger, alice } = cast;
  const entry = await ledger.ok(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode, overrides)));
  return { consentId: entry.txId, consent: ledger.get<Consent>('consents', entry.txId)! };
}

function narrowBody(consent: Consent, overrides: JsonObject = {}): JsonObject {
  return {
    consentId: consent.consentId,
    scope: consent.scope,
    purposes: consent.purposes,
    period: consent.period,
    deidentification: consent.deidentification,
    ...overrides,
  };
}

describe('consent.grant', () => {
  it('stores the consent and indexes it under the patient', async () => {
    const { ledger, alice } = cast;
    const period = { from: ledger.time, to: ledger.time + 30 * DAY };
    const { consentId, consent } = await grant({ period });
    expect(consent).toEqual({
      consentId,
      patientCode: alice.patientCode,
      grantee: { kind: 'institution', institution: 'hosp-b' },
      scope: { kind: 'categories', categories: ['Observation', 'Condition'] },
      purposes: ['TREAT', 'CAREMGT'],
      period,
      deidentification: 'identified',
      status: 'active',
      version: 1,
      grantedAt: ledger.time,
      updatedAt: ledger.time,
      source: 'grant',
      requestId: null,
    });
    const second = await grant({ grantee: { kind: 'person', staffId: 'clinic-c/dr-choi' } });
    expect(ledger.get('patientConsents', alice.patientCode)).toEqual([consentId, second.consentId]);
  });

  it('accepts every kind of grantee and scope', async () => {
    await grant({ grantee: { kind: 'role', role: 'nurse', institution: null } });
    await grant({ grantee: { kind: 'role', role: 'doctor', institution: 'clinic-c' } });
    await grant({ scope: { kind: 'all' }, period: { from: 0, to: null } });
    await grant({ scope: { kind: 'records', recordIds: ['a'.repeat(64)] } });
  });

  it('lets a patient grant only for themselves', async () => {
    const { ledger, alice, bob } = cast;
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.grant', grantBody(alice.patientCode)))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'consent.grant', grantBody(alice.patientCode)))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'consent.grant', grantBody(alice.patientCode)))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(ledger.get('patientConsents', alice.patientCode)).toBeUndefined();
  });

  it('refuses a period that ends before it starts with TX_BODY_INVALID', async () => {
    const { ledger, alice } = cast;
    for (const period of [
      { from: 10, to: 10 },
      { from: 10, to: 9 },
    ]) {
      expect(await ledger.code(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode, { period })))).toBe(
        'TX_BODY_INVALID',
      );
    }
  });

  it('refuses an unknown purpose or an empty purpose list with TX_BODY_INVALID', async () => {
    const { ledger, alice } = cast;
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode, { purposes: ['MARKETING'] })))).toBe(
      'TX_BODY_INVALID',
    );
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.grant', grantBody(alice.patientCode, { purposes: [] })))).toBe(
      'TX_BODY_INVALID',
    );
  });
});

describe('consent.narrow', () => {
  it('accepts a narrower consent and bumps the version', async () => {
    const { ledger, alice } = cast;
    const { consent } = await grant();
    const narrower = {
      scope: { kind: 'categories', categories: ['Observation'] },
      purposes: ['TREAT'],
      period: { from: consent.period.from + DAY, to: consent.period.from + 2 * DAY },
      deidentification: 'pseudonymised',
    };
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent, narrower)))).toBe('OK');
    expect(ledger.get<Consent>('consents', consent.consentId)).toEqual({ ...consent, ...narrower, version: 2, updatedAt: ledger.time });
  });

  it('accepts the consent unchanged, and refuses a scope of another kind', async () => {
    const { ledger, alice } = cast;
    const { consent } = await grant();
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent)))).toBe('OK');
    const records = { scope: { kind: 'records', recordIds: ['a'.repeat(64)] } };
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent, records)))).toBe('CONSENT_NOT_NARROWER');
  });

  it('narrows an open-ended consent with "all" scope to anything inside it', async () => {
    const { ledger, alice } = cast;
    const { consent } = await grant({ scope: { kind: 'all' }, period: { from: 0, to: null } });
    const narrower = { scope: { kind: 'records', recordIds: ['a'.repeat(64)] }, period: { from: 5, to: null } };
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent, narrower)))).toBe('OK');
    expect(
      await ledger.code(
        ledger.tx(
          alice.patient,
          'consent.narrow',
          narrowBody(ledger.get<Consent>('consents', consent.consentId)!, { period: { from: 5, to: 6 } }),
        ),
      ),
    ).toBe('OK');
  });

  describe('refuses anything wider with CONSENT_NOT_NARROWER, leaving the consent as it was', () => {
    const wider: readonly [string, (c: Consent) => JsonObject][] = [
      ['an added purpose', (c) => ({ purposes: [...c.purposes, 'HRESCH'] })],
      ['another purpose', () => ({ purposes: ['HRESCH'] })],
      ['an added category', () => ({ scope: { kind: 'categories', categories: ['Observation', 'Condition', 'MedicationRequest'] } })],
      ['scope "all"', () => ({ scope: { kind: 'all' } })],
      ['an earlier start', (c) => ({ period: { from: c.period.from - 1, to: c.period.to } })],
      ['a later end', (c) => ({ period: { from: c.period.from, to: c.period.to! + 1 } })],
      ['no end', (c) => ({ period: { from: c.period.from, to: null } })],
      ['a weaker de-identification', () => ({ deidentification: 'identified' })],
    ];

    it.each(wider)('%s', async (_name, change) => {
      const { ledger, alice } = cast;
      const { consent } = await grant({ deidentification: 'pseudonymised' });
      expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent, change(consent))))).toBe(
        'CONSENT_NOT_NARROWER',
      );
      expect(ledger.get<Consent>('consents', consent.consentId)).toEqual(consent);
    });
  });

  it('refuses an empty period with CONSENT_NOT_NARROWER', async () => {
    const { ledger, alice } = cast;
    const { consent } = await grant();
    const empty = { period: { from: consent.period.from + DAY, to: consent.period.from + DAY } };
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent, empty)))).toBe('CONSENT_NOT_NARROWER');
  });

  it('lets only the patient narrow, and not a revoked or unknown consent', async () => {
    const { ledger, alice, bob } = cast;
    const { consent } = await grant();
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.narrow', narrowBody(consent)))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent, { consentId: 'c'.repeat(64) })))).toBe(
      'CONSENT_NOT_FOUND',
    );
    await ledger.ok(ledger.tx(alice.patient, 'consent.revoke', { consentId: consent.consentId }));
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.narrow', narrowBody(consent)))).toBe('CONSENT_REVOKED');
  });
});

describe('consent.revoke', () => {
  it('marks the consent revoked and keeps it', async () => {
    const { ledger, alice } = cast;
    const { consent } = await grant();
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.revoke', { consentId: consent.consentId }))).toBe('OK');
    expect(ledger.get<Consent>('consents', consent.consentId)).toEqual({
      ...consent,
      status: 'revoked',
      version: 2,
      updatedAt: ledger.time,
    });
    expect(ledger.get('patientConsents', alice.patientCode)).toEqual([consent.consentId]);
    expect(await ledger.code(ledger.tx(alice.patient, 'consent.revoke', { consentId: consent.consentId }))).toBe('CONSENT_REVOKED');
  });

  it('lets only the patient revoke', async () => {
    const { ledger, bob } = cast;
    const { consent } = await grant();
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.revoke', { consentId: consent.consentId }))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'consent.revoke', { consentId: consent.consentId }))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await ledger.code(ledger.tx(bob.patient, 'consent.revoke', { consentId: 'c'.repeat(64) }))).toBe('CONSENT_NOT_FOUND');
    expect(ledger.get<Consent>('consents', consent.consentId)?.status).toBe('active');
  });
});
