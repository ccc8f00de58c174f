/// <reference types="vite/client" />
/** Safe Harbor de-identification: synthetic records carrying all 18 kinds, and the R4 model itself. */
import r4 from 'fhirpath/fhir-context/r4';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { JsonObject, JsonValue } from '../codec/canonical-json.ts';
import { MedledgerError } from '../errors.ts';
import engineSource from './deidentify.ts?raw';
import tableSource from './safe-harbor.ts?raw';
import {
  Markers,
  PATIENT_CODE,
  REFERENCE_TIME,
  STUDY_KEY,
  SYSTOLIC_CODE,
  SYSTOLIC_VALUE,
  fixtureResources,
  youngPatient,
} from './deidentify.fixtures.ts';
import { dateShiftDays, deidentify, studyPseudonym, type DeidentificationTarget, type DeidentifyContext } from './deidentify.ts';
import {
  AGE_OVER_89_EXTENSION,
  RestrictedZip3,
  STUDY_PSEUDONYM_SYSTEM,
  SafeHarborKinds,
  SafeHarborRules,
  safeHarborKinds,
  type SafeHarborKind,
} from './safe-harbor.ts';

const LEVELS: readonly DeidentificationTarget[] = ['pseudonymised', 'anonymised'];
const ctx = (level: DeidentificationTarget, over: Partial<DeidentifyContext> = {}): DeidentifyContext => ({
  level,
  studyKey: STUDY_KEY,
  patientCode: PATIENT_CODE,
  referenceTime: REFERENCE_TIME,
  ...over,
});
const OTHER_KEY = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
const OTHER_CODE = 'a7'.repeat(32);

function run(level: DeidentificationTarget): { resources: JsonObject[]; json: string; kinds: Set<SafeHarborKind> } {
  const results = fixtureResources().map((r) => deidentify(r, ctx(level)));
  return {
    resources: results.map((r) => r.resource),
    json: JSON.stringify(results.map((r) => r.resource)),
    kinds: new Set(results.flatMap((r) => r.applied.map((a) => a.kind))),
  };
}

function nth(resources: JsonObject[], type: string, index = 0): JsonObject {
  const found = resources.filter((r) => r.resourceType === type)[index];
  if (found === undefined) throw new Error(`no ${type} #${index}`);
  return found;
}

/** Every string value anywhere in a JSON value. */
function strings(v: JsonValue): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

