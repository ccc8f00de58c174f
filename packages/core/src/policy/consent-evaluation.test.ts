/** Does a consent cover an access? Deny by default, and name the nearest miss. */
import { describe, expect, it } from 'vitest';
import type { Consent, ConsentScope } from '../contracts/state.ts';
import { evaluateConsent, granteeCovers, scopeCovers, type AccessQuestion } from './consent-evaluation.ts';
import { Purposes, type Purpose } from './purposes.ts';

const P1 = 'a'.repeat(64);
const P2 = 'b'.repeat(64);
const RECORD = 'c'.repeat(64);
const T0 = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;

/** Dr Park of Hospital B asks for a Condition record that Hospital A keeps, for treatment. */
function question(overrides: Partial<AccessQuestion> = {}): AccessQuestion {
  return {
    requester: { staffId: 'hosp-b/dr-park', institution: 'hosp-b', role: 'doctor' },
    record: { recordId: RECORD, category: 'Condition', custodian: 'hosp-a', patientCode: P1 },
    purpose: 'TREAT',
    deidentification: 'identified',
    time: T0 + DAY,
    ...overrides,
  };
}

function consent(id: string, overrides: Partial<Consent> = {}): Consent {
  return {
    consentId: id.padEnd(64, '0'),
    patientCode: P1,
    grantee: { kind: 'institution', institution: 'hosp-b' },
    scope: { kind: 'all' },
    purposes: ['TREAT'],
    period: { from: T0, to: T0 + 10 * DAY },
    deidentification: 'identified',
    status: 'active',
    version: 1,
    grantedAt: T0,
    updatedAt: T0,
    source: 'grant',
    requestId: null,
    ...overrides,
  };
}

