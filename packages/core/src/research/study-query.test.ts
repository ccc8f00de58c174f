/** Study queries: the vector layout, and evaluation over hand-written FHIR patients with known answers. */
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../codec/canonical-json.ts';
import { MedledgerError } from '../errors.ts';
import { AgeBands, Sexes, cellsOf, checkQuery, evaluateQuery, vectorLength, type PatientData, type StudyQuery } from './study-query.ts';

const SCT = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const T2D = { system: SCT, code: '44054006' };
const HTN = { system: SCT, code: '38341003' };
const METFORMIN = { system: RXNORM, code: '860975' };
const HBA1C = { system: LOINC, code: '4548-4' };
const REFERENCE = Date.UTC(2024, 5, 15, 12); // 2024-06-15

const person = (gender: string | null, birthDate: string | null): JsonObject => ({
  resourceType: 'Patient',
  ...(gender === null ? {} : { gender }),
  ...(birthDate === null ? {} : { birthDate }),
});
const condition = (coding: { system: string; code: string }, dates: JsonObject = {}): JsonObject => ({
  resourceType: 'Condition',
  code: { coding: [coding] },
  ...dates,
});
const observation = (coding: { system: string; code: string }, value: number, date: string | null, extra: JsonObject = {}): JsonObject => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [coding] },
  ...(date === null ? {} : { effectiveDateTime: date }),
  valueQuantity: { value, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
  ...extra,
});
const medication = (coding: { system: string; code: string }, authoredOn: string): JsonObject => ({
  resourceType: 'MedicationRequest',
  status: 'active',
  intent: 'order',
  medicationCodeableConcept: { coding: [coding] },
  authoredOn,
});

let next = 0;
const pt = (...resources: JsonObject[]): PatientData => ({ patientCode: (next++).toString(16).padStart(64, '0'), resources });

/** A vector of `length` zeros with the given entries set. */
function sparse(length: number, entries: Record<number, bigint>): bigint[] {
  const out = new Array<bigint>(length).fill(0n);
  for (const [i, v] of Object.entries(entries)) out[Number(i)] = v;
  return out;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof MedledgerError ? e.code : 'not a MedledgerError';
  }
  return undefined;
}

const countBySexAge: StudyQuery = { cohort: { codes: [T2D, HTN, METFORMIN] }, measure: { kind: 'count' }, groupBy: ['sex', 'ageBand'] };
const sexAgeCell = (sex: string, band: string) =>
  Sexes.indexOf(sex as (typeof Sexes)[number]) * AgeBands.length + AgeBands.indexOf(band as (typeof AgeBands)[number]);

describe('cellsOf and vectorLength', () => {
  it('lists the product of the dimensions, the first varying slowest', () => {
    const q: StudyQuery = {
      cohort: { codes: [T2D] },
      measure: { kind: 'count' },
      groupBy: ['sex', 'year'],
      years: { from: 2020, to: 2021 },
    };
    const cells = cellsOf(q);
    expect(cells).toHaveLength(8);
    expect(cells.slice(0, 3)).toEqual([
      { sex: 'female', year: 2020 },
      { sex: 'female', year: 2021 },
      { sex: 'male', year: 2020 },
    ]);
    expect(cells[7]).toEqual({ sex: 'unknown', year: 2021 });
    expect(vectorLength(q)).toBe(8);
  });

  it('has one cell without grouping, codes as system|code, and three blocks for a value measure', () => {
    expect(cellsOf({ cohort: { codes: [T2D] }, measure: { kind: 'count' }, groupBy: [] })).toEqual([{}]);
    const q: StudyQuery = {
      cohort: { codes: [T2D, HTN] },
      measure: { kind: 'mean', code: HBA1C, lower: 0, upper: 20 },
      groupBy: ['code', 'ageBand'],
    };
    expect(cellsOf(q)[0]).toEqual({ code: `${SCT}|44054006`, ageBand: '0-17' });
    expect(cellsOf(q)[10]).toEqual({ code: `${SCT}|38341003`, ageBand: '0-17' });
    expect(vectorLength(q)).toBe(3 * 2 * 10);
  });
});

