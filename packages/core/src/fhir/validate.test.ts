/** FHIR R4 checks of vault records: synthetic resources only, no real person. */
import type {
  Attachment,
  Condition,
  DiagnosticReport,
  DocumentReference,
  MedicationRequest,
  Observation,
  Patient,
} from '@medplum/fhirtypes';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { canonicalBytes } from '../codec/canonical-json.ts';
import { MedledgerError } from '../errors.ts';
import {
  ATTACHMENT_SHA256_EXTENSION,
  AcceptedResourceTypes,
  MAX_ATTACHMENT_BYTES,
  MAX_ATTACHMENTS,
  MAX_RESOURCE_BYTES,
  attachmentDescriptors,
  describeAttachments,
  patientReferenceOf,
  validateResource,
  type AcceptedResource,
  type AcceptedResourceType,
  type ValidateResourceOptions,
} from './validate.ts';

/** SHA-256 of the empty string (FIPS 180-4 known answer). */
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Stands for a patient-identifying value; it must never reach an error message. */
const SENTINEL = 'ZZ-SENTINEL-Doe-19800101';

const patient = (): Patient => ({
  resourceType: 'Patient',
  id: 'demo-0001',
  meta: { versionId: '1', lastUpdated: '2024-05-01T09:30:00.000Z', profile: ['http://hl7.org/fhir/StructureDefinition/Patient'] },
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Synthetic patient</div>' },
  identifier: [{ use: 'official', system: 'urn:oid:1.2.3.4.5', value: 'DEMO-1000-0000' }],
  active: true,
  name: [{ use: 'official', family: 'Novak', given: ['Ada'] }],
  telecom: [{ system: 'phone', value: '+1-555-0100', use: 'mobile' }],
  gender: 'female',
  birthDate: '1971-02-28',
  address: [{ use: 'home', line: ['1 Example Street'], city: 'Sampletown', country: 'XX' }],
  multipleBirthBoolean: false,
  communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] }, preferred: true }],
  link: [{ other: { reference: 'Patient/demo-0002' }, type: 'seealso' }],
});

const condition = (): Condition => ({
  resourceType: 'Condition',
  id: 'cond-1',
  clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
  verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
  code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }], text: 'T2DM' },
  subject: { reference: 'Patient/demo-0001' },
  onsetDateTime: '2019-03',
  recordedDate: '2019-03-14T10:00:00+09:00',
  note: [{ text: 'Synthetic note.', time: '2019-03-14' }],
});

const observation = (): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }] },
  subject: { reference: 'Patient/demo-0001' },
  effectiveDateTime: '2024-05-01T08:15:00Z',
  issued: '2024-05-01T11:00:00.123+02:00',
  valueQuantity: { value: 7.1, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
  interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'H' }] }],
  referenceRange: [{ low: { value: 4, unit: '%' }, high: { value: 5.6, unit: '%' } }],
});

const diagnosticReport = (): DiagnosticReport => ({
  resourceType: 'DiagnosticReport',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '24323-8', display: 'Comprehensive metabolic panel' }] },
  subject: { reference: 'Patient/demo-0001' },
  effectivePeriod: { start: '2024-05-01T08:00:00Z', end: '2024-05-01T08:30:00Z' },
  issued: '2024-05-01T12:00:00Z',
  result: [{ reference: 'Observation/obs-1' }],
  conclusion: 'Synthetic conclusion.',
});

const medicationRequest = (): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  status: 'active',
  intent: 'order',
  priority: 'routine',
  medicationCodeableConcept: {
    coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin 500 MG ER Oral Tablet' }],
  },
  subject: { reference: 'Patient/demo-0001' },
  authoredOn: '2024-05-01',
  requester: { reference: 'Practitioner/dr-demo', display: 'Dr Demo' },
  dosageInstruction: [
    {
      text: 'One tablet daily',
      timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } },
      doseAndRate: [{ doseQuantity: { value: 1, unit: 'tablet' } }],
    },
  ],
  dispenseRequest: { numberOfRepeatsAllowed: 3, quantity: { value: 90, unit: 'tablet' } },
  substitution: { allowedBoolean: true },
});

const storedFile = (index: number): Attachment => ({
  contentType: 'application/pdf',
  size: 123_456,
  url: `attachment:${index}`,
  title: `scan-${index}.pdf`,
  creation: '2024-04-30',
  extension: [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: SHA }],
});