describe('evaluateConsent', () => {
  it('refuses with CONSENT_REQUIRED when there is no consent at all', () => {
    expect(evaluateConsent(question(), [])).toEqual({ allowed: false, code: 'CONSENT_REQUIRED' });
  });

  it('allows under a covering consent and names it', () => {
    const c = consent('1');
    expect(evaluateConsent(question(), [c])).toEqual({ allowed: true, consentId: c.consentId, basis: 'consent' });
  });

  it('ignores consents of another patient', () => {
    expect(evaluateConsent(question(), [consent('1', { patientCode: P2 })])).toEqual({ allowed: false, code: 'CONSENT_REQUIRED' });
  });

  it('ignores consents to another grantee or for other records', () => {
    const others = [
      consent('1', { grantee: { kind: 'institution', institution: 'clinic-c' } }),
      consent('2', { grantee: { kind: 'person', staffId: 'hosp-b/dr-other' } }),
      consent('3', { grantee: { kind: 'role', role: 'nurse', institution: null } }),
      consent('4', { scope: { kind: 'categories', categories: ['Observation'] } }),
      consent('5', { scope: { kind: 'records', recordIds: ['d'.repeat(64)] } }),
    ];
    expect(evaluateConsent(question(), others)).toEqual({ allowed: false, code: 'CONSENT_REQUIRED' });
  });

  describe('period: valid from `from` (inclusive) until `to` (exclusive)', () => {
    const c = consent('1', { period: { from: T0, to: T0 + DAY } });
    it.each([
      [T0 - 1, 'CONSENT_NOT_YET_VALID'],
      [T0, 'OK'],
      [T0 + DAY - 1, 'OK'],
      [T0 + DAY, 'CONSENT_EXPIRED'],
      [T0 + 365 * DAY, 'CONSENT_EXPIRED'],
    ])('at %i → %s', (time, expected) => {
      const d = evaluateConsent(question({ time }), [c]);
      expect(d.allowed ? 'OK' : d.code).toBe(expected);
    });

    it('never ends when `to` is null', () => {
      const open = consent('1', { period: { from: T0, to: null } });
      expect(evaluateConsent(question({ time: T0 + 10_000 * DAY }), [open]).allowed).toBe(true);
    });
  });

  it('refuses a revoked consent with CONSENT_REVOKED', () => {
    expect(evaluateConsent(question(), [consent('1', { status: 'revoked' })])).toEqual({ allowed: false, code: 'CONSENT_REVOKED' });
  });

  it('refuses another purpose with CONSENT_PURPOSE_MISMATCH', () => {
    expect(evaluateConsent(question({ purpose: 'HRESCH' }), [consent('1')])).toEqual({ allowed: false, code: 'CONSENT_PURPOSE_MISMATCH' });
  });

  describe('de-identification', () => {
    it('gives a researcher nothing identified, even with a consent that allows it', () => {
      const researcher = { staffId: 'res-e/res-1', institution: 'res-e', role: 'researcher' } as const;
      const c = consent('1', { grantee: { kind: 'institution', institution: 'res-e' }, purposes: ['HRESCH'] });
      expect(evaluateConsent(question({ requester: researcher, purpose: 'HRESCH' }), [c])).toEqual({
        allowed: false,
        code: 'DEIDENTIFICATION_REQUIRED',
      });
      expect(evaluateConsent(question({ requester: researcher, purpose: 'HRESCH', deidentification: 'pseudonymised' }), [c]).allowed).toBe(
        true,
      );
    });

    it('gives a researcher nothing identified at their own institution either', () => {
      const researcher = { staffId: 'hosp-a/res-1', institution: 'hosp-a', role: 'researcher' } as const;
      expect(evaluateConsent(question({ requester: researcher }), [])).toEqual({ allowed: false, code: 'DEIDENTIFICATION_REQUIRED' });
    });

    it.each([
      ['identified', 'identified', true],
      ['pseudonymised', 'identified', true],
      ['anonymised', 'identified', true],
      ['identified', 'pseudonymised', false],
      ['pseudonymised', 'pseudonymised', true],
      ['anonymised', 'pseudonymised', true],
      ['identified', 'anonymised', false],
      ['pseudonymised', 'anonymised', false],
      ['anonymised', 'anonymised', true],
    ] as const)('gives %s data under a consent requiring %s: %s', (given, required, allowed) => {
      const d = evaluateConsent(question({ deidentification: given }), [consent('1', { deidentification: required })]);
      expect(d.allowed).toBe(allowed);
      if (!d.allowed) expect(d.code).toBe('DEIDENTIFICATION_REQUIRED');
    });
  });

  describe('the custodian’s own staff', () => {
    const own = (role: 'doctor' | 'nurse' | 'operator' | 'researcher' | 'auditor') => ({
      staffId: `hosp-a/${role}`,
      institution: 'hosp-a',
      role,
    });

    it.each(['TREAT', 'ETREAT', 'HOPERAT', 'CAREMGT'] as const)('read their own records for %s without consent', (purpose) => {
      for (const role of ['doctor', 'nurse', 'operator'] as const) {
        expect(evaluateConsent(question({ requester: own(role), purpose }), [])).toEqual({
          allowed: true,
          consentId: null,
          basis: 'custodian',
        });
      }
    });

    it.each(['HRESCH', 'HPAYMT', 'PUBHLTH', 'PATRQT', 'BTG'] as const)('need a consent for %s', (purpose) => {
      expect(evaluateConsent(question({ requester: own('doctor'), purpose }), [])).toEqual({ allowed: false, code: 'CONSENT_REQUIRED' });
    });

    it('do not include auditors', () => {
      expect(evaluateConsent(question({ requester: own('auditor') }), [])).toEqual({ allowed: false, code: 'CONSENT_REQUIRED' });
    });

    it('do not extend to another custodian’s records', () => {
      const doctorOfA = own('doctor');
      const recordOfB = { recordId: RECORD, category: 'Condition', custodian: 'hosp-b', patientCode: P1 };
      expect(evaluateConsent(question({ requester: doctorOfA, record: recordOfB }), [])).toEqual({
        allowed: false,
        code: 'CONSENT_REQUIRED',
      });
    });
  });

  describe('several consents', () => {
    it('allows when any one covers, whatever the others say', () => {
      const consents = [
        consent('1', { status: 'revoked' }),
        consent('2', { purposes: ['HRESCH'] }),
        consent('3'),
        consent('4', { period: { from: T0, to: T0 + 1 } }),
      ];
      expect(evaluateConsent(question(), consents)).toEqual({ allowed: true, consentId: consent('3').consentId, basis: 'consent' });
    });

    it('names the miss of the most recently changed consent, whatever the order given', () => {
      const deid = consent('1', { deidentification: 'anonymised', updatedAt: T0 + 1 });
      const purpose = consent('2', { purposes: ['HRESCH'], updatedAt: T0 + 2 });
      const notYet = consent('3', { period: { from: T0 + 5 * DAY, to: null }, updatedAt: T0 + 3 });
      const expired = consent('4', { period: { from: T0, to: T0 + 1 }, updatedAt: T0 + 4 });
      const revoked = consent('5', { status: 'revoked', updatedAt: T0 + 5 });
      const code = (cs: Consent[]) => {
        const d = evaluateConsent(question(), cs);
        return d.allowed ? 'OK' : d.code;
      };
      expect(code([deid])).toBe('DEIDENTIFICATION_REQUIRED');
      expect(code([deid, purpose])).toBe('CONSENT_PURPOSE_MISMATCH');
      expect(code([notYet, purpose, deid])).toBe('CONSENT_NOT_YET_VALID');
      expect(code([purpose, expired, notYet])).toBe('CONSENT_EXPIRED');
      expect(code([expired, revoked, deid])).toBe('CONSENT_REVOKED');
      // The patient revoked long ago and granted a too-narrow consent since: the newer one explains.
      const oldRevoked = consent('6', { status: 'revoked', updatedAt: T0 });
      const newNarrow = consent('7', { purposes: ['HRESCH'], updatedAt: T0 + 9 });
      expect(code([oldRevoked, newNarrow])).toBe('CONSENT_PURPOSE_MISMATCH');
      expect(code([newNarrow, oldRevoked])).toBe('CONSENT_PURPOSE_MISMATCH');
    });

    it('answers the same for consents changed at the same time, whatever the order given', () => {
      const a = consent('1', { status: 'revoked' });
      const b = consent('2', { purposes: ['HRESCH'] });
      const c = consent('3', { period: { from: T0, to: T0 + 1 } });
      const answers = new Set(
        [
          [a, b, c],
          [c, b, a],
          [b, a, c],
        ].map((cs) => JSON.stringify(evaluateConsent(question(), cs))),
      );
      expect(answers.size).toBe(1);
      expect(evaluateConsent(question(), [a, b, c]).allowed).toBe(false);
    });

    it('picks the covering consent with the lowest id, whatever the order given', () => {
      const a = consent('7');
      const b = consent('3');
      const c = consent('5');
      for (const order of [
        [a, b, c],
        [c, a, b],
        [b, c, a],
      ]) {
        expect(evaluateConsent(question(), order)).toEqual({ allowed: true, consentId: b.consentId, basis: 'consent' });
      }
    });
  });

  it('answers for every purpose only what the consent lists', () => {
    const c = consent('1', { purposes: ['TREAT', 'CAREMGT'] });
    for (const purpose of Object.keys(Purposes) as Purpose[]) {
      expect(evaluateConsent(question({ purpose }), [c]).allowed, purpose).toBe(purpose === 'TREAT' || purpose === 'CAREMGT');
    }
  });
});