describe('checkQuery', () => {
  const base: StudyQuery = { cohort: { codes: [T2D] }, measure: { kind: 'count' }, groupBy: [] };

  it('accepts a well-formed query and returns it', () => {
    expect(checkQuery(base)).toBe(base);
    const withYears = { ...base, groupBy: ['year'], years: { from: 1975, to: 2024 } };
    expect(checkQuery(withYears)).toBe(withYears);
  });

  it('refuses what the schema or the semantics forbid, with BAD_REQUEST', () => {
    const bad: unknown[] = [
      { ...base, extra: 1 },
      { ...base, cohort: { codes: [] } },
      { ...base, cohort: { codes: [{ system: 'not a uri', code: 'x' }] } },
      { ...base, cohort: { codes: [T2D, { code: T2D.code, system: T2D.system }] } },
      { ...base, groupBy: ['sex', 'sex'] },
      { ...base, groupBy: ['sex', 'ageBand', 'code', 'year'], years: { from: 2000, to: 2001 } },
      { ...base, groupBy: ['year'] },
      { ...base, years: { from: 2000, to: 2001 } },
      { ...base, groupBy: ['year'], years: { from: 2001, to: 2000 } },
      { ...base, groupBy: ['year'], years: { from: 1974, to: 2024 } },
      { ...base, measure: { kind: 'mean', code: HBA1C, lower: 5, upper: 5 } },
      { ...base, measure: { kind: 'sum', code: HBA1C, lower: 1, upper: 1.0004 } },
      { ...base, measure: { kind: 'sum', code: HBA1C, lower: 0, upper: 2e6 } },
      { ...base, measure: { kind: 'sum', code: HBA1C, lower: 0, upper: Number.NaN } },
      { ...base, measure: { kind: 'count', code: HBA1C } },
    ];
    for (const q of bad)
      expect(
        codeOf(() => checkQuery(q)),
        JSON.stringify(q),
      ).toBe('BAD_REQUEST');
  });
});

describe('evaluateQuery: counts by sex and age band', () => {
  const patients = [
    // female, 64 → 60-69; two cohort resources still count once
    pt(person('female', '1960-01-01'), condition(T2D, { onsetDateTime: '2010-04-01' }), condition(HTN, { recordedDate: '2012' })),
    // male, 94 → 90+
    pt(person('male', '1930-05-05'), condition(HTN)),
    // turns 18 tomorrow → 0-17
    pt(person('female', '2006-06-16'), condition(T2D)),
    // turns 18 today → 18-29
    pt(person('female', '2006-06-15'), condition(T2D)),
    // no Patient resource, in the cohort by a medication → unknown / unknown
    pt(medication(METFORMIN, '2023-01-02')),
    // not in the cohort: another condition, an entered-in-error one, a refuted one, the right code in another system
    pt(person('male', '1970-01-01'), condition({ system: SCT, code: '195967001' })),
    pt(person('male', '1970-01-01'), {
      ...condition(T2D),
      verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'entered-in-error' }] },
    }),
    pt(person('male', '1970-01-01'), { ...condition(T2D), verificationStatus: { coding: [{ code: 'refuted' }] } }),
    pt(person('male', '1970-01-01'), condition({ system: 'http://example.org/codes', code: T2D.code })),
    // year-only birth dates: 1994 → 29 or 30 → unknown; 1985 → 38 or 39 → 30-39
    pt(person('other', '1994'), condition(T2D)),
    pt(person('other', '1985'), condition(T2D)),
    // a gender outside the value set and a malformed birth date → unknown / unknown
    pt(person('robot', '1980-02-30'), condition(HTN)),
    // born after the reference time → unknown age
    pt(person('male', '2025-01-01'), condition(HTN)),
  ];

  it('gives the exact vector', () => {
    const expected = sparse(40, {
      [sexAgeCell('female', '60-69')]: 1n,
      [sexAgeCell('male', '90+')]: 1n,
      [sexAgeCell('female', '0-17')]: 1n,
      [sexAgeCell('female', '18-29')]: 1n,
      [sexAgeCell('unknown', 'unknown')]: 2n,
      [sexAgeCell('other', 'unknown')]: 1n,
      [sexAgeCell('other', '30-39')]: 1n,
      [sexAgeCell('male', 'unknown')]: 1n,
    });
    expect(evaluateQuery(countBySexAge, patients, REFERENCE)).toEqual(expected);
  });

  it('counts each cohort patient in exactly one cell', () => {
    const v = evaluateQuery(countBySexAge, patients, REFERENCE);
    expect(v.reduce((a, b) => a + b, 0n)).toBe(9n);
  });

  it('does not depend on the order of a patient’s resources', () => {
    const reversed = patients.map((p) => ({ ...p, resources: [...p.resources].reverse() }));
    expect(evaluateQuery(countBySexAge, reversed, REFERENCE)).toEqual(evaluateQuery(countBySexAge, patients, REFERENCE));
  });

  it('takes the age at the reference time', () => {
    const one = [pt(person('female', '1934-06-20'), condition(T2D))];
    expect(evaluateQuery(countBySexAge, one, REFERENCE)[sexAgeCell('female', '80-89')]).toBe(1n);
    expect(evaluateQuery(countBySexAge, one, Date.UTC(2024, 5, 20))[sexAgeCell('female', '90+')]).toBe(1n);
  });

  it('refuses a patient listed twice or with two Patient resources', () => {
    const p = pt(person('female', '1960-01-01'), condition(T2D));
    expect(codeOf(() => evaluateQuery(countBySexAge, [p, { ...p }], REFERENCE))).toBe('BAD_REQUEST');
    const two = pt(person('female', '1960-01-01'), person('male', '1960-01-01'), condition(T2D));
    expect(codeOf(() => evaluateQuery(countBySexAge, [two], REFERENCE))).toBe('BAD_REQUEST');
  });
});