const documentReference = (files = 1): DocumentReference => ({
  resourceType: 'DocumentReference',
  id: 'evidence-1',
  status: 'current',
  docStatus: 'final',
  type: { coding: [{ system: 'http://loinc.org', code: '18748-4', display: 'Diagnostic imaging study' }] },
  subject: { reference: 'Patient/demo-0001' },
  date: '2024-05-01T09:30:00Z',
  description: 'Synthetic scanned referral letter',
  content: Array.from({ length: files }, (_, i) => ({ attachment: storedFile(i) })),
});

const valid: Record<AcceptedResourceType, () => AcceptedResource> = {
  Patient: patient,
  Condition: condition,
  Observation: observation,
  DiagnosticReport: diagnosticReport,
  MedicationRequest: medicationRequest,
  DocumentReference: documentReference,
};

function refusal(value: unknown, opts?: ValidateResourceOptions): MedledgerError {
  try {
    validateResource(value, opts);
  } catch (e) {
    if (e instanceof MedledgerError) return e;
    throw e;
  }
  throw new Error('the resource was accepted');
}

function expectRefused(value: unknown, path: string, rule: string): MedledgerError {
  const e = refusal(value);
  expect({ code: e.code, ...e.payload }).toEqual({ code: 'FHIR_INVALID', path, rule });
  return e;
}

/** A copy of `resource` with elements replaced (undefined removes one). */
function edit(resource: object, changes: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries({ ...resource, ...changes }).filter(([, v]) => v !== undefined));
}

/** A DocumentReference whose first attachment is replaced by `file`. */
function withFile(file: Record<string, unknown>): Record<string, unknown> {
  return edit(documentReference(), { content: [{ attachment: file }] });
}

describe('validateResource: accepted resources', () => {
  it('types the accepted resource union after the six medplum types', () => {
    expectTypeOf<AcceptedResource['resourceType']>().toEqualTypeOf<AcceptedResourceType>();
    expect(Object.keys(valid)).toEqual([...AcceptedResourceTypes]);
  });

  it.each(AcceptedResourceTypes)('accepts a valid %s and returns it unchanged', (type) => {
    const resource = valid[type]();
    expect(validateResource(resource)).toBe(resource);
    expect(validateResource(JSON.parse(JSON.stringify(resource)))).toEqual(resource);
  });

  it('accepts a resource with only resourceType when nothing else is required', () => {
    expect(validateResource({ resourceType: 'Patient' })).toEqual({ resourceType: 'Patient' });
  });

  it('accepts extensions, primitive extensions and unknown-but-well-named elements', () => {
    const resource = edit(patient(), {
      birthDate: undefined,
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
      extension: [{ url: 'http://example.org/fhir/ext', extension: [{ url: 'part', valueBoolean: true }] }],
      name: [{ given: ['Ada', null], _given: [null, { extension: [{ url: 'http://example.org/x', valueString: 'y' }] }] }],
      someFutureElement: { anything: 1 },
    });
    expect(validateResource(resource)).toBe(resource);
  });

  it('accepts a required primitive given only by its extension (data-absent-reason)', () => {
    const absent = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
    expect(() => validateResource(edit(observation(), { status: undefined, _status: absent }))).not.toThrow();
  });

  // Shapes of packages/node/src/demo/synthetic-records.ts, rebuilt here (core imports nothing from node).
  describe('the demo generator’s records', () => {
    const when = Date.UTC(2025, 0, 15, 12, 0, 0);
    const i = 4;
    const date = new Date(when - (i % 30) * 86_400_000).toISOString();
    const subject = { reference: 'Patient/0123456789abcdef' };
    const demo: Record<string, unknown>[] = [
      {
        resourceType: 'Condition',
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        code: { coding: [{ system: 'http://snomed.info/sct', code: '49436004', display: 'Atrial fibrillation' }] },
        subject,
        recordedDate: date,
      },
      {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8480-6', display: 'Systolic blood pressure' }] },
        subject,
        effectiveDateTime: date,
        valueQuantity: {
          value: Math.round((135 + (i % 7) * 0.7) * 10) / 10,
          unit: 'mm[Hg]',
          system: 'http://unitsofmeasure.org',
          code: 'mm[Hg]',
        },
      },
      {
        resourceType: 'MedicationRequest',
        status: 'active',
        intent: 'order',
        medicationCodeableConcept: {
          coding: [
            { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '745679', display: 'albuterol 0.09 MG/ACTUAL Inhalation' },
          ],
        },
        subject,
        authoredOn: date,
      },
    ];
    it.each(demo.map((r) => [r.resourceType, r]))('accepts the demo %s', (_, resource) => {
      expect(validateResource(resource)).toBe(resource);
      expect(patientReferenceOf(validateResource(resource))).toBe('Patient/0123456789abcdef');
    });
  });
});

