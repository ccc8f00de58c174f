/**
 * Synthetic FHIR R4 records of one made-up patient carrying all 18 kinds of Safe Harbor
 * identifiers, each a distinctive marker, for `deidentify.test.ts`: a marker found in the output
 * is an identifier a rule missed. No real person is described.
 */
import type {
  Condition,
  Coverage,
  Device,
  DiagnosticReport,
  DocumentReference,
  Extension,
  MedicationRequest,
  Observation,
  Patient,
} from '@medplum/fhirtypes';
import type { JsonObject } from '../codec/canonical-json.ts';
import type { SafeHarborKind } from './safe-harbor.ts';

/** 1 June 2024, 00:00 UTC: the patient born 17 May 1931 is 93. */
export const REFERENCE_TIME = Date.UTC(2024, 5, 1);
export const PATIENT_CODE = '5f'.repeat(32);
export const STUDY_KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const base64 = (text: string): string => btoa(text);

/** The values that must not survive, by the kind they stand for. */
export const Markers = {
  names: ['NAME-MARKER-Alice', 'NAME-MARKER-Zebrowski', 'NAME-MARKER-Bob', 'NAME-MARKER-DrCarol', 'NAME-MARKER-Title'],
  geographic: ['MARKER-STREET 12', 'MARKER-CITY-Springfield', 'MARKER-COUNTY', 'MARKER-BIRTHPLACE-Town', '03601', '94110', '42.3601'],
  dates: ['1931-05-17', '1931', '2019-03-10', '2019-03-12', '2019-03-11', '2019-04-02', '2024-05-01'],
  telephone: ['+1-555-0100-77'],
  fax: ['+1-555-0199-88'],
  email: ['alice.marker@example.org', 'carol.marker@example.org'],
  ssn: ['123-45-6789', '987-65-4321'],
  medicalRecordNumber: ['MRN-MARKER-0042'],
  healthPlanBeneficiaryNumber: ['PLAN-MARKER-MB-456', 'PLAN-MARKER-SUB-123', 'PLAN-MARKER-GROUP-9', 'PLAN-MARKER-DEP-01'],
  accountNumber: ['ACCOUNT-MARKER-778899'],
  certificateLicenceNumber: ['LICENCE-MARKER-D1234567'],
  vehicleIdentifier: ['1HGCM82633A004352', '2FTRX18W1XCA01234'],
  deviceIdentifier: ['SERIAL-MARKER-9876', 'UDI-MARKER-00844588003288', 'LOT-MARKER-55', 'DEVICE-ID-MARKER-1'],
  url: ['https://alice-marker.example.org/home', 'https://reports.example.org/REPORT-MARKER.pdf', 'https://ehr.example.org/SOURCE-MARKER'],
  ipAddress: ['203.0.113.7', '2001:db8:85a3::8a2e:370:7334'],
  biometric: [base64('BIOMETRIC-MARKER-minutiae-template')],
  photograph: [base64('PHOTO-MARKER-face-jpeg'), base64('PHOTO-MARKER-clinical-jpeg')],
  otherUniqueIdentifier: [
    'RX-MARKER-5566',
    'DOC-MARKER-0001',
    'pat-marker-1',
    'NOTE-MARKER',
    'CONCLUSION-MARKER',
    'ATTACHMENT-HASH-MARKER',
  ],
} as const satisfies Record<SafeHarborKind, readonly string[]>;

