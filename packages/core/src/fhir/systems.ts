/**
 * The code systems, identifier systems and extension URLs the FHIR facade writes: HL7's where a
 * standard one exists (FHIR R4 terminology, v3 ActReason for purposes of use, DICOM for audit
 * event types), medledger's own for identifiers only the ledger defines.
 */
import type { Organization, Patient, Practitioner, Reference } from '@medplum/fhirtypes';

/** HL7 and other published systems (FHIR R4 4.0.1 terminology). */
export const Hl7Systems = {
  /** HL7 v3 ActReason (2.16.840.1.113883.5.8): purposes of use */
  actReason: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  actCode: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  participationType: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
  /** v3 ObservationValue: PSEUDED, ANONYED (de-identification security labels) */
  observationValue: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  dataOperation: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation',
  resourceTypes: 'http://hl7.org/fhir/resource-types',
  consentScope: 'http://terminology.hl7.org/CodeSystem/consentscope',
  loinc: 'http://loinc.org',
  dicom: 'http://dicom.nema.org/resources/ontology/DCM',
  auditEntityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  securitySourceType: 'http://terminology.hl7.org/CodeSystem/security-source-type',
  restfulInteraction: 'http://hl7.org/fhir/restful-interaction',
  provenanceParticipantType: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
  /** ASTM E1762-95 signature types, as FHIR Signature.type uses them */
  signatureType: 'urn:iso-astm:E1762-95:2013',
  issueType: 'http://hl7.org/fhir/issue-type',
} as const;

const BASE = 'https://medledger.dev/fhir';

/** Identifier systems for what only the ledger names. */
export const MedledgerSystems = {
  patientCode: `${BASE}/sid/patient-code`,
  institution: `${BASE}/sid/institution`,
  staff: `${BASE}/sid/staff`,
  /** `<role>` (any institution) or `<institution>/<role>` */
  role: `${BASE}/sid/role`,
  study: `${BASE}/sid/study`,
  record: `${BASE}/sid/record`,
  key: `${BASE}/sid/key`,
  /** medledger's stable error codes (packages/core/src/errors.ts) */
  errorCode: `${BASE}/CodeSystem/error`,
} as const;

export const MedledgerExtensions = {
  /** the index entry's own state: active, superseded, retracted, erased */
  recordState: `${BASE}/StructureDefinition/record-state`,
  ledgerHeight: `${BASE}/StructureDefinition/ledger-height`,
  /** the transaction that wrote this, by txId */
  ledgerTx: `${BASE}/StructureDefinition/ledger-tx`,
  /** how a consent came to be: grant, access-request, break-glass */
  consentSource: `${BASE}/StructureDefinition/consent-source`,
  /** the study a de-identified access was for */
  study: `${BASE}/StructureDefinition/study`,
} as const;

/** FHIR has no instant past year 9999; the ledger's far-future period ends are shown at its end. */
const MAX_INSTANT_MS = 253_402_300_799_999;

/** A ledger time (ms since the epoch) as a FHIR instant. */
export function instantOf(ms: number): string {
  return new Date(Math.min(Math.max(ms, 0), MAX_INSTANT_MS)).toISOString();
}

export function patientReference(patientCode: string): Reference<Patient> {
  return { type: 'Patient', identifier: { system: MedledgerSystems.patientCode, value: patientCode } };
}

export function institutionReference(institution: string): Reference<Organization> {
  return { type: 'Organization', identifier: { system: MedledgerSystems.institution, value: institution } };
}

export function staffReference(staffId: string): Reference<Practitioner> {
  return { type: 'Practitioner', identifier: { system: MedledgerSystems.staff, value: staffId } };
}

/** Standard base64 (FHIR base64Binary) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Bytes of standard base64; null when the text is not base64. */
export function fromBase64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