describe('validateResource: what is refused before the FHIR rules', () => {
  it.each([
    ['null', null],
    ['an array', [{ resourceType: 'Patient' }]],
    ['a string', '{"resourceType":"Patient"}'],
    ['a number', 42],
    ['undefined', undefined],
    ['a Map', new Map([['resourceType', 'Patient']])],
    [
      'a class instance',
      new (class Shaped {
        resourceType = 'Patient';
      })(),
    ],
  ])('refuses %s as not a JSON object', (_, value) => {
    expectRefused(value, '', 'json-object');
  });

  it.each([
    ['missing', { id: 'x' }],
    ['not accepted', { resourceType: 'Encounter' }],
    ['wrongly cased', { resourceType: 'patient' }],
    ['not a string', { resourceType: 7 }],
  ])('refuses a resourceType that is %s', (_, value) => {
    expectRefused(value, '/resourceType', 'resource-type');
  });

  it.each([
    ['undefined', { resourceType: 'Patient', active: undefined }],
    ['NaN', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: Number.NaN } }],
    ['a Date object', { resourceType: 'Patient', meta: { lastUpdated: new Date(0) } }],
    ['a lone surrogate', { resourceType: 'Patient', name: [{ text: `\uD800${SENTINEL}` }] }],
  ])('refuses a value JSON cannot carry (%s) as FHIR_INVALID', (_, value) => {
    const e = expectRefused(value, '', 'json-value');
    expect(e.message).not.toContain(SENTINEL);
  });

  it('refuses a resource above MAX_RESOURCE_BYTES with RECORD_TOO_LARGE', () => {
    const big = edit(patient(), { name: [{ text: 'x'.repeat(MAX_RESOURCE_BYTES) }] });
    const e = refusal(big);
    expect(e.code).toBe('RECORD_TOO_LARGE');
    expect(e.payload).toMatchObject({ path: '', maxBytes: MAX_RESOURCE_BYTES });
  });

  it('measures canonical JSON against maxBytes, inclusive', () => {
    const resource = observation();
    const size = canonicalBytes(resource).length;
    expect(validateResource(resource, { maxBytes: size })).toBe(resource);
    const e = refusal(resource, { maxBytes: size - 1 });
    expect(e.code).toBe('RECORD_TOO_LARGE');
    expect(e.payload).toEqual({ path: '', size, maxBytes: size - 1 });
  });

  it('checks the size before the FHIR rules, and the resourceType before the size', () => {
    const huge = 'x'.repeat(MAX_RESOURCE_BYTES);
    expect(refusal(edit(observation(), { status: 'bogus', note: [{ text: huge }] })).code).toBe('RECORD_TOO_LARGE');
    expectRefused({ resourceType: 'Encounter', text: huge }, '/resourceType', 'resource-type');
  });
});

