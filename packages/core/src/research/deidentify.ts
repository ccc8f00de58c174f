/**
 * De-identification of one FHIR R4 resource for a study, by the HIPAA Safe Harbor method (45 CFR
 * 164.514(b)(2)): runs the rule table of `safe-harbor.ts` over a copy of the resource, selecting
 * elements with the `fhirpath` engine and its R4 model, and reports which rules acted (paths and
 * methods, never values, so the report can go to the audit log).
 *
 * Pseudonyms and date shifts are keyed by the study key, which the custodians hold and the
 * researcher never sees: the same patient gets the same pseudonym and the same shift throughout
 * a study, a different one in another study, and nobody without the key can recompute either.
 * 164.514(c) allows such a re-identification code when it cannot be translated back without
 * what the custodians keep. Time enters only as `referenceTime`; nothing here reads a clock.
 *
 * Limits: codes, numbers and booleans are kept wherever they are (a number in an extension may
 * be a count or an identifier, and nothing tells which); files stored beside a DocumentReference
 * are not looked at, only described (contentType and size), so whoever releases them must
 * withhold images and biometric files; and the rules assume every Patient reference in the
 * resource is to the patient of `patientCode`.
 */
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { toHex } from '../codec/bytes.ts';
import type { JsonObject, JsonValue } from '../codec/canonical-json.ts';
import { hmacSha256 } from '../crypto/hash.ts';
import { MedledgerError } from '../errors.ts';
import {
  AGE_OVER_89_EXTENSION,
  RestrictedZip3,
  SafeHarborRules,
  STUDY_PSEUDONYM_SYSTEM,
  UnpseudonymisedReferenceTypes,
  type DeidentificationTarget,
  type Generalisation,
  type Method,
  type Pseudonymisation,
  type RuleAction,
  type SafeHarborKind,
  type SafeHarborRule,
} from './safe-harbor.ts';

export type { DeidentificationTarget, Method, SafeHarborKind } from './safe-harbor.ts';

export interface DeidentifyContext {
  level: DeidentificationTarget;
  /** 32-byte secret per study, held by the custodians and never by the researcher */
  studyKey: Uint8Array;
  /** the patient's ledger code (64 hex, itself a keyed hash of the national id) */
  patientCode: string;
  /** ms since epoch: the reference instant for ages (passed in; never read a clock) */
  referenceTime: number;
}

export interface DeidentifyResult {
  /** a new object; the input is never mutated */
  resource: JsonObject;
  /** what was done, by kind, rule path and method — paths only, never values (this goes to audit logs) */
  applied: { kind: SafeHarborKind; path: string; method: Method }[];
}

// Domain separation: each derivation from the study key has its own label.
const PSEUDONYM_LABEL = 'medledger/study-pseudonym/v1';
const DATE_SHIFT_LABEL = 'medledger/date-shift/v1';
const RESOURCE_LABEL = 'medledger/resource-pseudonym/v1';
const PATIENT_CODE = /^[0-9a-f]{64}$/;
/** Shifts are whole days in [-MAX_SHIFT_DAYS, MAX_SHIFT_DAYS] without 0. */
const MAX_SHIFT_DAYS = 182;
const MS_PER_DAY = 86_400_000;
const UCUM = 'http://unitsofmeasure.org';

/** Stable within a study, different across studies, not invertible without the study key: e.g. HMAC(studyKey, domain-separated patientCode), 32 hex chars */
export function studyPseudonym(studyKey: Uint8Array, patientCode: string): string {
  checkKeyAndCode(studyKey, patientCode);
  return toHex(hmacSha256(studyKey, `${PSEUDONYM_LABEL}\n${patientCode}`)).slice(0, 32);
}