/** The UTC calendar day `days` after an ISO date, computed with the platform's Date (an oracle independent of the engine). */
function plusDays(isoDate: string, days: number): string {
  return new Date(Date.parse(`${isoDate}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

describe('the Safe Harbor table', () => {
  it('lists the 18 kinds of 164.514(b)(2)(i), paragraphs A to R in order', () => {
    expect(safeHarborKinds).toHaveLength(18);
    expect(safeHarborKinds.map((k) => SafeHarborKinds[k].clause).join('')).toBe('ABCDEFGHIJKLMNOPQR');
    expect(RestrictedZip3).toHaveLength(17);
  });

  it('has at least one rule for every kind', () => {
    const ruled = new Set(SafeHarborRules.map((r) => r.kind));
    expect(safeHarborKinds.filter((k) => !ruled.has(k))).toEqual([]);
  });

  it('never uses the FHIRPath union `|` outside lists of literals (it merges equal values)', () => {
    const unions = SafeHarborRules.filter((r) => {
      const withoutLists = r.path.replace(/'[^']*'/g, "''").replace(/\(\s*''(?:\s*\|\s*'')*\s*\)/g, '()');
      return withoutLists.includes('|');
    });
    expect(unions.map((r) => r.path)).toEqual([]);
  });

  it('has one entry per path and method, so an audit entry names one rule', () => {
    const keys = SafeHarborRules.map((r) => `${r.path} ${r.pseudonymised.method} ${r.anonymised.method}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe.each(LEVELS)('deidentify, %s', (level) => {
  const out = run(level);

  it.each(safeHarborKinds)('leaves no %s marker anywhere in the output', (kind) => {
    const left = Markers[kind].filter((m) => out.json.includes(m));
    expect(left).toEqual([]);
  });

  it('reports every one of the 18 kinds for the fixture set', () => {
    expect(safeHarborKinds.filter((k) => !out.kinds.has(k))).toEqual([]);
  });

  it('reports paths and methods only, never values', () => {
    const applied = fixtureResources().flatMap((r) => deidentify(r, ctx(level)).applied);
    const text = JSON.stringify(applied);
    for (const marker of Object.values(Markers).flat()) expect(text).not.toContain(marker);
    for (const entry of applied) expect(Object.keys(entry).sort()).toEqual(['kind', 'method', 'path']);
  });

  it('keeps the permitted 3 ZIP digits, "000" for a restricted area, and the state', () => {
    const patient = nth(out.resources, 'Patient');
    expect(patient.address).toEqual([
      { use: 'home', state: 'NH', postalCode: '000', country: 'US' },
      { use: 'work', state: 'CA', postalCode: '941' },
    ]);
    // The birthPlace extension keeps its url and the state; the other extensions' values were text.
    expect(patient.extension).toEqual([
      { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { state: 'NH', country: 'US' } },
      { url: AGE_OVER_89_EXTENSION, valueBoolean: true },
    ]);
  });

  it('aggregates ages over 89: the birth date goes (year too), ages become "90 or older"', () => {
    const patient = nth(out.resources, 'Patient');
    expect(patient.birthDate).toBeUndefined();
    expect(patient._birthDate).toBeUndefined();
    const ninety = { value: 90, comparator: '>=', unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' };
    expect(nth(out.resources, 'Observation', 1).valueQuantity).toEqual(ninety);
    expect(nth(out.resources, 'Condition', 1).onsetAge).toEqual(ninety);
  });

  it('replaces the patient by the study pseudonym in its id, its identifiers and every reference', () => {
    const pseudonym = studyPseudonym(STUDY_KEY, PATIENT_CODE);
    const patient = nth(out.resources, 'Patient');
    expect(patient.id).toBe(pseudonym);
    expect(patient.identifier).toEqual([{ system: STUDY_PSEUDONYM_SYSTEM, value: pseudonym }]);
    expect(nth(out.resources, 'Observation').subject).toEqual({ reference: `Patient/${pseudonym}` });
    expect(nth(out.resources, 'DiagnosticReport').subject).toEqual({ reference: `Patient/${pseudonym}` });
    expect(nth(out.resources, 'Device').patient).toEqual({ reference: `Patient/${pseudonym}` });
    // No other identifier survives anywhere, Reference.identifier included.
    expect(out.resources.filter((r) => r !== patient && 'identifier' in r)).toEqual([]);
    expect(nth(out.resources, 'Condition').asserter).toBeUndefined();
  });

  it('pseudonymises record ids consistently with the references to them; providers stay, without display', () => {
    const observation = nth(out.resources, 'Observation');
    expect(observation.id).toMatch(/^[0-9a-f]{32}$/);
    expect(nth(out.resources, 'DiagnosticReport').result).toEqual([{ reference: `Observation/${observation.id as string}` }]);
    expect(observation.device).toEqual({ reference: `Device/${nth(out.resources, 'Device').id as string}` });
    expect(nth(out.resources, 'MedicationRequest').insurance).toEqual([
      { reference: `Coverage/${nth(out.resources, 'Coverage').id as string}` },
    ]);
    expect(observation.performer).toEqual([{ reference: 'Practitioner/dr-carol' }]);
    expect(nth(out.resources, 'Patient').generalPractitioner).toEqual([{ reference: 'Practitioner/dr-carol' }]);
    expect(nth(out.resources, 'Patient').managingOrganization).toEqual({ reference: 'Organization/general-hospital' });
  });

  it('keeps clinical content: codes, quantities, statuses, categories, dosage structure', () => {
    const observation = nth(out.resources, 'Observation');
    expect(observation.code).toEqual({ coding: [SYSTOLIC_CODE] });
    expect(observation.valueQuantity).toEqual(SYSTOLIC_VALUE);
    expect(observation.status).toBe('final');
    expect(observation.category).toEqual(fixtureResources()[1]!.category);
    const condition = nth(out.resources, 'Condition');
    expect(condition.code).toEqual({
      coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }],
      text: 'Type 2 diabetes',
    });
    expect(condition.clinicalStatus).toBeDefined();
    const dosage = (nth(out.resources, 'MedicationRequest').dosageInstruction as JsonObject[])[0]!;
    expect(dosage.text).toBeUndefined();
    expect(dosage.doseAndRate).toEqual([{ doseQuantity: { value: 1, unit: 'tablet' } }]);
    expect(nth(out.resources, 'Device')).toMatchObject({ manufacturer: 'Acme Medical', modelNumber: 'BP-3000' });
  });

  it('removes free text, photographs, telecoms and notes; attachments keep contentType and size only', () => {
    const patient = nth(out.resources, 'Patient');
    for (const gone of ['text', 'name', 'telecom', 'photo', 'contact']) expect(patient).not.toHaveProperty(gone);
    // Of meta only a shifted lastUpdated stays: source is a URL, versionId an id, an anonymised instant has no year-only form.
    if (level === 'anonymised') expect(patient).not.toHaveProperty('meta');
    else expect(Object.keys(patient.meta as JsonObject)).toEqual(['lastUpdated']);
    const report = nth(out.resources, 'DiagnosticReport');
    expect(report.conclusion).toBeUndefined();
    expect(report.presentedForm).toEqual([{ contentType: 'application/pdf', size: 2048 }]);
    expect(nth(out.resources, 'DocumentReference', 0).content).toEqual([
      { attachment: { contentType: 'application/octet-stream', size: 34 } },
    ]);
    expect(nth(out.resources, 'DocumentReference', 1).content).toEqual([{ attachment: { contentType: 'image/jpeg', size: 26 } }]);
    expect(nth(out.resources, 'Observation').note).toBeUndefined();
    expect(nth(out.resources, 'Device')).not.toHaveProperty('udiCarrier');
  });

  it('removes elements the R4 model does not define', () => {
    const patient = { ...fixtureResources()[0]!, ssnNote: 'ssn 123-45-6789', extra: { nested: 'NAME-MARKER-Alice' } };
    const { resource, applied } = deidentify(patient, ctx(level));
    expect(resource).not.toHaveProperty('ssnNote');
    expect(resource).not.toHaveProperty('extra');
    expect(applied).toContainEqual({ kind: 'otherUniqueIdentifier', path: SafeHarborRules.at(-1)!.path, method: 'redact' });
  });

  it('does not mutate its input and gives the same output for the same input and context', () => {
    const deepFreeze = (v: JsonValue): void => {
      if (v !== null && typeof v === 'object') {
        Object.freeze(v);
        Object.values(v).forEach(deepFreeze);
      }
    };
    const inputs = fixtureResources();
    const before = structuredClone(inputs);
    inputs.forEach(deepFreeze);
    const first = inputs.map((r) => deidentify(r, ctx(level)));
    expect(inputs).toEqual(before);
    const second = fixtureResources().map((r) => deidentify(r, ctx(level)));
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
  });
});

describe('dates', () => {
  it('anonymised: every date element is a year; instants, which cannot be a year alone, are removed', () => {
    const { resources, json } = run('anonymised');
    expect(strings(resources).filter((s) => /^[0-9]{4}-[0-9]{2}/.test(s))).toEqual([]);
    expect(nth(resources, 'Condition').onsetDateTime).toBe('2019');
    expect(nth(resources, 'Condition').recordedDate).toBe('2019');
    expect(nth(resources, 'DiagnosticReport').effectivePeriod).toEqual({ start: '2019', end: '2019' });
    expect(nth(resources, 'Observation').issued).toBeUndefined();
    expect(nth(resources, 'DocumentReference').date).toBeUndefined();
    expect(json).not.toContain('lastUpdated');
    const young = deidentify(youngPatient(), ctx('anonymised')).resource;
    expect(young).toMatchObject({ birthDate: '1980', deceasedDateTime: '2024' });
  });

  it('pseudonymised: every date moves by the patient’s shift and keeps its precision, time and zone', () => {
    const shift = dateShiftDays(STUDY_KEY, PATIENT_CODE);
    const { resources } = run('pseudonymised');
    const condition = nth(resources, 'Condition');
    expect(condition.onsetDateTime).toBe(`${plusDays('2019-03-10', shift)}T08:30:00+01:00`);
    expect(condition.recordedDate).toBe(plusDays('2019-03-12', shift));
    expect(nth(resources, 'Observation').issued).toBe(`${plusDays('2019-03-10', shift)}T10:15:00.000Z`);
    expect(nth(resources, 'Coverage').period).toEqual({ start: plusDays('2019-01-01', shift), end: plusDays('2019-12-31', shift) });
    const young = deidentify(youngPatient(), ctx('pseudonymised', { patientCode: OTHER_CODE })).resource;
    const youngShift = dateShiftDays(STUDY_KEY, OTHER_CODE);
    expect(young.birthDate).toBe(plusDays('1980-07-04', youngShift));
    expect(young.deceasedDateTime).toBe(`${plusDays('2024-01-15', youngShift)}T16:20:00-05:00`);
  });

  it('pseudonymised: the intervals between one patient’s dates are kept', () => {
    const days = (a: string, b: string): number => (Date.parse(b.slice(0, 10)) - Date.parse(a.slice(0, 10))) / 86_400_000;
    const { resources } = run('pseudonymised');
    const condition = nth(resources, 'Condition');
    const report = nth(resources, 'DiagnosticReport');
    const onset = condition.onsetDateTime as string;
    expect(days(onset, condition.recordedDate as string)).toBe(days('2019-03-10', '2019-03-12'));
    expect(days(onset, (report.effectivePeriod as JsonObject).start as string)).toBe(days('2019-03-10', '2019-03-11'));
    expect(days(onset, nth(resources, 'MedicationRequest').authoredOn as string)).toBe(days('2019-03-10', '2019-04-02'));
  });

  it('shifts a month-precision date by whole months and leaves a year alone', () => {
    const shift = dateShiftDays(STUDY_KEY, PATIENT_CODE);
    const condition = { resourceType: 'Condition', onsetDateTime: '2019-03', abatementDateTime: '2020' };
    const { resource } = deidentify(condition, ctx('pseudonymised'));
    expect(resource.onsetDateTime).toBe(plusDays('2019-03-15', shift).slice(0, 7));
    expect(resource.abatementDateTime).toBe('2020');
  });

  it('refuses a date element that is not a FHIR date, without echoing it', () => {
    const bad = { resourceType: 'Observation', status: 'final', effectiveDateTime: '2019-02-30' };
    expect(() => deidentify(bad, ctx('anonymised'))).toThrow(MedledgerError);
    try {
      deidentify(bad, ctx('anonymised'));
    } catch (e) {
      expect((e as MedledgerError).code).toBe('FHIR_INVALID');
      expect(JSON.stringify((e as MedledgerError).toJSON())).not.toContain('2019-02-30');
    }
  });
});

describe('edges of the generalisations', () => {
  const patient = (birthDate: string): JsonObject => ({ resourceType: 'Patient', birthDate });

  it('counts a patient of exactly 90 as over 89, and a partial birth date at its earliest', () => {
    for (const level of LEVELS) {
      expect(deidentify(patient('1934-06-01'), ctx(level)).resource.birthDate).toBeUndefined();
      expect(deidentify(patient('1934'), ctx(level)).resource.birthDate).toBeUndefined();
      expect(deidentify(patient('1934-07'), ctx(level)).resource.birthDate).toBeDefined();
      expect(deidentify(patient('1934-06-02'), ctx(level)).resource.birthDate).toBeDefined();
    }
    expect(deidentify(patient('1934-06-02'), ctx('anonymised')).resource.birthDate).toBe('1934');
  });

  it('generalises ZIP+4 too, and removes a postal code outside the US', () => {
    const addresses = {
      resourceType: 'Patient',
      address: [
        { postalCode: '94110-1234', country: 'USA' },
        { postalCode: '75001', city: 'Paris', country: 'FR' },
      ],
    };
    const { resource, applied } = deidentify(addresses, ctx('anonymised'));
    expect(resource.address).toEqual([{ postalCode: '941', country: 'USA' }, { country: 'FR' }]);
    const zipRule = SafeHarborRules.find((r) => r.path.endsWith('.postalCode'))!.path;
    expect(applied.filter((a) => a.path === zipRule).map((a) => a.method)).toEqual(['generalise', 'redact']);
  });

  it('keeps ages up to 89 and a range bound of 90 or more becomes 90 without a comparator', () => {
    const condition = {
      resourceType: 'Condition',
      onsetAge: { value: 1068, unit: 'months', system: 'http://unitsofmeasure.org', code: 'mo' },
      abatementRange: { low: { value: 85, unit: 'years' }, high: { value: 96, unit: 'years' } },
    };
    const { resource } = deidentify(condition, ctx('anonymised'));
    expect(resource.onsetAge).toEqual(condition.onsetAge); // 89 years
    expect(resource.abatementRange).toEqual({
      low: { value: 85, unit: 'years' },
      high: { value: 90, unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' },
    });
  });

  it('keeps an emptied modifierExtension as its url, since dropping it would change the meaning', () => {
    const observation = {
      resourceType: 'Observation',
      status: 'final',
      modifierExtension: [
        { url: 'https://example.org/fhir/StructureDefinition/not-done-reason', valueString: 'NAME-MARKER-Alice refused' },
      ],
      extension: [{ url: 'https://example.org/fhir/StructureDefinition/remark', valueString: 'NAME-MARKER-Alice' }],
    };
    const { resource } = deidentify(observation, ctx('anonymised'));
    expect(resource.modifierExtension).toEqual([{ url: 'https://example.org/fhir/StructureDefinition/not-done-reason' }]);
    expect(resource).not.toHaveProperty('extension');
  });
});

describe('pseudonyms and date shifts', () => {
  const codes = Array.from({ length: 400 }, (_, i) => i.toString(16).padStart(64, '0'));

  it('are stable within a study, differ across studies and across patients', () => {
    const p = studyPseudonym(STUDY_KEY, PATIENT_CODE);
    expect(p).toMatch(/^[0-9a-f]{32}$/);
    expect(studyPseudonym(Uint8Array.from(STUDY_KEY), PATIENT_CODE)).toBe(p);
    expect(studyPseudonym(OTHER_KEY, PATIENT_CODE)).not.toBe(p);
    expect(studyPseudonym(STUDY_KEY, OTHER_CODE)).not.toBe(p);
    expect(new Set(codes.map((c) => studyPseudonym(STUDY_KEY, c))).size).toBe(codes.length);
    // The pseudonym is not the patient code, nor a prefix of it.
    expect(PATIENT_CODE.startsWith(p)).toBe(false);
  });

  it('shift by a whole, non-zero number of days in [-182, 182], the same for a patient within a study', () => {
    const shifts = codes.map((c) => dateShiftDays(STUDY_KEY, c));
    for (const s of shifts) {
      expect(Number.isInteger(s)).toBe(true);
      expect(s).not.toBe(0);
      expect(Math.abs(s)).toBeLessThanOrEqual(182);
    }
    expect(shifts.some((s) => s < 0) && shifts.some((s) => s > 0)).toBe(true);
    expect(new Set(shifts).size).toBeGreaterThan(150);
    expect(codes.map((c) => dateShiftDays(STUDY_KEY, c))).toEqual(shifts);
    const otherStudy = codes.map((c) => dateShiftDays(OTHER_KEY, c));
    expect(otherStudy.filter((s, i) => s !== shifts[i]).length).toBeGreaterThan(350);
  });

  it('refuse a key that is not 32 bytes, a malformed patient code, and a bad context', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof MedledgerError ? e.code : 'other';
      }
      return undefined;
    };
    expect(code(() => studyPseudonym(new Uint8Array(16), PATIENT_CODE))).toBe('BAD_REQUEST');
    expect(code(() => dateShiftDays(STUDY_KEY, PATIENT_CODE.toUpperCase()))).toBe('BAD_REQUEST');
    const patient = fixtureResources()[0]!;
    expect(code(() => deidentify(patient, ctx('anonymised', { referenceTime: Number.NaN })))).toBe('BAD_REQUEST');
    expect(code(() => deidentify(patient, { ...ctx('anonymised'), level: 'identified' as DeidentificationTarget }))).toBe('BAD_REQUEST');
    expect(code(() => deidentify({ id: 'x' }, ctx('anonymised')))).toBe('FHIR_INVALID');
  });
});