describe('validateResource: FHIR JSON form', () => {
  it.each([
    ['a null element', { active: null }, '/active', 'null'],
    ['an empty array', { name: [] }, '/name', 'empty'],
    ['an empty object', { maritalStatus: {} }, '/maritalStatus', 'empty'],
    ['an empty string', { name: [{ family: '' }] }, '/name/0/family', 'empty'],
    ['a top-level key that is not an element name', { 'Given-Name': 'x' }, '', 'element-name'],
    ['a nested key that is not an element name', { name: [{ 'first name': 'x' }] }, '/name/0', 'element-name'],
    ['a double underscore key', { __proto_x: 1 }, '', 'element-name'],
    ['a primitive extension that is not an Element', { _birthDate: 'x' }, '/_birthDate', 'type'],
    ['extension that is not an array', { extension: { url: 'http://e.org/x', valueString: 'y' } }, '/extension', 'cardinality'],
    ['an extension without url', { extension: [{ valueString: 'y' }] }, '/extension/0/url', 'required'],
    [
      'an extension with a value and extensions (ext-1)',
      { extension: [{ url: 'http://e.org/x', valueString: 'y', extension: [{ url: 'a', valueString: 'b' }] }] },
      '/extension/0',
      'ext-1',
    ],
    ['an extension with neither (ext-1)', { extension: [{ url: 'http://e.org/x', id: 'e1' }] }, '/extension/0', 'ext-1'],
    [
      'an extension with two value types',
      { modifierExtension: [{ url: 'http://e.org/x', valueString: 'y', valueCode: 'z' }] },
      '/modifierExtension/0/valueCode',
      'choice',
    ],
    ['a null in a primitive array without its _ twin', { name: [{ given: ['Ada', null] }] }, '/name/0/given/1', 'null'],
  ])('refuses %s', (_, changes, path, rule) => {
    expectRefused(edit(patient(), changes), path, rule);
  });

  it('does not echo an offending key, only its parent path', () => {
    const e = expectRefused(edit(patient(), { [SENTINEL]: 'x' }), '', 'element-name');
    expect(e.message).not.toContain(SENTINEL);
  });
});

describe('validateResource: required elements (R4 cardinality 1..*)', () => {
  it.each([
    ['Condition.subject', edit(condition(), { subject: undefined }), '/subject'],
    ['Observation.status', edit(observation(), { status: undefined }), '/status'],
    ['Observation.code', edit(observation(), { code: undefined }), '/code'],
    ['DiagnosticReport.status', edit(diagnosticReport(), { status: undefined }), '/status'],
    ['DiagnosticReport.code', edit(diagnosticReport(), { code: undefined }), '/code'],
    ['MedicationRequest.status', edit(medicationRequest(), { status: undefined }), '/status'],
    ['MedicationRequest.intent', edit(medicationRequest(), { intent: undefined }), '/intent'],
    ['MedicationRequest.medication[x]', edit(medicationRequest(), { medicationCodeableConcept: undefined }), '/medication[x]'],
    ['MedicationRequest.subject', edit(medicationRequest(), { subject: undefined }), '/subject'],
    [
      'MedicationRequest.substitution.allowed[x]',
      edit(medicationRequest(), { substitution: { reason: { text: 'x' } } }),
      '/substitution/allowed[x]',
    ],
    ['DocumentReference.status', edit(documentReference(), { status: undefined }), '/status'],
    ['DocumentReference.content', edit(documentReference(), { content: undefined }), '/content'],
    ['DocumentReference.content.attachment', edit(documentReference(), { content: [{ format: { code: 'x' } }] }), '/content/0/attachment'],
    ['DocumentReference.relatesTo.target', edit(documentReference(), { relatesTo: [{ code: 'replaces' }] }), '/relatesTo/0/target'],
    ['Patient.link.other', edit(patient(), { link: [{ type: 'seealso' }] }), '/link/0/other'],
    ['Patient.link.type', edit(patient(), { link: [{ other: { reference: 'Patient/x' } }] }), '/link/0/type'],
    ['Patient.communication.language', edit(patient(), { communication: [{ preferred: true }] }), '/communication/0/language'],
    ['Observation.component.code', edit(observation(), { component: [{ valueQuantity: { value: 1 } }] }), '/component/0/code'],
    ['Annotation.text', edit(condition(), { note: [{ time: '2020' }] }), '/note/0/text'],
    ['Narrative.div', edit(patient(), { text: { status: 'generated' } }), '/text/div'],
    ['DiagnosticReport.media.link', edit(diagnosticReport(), { media: [{ comment: 'x' }] }), '/media/0/link'],
  ])('refuses a missing %s', (_, resource, path) => {
    expectRefused(resource, path, 'required');
  });

  it('refuses an empty content array', () => {
    expectRefused(edit(documentReference(), { content: [] }), '/content', 'empty');
  });
});

