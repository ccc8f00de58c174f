/**
 * A study's query and its evaluation over one custodian's consenting patients (consortium paper
 * §4: statistics are computed where the records are, only totals leave). The result is an integer
 * vector whose layout depends on the query alone, so every custodian's vector lines up cell by
 * cell and the vectors can be added under secure aggregation (`secure-aggregation.ts`).
 *
 * One cell per patient. A patient in the cohort adds 1 to exactly one cell's count, and (sum and
 * mean) at most 1 to that cell's value count and one clipped value v, |v| ≤ max(|lower|, |upper|),
 * to that cell's sum. So adding or removing one patient changes each block of the vector by at
 * most 1 (counts, value counts) or max(|lower|, |upper|) (sums) in L1 norm: these are the
 * sensitivities `differential-privacy.ts` scales its noise by. The argument holds for the total
 * only if each patient is evaluated by one custodian; a patient whose records sit at several
 * custodians is counted by each of them, which the release must account for.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { JsonObject, JsonValue } from '../codec/canonical-json.ts';
import { MedledgerError } from '../errors.ts';

/** Patient.gender, FHIR R4 AdministrativeGender (http://hl7.org/fhir/administrative-gender). */
export const Sexes = ['female', 'male', 'other', 'unknown'] as const;
export type Sex = (typeof Sexes)[number];

/**
 * Age bands in completed years at the reference time. Ages of 90 and over are one band, as the
 * HIPAA Safe Harbor method requires (45 CFR 164.514(b)(2)(i)(C)).
 */
export const AgeBands = ['0-17', '18-29', '30-39', '40-49', '50-59', '60-69', '70-79', '80-89', '90+', 'unknown'] as const;
export type AgeBand = (typeof AgeBands)[number];
const AGE_BAND_FLOORS = [0, 18, 30, 40, 50, 60, 70, 80, 90] as const;

export const Dimensions = ['sex', 'ageBand', 'year', 'code'] as const;
export type Dimension = (typeof Dimensions)[number];

/** Values are fixed-point with three decimals: 12.3456 counts as 12346 thousandths. */
export const FIXED_POINT_SCALE = 1000;
/** Bounds are at most this large, so a patient adds at most 10^9 thousandths and 2^63 is never reached. */
export const MAX_ABS_BOUND = 1_000_000;
/** A `years` range spans at most this many years. */
export const MAX_YEARS = 50;

// FHIR R4 `uri` and `code` (§2.24.0.1) with `|` kept out of the system, since cell keys join the two with it.
const Coding = Type.Object(
  {
    system: Type.String({ minLength: 3, maxLength: 200, pattern: '^[A-Za-z][A-Za-z0-9+.-]*:[^\\s|]+$' }),
    code: Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\s]+( [^\\s]+)*$' }),
  },
  { additionalProperties: false },
);
const Bound = Type.Number({ minimum: -MAX_ABS_BOUND, maximum: MAX_ABS_BOUND });
const Year = Type.Integer({ minimum: 1900, maximum: 2200 });