describe('granteeCovers', () => {
  const doctor = { staffId: 'hosp-b/dr-park', institution: 'hosp-b', role: 'doctor' } as const;
  it.each([
    [{ kind: 'institution', institution: 'hosp-b' }, true],
    [{ kind: 'institution', institution: 'hosp-a' }, false],
    [{ kind: 'person', staffId: 'hosp-b/dr-park' }, true],
    [{ kind: 'person', staffId: 'hosp-a/dr-park' }, false],
    [{ kind: 'role', role: 'doctor', institution: null }, true],
    [{ kind: 'role', role: 'doctor', institution: 'hosp-b' }, true],
    [{ kind: 'role', role: 'doctor', institution: 'hosp-a' }, false],
    [{ kind: 'role', role: 'nurse', institution: null }, false],
  ] as const)('%j covers Dr Park of hosp-b: %s', (grantee, covers) => {
    expect(granteeCovers(grantee, doctor)).toBe(covers);
  });
});

describe('scopeCovers', () => {
  const record = { recordId: RECORD, category: 'Condition', custodian: 'hosp-a', patientCode: P1 };
  const cases: [ConsentScope, boolean][] = [
    [{ kind: 'all' }, true],
    [{ kind: 'categories', categories: ['Observation', 'Condition'] }, true],
    [{ kind: 'categories', categories: ['Observation'] }, false],
    [{ kind: 'records', recordIds: [RECORD] }, true],
    [{ kind: 'records', recordIds: ['d'.repeat(64)] }, false],
  ];
  it.each(cases)('%j covers a Condition record: %s', (scope, covers) => {
    expect(scopeCovers(scope, record)).toBe(covers);
  });
});