describe('validateResource: required-binding codes', () => {
  it.each([
    ['Observation.status', edit(observation(), { status: 'done' }), '/status'],
    ['Observation.status (case)', edit(observation(), { status: 'Final' }), '/status'],
    ['DiagnosticReport.status', edit(diagnosticReport(), { status: 'active' }), '/status'],
    ['MedicationRequest.status', edit(medicationRequest(), { status: 'ordered' }), '/status'],
    ['MedicationRequest.intent', edit(medicationRequest(), { intent: 'prescription' }), '/intent'],
    ['MedicationRequest.priority', edit(medicationRequest(), { priority: 'high' }), '/priority'],
    ['DocumentReference.status', edit(documentReference(), { status: 'final' }), '/status'],
    ['DocumentReference.docStatus', edit(documentReference(), { docStatus: 'current' }), '/docStatus'],
    ['Patient.gender', edit(patient(), { gender: 'F' }), '/gender'],
    ['Patient.link.type', edit(patient(), { link: [{ other: { reference: 'Patient/x' }, type: 'same' }] }), '/link/0/type'],
    ['Identifier.use', edit(patient(), { identifier: [{ use: 'primary', value: 'x' }] }), '/identifier/0/use'],
    ['Narrative.status', edit(patient(), { text: { status: 'final', div: '<div>x</div>' } }), '/text/status'],
    [
      'Condition.clinicalStatus',
      edit(condition(), {
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'ongoing' }] },
      }),
      '/clinicalStatus/coding/0/code',
    ],
    ['Condition.clinicalStatus as text only', edit(condition(), { clinicalStatus: { text: 'active' } }), '/clinicalStatus'],
    [
      'Condition.verificationStatus from another system',
      edit(condition(), { verificationStatus: { coding: [{ system: 'http://snomed.info/sct', code: '410605003' }] } }),
      '/verificationStatus',
    ],
  ])('refuses a wrong %s', (_, resource, path) => {
    expectRefused(resource, path, 'binding');
  });

  it.each(['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'])(
    'accepts Observation.status %s',
    (status) => {
      expect(() => validateResource(edit(observation(), { status }))).not.toThrow();
    },
  );

  it.each(['proposal', 'plan', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option'])(
    'accepts MedicationRequest.intent %s',
    (intent) => {
      expect(() => validateResource(edit(medicationRequest(), { intent }))).not.toThrow();
    },
  );
});

describe('validateResource: choice elements [x]', () => {
  it('refuses a MedicationRequest with both medicationCodeableConcept and medicationReference', () => {
    expectRefused(edit(medicationRequest(), { medicationReference: { reference: 'Medication/m1' } }), '/medicationReference', 'choice');
  });

  it('accepts medicationReference alone', () => {
    expect(() =>
      validateResource(
        edit(medicationRequest(), { medicationCodeableConcept: undefined, medicationReference: { reference: 'Medication/m1' } }),
      ),
    ).not.toThrow();
  });

  it('refuses a type the choice does not allow, and two value types', () => {
    expectRefused(edit(observation(), { valueQuantity: undefined, valueMarkdown: 'x' }), '/valueMarkdown', 'choice');
    expectRefused(edit(observation(), { valueString: 'x' }), '/valueString', 'choice');
    expectRefused(edit(condition(), { onsetDateTime: undefined, onsetInstant: '2020-01-01T00:00:00Z' }), '/onsetInstant', 'choice');
  });
});