describe('evaluateQuery: by cohort code and year', () => {
  const q: StudyQuery = {
    cohort: { codes: [T2D, HTN] },
    measure: { kind: 'count' },
    groupBy: ['code', 'year'],
    years: { from: 2018, to: 2020 },
  };
  const cell = (code: number, year: number) => code * 3 + (year - 2018);

  it('places each patient by their earliest matching resource, within the year range only', () => {
    const patients = [
      // earliest is HTN in 2018
      pt(condition(T2D, { onsetDateTime: '2019-03-01' }), condition(HTN, { onsetDateTime: '2018-07-01' })),
      // 2017: outside the range
      pt(condition(T2D, { onsetDateTime: '2017-12-31' })),
      // the year as written, though it is 2021 in UTC
      pt(condition(T2D, { onsetDateTime: '2020-12-31T23:30:00-05:00' })),
      // undated: no year, not counted
      pt(condition(T2D)),
      // same day: the cohort code listed first
      pt(condition(HTN, { onsetDateTime: '2019-05-05' }), condition(T2D, { onsetDateTime: '2019-05-05' })),
      // onset is preferred to the recorded date
      pt(condition(HTN, { onsetDateTime: '2018-02-01', recordedDate: '2019-01-01' })),
      // a dated Observation (issued when not effective) is earlier than an undated Condition
      pt(condition(T2D), { resourceType: 'Observation', status: 'final', code: { coding: [HTN] }, issued: '2020-01-01T00:00:00Z' }),
      // one resource with both codes: the one listed first in the cohort
      pt({ resourceType: 'Condition', code: { coding: [HTN, T2D] }, onsetDateTime: '2019' }),
    ];
    expect(evaluateQuery(q, patients, REFERENCE)).toEqual(
      sparse(6, { [cell(1, 2018)]: 2n, [cell(0, 2020)]: 1n, [cell(0, 2019)]: 2n, [cell(1, 2020)]: 1n }),
    );
  });
});

describe('evaluateQuery: sum and mean measures', () => {
  const q: StudyQuery = {
    cohort: { codes: [T2D] },
    measure: { kind: 'mean', code: HBA1C, lower: 4, upper: 10 },
    groupBy: ['sex'],
  };

  it('takes each patient’s latest value, clipped and in thousandths, in counts / value counts / sums', () => {
    const patients = [
      pt(person('female', null), condition(T2D), observation(HBA1C, 8.4, '2022-03-01'), observation(HBA1C, 7.2, '2020-01-01')),
      pt(person('female', null), condition(T2D), observation(HBA1C, 14, '2021-01-01')), // clipped to 10
      pt(person('female', null), condition(T2D)), // no value: counted, no value
      pt(
        person('male', null),
        condition(T2D),
        observation(HBA1C, 3.1234, '2020-01-01'), // clipped to 4
        observation(HBA1C, 9, '2023-01-01', { status: 'entered-in-error' }),
      ),
      pt(person('male', null), condition(T2D), observation(HBA1C, 6.12345, null, { issued: '2024-01-01T08:00:00Z' })),
      // a value without a cohort condition does not count
      pt(person('male', null), observation(HBA1C, 9, '2023-01-01')),
    ];
    expect(evaluateQuery(q, patients, REFERENCE)).toEqual([3n, 2n, 0n, 0n, 2n, 2n, 0n, 0n, 18_400n, 10_123n, 0n, 0n]);
  });

  it('keeps negative sums and filters by unit when the query names one', () => {
    const sum: StudyQuery = {
      cohort: { codes: [T2D] },
      measure: { kind: 'sum', code: HBA1C, unit: 'mmol/mol', lower: -5, upper: 5 },
      groupBy: [],
    };
    const mmol = (value: number) =>
      observation(HBA1C, value, '2024-01-01', { valueQuantity: { value, system: 'http://unitsofmeasure.org', code: 'mmol/mol' } });
    const patients = [
      pt(condition(T2D), mmol(-7)),
      pt(condition(T2D), mmol(-1.5)),
      pt(condition(T2D), observation(HBA1C, 4, '2024-02-01')),
    ];
    expect(evaluateQuery(sum, patients, REFERENCE)).toEqual([3n, 2n, -6_500n]);
  });
});