export const StudyQuerySchema = Type.Object(
  {
    /** A patient is in the cohort when any Condition, Observation or MedicationRequest carries one of these codings. */
    cohort: Type.Object({ codes: Type.Array(Coding, { minItems: 1, maxItems: 32, uniqueItems: true }) }, { additionalProperties: false }),
    measure: Type.Union([
      Type.Object({ kind: Type.Literal('count') }, { additionalProperties: false }),
      Type.Object(
        {
          kind: Type.Union([Type.Literal('sum'), Type.Literal('mean')]),
          /** the Observation code whose latest valueQuantity is the patient's value */
          code: Coding,
          /** when given, only values with this UCUM code (valueQuantity.code) count */
          unit: Type.Optional(Type.String({ minLength: 1, maxLength: 32, pattern: '^[^\\s]+$' })),
          lower: Bound,
          upper: Bound,
        },
        { additionalProperties: false },
      ),
    ]),
    groupBy: Type.Array(Type.Union(Dimensions.map((d) => Type.Literal(d))), { maxItems: 3, uniqueItems: true }),
    /** required with the `year` dimension, and only with it; inclusive */
    years: Type.Optional(Type.Object({ from: Year, to: Year }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type StudyQuery = Static<typeof StudyQuerySchema>;
export type ValueMeasure = Extract<StudyQuery['measure'], { kind: 'sum' | 'mean' }>;

/** One patient at one custodian: their resources, with at most one Patient resource (gender, birthDate). */
export interface PatientData {
  patientCode: string;
  resources: JsonObject[];
}

/** A cell's coordinates, only those the query groups by. `code` is the cohort coding as `system|code`. */
export interface CellKey {
  sex?: Sex;
  ageBand?: AgeBand;
  year?: number;
  code?: string;
}

function invalid(details: string): never {
  throw new MedledgerError('BAD_REQUEST', { details });
}

export function toFixedPoint(value: number): number {
  return Math.round(value * FIXED_POINT_SCALE);
}

/** A value measure's bounds in thousandths. */
export function fixedPointBounds(measure: ValueMeasure): { lower: number; upper: number } {
  return { lower: toFixedPoint(measure.lower), upper: toFixedPoint(measure.upper) };
}

export function isValueMeasure(measure: StudyQuery['measure']): measure is ValueMeasure {
  return measure.kind !== 'count';
}

/**
 * Checks a query against the schema and then what the schema cannot say, throwing BAD_REQUEST
 * with the reason; returns the query, typed.
 */
export function checkQuery(query: unknown): StudyQuery {
  if (!Value.Check(StudyQuerySchema, query)) {
    const first = Value.Errors(StudyQuerySchema, query).First();
    invalid(first ? `${first.path || '/'}: ${first.message}` : 'The query does not match the study query schema.');
  }
  const tokens = query.cohort.codes.map(codingToken);
  if (new Set(tokens).size !== tokens.length) invalid('The cohort names a coding twice.');
  if (new Set(query.groupBy).size !== query.groupBy.length) invalid('groupBy names a dimension twice.');
  if (isValueMeasure(query.measure)) {
    const { lower, upper } = fixedPointBounds(query.measure);
    if (!(lower < upper)) invalid('The measure’s lower bound must be below its upper bound (to 3 decimals).');
  }
  const byYear = query.groupBy.includes('year');
  if (byYear && query.years === undefined) invalid('Grouping by year requires a years range.');
  if (!byYear && query.years !== undefined) invalid('A years range is only allowed when grouping by year.');
  if (query.years !== undefined) {
    if (query.years.from > query.years.to) invalid('years.from must not be after years.to.');
    if (query.years.to - query.years.from + 1 > MAX_YEARS) invalid(`A years range spans at most ${MAX_YEARS} years.`);
  }
  return query;
}

function codingToken(coding: { system: string; code: string }): string {
  return `${coding.system}|${coding.code}`;
}

function dimensionValues(query: StudyQuery, dimension: Dimension): readonly (string | number)[] {
  switch (dimension) {
    case 'sex':
      return Sexes;
    case 'ageBand':
      return AgeBands;
    case 'year': {
      const { from, to } = query.years!;
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    }
    case 'code':
      return query.cohort.codes.map(codingToken);
  }
}

/** The cells in vector order: the product of the grouped dimensions, the first one varying slowest. */
export function cellsOf(query: StudyQuery): CellKey[] {
  checkQuery(query);
  let cells: CellKey[] = [{}];
  for (const dimension of query.groupBy) {
    const values = dimensionValues(query, dimension);
    cells = cells.flatMap((cell) => values.map((v) => ({ ...cell, [dimension]: v })));
  }
  return cells;
}

/**
 * The vector's length. Count: one count per cell. Sum and mean: three blocks of one entry per cell,
 * counts, then value counts (patients with a value), then fixed-point sums.
 */
export function vectorLength(query: StudyQuery): number {
  const cells = cellsOf(query).length;
  return isValueMeasure(query.measure) ? 3 * cells : cells;
}

// --- FHIR reading -------------------------------------------------------------------------

type Json = JsonValue | undefined;

function field(value: Json, name: string): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value[name] : undefined;
}

function stringField(value: Json, name: string): string | undefined {
  const v = field(value, name);
  return typeof v === 'string' ? v : undefined;
}

function codings(concept: Json): { system: string; code: string }[] {
  const list = field(concept, 'coding');
  if (!Array.isArray(list)) return [];
  const out: { system: string; code: string }[] = [];
  for (const c of list) {
    const system = stringField(c, 'system');
    const code = stringField(c, 'code');
    if (system !== undefined && code !== undefined) out.push({ system, code });
  }
  return out;
}

const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

/** Condition.verificationStatus codes, from its code system or with the system left out. */
function verificationCodes(concept: Json): string[] {
  const list = field(concept, 'coding');
  if (!Array.isArray(list)) return [];
  return list.flatMap((c) => {
    const system = stringField(c, 'system');
    const code = stringField(c, 'code');
    return code !== undefined && (system === undefined || system === CONDITION_VER_STATUS) ? [code] : [];
  });
}

/** Resources recorded in error (or refuted) say nothing about the patient. */
function inError(resource: JsonObject): boolean {
  switch (resource.resourceType) {
    case 'Condition':
      return verificationCodes(resource.verificationStatus).some((code) => code === 'entered-in-error' || code === 'refuted');
    case 'Observation':
      return resource.status === 'entered-in-error' || resource.status === 'cancelled';
    case 'MedicationRequest':
      return resource.status === 'entered-in-error';
    default:
      return false;
  }
}

/** The codes that put a resource in a cohort: Condition.code, Observation.code, MedicationRequest.medicationCodeableConcept. */
function cohortConcept(resource: JsonObject): Json {
  switch (resource.resourceType) {
    case 'Condition':
    case 'Observation':
      return resource.code;
    case 'MedicationRequest':
      return resource.medicationCodeableConcept;
    default:
      return undefined;
  }
}

/** The date a resource is about, as FHIR R4 names it per type. */
function resourceDate(resource: JsonObject): FhirDate | undefined {
  const candidates =
    resource.resourceType === 'Condition'
      ? [resource.onsetDateTime, resource.recordedDate]
      : resource.resourceType === 'Observation'
        ? [resource.effectiveDateTime, resource.effectiveInstant, resource.issued]
        : resource.resourceType === 'MedicationRequest'
          ? [resource.authoredOn]
          : [];
  for (const c of candidates) {
    if (typeof c === 'string') return parseFhirDate(c);
  }
  return undefined;
}

interface FhirDate {
  /** the year as written (local to the record) */
  year: number;
  /** the first instant the value can mean, ms since the epoch (UTC) */
  start: number;
}

// FHIR R4 date, dateTime and instant (§2.24.0.1): YYYY, YYYY-MM, YYYY-MM-DD, or with a time and a zone.
const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function parseFhirDate(text: string): FhirDate | undefined {
  const m = DATE_RE.exec(text);
  if (m === null) return undefined;
  const year = Number(m[1]);
  const month = m[2] === undefined ? 1 : Number(m[2]);
  const day = m[3] === undefined ? 1 : Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  let start = Date.UTC(year, month - 1, day);
  if (m[4] !== undefined) {
    const [h, min, s] = [Number(m[4]), Number(m[5]), Number(m[6])];
    if (h > 23 || min > 59 || s > 60) return undefined;
    const fraction = m[7] === undefined ? 0 : Math.floor(Number(m[7]) * 1000);
    const zone = m[8]!;
    const offset = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    start += ((h * 60 + min - offset) * 60 + s) * 1000 + fraction;
  }
  // Date.UTC maps years 0-99 to 1900-1999; such dates are errors in a clinical record anyway.
  return year < 100 ? undefined : { year, start };
}

/** The patient's age band at the reference time; 'unknown' when the birth date is missing or too coarse to decide. */
function ageBandOf(birthDate: string | undefined, referenceTime: number): AgeBand {
  if (birthDate === undefined) return 'unknown';
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(birthDate);
  if (m === null || parseFhirDate(birthDate) === undefined) return 'unknown';
  const year = Number(m[1]);
  // A partial date (1950, 1950-06) stands for a range of birth days: its first and its last.
  const first = { month: m[2] === undefined ? 1 : Number(m[2]), day: m[3] === undefined ? 1 : Number(m[3]) };
  const lastMonth = m[2] === undefined ? 12 : first.month;
  const last = { month: lastMonth, day: m[3] === undefined ? daysInMonth(year, lastMonth) : first.day };
  const ref = new Date(referenceTime);
  const r = { year: ref.getUTCFullYear(), month: ref.getUTCMonth() + 1, day: ref.getUTCDate() };
  const age = (b: { month: number; day: number }): number =>
    r.year - year - (r.month < b.month || (r.month === b.month && r.day < b.day) ? 1 : 0);
  const oldest = age(first);
  const youngest = age(last);
  if (youngest < 0) return 'unknown';
  const band = (a: number): AgeBand => AgeBands[AGE_BAND_FLOORS.findLastIndex((floor) => a >= floor)]!;
  return band(oldest) === band(youngest) ? band(oldest) : 'unknown';
}

function sexOf(patient: JsonObject | undefined): Sex {
  const gender = patient?.gender;
  return Sexes.find((s) => s === gender) ?? 'unknown';
}

interface IndexEvent {
  codeIndex: number;
  date: FhirDate | undefined;
}

/** Earlier date first, undated last; on the same date the cohort code listed first. */
function before(a: IndexEvent, b: IndexEvent): boolean {
  if (a.date !== undefined && b.date === undefined) return true;
  if (a.date === undefined && b.date !== undefined) return false;
  if (a.date !== undefined && b.date !== undefined && a.date.start !== b.date.start) return a.date.start < b.date.start;
  return a.codeIndex < b.codeIndex;
}

/** The patient's earliest resource with a cohort coding, or undefined when the patient is not in the cohort. */
function indexEvent(query: StudyQuery, resources: readonly JsonObject[]): IndexEvent | undefined {
  const tokens = new Map(query.cohort.codes.map((c, i) => [codingToken(c), i]));
  let best: IndexEvent | undefined;
  for (const resource of resources) {
    if (inError(resource)) continue;
    let codeIndex = Infinity;
    for (const c of codings(cohortConcept(resource))) codeIndex = Math.min(codeIndex, tokens.get(codingToken(c)) ?? Infinity);
    if (codeIndex === Infinity) continue;
    const event = { codeIndex, date: resourceDate(resource) };
    if (best === undefined || before(event, best)) best = event;
  }
  return best;
}

/** The patient's latest value of the measure, in thousandths, clipped to the bounds. */
function measureValue(measure: ValueMeasure, resources: readonly JsonObject[]): number | undefined {
  const token = codingToken(measure.code);
  let best: { value: number; start: number } | undefined;
  for (const resource of resources) {
    if (resource.resourceType !== 'Observation' || inError(resource)) continue;
    if (!codings(resource.code).some((c) => codingToken(c) === token)) continue;
    const quantity = resource.valueQuantity;
    const value = field(quantity, 'value');
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    if (measure.unit !== undefined && stringField(quantity, 'code') !== measure.unit) continue;
    const start = resourceDate(resource)?.start ?? -Infinity;
    // On equal dates the resource listed later wins, so the choice never depends on anything but the input.
    if (best === undefined || start >= best.start) best = { value, start };
  }
  if (best === undefined) return undefined;
  const { lower, upper } = fixedPointBounds(measure);
  return Math.min(upper, Math.max(lower, toFixedPoint(best.value)));
}

/** The patient's cell, or undefined when the year dimension leaves them out. */
function cellIndex(
  query: StudyQuery,
  dims: readonly number[],
  event: IndexEvent,
  patient: JsonObject | undefined,
  referenceTime: number,
): number | undefined {
  let cell = 0;
  for (const [i, dimension] of query.groupBy.entries()) {
    let coordinate: number;
    switch (dimension) {
      case 'sex':
        coordinate = Sexes.indexOf(sexOf(patient));
        break;
      case 'ageBand':
        coordinate = AgeBands.indexOf(ageBandOf(stringField(patient, 'birthDate'), referenceTime));
        break;
      case 'year': {
        const { from, to } = query.years!;
        const year = event.date?.year;
        if (year === undefined || year < from || year > to) return undefined;
        coordinate = year - from;
        break;
      }
      case 'code':
        coordinate = event.codeIndex;
        break;
    }
    cell = cell * dims[i]! + coordinate;
  }
  return cell;
}

/**
 * Runs the query over one custodian's patients: counts then, for sum and mean, value counts and
 * fixed-point sums (see `vectorLength`). Ages are taken at `referenceTime` (ms since the epoch,
 * UTC); nothing else depends on time. Throws BAD_REQUEST on a bad query, a patient listed twice or
 * a patient with two Patient resources.
 */
export function evaluateQuery(query: StudyQuery, patients: readonly PatientData[], referenceTime: number): bigint[] {
  checkQuery(query);
  if (!Number.isFinite(referenceTime)) invalid('referenceTime must be a finite number of milliseconds.');
  const dims = query.groupBy.map((d) => dimensionValues(query, d).length);
  const cellCount = dims.reduce((a, b) => a * b, 1);
  const measure = isValueMeasure(query.measure) ? query.measure : undefined;
  const out: bigint[] = new Array<bigint>(measure === undefined ? cellCount : 3 * cellCount).fill(0n);
  const seen = new Set<string>();
  for (const patient of patients) {
    if (seen.has(patient.patientCode)) invalid('A patient is listed twice; each patient counts in one cell only.');
    seen.add(patient.patientCode);
    const patientResources = patient.resources.filter((r) => r.resourceType === 'Patient');
    if (patientResources.length > 1) invalid('A patient has more than one Patient resource.');
    const event = indexEvent(query, patient.resources);
    if (event === undefined) continue;
    const cell = cellIndex(query, dims, event, patientResources[0], referenceTime);
    if (cell === undefined) continue;
    out[cell]! += 1n;
    if (measure === undefined) continue;
    const value = measureValue(measure, patient.resources);
    if (value === undefined) continue;
    out[cellCount + cell]! += 1n;
    out[2 * cellCount + cell]! += BigInt(value);
  }
  return out;
}