/** FHIR JSON's `_birthDate` (the primitive's extensions) is not in the Patient type. */
const patient: Patient & { _birthDate: { extension: Extension[] } } = {
  resourceType: 'Patient',
  id: 'pat-marker-1',
  meta: { versionId: '3', lastUpdated: '2024-05-01T09:30:00.000Z', source: 'https://ehr.example.org/SOURCE-MARKER' },
  text: {
    status: 'generated',
    div: '<div xmlns="http://www.w3.org/1999/xhtml">NAME-MARKER-Alice NAME-MARKER-Zebrowski, 123-45-6789</div>',
  },
  extension: [
    {
      url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
      valueAddress: { city: 'MARKER-BIRTHPLACE-Town', state: 'NH', country: 'US' },
    },
    { url: 'https://example.org/fhir/StructureDefinition/remote-login', valueString: 'last login from 203.0.113.7' },
    { url: 'https://example.org/fhir/StructureDefinition/car', valueString: 'drives 2FTRX18W1XCA01234' },
  ],
  identifier: [
    { system: 'http://hl7.org/fhir/sid/us-ssn', value: '123-45-6789' },
    { type: { coding: [{ system: V2_0203, code: 'MR' }] }, system: 'urn:oid:1.2.3.4.5.6', value: 'MRN-MARKER-0042' },
    { type: { coding: [{ system: V2_0203, code: 'AN' }] }, system: 'urn:oid:1.2.3.4.5.7', value: 'ACCOUNT-MARKER-778899' },
    { type: { coding: [{ system: V2_0203, code: 'DL' }] }, system: 'urn:oid:2.16.840.1.113883.4.3.25', value: 'LICENCE-MARKER-D1234567' },
    { type: { text: 'Vehicle identification number' }, system: 'https://dmv.example.org/vin', value: '1HGCM82633A004352' },
  ],
  active: true,
  name: [
    { use: 'official', family: 'NAME-MARKER-Zebrowski', given: ['NAME-MARKER-Alice', 'NAME-MARKER-Alice'] },
    { use: 'nickname', given: ['NAME-MARKER-Alice'] },
  ],
  telecom: [
    { system: 'phone', value: '+1-555-0100-77', use: 'mobile' },
    { system: 'fax', value: '+1-555-0199-88' },
    { system: 'email', value: 'alice.marker@example.org' },
    { system: 'url', value: 'https://alice-marker.example.org/home' },
    { system: 'other', value: '2001:db8:85a3::8a2e:370:7334' },
  ],
  gender: 'female',
  birthDate: '1931-05-17',
  _birthDate: {
    extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1931-05-17T04:05:00+01:00' }],
  },
  address: [
    {
      use: 'home',
      line: ['MARKER-STREET 12'],
      city: 'MARKER-CITY-Springfield',
      district: 'MARKER-COUNTY',
      state: 'NH',
      postalCode: '03601',
      country: 'US',
      extension: [
        {
          url: 'http://hl7.org/fhir/StructureDefinition/geolocation',
          extension: [
            { url: 'latitude', valueDecimal: 42.3601 },
            { url: 'longitude', valueDecimal: -71.0589 },
          ],
        },
      ],
    },
    { use: 'work', city: 'MARKER-CITY-Springfield', state: 'CA', postalCode: '94110' },
  ],
  contact: [
    {
      relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'N' }] }],
      name: { family: 'NAME-MARKER-Bob' },
      telecom: [{ system: 'phone', value: '+1-555-0100-77' }],
    },
  ],
  photo: [{ contentType: 'image/jpeg', data: base64('PHOTO-MARKER-face-jpeg') }],
  communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] } }],
  generalPractitioner: [{ reference: 'https://ehr.example.org/fhir/Practitioner/dr-carol/_history/4', display: 'NAME-MARKER-DrCarol' }],
  managingOrganization: { reference: 'Organization/general-hospital', display: 'General Hospital' },
};

/** LOINC 8480-6, systolic blood pressure: clinical content that must come through unchanged. */
export const SYSTOLIC_CODE = { system: 'http://loinc.org', code: '8480-6', display: 'Systolic blood pressure' };
export const SYSTOLIC_VALUE = { value: 142, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' };

const bloodPressure: Observation = {
  resourceType: 'Observation',
  id: 'obs-bp-1',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
  code: { coding: [SYSTOLIC_CODE] },
  subject: { reference: 'Patient/pat-marker-1', display: 'NAME-MARKER-Alice' },
  effectiveDateTime: '2019-03-10T09:00:00Z',
  issued: '2019-03-10T10:15:00.000Z',
  performer: [{ reference: 'Practitioner/dr-carol', display: 'NAME-MARKER-DrCarol' }],
  valueQuantity: SYSTOLIC_VALUE,
  device: { reference: 'Device/monitor-1' },
  note: [{ authorString: 'NAME-MARKER-DrCarol', time: '2019-03-10T09:05:00Z', text: 'NOTE-MARKER patient NAME-MARKER-Alice anxious' }],
};

const age: Observation = {
  resourceType: 'Observation',
  id: 'obs-age-1',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '30525-0', display: 'Age' }] },
  subject: { reference: 'Patient/pat-marker-1' },
  effectiveDateTime: '2024-05-01',
  valueQuantity: { value: 93, unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' },
};

const condition: Condition = {
  resourceType: 'Condition',
  id: 'cond-1',
  clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
  code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }], text: 'Type 2 diabetes' },
  subject: { reference: 'Patient/pat-marker-1', display: 'NAME-MARKER-Alice' },
  onsetDateTime: '2019-03-10T08:30:00+01:00',
  recordedDate: '2019-03-12',
  asserter: { identifier: { system: 'http://hl7.org/fhir/sid/us-ssn', value: '987-65-4321' } },
  note: [{ text: 'NOTE-MARKER seen by NAME-MARKER-DrCarol' }],
};

const lateOnset: Condition = {
  resourceType: 'Condition',
  id: 'cond-2',
  code: { coding: [{ system: 'http://snomed.info/sct', code: '26929004', display: "Alzheimer's disease" }] },
  subject: { reference: 'Patient/pat-marker-1' },
  onsetAge: { value: 91, unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' },
};

const report: DiagnosticReport = {
  resourceType: 'DiagnosticReport',
  id: 'rep-1',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '24323-8', display: 'Comprehensive metabolic panel' }] },
  subject: { reference: 'https://ehr.example.org/fhir/Patient/pat-marker-1' },
  effectivePeriod: { start: '2019-03-11T07:00:00Z', end: '2019-03-11T08:00:00Z' },
  issued: '2019-03-11T12:00:00Z',
  performer: [{ reference: 'Organization/general-hospital' }],
  result: [{ reference: 'Observation/obs-bp-1' }],
  conclusion: 'CONCLUSION-MARKER for NAME-MARKER-Alice, call +1-555-0100-77 or carol.marker@example.org',
  presentedForm: [
    {
      contentType: 'application/pdf',
      url: 'https://reports.example.org/REPORT-MARKER.pdf',
      title: 'NAME-MARKER-Title report',
      size: 2048,
      hash: base64('ATTACHMENT-HASH-MARKER'),
      creation: '2019-03-11T12:00:00Z',
    },
  ],
};

