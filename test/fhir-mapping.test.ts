/**
 * Every ledger → FHIR mapping of core/fhir, over each state, outcome and grantee kind the ledger
 * has, is valid FHIR R4 by the official JSON Schema (the HTTP tests check the answers in use).
 */
import { describe, expect, it } from 'vitest';
import type { Consent } from '@medledger/core/contracts/state';
import { accessLogEntry, hex, recordEntry } from '@medledger/core/fhir/ledger-resources.test-fixture';
import { auditEventOf } from '@medledger/core/fhir/audit-event';
import { searchBundle } from '@medledger/core/fhir/bundle';
import { capabilityStatement } from '@medledger/core/fhir/capability-statement';
import { fhirConsentForGrant, fhirConsentOf, withSignedGrant } from '@medledger/core/fhir/consent';
import { documentReferenceOf } from '@medledger/core/fhir/document-reference';
import { provenanceOf } from '@medledger/core/fhir/provenance';
import { parseSearch } from '@medledger/core/fhir/search';
import type { Tx } from '@medledger/core/ledger/tx';
import { assertValidFhir } from './fhir-schema.ts';

const h = hex;
const SIG = 'A'.repeat(85) + 'A';
const record = recordEntry;
const logEntry = accessLogEntry;

const consent = (over: Partial<Consent>): Consent => ({
  consentId: h('5'),
  patientCode: h('a'),
  grantee: { kind: 'person', staffId: 'hosp-a/dr-kim' },
  scope: { kind: 'all' },
  purposes: ['TREAT'],
  period: { from: 1_790_000_000_000, to: null },
  deidentification: 'identified',
  status: 'active',
  version: 1,
  grantedAt: 1_790_000_000_000,
  updatedAt: 1_790_000_000_000,
  source: 'grant',
  requestId: null,
  ...over,
});

describe('valid FHIR R4', () => {
  it.each(['active', 'superseded', 'retracted', 'erased'] as const)('DocumentReference of a %s entry', (state) => {
    assertValidFhir(documentReferenceOf(record({ state, supersedes: h('0') }), { contentUrl: 'http://n/fhir/Binary/1' }));
  });
  it.each([
    ['served', logEntry({})],
    ['refused', logEntry({ outcome: 'refused', code: 'CONSENT_REQUIRED', consentId: null, reason: null })],
    [
      'break-glass',
      logEntry({ outcome: 'break-glass', recordId: null, custodian: null, purpose: 'ETREAT', reason: 'unconscious, no card' }),
    ],
    ['study', logEntry({ study: 'diabetes-2026', purpose: 'HRESCH', actorRole: 'researcher' })],
    ['break-glass-reviewed', logEntry({ outcome: 'break-glass-reviewed', recordId: null, actorRole: 'auditor', reason: 'justified' })],
    ['guardian-appointed', logEntry({ outcome: 'guardian-appointed', recordId: null, custodian: null, consentId: null })],
    ['guardian-revoked', logEntry({ outcome: 'guardian-revoked', recordId: null, custodian: null, consentId: null })],
    ['guardian-acted', logEntry({ outcome: 'guardian-acted', recordId: null, custodian: null })],
  ])('AuditEvent of a %s entry', (_what, e) => {
    assertValidFhir(auditEventOf(e));
  });
  it.each([
    consent({}),
    consent({ grantee: { kind: 'institution', institution: 'hosp-b' }, scope: { kind: 'categories', categories: ['Condition'] } }),
    consent({ grantee: { kind: 'role', role: 'nurse', institution: null }, scope: { kind: 'records', recordIds: [h('1')] } }),
    consent({ grantee: { kind: 'study', studyId: 's-1' }, purposes: ['HRESCH'], deidentification: 'anonymised', status: 'revoked' }),
    consent({ source: 'break-glass', period: { from: 0, to: 8.64e15 } }),
  ])('Consent %#', (c) => {
    assertValidFhir(fhirConsentOf(c));
  });
  it('a Consent to post, with its signed grant', () => {
    const c = consent({});
    const tx = { v: 1, type: 'consent.grant', body: {} } as unknown as Tx;
    assertValidFhir(withSignedGrant(fhirConsentForGrant({ ...c, patientCode: c.patientCode }), tx));
  });
  it.each([null, h('0')])('Provenance (supersedes %s)', (supersedes) => {
    assertValidFhir(provenanceOf(record({ supersedes }), { txId: h('1'), author: 'k' + '0'.repeat(40), signature: SIG }));
  });
  it('CapabilityStatement and a searchset Bundle', () => {
    assertValidFhir(capabilityStatement({ version: '0.1.0', date: '2026-11-22', url: 'http://n/fhir' }));
    const s = parseSearch([['_count', '1']], {});
    const bundle = searchBundle('http://n/fhir/AuditEvent', s, 3, [auditEventOf(logEntry({}))]);
    assertValidFhir(bundle);
    expect(bundle.link?.map((l) => l.relation)).toEqual(['self', 'next']);
  });
  it('refuses what is not R4', () => {
    expect(() => assertValidFhir({ ...auditEventOf(logEntry({})), action: 'X' })).toThrow();
    expect(() => assertValidFhir({ resourceType: 'Binary', contentType: 'a/b', extension: [] })).toThrow();
  });
});