describe('no clock, no randomness', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('gives the same output whatever the system time, and never draws Math.random', () => {
    const random = vi.spyOn(Math, 'random');
    vi.useFakeTimers({ now: Date.UTC(2001, 0, 1) });
    const early = JSON.stringify(fixtureResources().map((r) => deidentify(r, ctx('pseudonymised'))));
    vi.setSystemTime(Date.UTC(2090, 0, 1));
    const late = JSON.stringify(fixtureResources().map((r) => deidentify(r, ctx('pseudonymised'))));
    expect(late).toBe(early);
    expect(random).not.toHaveBeenCalled();
  });

  it('has no clock or random source in the engine or the table', () => {
    for (const source of [engineSource, tableSource]) {
      expect(source).not.toMatch(/Date\.now|new Date\(|Math\.random|performance\.now|crypto\.getRandomValues/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Coverage of the R4 model: a synthetic resource of each type with a marker in every element the
// model gives (recursing into data types), so an element no rule covers shows up as a survivor.

type ModelType = string | { code: string };
const path2Type = r4.path2Type as unknown as Record<string, ModelType>;
const definedElsewhere = r4.pathsDefinedElsewhere;
const childNames = new Map<string, string[]>();
for (const path of Object.keys(path2Type)) {
  const dot = path.lastIndexOf('.');
  if (dot < 0) continue;
  const parent = path.slice(0, dot);
  childNames.set(parent, [...(childNames.get(parent) ?? []), path.slice(dot + 1)]);
}

class Synthesiser {
  /** marker text → the element path that holds it */
  readonly markers = new Map<string, string>();
  /** original date text → the element path */
  readonly dates = new Map<string, string>();
  private n = 0;

  resource(type: string): JsonObject {
    return { resourceType: type, ...this.fill(type, 0) };
  }

  private fill(prefix: string, depth: number): JsonObject {
    const out: JsonObject = {};
    for (const name of childNames.get(definedElsewhere[prefix] ?? prefix) ?? []) {
      if (['id', 'extension', 'modifierExtension', 'contained'].includes(name)) continue;
      const path = `${definedElsewhere[prefix] ?? prefix}.${name}`;
      const model = path2Type[path]!;
      const value = this.value(typeof model === 'string' ? model : model.code, path, depth);
      if (value !== undefined) out[name] = value;
    }
    return out;
  }

  private marker(path: string, make: (m: string) => string = (m) => m): string {
    const m = `MK${++this.n}Q`;
    const text = make(m);
    this.markers.set(text.includes(m) ? m : text, path);
    return text;
  }

  private date(path: string, time: string): string {
    const day = new Date(Date.UTC(1950, 0, 1) + ++this.n * 400 * 86_400_000).toISOString().slice(0, 10);
    this.dates.set(day, path);
    return `${day}${time}`;
  }

  private value(type: string, path: string, depth: number): JsonValue | undefined {
    switch (type) {
      case 'string':
      case 'markdown':
        return this.marker(path);
      case 'uri':
      case 'url':
      case 'canonical':
      case 'oid':
      case 'uuid':
        return this.marker(path, (m) => `urn:mk:${m}`);
      case 'base64Binary':
        return this.marker(path, (m) => btoa(m));
      case 'xhtml':
        return this.marker(path, (m) => `<div xmlns="http://www.w3.org/1999/xhtml">${m}</div>`);
      case 'date':
        return this.date(path, '');
      case 'dateTime':
        return this.date(path, 'T10:11:12+02:00');
      case 'instant':
        return this.date(path, 'T10:11:12.345Z');
      case 'time':
        return '10:11:12';
      case 'code':
      case 'id':
        return 'mkcode';
      case 'boolean':
        return true;
      case 'integer':
      case 'positiveInt':
      case 'unsignedInt':
        return 1;
      case 'decimal':
        return 1.5;
      case 'Resource':
      case 'Extension':
        return undefined;
      default: {
        if (type.startsWith('System.') || depth > 4) return undefined;
        const inner = type === 'BackboneElement' || type === 'Element' ? this.fill(path, depth + 1) : this.fill(type, depth + 1);
        return Object.keys(inner).length === 0 ? undefined : inner;
      }
    }
  }
}

/** Elements whose content Safe Harbor permits and medledger keeps (structure and clinical terms). */
const KEPT_ELEMENTS = [
  'Address.country',
  'Address.state',
  'CodeableConcept.text',
  'Coding.display',
  'Coding.system',
  'Coding.version',
  'Device.manufacturer',
  'Device.modelNumber',
  ...['Quantity', 'Age', 'Count', 'Distance', 'Duration', 'SimpleQuantity', 'MoneyQuantity'].flatMap((q) => [`${q}.system`, `${q}.unit`]),
  'Reference.type',
  'SampledData.data',
];

describe.each(LEVELS)('coverage of every R4 element of the record types, %s', (level) => {
  const types = ['Patient', 'Condition', 'Observation', 'DiagnosticReport', 'MedicationRequest', 'DocumentReference', 'Coverage', 'Device'];

  it.each(types)('%s: no free text, identifier or full date survives outside the kept elements', (type) => {
    const synth = new Synthesiser();
    const input = synth.resource(type);
    const { resource } = deidentify(input, ctx(level));
    const json = JSON.stringify(resource);
    const survivors = new Set([...synth.markers].filter(([marker]) => json.includes(marker)).map(([, path]) => path));
    const unexpected = [...survivors].filter((p) => {
      const element = p.split('.').slice(-2).join('.');
      // implicitRules is a modifier (the rules the content follows); canonicals name definitions.
      return !KEPT_ELEMENTS.includes(element) && !p.endsWith('.implicitRules') && path2Type[p] !== 'canonical';
    });
    expect(unexpected).toEqual([]);
    expect(synth.markers.size).toBeGreaterThan(10);
    const datesLeft = [...synth.dates].filter(([day]) => json.includes(day)).map(([, path]) => path);
    expect(datesLeft).toEqual([]);
    if (level === 'anonymised') expect(strings(resource).filter((s) => /^[0-9]{4}-[0-9]{2}/.test(s))).toEqual([]);
  });
});