/** Per patient and study, a whole number of days in [-182, 182] excluding 0, derived from the study key (keeps intervals between a patient's dates) */
export function dateShiftDays(studyKey: Uint8Array, patientCode: string): number {
  checkKeyAndCode(studyKey, patientCode);
  const mac = hmacSha256(studyKey, `${DATE_SHIFT_LABEL}\n${patientCode}`);
  // 364 outcomes; the modulo bias of a 32-bit draw is below 1e-7.
  const r = (((mac[0]! << 24) | (mac[1]! << 16) | (mac[2]! << 8) | mac[3]!) >>> 0) % (2 * MAX_SHIFT_DAYS);
  return r < MAX_SHIFT_DAYS ? r - MAX_SHIFT_DAYS : r - MAX_SHIFT_DAYS + 1;
}

/** Runs every Safe Harbor rule, in table order, on a copy of `resource`. */
export function deidentify(resource: JsonObject, ctx: DeidentifyContext): DeidentifyResult {
  checkContext(ctx);
  if (!isObject(resource) || typeof resource.resourceType !== 'string') {
    throw new MedledgerError('FHIR_INVALID', { details: 'De-identification needs a FHIR resource with a resourceType.' });
  }
  const copy = structuredClone(resource);
  const run = new RuleRun(copy, ctx);
  for (const rule of SafeHarborRules) run.apply(rule);
  tidyObject(copy);
  return { resource: copy, applied: run.applied() };
}

// ---------------------------------------------------------------------------------------------
// Checks

function checkKeyAndCode(studyKey: Uint8Array, patientCode: string): void {
  if (!(studyKey instanceof Uint8Array) || studyKey.length !== 32) {
    throw new MedledgerError('BAD_REQUEST', { details: 'The study key must be 32 bytes.' });
  }
  if (typeof patientCode !== 'string' || !PATIENT_CODE.test(patientCode)) {
    throw new MedledgerError('BAD_REQUEST', { details: 'The patient code must be 64 lower-case hex digits.' });
  }
}

