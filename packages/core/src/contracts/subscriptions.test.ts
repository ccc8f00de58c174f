/**
 * Push subscriptions (issue 7): admitted only under a consent that covers the subscriber and
 * reaches future records; cancelled by the subscriber or the patient.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../codec/canonical-json.ts';
import { createCast, DAY, type Cast } from '../ledger/test-network.test-fixture.ts';
import type { Subscription } from './state.ts';

let cast: Cast;

beforeEach(async () => {
  cast = await createCast();
});

async function grant(overrides: JsonObject = {}): Promise<string> {
  const { ledger, alice } = cast;
  const body = {
    patientCode: alice.patientCode,
    grantee: { kind: 'person', staffId: 'hosp-b/dr-park' },
    scope: { kind: 'categories', categories: ['Condition', 'Observation'] },
    purposes: ['TREAT'],
    period: { from: ledger.time, to: ledger.time + 30 * DAY },
    deidentification: 'identified',
    ...overrides,
  };
  return (await ledger.ok(ledger.tx(alice.patient, 'consent.grant', body))).txId;
}

const subscription = (overrides: JsonObject = {}): JsonObject => ({
  patientCode: cast.alice.patientCode,
  categories: ['Condition'],
  purpose: 'TREAT',
  ...overrides,
});

describe('subscriptions.subscribe', () => {
  it('is refused without a consent, then admitted under one that covers the doctor, purpose and categories', async () => {
    const { ledger } = cast;
    const park = cast.staff('hosp-b/dr-park');
    expect(await ledger.code(ledger.tx(park, 'subscriptions.subscribe', subscription()))).toBe('CONSENT_REQUIRED');
    const consentId = await grant();
    expect(await ledger.code(ledger.tx(park, 'subscriptions.subscribe', subscription({ purpose: 'CAREMGT' })))).toBe(
      'CONSENT_PURPOSE_MISMATCH',
    );
    // every category, or one outside the consent: not covered
    expect(await ledger.code(ledger.tx(park, 'subscriptions.subscribe', subscription({ categories: null })))).toBe('CONSENT_REQUIRED');
    expect(await ledger.code(ledger.tx(park, 'subscriptions.subscribe', subscription({ categories: ['MedicationRequest'] })))).toBe(
      'CONSENT_REQUIRED',
    );
    // another doctor, and a nurse (not a subscriber role)
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'subscriptions.subscribe', subscription()))).toBe('CONSENT_REQUIRED');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-b/nurse-b'), 'subscriptions.subscribe', subscription()))).toBe('ROLE_FORBIDDEN');
    const s = await ledger.ok(ledger.tx(park, 'subscriptions.subscribe', subscription()));
    expect(ledger.get<Subscription>('subscriptions', s.txId)).toMatchObject({ subscriber: 'hosp-b/dr-park', consentId, status: 'active' });
    await ledger.ok(ledger.tx(cast.alice.patient, 'consent.revoke', { consentId }));
    expect(await ledger.code(ledger.tx(park, 'subscriptions.subscribe', subscription()))).toBe('CONSENT_REVOKED');
  });

  it('is not covered by a break-glass consent, nor by one that names records only', async () => {
    const { ledger } = cast;
    const park = cast.staff('hosp-b/dr-park');
    await ledger.ok(
      ledger.tx(ledger.institution('hosp-b'), 'identity.setQualifications', { staffId: 'hosp-b/dr-park', qualifications: ['emergency'] }),
    );
    const justification = 'Unconscious patient in the emergency room';
    await ledger.ok(
      ledger.tx(park, 'access.breakGlass', { patientCode: cast.alice.patientCode, reason: 'ETREAT', justification, durationMs: 3_600_000 }),
    );
    expect(await ledger.code(ledger.tx(park, 'subscriptions.subscribe', subscription({ purpose: 'ETREAT' })))).toBe('CONSENT_REQUIRED');
    await grant({ scope: { kind: 'records', recordIds: ['a'.repeat(64)] } });
    expect(await ledger.code(ledger.tx(park, 'subscriptions.subscribe', subscription()))).toBe('CONSENT_REQUIRED');
  });
});

describe('subscriptions.cancel', () => {
  it('is done by the subscriber or the patient, once', async () => {
    const { ledger, alice, bob } = cast;
    await grant();
    const park = cast.staff('hosp-b/dr-park');
    const a = await ledger.ok(ledger.tx(park, 'subscriptions.subscribe', subscription()));
    const b = await ledger.ok(ledger.tx(park, 'subscriptions.subscribe', subscription({ categories: ['Observation'] })));
    expect(await ledger.code(ledger.tx(bob.patient, 'subscriptions.cancel', { subscriptionId: a.txId }))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'subscriptions.cancel', { subscriptionId: a.txId }))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await ledger.code(ledger.tx(park, 'subscriptions.cancel', { subscriptionId: a.txId }))).toBe('OK');
    expect(await ledger.code(ledger.tx(park, 'subscriptions.cancel', { subscriptionId: a.txId }))).toBe('SUBSCRIPTION_CLOSED');
    expect(await ledger.code(ledger.tx(alice.patient, 'subscriptions.cancel', { subscriptionId: b.txId }))).toBe('OK');
    expect(ledger.get<Subscription>('subscriptions', b.txId)).toMatchObject({ status: 'cancelled', cancelledBy: alice.patientCode });
    expect(await ledger.code(ledger.tx(park, 'subscriptions.cancel', { subscriptionId: 'f'.repeat(64) }))).toBe('SUBSCRIPTION_NOT_FOUND');
  });
});