const prescription: MedicationRequest = {
  resourceType: 'MedicationRequest',
  id: 'rx-1',
  identifier: [{ system: 'urn:oid:1.2.3.4.5.8', value: 'RX-MARKER-5566' }],
  status: 'active',
  intent: 'order',
  medicationCodeableConcept: {
    coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin 500 MG' }],
  },
  subject: { reference: 'Patient/pat-marker-1', display: 'NAME-MARKER-Alice' },
  authoredOn: '2019-04-02',
  requester: { reference: 'Practitioner/dr-carol', display: 'NAME-MARKER-DrCarol' },
  insurance: [{ reference: 'Coverage/cov-1' }],
  dosageInstruction: [
    {
      text: 'one tablet twice daily, NAME-MARKER-Alice',
      timing: { repeat: { boundsPeriod: { start: '2019-04-02', end: '2019-10-02' }, frequency: 2, period: 1, periodUnit: 'd' } },
      doseAndRate: [{ doseQuantity: { value: 1, unit: 'tablet' } }],
    },
  ],
};

const fingerprint: DocumentReference = {
  resourceType: 'DocumentReference',
  id: 'doc-bio-1',
  masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'DOC-MARKER-0001' },
  status: 'current',
  type: { text: 'Fingerprint template' },
  subject: { reference: 'Patient/pat-marker-1' },
  date: '2024-05-01T09:30:00.000Z',
  content: [
    {
      attachment: {
        contentType: 'application/octet-stream',
        data: base64('BIOMETRIC-MARKER-minutiae-template'),
        size: 34,
        title: 'NAME-MARKER-Title right index',
      },
    },
  ],
};

const clinicalPhoto: DocumentReference = {
  resourceType: 'DocumentReference',
  id: 'doc-photo-1',
  status: 'current',
  type: { coding: [{ system: 'http://loinc.org', code: '72170-4', display: 'Photographic image' }] },
  subject: { reference: 'Patient/pat-marker-1' },
  description: 'Wound photo of NAME-MARKER-Alice',
  content: [
    {
      attachment: {
        contentType: 'image/jpeg',
        data: base64('PHOTO-MARKER-clinical-jpeg'),
        size: 26,
        url: 'attachment:0',
        extension: [
          {
            url: 'https://medledger.dev/fhir/StructureDefinition/attachment-sha256',
            valueString: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          },
        ],
      },
    },
  ],
};

const coverage: Coverage = {
  resourceType: 'Coverage',
  id: 'cov-1',
  identifier: [{ type: { coding: [{ system: V2_0203, code: 'MB' }] }, system: 'urn:oid:1.2.3.9', value: 'PLAN-MARKER-MB-456' }],
  status: 'active',
  subscriberId: 'PLAN-MARKER-SUB-123',
  dependent: 'PLAN-MARKER-DEP-01',
  beneficiary: { reference: 'Patient/pat-marker-1' },
  payor: [{ reference: 'Organization/health-plan' }],
  period: { start: '2019-01-01', end: '2019-12-31' },
  class: [
    { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'group' }] }, value: 'PLAN-MARKER-GROUP-9' },
  ],
};

const monitor: Device = {
  resourceType: 'Device',
  id: 'monitor-1',
  identifier: [{ system: 'urn:oid:1.2.3.10', value: 'DEVICE-ID-MARKER-1' }],
  udiCarrier: [{ deviceIdentifier: '00844588003288', carrierHRF: '(01)00844588003288(21)UDI-MARKER-00844588003288' }],
  serialNumber: 'SERIAL-MARKER-9876',
  lotNumber: 'LOT-MARKER-55',
  manufacturer: 'Acme Medical',
  modelNumber: 'BP-3000',
  manufactureDate: '2018-06-01',
  patient: { reference: 'Patient/pat-marker-1' },
  url: 'http://203.0.113.7:8080/status',
};

/** The records, as the vault would hand them to the de-identifier. */
export function fixtureResources(): JsonObject[] {
  const all = [patient, bloodPressure, age, condition, lateOnset, report, prescription, fingerprint, clinicalPhoto, coverage, monitor];
  return structuredClone(all) as unknown as JsonObject[];
}

/** A patient of 44 at REFERENCE_TIME, whose birth date may stay (as a year, or shifted). */
export function youngPatient(): JsonObject {
  const young: Patient = {
    resourceType: 'Patient',
    id: 'pat-young',
    gender: 'male',
    birthDate: '1980-07-04',
    deceasedDateTime: '2024-01-15T16:20:00-05:00',
  };
  return structuredClone(young) as unknown as JsonObject;
}