describe('validateResource: typed elements', () => {
  it.each([
    ['an id with a bad character', edit(patient(), { id: 'demo_0001' }), '/id'],
    ['an id of 65 characters', edit(patient(), { id: 'a'.repeat(65) }), '/id'],
    ['meta that is not an object', edit(patient(), { meta: 'v1' }), '/meta'],
    ['meta.lastUpdated without a zone', edit(patient(), { meta: { lastUpdated: '2024-05-01T09:30:00' } }), '/meta/lastUpdated'],
    ['a Reference that is a string', edit(condition(), { subject: 'Patient/demo-0001' }), '/subject'],
    ['Reference.reference that is not a string', edit(condition(), { subject: { reference: 42 } }), '/subject/reference'],
    ['Reference.display that is not a string', edit(observation(), { subject: { display: 5 } }), '/subject/display'],
    ['a CodeableConcept that is a string', edit(observation(), { code: '4548-4' }), '/code'],
    ['CodeableConcept.text that is not a string', edit(observation(), { code: { text: 1 } }), '/code/text'],
    [
      'Coding.system that is not a uri',
      edit(observation(), { code: { coding: [{ system: 'http://loinc org', code: 'x' }] } }),
      '/code/coding/0/system',
    ],
    ['Coding.code with doubled spaces', edit(observation(), { code: { coding: [{ code: 'a  b' }] } }), '/code/coding/0/code'],
    ['Observation.effectiveDateTime with month 13', edit(observation(), { effectiveDateTime: '2024-13-01' }), '/effectiveDateTime'],
    ['Observation.effectiveDateTime on 30 February', edit(observation(), { effectiveDateTime: '2024-02-30' }), '/effectiveDateTime'],
    [
      'Observation.effectiveDateTime with a time but no zone',
      edit(observation(), { effectiveDateTime: '2024-05-01T10:00:00' }),
      '/effectiveDateTime',
    ],
    [
      'Observation.effectiveDateTime without seconds',
      edit(observation(), { effectiveDateTime: '2024-05-01T10:00Z' }),
      '/effectiveDateTime',
    ],
    ['Observation.issued that is only a date', edit(observation(), { issued: '2024-05-01' }), '/issued'],
    [
      'Observation.valueQuantity.value as a string',
      edit(observation(), { valueQuantity: { value: '7.1', unit: '%' } }),
      '/valueQuantity/value',
    ],
    ['Condition.onsetDateTime as a number', edit(condition(), { onsetDateTime: 2019 }), '/onsetDateTime'],
    ['Condition.recordedDate in US order', edit(condition(), { recordedDate: '03/14/2019' }), '/recordedDate'],
    ['DocumentReference.date that is a partial dateTime (R4: instant)', edit(documentReference(), { date: '2024-05' }), '/date'],
    ['DiagnosticReport.issued without a zone', edit(diagnosticReport(), { issued: '2024-05-01T12:00:00' }), '/issued'],
    ['MedicationRequest.authoredOn with a space', edit(medicationRequest(), { authoredOn: '2024-05-01 10:00:00Z' }), '/authoredOn'],
    ['Patient.birthDate with a time', edit(patient(), { birthDate: '1971-02-28T00:00:00Z' }), '/birthDate'],
    ['Patient.birthDate on 29 February 1971', edit(patient(), { birthDate: '1971-02-29' }), '/birthDate'],
    ['Patient.active as a string', edit(patient(), { active: 'true' }), '/active'],
    ['HumanName.given as strings of numbers', edit(patient(), { name: [{ given: [1] }] }), '/name/0/given/0'],
    ['ContactPoint.rank of zero', edit(patient(), { telecom: [{ system: 'phone', value: 'x', rank: 0 }] }), '/telecom/0/rank'],
    [
      'dispenseRequest.numberOfRepeatsAllowed negative',
      edit(medicationRequest(), { dispenseRequest: { numberOfRepeatsAllowed: -1 } }),
      '/dispenseRequest/numberOfRepeatsAllowed',
    ],
    ['a Narrative div that is not a div', edit(patient(), { text: { status: 'generated', div: '<p>x</p>' } }), '/text/div'],
    ['a contained resource without a type name', edit(observation(), { contained: [{ resourceType: 'x' }] }), '/contained/0/resourceType'],
  ])('refuses %s', (_, resource, path) => {
    expectRefused(resource, path, 'type');
  });

  it.each([
    ['a single name where FHIR has an array', edit(patient(), { name: { family: 'Novak' } }), '/name'],
    ['an array where FHIR has one value', edit(patient(), { gender: ['female'] }), '/gender'],
    ['an array of subjects', edit(condition(), { subject: [{ reference: 'Patient/a' }] }), '/subject'],
  ])('refuses %s', (_, resource, path) => {
    expectRefused(resource, path, 'cardinality');
  });

  it('accepts the edge forms of the FHIR date regexes', () => {
    for (const effectiveDateTime of ['2024', '2024-02', '2024-02-29', '2016-12-31T23:59:60Z', '2024-05-01T10:00:00.123456+14:00']) {
      expect(() => validateResource(edit(observation(), { effectiveDateTime }))).not.toThrow();
    }
  });
});

