/** A FHIR Consent maps onto exactly one consent.grant body and back; what cannot be honoured is refused. */
import { describe, expect, it } from 'vitest';
import type { Consent } from '../contracts/state.ts';
import {
  fhirConsentForGrant,
  fhirConsentOf,
  grantBodyOf,
  sameGrant,
  signedGrantOf,
  withSignedGrant,
  type GrantBodyValue,
} from './consent.ts';
import { Hl7Systems, MedledgerSystems } from './systems.ts';
import type { Tx } from '../ledger/tx.ts';

const CODE = 'a'.repeat(64);
const base: GrantBodyValue = {
  patientCode: CODE,
  grantee: { kind: 'person', staffId: 'hosp-b/dr-park' },
  scope: { kind: 'categories', categories: ['Observation', 'Condition'] },
  purposes: ['TREAT', 'CAREMGT'],
  period: { from: Date.UTC(2026, 10, 1), to: Date.UTC(2027, 0, 1) },
  deidentification: 'identified',
};

describe('grantBodyOf(fhirConsentForGrant(g)) is g', () => {
  const cases: GrantBodyValue[] = [
    base,
    { ...base, grantee: { kind: 'institution', institution: 'hosp-b' }, scope: { kind: 'all' }, period: { from: 0, to: null } },
    { ...base, grantee: { kind: 'role', role: 'nurse', institution: null } },
    {
      ...base,
      grantee: { kind: 'role', role: 'doctor', institution: 'clinic-c' },
      scope: { kind: 'records', recordIds: ['b'.repeat(64)] },
    },
    { ...base, grantee: { kind: 'study', studyId: 'diabetes-2026' }, purposes: ['HRESCH'], deidentification: 'pseudonymised' },
    { ...base, deidentification: 'anonymised' },
  ];
  it.each(cases.map((c) => [c.grantee.kind, c] as const))('%s', (_kind, g) => {
    expect(grantBodyOf(fhirConsentForGrant(g))).toEqual(g);
  });
});

describe('fhirConsentOf', () => {
  it('shows a revoked consent as inactive with its version, source and terms', () => {
    const c: Consent = {
      consentId: 'c'.repeat(64),
      ...base,
      status: 'revoked',
      version: 2,
      grantedAt: 1_700_000_000_000,
      updatedAt: 1_700_000_100_000,
      source: 'access-request',
      requestId: 'd'.repeat(64),
    };
    const f = fhirConsentOf(c);
    expect(f).toMatchObject({ id: c.consentId, status: 'inactive', meta: { versionId: '2' }, dateTime: '2023-11-14T22:13:20.000Z' });
    expect(f.provision?.purpose?.map((p) => p.code)).toEqual(['TREAT', 'CAREMGT']);
    expect(f.provision?.class?.map((p) => p.code)).toEqual(['Observation', 'Condition']);
    expect(f.provision?.actor?.[0]?.reference?.identifier).toEqual({ system: MedledgerSystems.staff, value: 'hosp-b/dr-park' });
  });
});

describe('grantBodyOf refuses what it cannot honour, naming the element only', () => {
  const good = fhirConsentForGrant(base);
  const bad: [string, unknown][] = [
    ['not a Consent', { resourceType: 'Patient' }],
    ['a nested provision', { ...good, provision: { ...good.provision, provision: [{ type: 'deny' }] } }],
    ['a deny', { ...good, provision: { ...good.provision, type: 'deny' } }],
    ['an unknown element', { ...good, extension: [] }],
    ['no start', { ...good, provision: { ...good.provision, period: { end: '2027-01-01T00:00:00Z' } } }],
    ['a date without time', { ...good, provision: { ...good.provision, period: { start: '2026-11-01' } } }],
    ['two actors', { ...good, provision: { ...good.provision, actor: [good.provision!.actor![0], good.provision!.actor![0]] } }],
    ['an unknown purpose', { ...good, provision: { ...good.provision, purpose: [{ system: Hl7Systems.actReason, code: 'MARKETING' }] } }],
    [
      'class and data',
      { ...good, provision: { ...good.provision, data: [{ meaning: 'instance', reference: { reference: 'DocumentReference/x' } }] } },
    ],
    ['a proposed status', { ...good, status: 'proposed' }],
    ['a patient by reference only', { ...good, patient: { reference: 'Patient/123' } }],
    [
      'an end before the start',
      { ...good, provision: { ...good.provision, period: { start: '2027-01-01T00:00:00Z', end: '2026-01-01T00:00:00Z' } } },
    ],
  ];
  it.each(bad)('%s', (_what, value) => {
    let thrown: unknown;
    try {
      grantBodyOf(value);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toMatchObject({ code: 'FHIR_CONSENT_INVALID' });
    expect((thrown as Error).message).not.toContain(CODE);
  });
});

describe('the signed grant travels as sourceAttachment', () => {
  it('round-trips the transaction, and sameGrant compares bodies canonically', () => {
    const tx = { v: 1, type: 'consent.grant', body: { ...base } } as unknown as Tx;
    const consent = withSignedGrant(fhirConsentForGrant(base), tx);
    expect(signedGrantOf(consent)).toEqual(tx);
    expect(sameGrant({ ...base, purposes: ['TREAT', 'CAREMGT'] }, grantBodyOf(consent))).toBe(true);
    expect(sameGrant({ ...base, purposes: ['TREAT'] }, grantBodyOf(consent))).toBe(false);
    expect(() => signedGrantOf({ sourceAttachment: { contentType: 'application/json', data: '!!' } })).toThrow();
  });
});
