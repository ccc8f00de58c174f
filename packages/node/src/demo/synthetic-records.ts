/**
 * Synthetic patients and FHIR R4 records for the demo: made up on this machine, no real person.
 * Codes are real (SNOMED CT, LOINC, RxNorm) so the records look like what a hospital holds.
 */

export interface SyntheticPatient {
  nationalId: string;
  given: string;
  family: string;
  gender: 'female' | 'male';
  birthDate: string;
}

const GIVEN_F = ['Ada', 'Mina', 'Sofia', 'Hana', 'Lena', 'Nora', 'Yuna', 'Clara', 'Iris', 'Mei'];
const GIVEN_M = ['Jun', 'Omar', 'Tomas', 'Ravi', 'Leo', 'Sami', 'Hugo', 'Ken', 'Ivan', 'Noah'];
const FAMILY = ['Kim', 'Lee', 'Park', 'Garcia', 'Novak', 'Okafor', 'Silva', 'Tanaka', 'Moreau', 'Jensen'];

export function syntheticPatients(count: number): SyntheticPatient[] {
  return Array.from({ length: count }, (_, i) => {
    const female = i % 2 === 0;
    return {
      nationalId: `DEMO-${String(1000 + i)}-${String((i * 7919) % 10000).padStart(4, '0')}`,
      given: (female ? GIVEN_F : GIVEN_M)[i % 10]!,
      family: FAMILY[(i * 3) % 10]!,
      gender: female ? 'female' : 'male',
      birthDate: `${String(1940 + ((i * 13) % 70))}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + ((i * 5) % 28)).padStart(2, '0')}`,
    };
  });
}

const CONDITIONS = [
  { code: '44054006', display: 'Diabetes mellitus type 2' },
  { code: '38341003', display: 'Hypertensive disorder' },
  { code: '195967001', display: 'Asthma' },
  { code: '13645005', display: 'Chronic obstructive lung disease' },
  { code: '49436004', display: 'Atrial fibrillation' },
];
const OBSERVATIONS = [
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', base: 6.5 },
  { code: '8480-6', display: 'Systolic blood pressure', unit: 'mm[Hg]', base: 135 },
  { code: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma', unit: 'mg/dL', base: 190 },
];
const MEDICATIONS = [
  { code: '860975', display: 'metformin hydrochloride 500 MG Extended Release Oral Tablet' },
  { code: '314076', display: 'lisinopril 10 MG Oral Tablet' },
  { code: '745679', display: 'albuterol 0.09 MG/ACTUAL Inhalation' },
];

/** A few FHIR resources for patient `i`, dated around `when` (ms). */
export function syntheticRecords(i: number, patientRef: string, when: number): { category: string; resource: Record<string, unknown> }[] {
  const date = new Date(when - (i % 30) * 86_400_000).toISOString();
  const condition = CONDITIONS[i % CONDITIONS.length]!;
  const obs = OBSERVATIONS[i % OBSERVATIONS.length]!;
  const med = MEDICATIONS[i % MEDICATIONS.length]!;
  const subject = { reference: patientRef };
  return [
    {
      category: 'Condition',
      resource: {
        resourceType: 'Condition',
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        code: { coding: [{ system: 'http://snomed.info/sct', code: condition.code, display: condition.display }] },
        subject,
        recordedDate: date,
      },
    },
    {
      category: 'Observation',
      resource: {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: obs.code, display: obs.display }] },
        subject,
        effectiveDateTime: date,
        valueQuantity: {
          value: Math.round((obs.base + (i % 7) * 0.7) * 10) / 10,
          unit: obs.unit,
          system: 'http://unitsofmeasure.org',
          code: obs.unit,
        },
      },
    },
    {
      category: 'MedicationRequest',
      resource: {
        resourceType: 'MedicationRequest',
        status: 'active',
        intent: 'order',
        medicationCodeableConcept: {
          coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: med.code, display: med.display }],
        },
        subject,
        authoredOn: date,
      },
    },
  ];
}