function checkContext(ctx: DeidentifyContext): void {
  if (ctx.level !== 'pseudonymised' && ctx.level !== 'anonymised') {
    throw new MedledgerError('BAD_REQUEST', { details: 'The de-identification level must be pseudonymised or anonymised.' });
  }
  checkKeyAndCode(ctx.studyKey, ctx.patientCode);
  if (typeof ctx.referenceTime !== 'number' || !Number.isFinite(ctx.referenceTime)) {
    throw new MedledgerError('BAD_REQUEST', { details: 'The reference time must be a finite number of milliseconds.' });
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// FHIRPath: compiled once per rule; results are the library's resource nodes, which point at the
// very objects of the resource and at their parents.

/** The fields of fhirpath's ResourceNode this module reads. */
interface FhirNode {
  readonly parentResNode: FhirNode | null;
  /** The JSON key, without the type suffix when the node was reached as a choice (`value`). */
  readonly propName?: string | undefined;
  readonly index?: number | null | undefined;
  readonly data: unknown;
  /** For a primitive: its `_name` sibling (id and extensions). */
  readonly _data?: unknown;
  /** The R4 type, or null for extensions and for elements the model does not define. */
  readonly fhirNodeDataType?: string | null | undefined;
}

function isNode(v: unknown): v is FhirNode {
  return typeof v === 'object' && v !== null && 'parentResNode' in v && 'data' in v;
}

type Select = (resource: JsonObject) => FhirNode[];
const compiled = new Map<string, Select>();

function selector(path: string): Select {
  let select = compiled.get(path);
  if (select === undefined) {
    const evaluate = fhirpath.compile(path, r4, { resolveInternalTypes: false });
    select = (resource) => {
      try {
        return (evaluate(resource) as unknown[]).filter(isNode);
      } catch {
        // The engine refuses an element of the wrong type (a coding's system that is an array):
        // the resource is not valid FHIR, said by the rule's path and never by the value.
        throw new MedledgerError('FHIR_INVALID', { details: `The resource does not fit the R4 model at ${path}.` });
      }
    };
    compiled.set(path, select);
  }
  return select;
}

/** Where an element lives: `container[key]`, or `container[key][index]` in an array. */
interface Slot {
  readonly container: JsonObject;
  readonly key: string;
  readonly index: number | null;
}

/** The slot of a node; null for the root. */
function locate(node: FhirNode): Slot | null {
  const parent = node.parentResNode;
  if (parent === null || node.propName === undefined) return null;
  // The extensions of a primitive hang off its `_name` sibling, which the node carries as _data.
  const container = isObject(parent.data) ? parent.data : isObject(parent._data) ? parent._data : null;
  if (container === null) return null;
  const index = typeof node.index === 'number' ? node.index : null;
  if (Object.hasOwn(container, node.propName)) return { container, key: node.propName, index };
  // Reached as a choice (`Observation.value`): the JSON key carries the type (`valueQuantity`).
  const name = node.propName;
  for (const key of Object.keys(container)) {
    if (key.length > name.length && key.startsWith(name) && /^[A-Z]/.test(key.slice(name.length))) {
      const slot = { container, key, index };
      if (read(slot) === node.data) return slot;
    }
  }
  return null;
}

function read(slot: Slot): JsonValue | undefined {
  const v = slot.container[slot.key];
  if (slot.index === null) return v;
  return Array.isArray(v) ? v[slot.index] : undefined;
}

function write(slot: Slot, value: JsonValue): void {
  if (slot.index === null) {
    slot.container[slot.key] = value;
    return;
  }
  const array = slot.container[slot.key];
  if (Array.isArray(array)) array[slot.index] = value;
}

/**
 * Removes an element and its `_name` sibling. Array items become null until the end of the run,
 * so the positions of the nodes still to visit do not move; `tidyObject` then drops them.
 */
function remove(slot: Slot): void {
  const twin = `_${slot.key}`;
  if (slot.index === null) {
    Reflect.deleteProperty(slot.container, slot.key);
    Reflect.deleteProperty(slot.container, twin);
    return;
  }
  for (const key of [slot.key, twin]) {
    const array = slot.container[key];
    if (Array.isArray(array) && slot.index < array.length) array[slot.index] = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The run of the table over one resource

class RuleRun {
  private readonly root: JsonObject;
  private readonly ctx: DeidentifyContext;
  private readonly shiftDays: number;
  private readonly pseudonym: string;
  /** Slots an earlier rule kept or transformed: `key` or `key[index]`, per container. */
  private readonly settled = new Map<JsonObject, Set<string>>();
  private readonly log = new Map<string, { kind: SafeHarborKind; path: string; method: Method }>();

  constructor(root: JsonObject, ctx: DeidentifyContext) {
    this.root = root;
    this.ctx = ctx;
    this.shiftDays = dateShiftDays(ctx.studyKey, ctx.patientCode);
    this.pseudonym = studyPseudonym(ctx.studyKey, ctx.patientCode);
  }

  applied(): DeidentifyResult['applied'] {
    return [...this.log.values()];
  }

  apply(rule: SafeHarborRule): void {
    const action = rule[this.ctx.level];
    for (const node of selector(rule.path)(this.root)) {
      if (rule.unmodelled === true && !isUnmodelled(node)) continue;
      if (this.isSettled(node)) continue;
      const method = this.act(node, action, rule);
      if (method === null) continue;
      const entry = { kind: rule.kind, path: rule.path, method };
      this.log.set(`${entry.kind} ${entry.path} ${entry.method}`, entry);
    }
  }

  private settle(slot: Slot): void {
    let slots = this.settled.get(slot.container);
    if (slots === undefined) this.settled.set(slot.container, (slots = new Set()));
    slots.add(slot.index === null ? slot.key : `${slot.key}[${slot.index}]`);
  }

  /** True when the node, or an element around it, was already decided by an earlier rule. */
  private isSettled(node: FhirNode): boolean {
    for (let n: FhirNode | null = node; n !== null; n = n.parentResNode) {
      const slot = locate(n);
      if (slot === null) continue;
      const slots = this.settled.get(slot.container);
      if (slots?.has(slot.key) === true || (slot.index !== null && slots?.has(`${slot.key}[${slot.index}]`) === true)) return true;
    }
    return false;
  }

  /** Carries out one action on one node; returns the method performed, or null if nothing was done. */
  private act(node: FhirNode, action: RuleAction, rule: SafeHarborRule): Method | null {
    if (action.method === 'pseudonymise' && action.to === 'patientIdentifier') {
      // Selects a Patient resource itself, so it may be the root, which has no slot.
      if (!isObject(node.data)) return null;
      node.data.identifier = [{ system: STUDY_PSEUDONYM_SYSTEM, value: this.pseudonym }];
      this.settle({ container: node.data, key: 'identifier', index: null });
      return 'pseudonymise';
    }
    const slot = locate(node);
    if (slot === null) return null;
    const value = read(slot);
    // Gone already (an earlier match of this rule), or a primitive present only through `_name`.
    if (value === undefined || (value === null && action.method !== 'redact')) return null;
    switch (action.method) {
      case 'redact':
        if (value === null && !Array.isArray(slot.container[`_${slot.key}`])) return null;
        remove(slot);
        return 'redact';
      case 'keep':
        this.settle(slot);
        return 'keep';
      case 'dateShift':
        return this.replace(slot, shiftDate(dateOf(value, rule), this.shiftDays, rule), 'dateShift');
      case 'generalise':
        return this.generalise(slot, value, action.to, rule);
      case 'pseudonymise':
        return this.pseudonymise(slot, value, action.to);
    }
  }

  /** Writes `next` (or keeps the value when it is unchanged) and settles the slot. */
  private replace(slot: Slot, next: JsonValue, method: Method): Method {
    const changed = JSON.stringify(next) !== JSON.stringify(read(slot));
    if (changed) write(slot, next);
    this.settle(slot);
    return changed ? method : 'keep';
  }

  private generalise(slot: Slot, value: JsonValue, to: Generalisation, rule: SafeHarborRule): Method | null {
    switch (to) {
      case 'year':
        return this.replace(slot, dateOf(value, rule).year, 'generalise');
      case 'zip3': {
        const zip = typeof value === 'string' ? zip3(value, slot.container.country) : null;
        if (zip === null) {
          remove(slot);
          return 'redact';
        }
        return this.replace(slot, zip, 'generalise');
      }
      case 'age90': {
        if (!isObject(value) || !isNinetyOrMore(value)) return null;
        // Range bounds are SimpleQuantity, which may not carry a comparator (sqty-1).
        const bound = slot.key === 'low' || slot.key === 'high';
        const ninety: JsonObject = bound
          ? { value: 90, unit: 'years', system: UCUM, code: 'a' }
          : { value: 90, comparator: '>=', unit: 'years', system: UCUM, code: 'a' };
        return this.replace(slot, ninety, 'generalise');
      }
      case 'birthDateOver89': {
        if (ageAt(dateOf(value, rule), this.ctx.referenceTime) < 90) return null;
        remove(slot);
        const extensions = Array.isArray(slot.container.extension) ? slot.container.extension : (slot.container.extension = []);
        extensions.push({ url: AGE_OVER_89_EXTENSION, valueBoolean: true });
        this.settle({ container: slot.container, key: 'extension', index: extensions.length - 1 });
        return 'generalise';
      }
    }
  }

  private pseudonymise(slot: Slot, value: JsonValue, to: Pseudonymisation): Method | null {
    if (typeof value !== 'string') return null;
    switch (to) {
      case 'patientIdentifier':
        return null; // acts on the Patient resource, in act()
      case 'patientId':
        return this.replace(slot, this.pseudonym, 'pseudonymise');
      case 'resourceId': {
        const type = slot.container.resourceType;
        if (typeof type !== 'string') return null;
        return this.replace(slot, this.resourcePseudonym(type, value), 'pseudonymise');
      }
      case 'reference': {
        if (value.startsWith('#')) return this.replace(slot, value, 'keep');
        const ref = REFERENCE.exec(value);
        if (ref === null) {
          // Conditional (`Patient?identifier=...`), urn: or otherwise unreadable: nothing to keep.
          remove(slot);
          return 'redact';
        }
        const type = ref[1]!;
        const id = ref[2]!;
        if (type === 'Patient') return this.replace(slot, `Patient/${this.pseudonym}`, 'pseudonymise');
        if ((UnpseudonymisedReferenceTypes as readonly string[]).includes(type)) {
          // The base URL (a server address) and the version go; the provider stays.
          return this.replace(slot, `${type}/${id}`, 'generalise');
        }
        return this.replace(slot, `${type}/${this.resourcePseudonym(type, id)}`, 'pseudonymise');
      }
    }
  }

  /** A record's id under the study key: the same for the resource and for references to it. */
  private resourcePseudonym(type: string, id: string): string {
    return toHex(hmacSha256(this.ctx.studyKey, `${RESOURCE_LABEL}\n${this.ctx.patientCode}\n${type}/${id}`)).slice(0, 32);
  }
}

/** `[base/]Type/id[/_history/version]` (FHIR R4 references, §2.3.0 of the RESTful API). */
const REFERENCE = /^(?:[A-Za-z][A-Za-z0-9+.-]*:\/\/.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[A-Za-z0-9.-]{1,64})?$/;

/** An element the R4 model does not define (extensions are untyped in fhirpath too, but defined). */
function isUnmodelled(node: FhirNode): boolean {
  return (node.fhirNodeDataType ?? null) === null && node.propName !== 'extension' && node.propName !== 'modifierExtension';
}

// ---------------------------------------------------------------------------------------------
// Dates: FHIR date, dateTime and instant (R4 §2.24.0.1), kept at their own precision

interface FhirDate {
  readonly year: string;
  readonly month: number | null;
  readonly day: number | null;
  /** `Thh:mm:ss...` and the zone, unchanged by a shift of whole days. */
  readonly time: string;
}

const FHIR_DATE =
  /^([0-9]{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](?::([0-5][0-9]|60)(?:\.[0-9]+)?)?(?:Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?)?)?)?$/;

function dateOf(value: JsonValue, rule: SafeHarborRule): FhirDate {
  const m = typeof value === 'string' ? FHIR_DATE.exec(value) : null;
  const date: FhirDate | null =
    m === null
      ? null
      : { year: m[1]!, month: m[2] === undefined ? null : Number(m[2]), day: m[3] === undefined ? null : Number(m[3]), time: m[4] ?? '' };
  if (date === null || (date.day !== null && date.day > daysInMonth(Number(date.year), date.month!))) {
    // The rule path says where; the value itself stays out of errors (STYLE rule 7).
    throw new MedledgerError('FHIR_INVALID', { details: 'A date element is not a FHIR date.', payload: { rule: rule.path } });
  }
  return date;
}

function shiftDate(date: FhirDate, days: number, rule: SafeHarborRule): string {
  // A year alone is permitted and a shift of days cannot apply to it.
  if (date.month === null) return date.year;
  // Month precision moves with the middle of the month, so the shift rounds to whole months.
  const [y, m, d] = civilFromDays(daysFromCivil(Number(date.year), date.month, date.day ?? 15) + days);
  if (y < 1 || y > 9999)
    throw new MedledgerError('FHIR_INVALID', { details: 'A shifted date leaves years 0001-9999.', payload: { rule: rule.path } });
  const ym = `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}`;
  return date.day === null ? ym : `${ym}-${String(d).padStart(2, '0')}${date.time}`;
}

/** Completed years at `referenceTime`, counting from the earliest day the (partial) date allows. */
function ageAt(birth: FhirDate, referenceTime: number): number {
  const [y, m, d] = civilFromDays(Math.floor(referenceTime / MS_PER_DAY));
  const bm = birth.month ?? 1;
  const bd = birth.day ?? 1;
  return y - Number(birth.year) - (m < bm || (m === bm && d < bd) ? 1 : 0);
}

function daysInMonth(year: number, month: number): number {
  return daysFromCivil(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1) - daysFromCivil(year, month, 1);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (years counted in 400-year eras). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1; // from 1 March
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

// ---------------------------------------------------------------------------------------------
// ZIP codes and ages

const UNITED_STATES = /^(US|USA|United States( of America)?)$/i;

/** First 3 digits of a US ZIP (or "000" in a restricted area); null when not a US ZIP code. */
function zip3(postalCode: string, country: JsonValue | undefined): string | null {
  if (country !== undefined && !(typeof country === 'string' && UNITED_STATES.test(country.trim()))) return null;
  const m = /^([0-9]{3})(?:[0-9]{2}(?:-?[0-9]{4})?)?$/.exec(postalCode.trim());
  if (m === null) return null;
  return (RestrictedZip3 as readonly string[]).includes(m[1]!) ? '000' : m[1]!;
}

/** Years per UCUM time unit an age is written in; an age without a known unit counts in years. */
const YEARS_PER_UNIT: Readonly<Record<string, number>> = {
  a: 1,
  mo: 1 / 12,
  wk: 7 / 365.25,
  d: 1 / 365.25,
  h: 1 / 8766,
  min: 1 / 525_960,
};

function isNinetyOrMore(quantity: JsonObject): boolean {
  const value = quantity.value;
  if (typeof value !== 'number') return false;
  const unit = typeof quantity.code === 'string' ? quantity.code : typeof quantity.unit === 'string' ? quantity.unit : 'a';
  const perUnit = YEARS_PER_UNIT[unit] ?? 1;
  return Math.floor(value * perUnit + 1e-9) >= 90;
}

// ---------------------------------------------------------------------------------------------
// Tidying: what removals leave behind is not valid FHIR JSON (nulls in arrays, empty objects and
// arrays, extensions without a value), so it goes too.

/** Tidies `o` in place; true when nothing is left in it. */
function tidyObject(o: JsonObject): boolean {
  for (const key of Object.keys(o)) {
    const value = o[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      if (key.startsWith('_') && Array.isArray(o[key.slice(1)])) continue; // done with its primitive
      tidyArray(o, key, value);
    } else if (isObject(value) && tidyObject(value)) {
      Reflect.deleteProperty(o, key);
    }
  }
  return Object.keys(o).length === 0;
}

function tidyArray(o: JsonObject, key: string, values: JsonValue[]): void {
  const twinKey = `_${key}`;
  const twinValue = o[twinKey];
  const twin = Array.isArray(twinValue) ? twinValue : null;
  const gone = (v: JsonValue | undefined): boolean =>
    v === undefined || v === null || (isObject(v) && (tidyObject(v) || isEmptyExtension(key, v)));
  const keepIndex: number[] = [];
  values.forEach((v, i) => {
    const primitiveGone = gone(v);
    const twinGone = twin === null || gone(twin[i]);
    if (!(primitiveGone && twinGone)) keepIndex.push(i);
    // A removed object leaves a null only where its primitive twin still needs the position.
    if (primitiveGone && !twinGone) values[i] = null;
    if (twin !== null && twinGone && !primitiveGone) twin[i] = null;
  });
  const kept = keepIndex.map((i) => values[i]!);
  if (kept.length === 0) {
    Reflect.deleteProperty(o, key);
    Reflect.deleteProperty(o, twinKey);
    return;
  }
  o[key] = kept;
  if (twin !== null) {
    const keptTwin = keepIndex.map((i) => twin[i] ?? null);
    if (keptTwin.every((v) => v === null)) Reflect.deleteProperty(o, twinKey);
    else o[twinKey] = keptTwin;
  }
}

/**
 * An extension whose value was removed and that holds no extensions says nothing but its url,
 * and breaks ext-1. A modifierExtension stays even then: dropping it would change the meaning
 * of the element it modifies.
 */
function isEmptyExtension(key: string, v: JsonObject): boolean {
  return key === 'extension' && Object.keys(v).every((k) => k === 'url' || k === 'id');
}