describe('validateResource: invariants', () => {
  it('con-4: an abated condition needs clinicalStatus inactive, resolved or remission', () => {
    expectRefused(edit(condition(), { abatementDateTime: '2020-01' }), '/clinicalStatus', 'con-4');
    const resolved = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'resolved' }] };
    expect(() => validateResource(edit(condition(), { abatementDateTime: '2020-01', clinicalStatus: resolved }))).not.toThrow();
  });

  it('con-5: no clinicalStatus when verificationStatus is entered-in-error', () => {
    const error = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'entered-in-error' }] };
    expectRefused(edit(condition(), { verificationStatus: error }), '/clinicalStatus', 'con-5');
    expect(() => validateResource(edit(condition(), { verificationStatus: error, clinicalStatus: undefined }))).not.toThrow();
  });

  it('obs-6: no dataAbsentReason beside a value', () => {
    const absent = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown' }] };
    expectRefused(edit(observation(), { dataAbsentReason: absent }), '/dataAbsentReason', 'obs-6');
    expect(() => validateResource(edit(observation(), { dataAbsentReason: absent, valueQuantity: undefined }))).not.toThrow();
  });

  it('qty-3, obs-3, cpt-2, pat-1, con-1, dom-2', () => {
    expectRefused(edit(observation(), { valueQuantity: { value: 7.1, code: '%' } }), '/valueQuantity/system', 'qty-3');
    expectRefused(edit(observation(), { referenceRange: [{ type: { text: 'normal' } }] }), '/referenceRange/0', 'obs-3');
    expectRefused(edit(patient(), { telecom: [{ value: '+1-555-0100' }] }), '/telecom/0/system', 'cpt-2');
    expectRefused(edit(patient(), { contact: [{ relationship: [{ text: 'friend' }] }] }), '/contact/0', 'pat-1');
    expectRefused(edit(condition(), { stage: [{ type: { text: 'x' } }] }), '/stage/0', 'con-1');
    expectRefused(
      edit(observation(), { contained: [{ resourceType: 'Specimen', contained: [{ resourceType: 'Patient' }] }] }),
      '/contained/0/contained',
      'dom-2',
    );
  });
});

describe('validateResource: DocumentReference files travel beside the resource', () => {
  it('refuses inline data, saying files travel separately', () => {
    const e = expectRefused(withFile({ ...storedFile(0), data: 'JVBERi0xLjQK' }), '/content/0/attachment/data', 'attachment-inline');
    expect(e.message).toContain('files travel separately');
  });

  it.each([
    ['a url of another position', { url: 'attachment:1' }, '/content/0/attachment/url', 'attachment-url'],
    ['a http url', { url: 'https://example.org/scan.pdf' }, '/content/0/attachment/url', 'attachment-url'],
    ['no url', { url: undefined }, '/content/0/attachment/url', 'required'],
    ['no contentType', { contentType: undefined }, '/content/0/attachment/contentType', 'required'],
    ['a contentType that is not a MIME type', { contentType: 'pdf' }, '/content/0/attachment/contentType', 'type'],
    ['no size', { size: undefined }, '/content/0/attachment/size', 'required'],
    ['a size over 20 MiB', { size: MAX_ATTACHMENT_BYTES + 1 }, '/content/0/attachment/size', 'attachment-size'],
    ['a negative size', { size: -1 }, '/content/0/attachment/size', 'type'],
    ['a fractional size', { size: 1.5 }, '/content/0/attachment/size', 'type'],
    ['no extension', { extension: undefined }, '/content/0/attachment/extension', 'attachment-sha256'],
    [
      'no SHA-256 extension',
      { extension: [{ url: 'http://example.org/other', valueString: SHA }] },
      '/content/0/attachment/extension',
      'attachment-sha256',
    ],
    [
      'two SHA-256 extensions',
      {
        extension: [
          { url: ATTACHMENT_SHA256_EXTENSION, valueString: SHA },
          { url: ATTACHMENT_SHA256_EXTENSION, valueString: SHA },
        ],
      },
      '/content/0/attachment/extension',
      'attachment-sha256',
    ],
    [
      'an upper-case SHA-256',
      { extension: [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: SHA.toUpperCase() }] },
      '/content/0/attachment/extension/0/valueString',
      'attachment-sha256',
    ],
    [
      'a SHA-256 in another value type',
      {
        extension: [
          { url: 'http://example.org/other', valueString: 'x' },
          { url: ATTACHMENT_SHA256_EXTENSION, valueCode: SHA },
        ],
      },
      '/content/0/attachment/extension/1/valueString',
      'attachment-sha256',
    ],
    ['a bad creation date', { creation: '30.04.2024' }, '/content/0/attachment/creation', 'type'],
  ])('refuses an attachment with %s', (_, changes, path, rule) => {
    expectRefused(withFile(edit(storedFile(0), changes)), path, rule);
  });

  it('accepts a file of exactly MAX_ATTACHMENT_BYTES, and a content type with parameters', () => {
    const file = { ...storedFile(0), size: MAX_ATTACHMENT_BYTES, contentType: 'text/plain; charset=utf-8' };
    expect(() => validateResource(withFile(file))).not.toThrow();
  });

  it(`accepts ${MAX_ATTACHMENTS} files and refuses ${MAX_ATTACHMENTS + 1}`, () => {
    expect(() => validateResource(documentReference(MAX_ATTACHMENTS))).not.toThrow();
    expectRefused(documentReference(MAX_ATTACHMENTS + 1), '/content', 'attachment-count');
  });

  it('checks each file against its own position', () => {
    const doc = documentReference(3);
    const swapped = edit(doc, { content: [doc.content[0], doc.content[2], doc.content[1]] });
    expectRefused(swapped, '/content/1/attachment/url', 'attachment-url');
  });

  it('describes the files of a DocumentReference, and none for other types', () => {
    const doc = documentReference(2);
    doc.content[1]!.attachment = { ...storedFile(1), contentType: 'image/jpeg', size: 0 };
    const validated = validateResource(doc);
    const expected = [
      { index: 0, contentType: 'application/pdf', size: 123_456, sha256: SHA },
      { index: 1, contentType: 'image/jpeg', size: 0, sha256: SHA },
    ];
    expect(describeAttachments(validated)).toEqual(expected);
    expect(attachmentDescriptors(doc)).toEqual(expected);
    expect(describeAttachments(validateResource(observation()))).toEqual([]);
  });

  it('refuses to describe a DocumentReference that breaks the attachment rules', () => {
    const doc = documentReference();
    doc.content[0]!.attachment = { ...storedFile(0), url: 'attachment:7' };
    let thrown: unknown;
    try {
      attachmentDescriptors(doc);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(MedledgerError);
    expect(thrown).toMatchObject({ code: 'FHIR_INVALID', payload: { path: '/content/0/attachment/url', rule: 'attachment-url' } });
  });
});

