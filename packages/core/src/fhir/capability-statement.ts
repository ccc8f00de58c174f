/**
 * The facade's FHIR R4 CapabilityStatement (`GET /fhir/metadata`): what each resource supports —
 * interactions and search parameters — and how requests are authenticated. The routes and this
 * statement read the same parameter tables, so they cannot drift apart.
 */
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import type { SearchParamKind } from './search.ts';

/** The search parameters each searchable resource supports (besides _count, _offset, _sort). */
export const SearchParameters = {
  DocumentReference: {
    patient: 'reference',
    'patient.identifier': 'token',
    category: 'token',
    type: 'token',
    custodian: 'reference',
    date: 'date',
  },
  Consent: { patient: 'reference', date: 'date' },
  AuditEvent: { patient: 'reference', date: 'date' },
  Provenance: { patient: 'reference', target: 'reference' },
} as const satisfies Record<string, Record<string, SearchParamKind>>;

const PARAM_DOCS: Record<string, string> = {
  patient: 'the patient, by patient code (Patient/<code> or <code>)',
  'patient.identifier': 'the patient’s identifier: https://medledger.dev/fhir/sid/patient-code|<code> (IHE MHD ITI-67)',
  category: 'the record’s FHIR resource type (http://hl7.org/fhir/resource-types)',
  type: 'the record’s FHIR resource type (http://hl7.org/fhir/resource-types)',
  custodian: 'the custodian institution (Organization/<id> or <id>)',
  date: 'when it was recorded: [ge|gt|le|lt|eq]<date or instant>, repeatable',
  target: 'the record (DocumentReference/<id>)',
};

const SECURITY =
  'Every request but this one is signed with HTTP Message Signatures (RFC 9421) by an enrolled staff member or a registered patient: ' +
  'components @method, @path, @authority, @query when present, content-digest for bodies; parameters created, expires, nonce, ' +
  'keyid, alg="ed25519", tag="medledger-vault" — the same profile as the vault. A patient sees their own data; staff see the index ' +
  'under the role table and receive content only through the custodian vault’s consent check, which writes every answer, served ' +
  'or refused, to the patient’s access log.';

function searchable(type: keyof typeof SearchParameters): Pick<CapabilityStatementRestResource, 'searchParam' | 'interaction'> {
  return {
    interaction: [{ code: 'read' }, { code: 'search-type' }],
    searchParam: Object.entries(SearchParameters[type]).map(([name, kind]) => ({
      name,
      type: kind,
      documentation: PARAM_DOCS[name] ?? name,
    })),
  };
}

export function capabilityStatement(o: { version: string; date: string; url: string }): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: o.date,
    publisher: 'medledger',
    kind: 'instance',
    software: { name: 'medledger', version: o.version },
    implementation: { description: 'medledger node: FHIR R4 facade over the consortium ledger and its vaults', url: o.url },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json'],
    rest: [
      {
        mode: 'server',
        documentation:
          'Paging: _count (at most 100, default 20) and _offset; _sort=date or -date (default). Unknown parameters are refused.',
        security: { description: SECURITY },
        resource: [
          { type: 'DocumentReference', ...searchable('DocumentReference'), documentation: 'The ledger’s record index (IHE MHD ITI-67).' },
          {
            type: 'Binary',
            interaction: [{ code: 'read' }],
            documentation:
              'A record’s content from its custodian’s vault (IHE MHD ITI-68), with ?purpose=<HL7 purpose of use>: the vault’s sealed answer (application/vnd.medledger.sealed-record+json), its data key wrapped to the requester.',
          },
          {
            type: 'Consent',
            ...searchable('Consent'),
            interaction: [...searchable('Consent').interaction!, { code: 'create' }],
            documentation: 'The patient’s consents. create: a Consent carrying the patient’s signed consent.grant as sourceAttachment.',
          },
          { type: 'AuditEvent', ...searchable('AuditEvent'), documentation: 'The patient’s access log, one event per entry.' },
          { type: 'Provenance', ...searchable('Provenance'), documentation: 'Who registered or amended each record, with the signature.' },
        ],
      },
    ],
  };
}