describe('patientReferenceOf', () => {
  it('is subject.reference, or null for a Patient or a resource without one', () => {
    expect(patientReferenceOf(validateResource(condition()))).toBe('Patient/demo-0001');
    expect(patientReferenceOf(validateResource(documentReference()))).toBe('Patient/demo-0001');
    expect(patientReferenceOf(validateResource(patient()))).toBeNull();
    expect(patientReferenceOf(validateResource(edit(observation(), { subject: undefined })))).toBeNull();
    expect(patientReferenceOf(validateResource(edit(diagnosticReport(), { subject: { display: 'x' } })))).toBeNull();
  });
});

describe('errors never carry the offending value', () => {
  it.each([
    ['an Observation.status', edit(observation(), { status: SENTINEL })],
    ['a Patient.gender', edit(patient(), { gender: SENTINEL })],
    ['a Patient.birthDate', edit(patient(), { birthDate: SENTINEL })],
    ['an id', edit(patient(), { id: `${SENTINEL}!` })],
    ['a name given as a number array', edit(patient(), { name: [{ family: SENTINEL, given: [7] }] })],
    ['a Reference', edit(condition(), { subject: SENTINEL })],
    ['a Coding.system', edit(observation(), { code: { coding: [{ system: `${SENTINEL} x` }] } })],
    [
      'a clinicalStatus code',
      edit(condition(), {
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: SENTINEL }] },
      }),
    ],
    ['a valueQuantity.value', edit(observation(), { valueQuantity: { value: SENTINEL } })],
    ['a top-level key', edit(patient(), { [SENTINEL]: 1 })],
    ['an attachment url', withFile({ ...storedFile(0), url: `attachment:${SENTINEL}` })],
    ['an attachment contentType', withFile({ ...storedFile(0), contentType: SENTINEL })],
    ['an attachment SHA-256', withFile({ ...storedFile(0), extension: [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: SENTINEL }] })],
    ['inline attachment data', withFile({ ...storedFile(0), data: SENTINEL })],
    ['a resourceType', { resourceType: SENTINEL }],
  ])('in %s', (_, resource) => {
    const e = refusal(resource);
    expect(e.code).toBe('FHIR_INVALID');
    expect(e.message).not.toContain(SENTINEL);
    expect(JSON.stringify(e.toJSON())).not.toContain(SENTINEL);
  });
});
