/**
 * FHIR R4 (4.0.1) checks for the records a vault accepts: six resource types, their base-spec
 * required elements, required-binding codes and rule invariants, typed checks on the elements
 * they commonly carry, and medledger's rule that a DocumentReference's files travel beside it.
 * Errors name a JSON-pointer path and a rule, never a value: values may identify a patient.
 */
import type {
  Address,
  Condition,
  ContactPoint,
  DiagnosticReport,
  DocumentReference,
  DocumentReferenceRelatesTo,
  HumanName,
  Identifier,
  MedicationRequest,
  Narrative,
  Observation,
  Patient,
  PatientLink,
  Quantity,
} from '@medplum/fhirtypes';
import { canonicalBytes } from '../codec/canonical-json.ts';
import { isMedledgerError, MedledgerError } from '../errors.ts';

export const AcceptedResourceTypes = [
  'Patient',
  'Condition',
  'Observation',
  'DiagnosticReport',
  'MedicationRequest',
  'DocumentReference',
] as const;
export type AcceptedResourceType = (typeof AcceptedResourceTypes)[number];
export type AcceptedResource = Patient | Condition | Observation | DiagnosticReport | MedicationRequest | DocumentReference;

/** Largest canonical JSON of the resource itself; attachments travel separately. */
export const MAX_RESOURCE_BYTES = 1_048_576;
/** Largest file one DocumentReference content may describe. */
export const MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024;
/** Most `content` entries (files) one DocumentReference may carry. */
export const MAX_ATTACHMENTS = 8;
/** The extension on `content[i].attachment` carrying the file's SHA-256 (64 lower-case hex). */
export const ATTACHMENT_SHA256_EXTENSION = 'https://medledger.dev/fhir/StructureDefinition/attachment-sha256';

export interface ValidateResourceOptions {
  /** Largest canonical JSON accepted, in bytes; MAX_RESOURCE_BYTES unless given. */
  maxBytes?: number;
}

/** What the vault needs to know of one DocumentReference file before its bytes arrive. */
export interface AttachmentDescriptor {
  /** position in `content`; the attachment's url is `attachment:<index>` */
  index: number;
  contentType: string;
  size: number;
  /** SHA-256 of the file, lower-case hex */
  sha256: string;
}

/**
 * Checks that `value` is a FHIR R4 resource of an accepted type and returns it typed. Checks, in
 * order, and throws at the first problem: a JSON object (FHIR_INVALID); an accepted
 * `resourceType` (FHIR_INVALID); canonical size ≤ maxBytes (RECORD_TOO_LARGE); then FHIR JSON
 * form, element types, required elements and codes, invariants and medledger's attachment rules
 * (FHIR_INVALID). Errors carry `payload.path` (JSON pointer) and `payload.rule`.
 */
export function validateResource(value: unknown, opts: ValidateResourceOptions = {}): AcceptedResource {
  if (!isJsonObject(value)) fail('', 'json-object', 'The resource is not a JSON object.');
  const resourceType = own(value, 'resourceType');
  if (!isAcceptedResourceType(resourceType)) {
    fail('/resourceType', 'resource-type', `/resourceType must be one of: ${AcceptedResourceTypes.join(', ')}.`);
  }
  const maxBytes = opts.maxBytes ?? MAX_RESOURCE_BYTES;
  const size = resourceSize(value);
  if (size > maxBytes) {
    throw new MedledgerError('RECORD_TOO_LARGE', {
      details: `The resource is ${size} bytes of canonical JSON; at most ${maxBytes} are accepted.`,
      payload: { path: '', size, maxBytes },
    });
  }
  checkJsonForm(value, '');
  checkElements(value, '', DOMAIN_RESOURCE);
  switch (resourceType) {
    case 'Patient':
      checkElements(value, '', PATIENT);
      break;
    case 'Condition':
      checkElements(value, '', CONDITION);
      checkConditionInvariants(value);
      break;
    case 'Observation':
      checkElements(value, '', OBSERVATION);
      // obs-6: dataAbsentReason SHALL only be present if Observation.value[x] is not present.
      if (has(value, 'dataAbsentReason') && choiceKeys(value, 'value').length > 0) {
        fail('/dataAbsentReason', 'obs-6', '/dataAbsentReason may only be present when value[x] is absent (obs-6).');
      }
      break;
    case 'DiagnosticReport':
      checkElements(value, '', DIAGNOSTIC_REPORT);
      break;
    case 'MedicationRequest':
      checkElements(value, '', MEDICATION_REQUEST);
      break;
    case 'DocumentReference':
      checkElements(value, '', { status: DOCUMENT_REFERENCE_STATUS });
      storedContents(own(value, 'content'));
      checkElements(value, '', DOCUMENT_REFERENCE);
      break;
  }
  return value as unknown as AcceptedResource;
}

/** The files a validated DocumentReference describes, in `content` order. */
export function attachmentDescriptors(doc: DocumentReference): AttachmentDescriptor[] {
  return storedContents(doc.content);
}

/** The files a validated resource describes: a DocumentReference's, none for the other types. */
export function describeAttachments(resource: AcceptedResource): AttachmentDescriptor[] {
  return resource.resourceType === 'DocumentReference' ? attachmentDescriptors(resource) : [];
}

/** `subject.reference` of a validated resource; null for a Patient or a resource without one. */
export function patientReferenceOf(resource: AcceptedResource): string | null {
  if (resource.resourceType === 'Patient') return null;
  return resource.subject?.reference ?? null;
}

export function isAcceptedResourceType(value: unknown): value is AcceptedResourceType {
  return typeof value === 'string' && (AcceptedResourceTypes as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// Errors, paths and JSON shape

type JsonRecord = Record<string, unknown>;
type Check = (value: unknown, path: string) => void;

function fail(path: string, rule: string, details: string): never {
  throw new MedledgerError('FHIR_INVALID', { details, payload: { path, rule } });
}

/** How a path reads in a sentence: the root pointer is the empty string. */
function where(path: string): string {
  return path === '' ? 'The resource' : path;
}

/** RFC 6901 pointer to `key` under `path`. */
function pointer(path: string, key: string | number): string {
  return `${path}/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

function isJsonObject(value: unknown): value is JsonRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function own(o: JsonRecord, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function has(o: JsonRecord, key: string): boolean {
  return own(o, key) !== undefined;
}

function resourceSize(value: JsonRecord): number {
  try {
    return canonicalBytes(value).length;
  } catch (cause) {
    // canonical-json refuses undefined, functions, NaN, class instances, lone surrogates…
    if (isMedledgerError(cause) && cause.code === 'TX_MALFORMED') {
      throw new MedledgerError('FHIR_INVALID', {
        details: 'The resource holds a value JSON cannot carry.',
        payload: { path: '', rule: 'json-value' },
        cause,
      });
    }
    throw cause;
  }
}

/** FHIR element names (camelCase), `resourceType`, and `_name` primitive extensions (json.html). */
const ELEMENT_NAME = /^_?[a-z][A-Za-z0-9]*$/;

/**
 * FHIR JSON form (R4 json.html), over the whole tree: keys are element names (an offending key
 * is not echoed, only its parent's path); no null values except as array place-holders beside a
 * `_name` array; no empty objects, arrays or strings (ele-1); `_name` holds an Element; and every
 * `extension` / `modifierExtension` is an array of Extensions. Depth is bounded by canonicalBytes.
 */
function checkJsonForm(value: unknown, path: string): void {
  if (Array.isArray(value)) {
    if (value.length === 0) fail(path, 'empty', `${where(path)} is an empty array; FHIR JSON omits empty elements.`);
    value.forEach((item, i) => {
      if (item !== null) checkJsonForm(item, pointer(path, i));
    });
    return;
  }
  if (isJsonObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) fail(path, 'empty', `${where(path)} is an empty object; FHIR JSON omits empty elements.`);
    for (const key of keys) {
      if (!ELEMENT_NAME.test(key)) {
        fail(path, 'element-name', `${where(path)} has a key that is not a FHIR element name.`);
      }
    }
    for (const key of keys) {
      const at = pointer(path, key);
      const item = value[key];
      if (item === null) fail(at, 'null', `${at} is null; FHIR JSON omits absent elements.`);
      if (key.startsWith('_') && !isJsonObject(item) && !Array.isArray(item)) {
        fail(at, 'type', `${at} must be an Element (or an array of them) extending a primitive.`);
      }
      if (key === 'extension' || key === 'modifierExtension') {
        if (!Array.isArray(item)) fail(at, 'cardinality', `${at} must be an array.`);
        item.forEach((ext, i) => {
          extension(ext, pointer(at, i));
        });
      }
      checkJsonForm(item, at);
    }
    return;
  }
  if (value === '') fail(path, 'empty', `${where(path)} is an empty string; FHIR JSON omits empty elements.`);
}

// ---------------------------------------------------------------------------------------------
// Element tables: cardinality, choice types [x], and the check of each element's type

interface ElementSpec {
  readonly kind: 'element';
  readonly check: Check;
  readonly min: 0 | 1;
  readonly many: boolean;
}
interface ChoiceSpec {
  readonly kind: 'choice';
  /** type suffix (as in valueQuantity) → check */
  readonly types: Readonly<Record<string, Check>>;
  readonly min: 0 | 1;
}
/** Element name (or `name[x]` for a choice) → spec. Elements not listed are only form-checked. */
type Shape = Readonly<Record<string, ElementSpec | ChoiceSpec>>;

function opt(check: Check): ElementSpec {
  return { kind: 'element', check, min: 0, many: false };
}
function req(check: Check): ElementSpec {
  return { kind: 'element', check, min: 1, many: false };
}
function list(check: Check): ElementSpec {
  return { kind: 'element', check, min: 0, many: true };
}
function choice(types: Record<string, Check>): ChoiceSpec {
  return { kind: 'choice', types, min: 0 };
}
function reqChoice(types: Record<string, Check>): ChoiceSpec {
  return { kind: 'choice', types, min: 1 };
}

function checkElements(o: JsonRecord, path: string, shape: Shape): void {
  for (const [name, spec] of Object.entries(shape)) {
    if (spec.kind === 'choice') {
      checkChoice(o, path, name.slice(0, -'[x]'.length), spec);
      continue;
    }
    const at = pointer(path, name);
    const value = own(o, name);
    // A primitive may be present only through its `_name` extensions (e.g. data-absent-reason).
    const extended = own(o, `_${name}`);
    if (value === undefined) {
      if (spec.min === 1 && extended === undefined) fail(at, 'required', `${at} is required.`);
      continue;
    }
    if (!spec.many) {
      if (Array.isArray(value)) fail(at, 'cardinality', `${at} must be a single value, not an array.`);
      spec.check(value, at);
      continue;
    }
    if (!Array.isArray(value)) fail(at, 'cardinality', `${at} must be an array.`);
    value.forEach((item, i) => {
      if (item === null) {
        // json.html: null only holds a place in a primitive array whose `_name` twin has the extension.
        const twin = Array.isArray(extended) ? (extended[i] as unknown) : null;
        if (twin === null || twin === undefined) fail(pointer(at, i), 'null', `${pointer(at, i)} is null.`);
        return;
      }
      spec.check(item, pointer(at, i));
    });
  }
}

/** Keys of the choice element `prefix[x]` present in `o`, e.g. valueQuantity for `value`. */
function choiceKeys(o: JsonRecord, prefix: string): string[] {
  return Object.keys(o).filter((k) => k.startsWith(prefix) && /^[A-Z]/.test(k.slice(prefix.length)));
}

function checkChoice(o: JsonRecord, path: string, prefix: string, spec: ChoiceSpec): void {
  const keys = choiceKeys(o, prefix);
  if (keys.length === 0) {
    if (spec.min === 1) fail(pointer(path, `${prefix}[x]`), 'required', `${pointer(path, `${prefix}[x]`)} is required.`);
    return;
  }
  if (keys.length > 1) {
    fail(pointer(path, keys[1]!), 'choice', `${pointer(path, `${prefix}[x]`)} may be present in one type only.`);
  }
  const key = keys[0]!;
  const at = pointer(path, key);
  const check = Object.hasOwn(spec.types, key.slice(prefix.length)) ? spec.types[key.slice(prefix.length)] : undefined;
  if (check === undefined) {
    fail(at, 'choice', `${at} is not a type ${prefix}[x] allows (${Object.keys(spec.types).join(', ')}).`);
  }
  if (Array.isArray(own(o, key))) fail(at, 'cardinality', `${at} must be a single value, not an array.`);
  check(own(o, key), at);
}

// ---------------------------------------------------------------------------------------------
// Primitive types (R4 datatypes.html §2.24.0.1: the regexes are the spec's)

function primitive(typeName: string, test: (v: unknown) => boolean): Check {
  return (v, path) => {
    if (!test(v)) fail(path, 'type', `${path} is not a FHIR ${typeName}.`);
  };
}
function matching(re: RegExp): (v: unknown) => boolean {
  return (v) => typeof v === 'string' && re.test(v);
}

const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const CODE = /^[^\s]+(\s[^\s]+)*$/;
const URI = /^\S*$/;
const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const ZONE = '(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';
const CLOCK = '([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?';
const DATE = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`);
const DATE_TIME = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T${CLOCK}${ZONE})?)?)?$`);
const INSTANT = new RegExp(`^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T${CLOCK}${ZONE}$`);
const TIME = new RegExp(`^${CLOCK}$`);
/** BCP 13 / RFC 6838 media type with optional parameters (Attachment.contentType). */
const MIME_TYPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=([A-Za-z0-9!#$&^_.+-]+|"[^"\\]*"))*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** "Dates SHALL be valid dates": the regexes allow 2023-02-31, the calendar does not. */
function isCalendarDate(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
  if (!m) return true;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

const str = primitive('string', (v) => typeof v === 'string' && v.length > 0);
const markdown = primitive('markdown', (v) => typeof v === 'string' && v.length > 0);
const boolean = primitive('boolean', (v) => typeof v === 'boolean');
const decimal = primitive('decimal', (v) => typeof v === 'number' && Number.isFinite(v));
const integer = primitive('integer', (v) => typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v <= 2 ** 31 - 1);
const unsignedInt = primitive('unsignedInt', (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2 ** 31 - 1);
const positiveInt = primitive('positiveInt', (v) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 2 ** 31 - 1);
const id = primitive('id', matching(ID));
const code = primitive('code', matching(CODE));
const uri = primitive('uri', matching(URI));
const date = primitive('date', (v) => matching(DATE)(v) && isCalendarDate(v as string));
const dateTime = primitive('dateTime', (v) => matching(DATE_TIME)(v) && isCalendarDate(v as string));
const instant = primitive('instant', (v) => matching(INSTANT)(v) && isCalendarDate(v as string));
const time = primitive('time', matching(TIME));
const base64Binary = primitive('base64Binary', (v) => {
  if (typeof v !== 'string') return false;
  const compact = v.replace(/\s+/g, '');
  return compact.length > 0 && compact.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(compact);
});
const mimeType = primitive('MIME type (BCP 13)', matching(MIME_TYPE));
const xhtml = primitive('xhtml <div>', (v) => typeof v === 'string' && /^\s*<div[\s>]/.test(v));

/** A `code` with a required binding: the value SHALL be one of the table's codes. */
function bound(valueSet: string, table: Readonly<Record<string, true>>): Check {
  return (v, path) => {
    code(v, path);
    if (!Object.hasOwn(table, v as string)) {
      fail(path, 'binding', `${path} must be a code of ValueSet ${valueSet}: ${Object.keys(table).join(', ')}.`);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Complex types (R4 datatypes.html, references.html, narrative.html, extensibility.html)

function complex(typeName: string, shape: () => Shape, invariants?: (o: JsonRecord, path: string) => void): Check {
  return (v, path) => {
    if (!isJsonObject(v)) fail(path, 'type', `${where(path)} is not a FHIR ${typeName}.`);
    checkElements(v, path, shape());
    invariants?.(v, path);
  };
}

const coding = complex('Coding', () => ({
  system: opt(uri),
  version: opt(str),
  code: opt(code),
  display: opt(str),
  userSelected: opt(boolean),
}));
const codeableConcept = complex('CodeableConcept', () => ({ coding: list(coding), text: opt(str) }));
const reference = complex('Reference', () => ({ reference: opt(str), type: opt(uri), identifier: opt(identifier), display: opt(str) }));
const period = complex('Period', () => ({ start: opt(dateTime), end: opt(dateTime) }));
const identifier = complex('Identifier', () => ({
  use: opt(bound('identifier-use', IdentifierUse)),
  type: opt(codeableConcept),
  system: opt(uri),
  value: opt(str),
  period: opt(period),
  assigner: opt(reference),
}));
const quantity = complex(
  'Quantity',
  () => ({
    value: opt(decimal),
    comparator: opt(bound('quantity-comparator', QuantityComparator)),
    unit: opt(str),
    system: opt(uri),
    code: opt(code),
  }),
  (o, path) => {
    // qty-3: If a code for the unit is present, the system SHALL also be present.
    if (has(o, 'code') && !has(o, 'system')) {
      fail(pointer(path, 'system'), 'qty-3', `${pointer(path, 'system')} is required when a unit code is given (qty-3).`);
    }
  },
);
const range = complex('Range', () => ({ low: opt(quantity), high: opt(quantity) }));
const ratio = complex('Ratio', () => ({ numerator: opt(quantity), denominator: opt(quantity) }));
const sampledData = complex('SampledData', () => ({
  origin: req(quantity),
  period: req(decimal),
  factor: opt(decimal),
  lowerLimit: opt(decimal),
  upperLimit: opt(decimal),
  dimensions: req(positiveInt),
  data: opt(str),
}));
const timing = complex('Timing', () => ({ event: list(dateTime), repeat: opt(anyElement('Timing.repeat')), code: opt(codeableConcept) }));
const annotation = complex('Annotation', () => ({
  'author[x]': choice({ Reference: reference, String: str }),
  time: opt(dateTime),
  text: req(markdown),
}));
const attachment = complex(
  'Attachment',
  () => ({
    contentType: opt(mimeType),
    language: opt(code),
    data: opt(base64Binary),
    url: opt(uri),
    size: opt(unsignedInt),
    hash: opt(base64Binary),
    title: opt(str),
    creation: opt(dateTime),
  }),
  (o, path) => {
    // att-1: If the Attachment has data, it SHALL have a contentType.
    if (has(o, 'data') && !has(o, 'contentType')) {
      fail(pointer(path, 'contentType'), 'att-1', `${pointer(path, 'contentType')} is required with inline data (att-1).`);
    }
  },
);
const humanName = complex('HumanName', () => ({
  use: opt(bound('name-use', NameUse)),
  text: opt(str),
  family: opt(str),
  given: list(str),
  prefix: list(str),
  suffix: list(str),
  period: opt(period),
}));
const contactPoint = complex(
  'ContactPoint',
  () => ({
    system: opt(bound('contact-point-system', ContactPointSystem)),
    value: opt(str),
    use: opt(bound('contact-point-use', ContactPointUse)),
    rank: opt(positiveInt),
    period: opt(period),
  }),
  (o, path) => {
    // cpt-2: A system is required if a value is provided.
    if (has(o, 'value') && !has(o, 'system')) {
      fail(pointer(path, 'system'), 'cpt-2', `${pointer(path, 'system')} is required when a value is given (cpt-2).`);
    }
  },
);
const address = complex('Address', () => ({
  use: opt(bound('address-use', AddressUse)),
  type: opt(bound('address-type', AddressType)),
  text: opt(str),
  line: list(str),
  city: opt(str),
  district: opt(str),
  state: opt(str),
  postalCode: opt(str),
  country: opt(str),
  period: opt(period),
}));
const meta = complex('Meta', () => ({
  versionId: opt(id),
  lastUpdated: opt(instant),
  source: opt(uri),
  profile: list(uri),
  security: list(coding),
  tag: list(coding),
}));
const narrative = complex('Narrative', () => ({ status: req(bound('narrative-status', NarrativeStatus)), div: req(xhtml) }));
const dosage = complex('Dosage', () => ({
  sequence: opt(integer),
  text: opt(str),
  additionalInstruction: list(codeableConcept),
  patientInstruction: opt(str),
  timing: opt(timing),
  'asNeeded[x]': choice({ Boolean: boolean, CodeableConcept: codeableConcept }),
  site: opt(codeableConcept),
  route: opt(codeableConcept),
  method: opt(codeableConcept),
  doseAndRate: list(
    complex('Dosage.doseAndRate', () => ({
      type: opt(codeableConcept),
      'dose[x]': choice({ Range: range, Quantity: quantity }),
      'rate[x]': choice({ Ratio: ratio, Range: range, Quantity: quantity }),
    })),
  ),
  maxDosePerPeriod: opt(ratio),
  maxDosePerAdministration: opt(quantity),
  maxDosePerLifetime: opt(quantity),
}));

/** Any object: for backbone elements whose insides this module does not type. */
function anyElement(typeName: string): Check {
  return complex(typeName, () => ({}));
}

/** Extension (R4 extensibility.html): url 1..1; ext-1: either extension or value[x], not both. */
function extension(v: unknown, path: string): void {
  if (!isJsonObject(v)) fail(path, 'type', `${where(path)} is not a FHIR Extension.`);
  checkElements(v, path, { url: req(uri) });
  const values = choiceKeys(v, 'value');
  if (values.length > 1) fail(pointer(path, values[1]!), 'choice', `${pointer(path, 'value[x]')} may be present in one type only.`);
  if ((values.length === 1) === has(v, 'extension')) {
    fail(path, 'ext-1', `${path} must have either extensions or a value[x], not both (ext-1).`);
  }
}

/**
 * A CodeableConcept with a required binding to a code system's value set: codings of that
 * system carry one of its codes, and at least one such coding is present (binding strength
 * "required": the concept SHALL be from the value set).
 */
function boundConcept(system: string, table: Readonly<Record<string, true>>): Check {
  return (v, path) => {
    codeableConcept(v, path);
    const codings = own(v as JsonRecord, 'coding');
    let found = false;
    for (const [i, c] of (Array.isArray(codings) ? (codings as unknown[]) : []).entries()) {
      if (!isJsonObject(c) || own(c, 'system') !== system) continue;
      const at = pointer(pointer(pointer(path, 'coding'), i), 'code');
      if (!Object.hasOwn(table, own(c, 'code') as string)) {
        fail(at, 'binding', `${at} must be a code of ${system}: ${Object.keys(table).join(', ')}.`);
      }
      found = true;
    }
    if (!found) fail(path, 'binding', `${path} must hold a coding from ${system}.`);
  };
}

function hasCoding(concept: unknown, system: string, codes: readonly string[]): boolean {
  if (!isJsonObject(concept)) return false;
  const codings = own(concept, 'coding');
  return (
    Array.isArray(codings) &&
    codings.some((c: unknown) => isJsonObject(c) && own(c, 'system') === system && codes.includes(own(c, 'code') as string))
  );
}

// ---------------------------------------------------------------------------------------------
// Code tables of required bindings (R4 4.0.1 value sets; checked against @medplum/fhirtypes)

const IdentifierUse = { usual: true, official: true, temp: true, secondary: true, old: true } as const satisfies Record<
  NonNullable<Identifier['use']>,
  true
>;
const QuantityComparator = { '<': true, '<=': true, '>=': true, '>': true } as const satisfies Record<
  NonNullable<Quantity['comparator']>,
  true
>;
const NameUse = {
  usual: true,
  official: true,
  temp: true,
  nickname: true,
  anonymous: true,
  old: true,
  maiden: true,
} as const satisfies Record<NonNullable<HumanName['use']>, true>;
const ContactPointSystem = {
  phone: true,
  fax: true,
  email: true,
  pager: true,
  url: true,
  sms: true,
  other: true,
} as const satisfies Record<NonNullable<ContactPoint['system']>, true>;
const ContactPointUse = { home: true, work: true, temp: true, old: true, mobile: true } as const satisfies Record<
  NonNullable<ContactPoint['use']>,
  true
>;
const AddressUse = { home: true, work: true, temp: true, old: true, billing: true } as const satisfies Record<
  NonNullable<Address['use']>,
  true
>;
const AddressType = { postal: true, physical: true, both: true } as const satisfies Record<NonNullable<Address['type']>, true>;
const NarrativeStatus = { generated: true, extensions: true, additional: true, empty: true } as const satisfies Record<
  Narrative['status'],
  true
>;
/** http://hl7.org/fhir/ValueSet/administrative-gender */
const AdministrativeGender = { male: true, female: true, other: true, unknown: true } as const satisfies Record<
  NonNullable<Patient['gender']>,
  true
>;
/** http://hl7.org/fhir/ValueSet/link-type */
const LinkType = { 'replaced-by': true, replaces: true, refer: true, seealso: true } as const satisfies Record<PatientLink['type'], true>;
/** http://hl7.org/fhir/ValueSet/condition-clinical (required binding of Condition.clinicalStatus) */
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const ConditionClinical = { active: true, recurrence: true, relapse: true, inactive: true, remission: true, resolved: true } as const;
/** http://hl7.org/fhir/ValueSet/condition-ver-status (required binding of Condition.verificationStatus) */
const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const ConditionVerStatus = {
  unconfirmed: true,
  provisional: true,
  differential: true,
  confirmed: true,
  refuted: true,
  'entered-in-error': true,
} as const;
/** http://hl7.org/fhir/ValueSet/observation-status */
const ObservationStatus = {
  registered: true,
  preliminary: true,
  final: true,
  amended: true,
  corrected: true,
  cancelled: true,
  'entered-in-error': true,
  unknown: true,
} as const satisfies Record<Observation['status'], true>;
/** http://hl7.org/fhir/ValueSet/diagnostic-report-status */
const DiagnosticReportStatus = {
  registered: true,
  partial: true,
  preliminary: true,
  final: true,
  amended: true,
  corrected: true,
  appended: true,
  cancelled: true,
  'entered-in-error': true,
  unknown: true,
} as const satisfies Record<DiagnosticReport['status'], true>;
/** http://hl7.org/fhir/ValueSet/medicationrequest-status */
const MedicationRequestStatus = {
  active: true,
  'on-hold': true,
  cancelled: true,
  completed: true,
  'entered-in-error': true,
  stopped: true,
  draft: true,
  unknown: true,
} as const satisfies Record<MedicationRequest['status'], true>;
/** http://hl7.org/fhir/ValueSet/medicationrequest-intent */
const MedicationRequestIntent = {
  proposal: true,
  plan: true,
  order: true,
  'original-order': true,
  'reflex-order': true,
  'filler-order': true,
  'instance-order': true,
  option: true,
} as const satisfies Record<MedicationRequest['intent'], true>;
/** http://hl7.org/fhir/ValueSet/request-priority */
const RequestPriority = { routine: true, urgent: true, asap: true, stat: true } as const satisfies Record<
  NonNullable<MedicationRequest['priority']>,
  true
>;
/** http://hl7.org/fhir/ValueSet/document-reference-status */
const DocumentReferenceStatus = { current: true, superseded: true, 'entered-in-error': true } as const satisfies Record<
  DocumentReference['status'],
  true
>;
/** http://hl7.org/fhir/ValueSet/composition-status (DocumentReference.docStatus) */
const CompositionStatus = { preliminary: true, final: true, amended: true, 'entered-in-error': true } as const satisfies Record<
  NonNullable<DocumentReference['docStatus']>,
  true
>;
/** http://hl7.org/fhir/ValueSet/document-relationship-type */
const DocumentRelationshipType = { replaces: true, transforms: true, signs: true, appends: true } as const satisfies Record<
  DocumentReferenceRelatesTo['code'],
  true
>;

// ---------------------------------------------------------------------------------------------
// Resources (R4 resource content tables)

/** A contained resource: typed by its own resourceType; dom-2: it SHALL NOT contain resources. */
const containedResource = complex(
  'Resource',
  () => ({ resourceType: req(primitive('resource type name', matching(/^[A-Z][A-Za-z]{1,63}$/))), id: opt(id) }),
  (o, path) => {
    if (has(o, 'contained')) {
      fail(pointer(path, 'contained'), 'dom-2', `${pointer(path, 'contained')}: a contained resource SHALL NOT contain resources (dom-2).`);
    }
  },
);

/** Resource and DomainResource elements, and `identifier`, which all six types carry. */
const DOMAIN_RESOURCE: Shape = {
  id: opt(id),
  meta: opt(meta),
  implicitRules: opt(uri),
  language: opt(code),
  text: opt(narrative),
  contained: list(containedResource),
  identifier: list(identifier),
};

const PATIENT: Shape = {
  active: opt(boolean),
  name: list(humanName),
  telecom: list(contactPoint),
  gender: opt(bound('administrative-gender', AdministrativeGender)),
  birthDate: opt(date),
  'deceased[x]': choice({ Boolean: boolean, DateTime: dateTime }),
  address: list(address),
  maritalStatus: opt(codeableConcept),
  'multipleBirth[x]': choice({ Boolean: boolean, Integer: integer }),
  photo: list(attachment),
  contact: list(
    complex(
      'Patient.contact',
      () => ({
        relationship: list(codeableConcept),
        name: opt(humanName),
        telecom: list(contactPoint),
        address: opt(address),
        gender: opt(bound('administrative-gender', AdministrativeGender)),
        organization: opt(reference),
        period: opt(period),
      }),
      (o, path) => {
        // pat-1: SHALL at least contain a contact's details or a reference to an organization.
        if (!['name', 'telecom', 'address', 'organization'].some((k) => has(o, k))) {
          fail(path, 'pat-1', `${path} needs a name, telecom, address or organization (pat-1).`);
        }
      },
    ),
  ),
  communication: list(complex('Patient.communication', () => ({ language: req(codeableConcept), preferred: opt(boolean) }))),
  generalPractitioner: list(reference),
  managingOrganization: opt(reference),
  link: list(complex('Patient.link', () => ({ other: req(reference), type: req(bound('link-type', LinkType)) }))),
};

const CONDITION_ONSET = { DateTime: dateTime, Age: quantity, Period: period, Range: range, String: str };
const CONDITION: Shape = {
  subject: req(reference),
  clinicalStatus: opt(boundConcept(CONDITION_CLINICAL, ConditionClinical)),
  verificationStatus: opt(boundConcept(CONDITION_VER_STATUS, ConditionVerStatus)),
  category: list(codeableConcept),
  severity: opt(codeableConcept),
  code: opt(codeableConcept),
  bodySite: list(codeableConcept),
  encounter: opt(reference),
  'onset[x]': choice(CONDITION_ONSET),
  'abatement[x]': choice(CONDITION_ONSET),
  recordedDate: opt(dateTime),
  recorder: opt(reference),
  asserter: opt(reference),
  stage: list(
    complex(
      'Condition.stage',
      () => ({ summary: opt(codeableConcept), assessment: list(reference), type: opt(codeableConcept) }),
      (o, path) => {
        // con-1: Stage SHALL have summary or assessment.
        if (!has(o, 'summary') && !has(o, 'assessment')) fail(path, 'con-1', `${path} needs a summary or an assessment (con-1).`);
      },
    ),
  ),
  evidence: list(
    complex(
      'Condition.evidence',
      () => ({ code: list(codeableConcept), detail: list(reference) }),
      (o, path) => {
        // con-2: evidence SHALL have code or details.
        if (!has(o, 'code') && !has(o, 'detail')) fail(path, 'con-2', `${path} needs a code or a detail (con-2).`);
      },
    ),
  ),
  note: list(annotation),
};

function checkConditionInvariants(o: JsonRecord): void {
  // con-4 (rule): if the condition is abated, clinicalStatus SHALL be inactive, resolved or remission.
  if (
    choiceKeys(o, 'abatement').length > 0 &&
    !hasCoding(own(o, 'clinicalStatus'), CONDITION_CLINICAL, ['inactive', 'resolved', 'remission'])
  ) {
    fail('/clinicalStatus', 'con-4', '/clinicalStatus must be inactive, resolved or remission when abatement[x] is present (con-4).');
  }
  // con-5 (rule): clinicalStatus SHALL NOT be present if verificationStatus is entered-in-error.
  if (has(o, 'clinicalStatus') && hasCoding(own(o, 'verificationStatus'), CONDITION_VER_STATUS, ['entered-in-error'])) {
    fail('/clinicalStatus', 'con-5', '/clinicalStatus must be absent when verificationStatus is entered-in-error (con-5).');
  }
}

const OBSERVATION_VALUE = {
  Quantity: quantity,
  CodeableConcept: codeableConcept,
  String: str,
  Boolean: boolean,
  Integer: integer,
  Range: range,
  Ratio: ratio,
  SampledData: sampledData,
  Time: time,
  DateTime: dateTime,
  Period: period,
};
const referenceRange = complex(
  'Observation.referenceRange',
  () => ({
    low: opt(quantity),
    high: opt(quantity),
    type: opt(codeableConcept),
    appliesTo: list(codeableConcept),
    age: opt(range),
    text: opt(str),
  }),
  (o, path) => {
    // obs-3: Must have at least a low or a high or text.
    if (!has(o, 'low') && !has(o, 'high') && !has(o, 'text')) fail(path, 'obs-3', `${path} needs a low, a high or a text (obs-3).`);
  },
);
const OBSERVATION: Shape = {
  status: req(bound('observation-status', ObservationStatus)),
  code: req(codeableConcept),
  basedOn: list(reference),
  partOf: list(reference),
  category: list(codeableConcept),
  subject: opt(reference),
  focus: list(reference),
  encounter: opt(reference),
  'effective[x]': choice({ DateTime: dateTime, Period: period, Timing: timing, Instant: instant }),
  issued: opt(instant),
  performer: list(reference),
  'value[x]': choice(OBSERVATION_VALUE),
  dataAbsentReason: opt(codeableConcept),
  interpretation: list(codeableConcept),
  note: list(annotation),
  bodySite: opt(codeableConcept),
  method: opt(codeableConcept),
  specimen: opt(reference),
  device: opt(reference),
  referenceRange: list(referenceRange),
  hasMember: list(reference),
  derivedFrom: list(reference),
  component: list(
    complex('Observation.component', () => ({
      code: req(codeableConcept),
      'value[x]': choice(OBSERVATION_VALUE),
      dataAbsentReason: opt(codeableConcept),
      interpretation: list(codeableConcept),
      referenceRange: list(referenceRange),
    })),
  ),
};

const DIAGNOSTIC_REPORT: Shape = {
  status: req(bound('diagnostic-report-status', DiagnosticReportStatus)),
  code: req(codeableConcept),
  basedOn: list(reference),
  category: list(codeableConcept),
  subject: opt(reference),
  encounter: opt(reference),
  'effective[x]': choice({ DateTime: dateTime, Period: period }),
  issued: opt(instant),
  performer: list(reference),
  resultsInterpreter: list(reference),
  specimen: list(reference),
  result: list(reference),
  imagingStudy: list(reference),
  media: list(complex('DiagnosticReport.media', () => ({ comment: opt(str), link: req(reference) }))),
  conclusion: opt(str),
  conclusionCode: list(codeableConcept),
  presentedForm: list(attachment),
};

const MEDICATION_REQUEST: Shape = {
  status: req(bound('medicationrequest-status', MedicationRequestStatus)),
  intent: req(bound('medicationrequest-intent', MedicationRequestIntent)),
  'medication[x]': reqChoice({ CodeableConcept: codeableConcept, Reference: reference }),
  subject: req(reference),
  statusReason: opt(codeableConcept),
  category: list(codeableConcept),
  priority: opt(bound('request-priority', RequestPriority)),
  doNotPerform: opt(boolean),
  'reported[x]': choice({ Boolean: boolean, Reference: reference }),
  encounter: opt(reference),
  supportingInformation: list(reference),
  authoredOn: opt(dateTime),
  requester: opt(reference),
  performer: opt(reference),
  performerType: opt(codeableConcept),
  recorder: opt(reference),
  reasonCode: list(codeableConcept),
  reasonReference: list(reference),
  instantiatesCanonical: list(uri),
  instantiatesUri: list(uri),
  basedOn: list(reference),
  groupIdentifier: opt(identifier),
  courseOfTherapyType: opt(codeableConcept),
  insurance: list(reference),
  note: list(annotation),
  dosageInstruction: list(dosage),
  dispenseRequest: opt(
    complex('MedicationRequest.dispenseRequest', () => ({
      initialFill: opt(
        complex('MedicationRequest.dispenseRequest.initialFill', () => ({ quantity: opt(quantity), duration: opt(quantity) })),
      ),
      dispenseInterval: opt(quantity),
      validityPeriod: opt(period),
      numberOfRepeatsAllowed: opt(unsignedInt),
      quantity: opt(quantity),
      expectedSupplyDuration: opt(quantity),
      performer: opt(reference),
    })),
  ),
  substitution: opt(
    complex('MedicationRequest.substitution', () => ({
      'allowed[x]': reqChoice({ Boolean: boolean, CodeableConcept: codeableConcept }),
      reason: opt(codeableConcept),
    })),
  ),
  priorPrescription: opt(reference),
  detectedIssue: list(reference),
  eventHistory: list(reference),
};

const DOCUMENT_REFERENCE_STATUS = req(bound('document-reference-status', DocumentReferenceStatus));
/** DocumentReference elements but `status` and `content`, checked first (content by storedContents). */
const DOCUMENT_REFERENCE: Shape = {
  masterIdentifier: opt(identifier),
  docStatus: opt(bound('composition-status', CompositionStatus)),
  type: opt(codeableConcept),
  category: list(codeableConcept),
  subject: opt(reference),
  // R4: DocumentReference.date is an instant (time and zone required), not a dateTime.
  date: opt(instant),
  author: list(reference),
  authenticator: opt(reference),
  custodian: opt(reference),
  relatesTo: list(
    complex('DocumentReference.relatesTo', () => ({
      code: req(bound('document-relationship-type', DocumentRelationshipType)),
      target: req(reference),
    })),
  ),
  description: opt(str),
  securityLabel: list(codeableConcept),
  context: opt(
    complex('DocumentReference.context', () => ({
      encounter: list(reference),
      event: list(codeableConcept),
      period: opt(period),
      facilityType: opt(codeableConcept),
      practiceSetting: opt(codeableConcept),
      sourcePatientInfo: opt(reference),
      related: list(reference),
    })),
  ),
};

// ---------------------------------------------------------------------------------------------
// DocumentReference files: described in the resource, stored beside it

/** `content` (1..*, at most MAX_ATTACHMENTS): each entry's attachment describes a stored file. */
function storedContents(content: unknown): AttachmentDescriptor[] {
  if (content === undefined) fail('/content', 'required', '/content is required.');
  if (!Array.isArray(content)) fail('/content', 'cardinality', '/content must be an array.');
  if (content.length === 0) fail('/content', 'required', '/content needs at least one entry.');
  if (content.length > MAX_ATTACHMENTS) {
    fail('/content', 'attachment-count', `/content has ${content.length} entries; at most ${MAX_ATTACHMENTS} are accepted.`);
  }
  return content.map((entry: unknown, index) => {
    const path = pointer('/content', index);
    if (!isJsonObject(entry)) fail(path, 'type', `${path} is not a DocumentReference.content.`);
    const file = own(entry, 'attachment');
    if (file === undefined) fail(pointer(path, 'attachment'), 'required', `${pointer(path, 'attachment')} is required.`);
    const descriptor = storedAttachment(file, index, pointer(path, 'attachment'));
    checkElements(entry, path, { format: opt(coding) });
    return descriptor;
  });
}

/**
 * A medledger attachment: no inline `data` (files travel separately, encrypted and chunked), a
 * MIME `contentType`, a `size` within MAX_ATTACHMENT_BYTES, `url` = `attachment:<index>`, and
 * exactly one ATTACHMENT_SHA256_EXTENSION holding the file's SHA-256.
 */
function storedAttachment(v: unknown, index: number, path: string): AttachmentDescriptor {
  if (!isJsonObject(v)) fail(path, 'type', `${path} is not a FHIR Attachment.`);
  if (has(v, 'data')) {
    fail(
      pointer(path, 'data'),
      'attachment-inline',
      `${pointer(path, 'data')}: files travel separately from the resource; inline data is refused.`,
    );
  }
  for (const name of ['contentType', 'size', 'url']) {
    if (!has(v, name)) fail(pointer(path, name), 'required', `${pointer(path, name)} is required.`);
  }
  mimeType(v.contentType, pointer(path, 'contentType'));
  unsignedInt(v.size, pointer(path, 'size'));
  const size = v.size as number;
  if (size > MAX_ATTACHMENT_BYTES) {
    fail(pointer(path, 'size'), 'attachment-size', `${pointer(path, 'size')} exceeds ${MAX_ATTACHMENT_BYTES} bytes.`);
  }
  if (v.url !== `attachment:${index}`) {
    fail(pointer(path, 'url'), 'attachment-url', `${pointer(path, 'url')} must be "attachment:${index}", the attachment's own position.`);
  }
  const extensions = own(v, 'extension');
  const hashes = (Array.isArray(extensions) ? (extensions as unknown[]) : []).flatMap((ext, i) =>
    isJsonObject(ext) && own(ext, 'url') === ATTACHMENT_SHA256_EXTENSION ? [{ ext, i }] : [],
  );
  const at = pointer(path, 'extension');
  if (hashes.length !== 1) {
    fail(at, 'attachment-sha256', `${at} must hold exactly one ${ATTACHMENT_SHA256_EXTENSION} extension.`);
  }
  const { ext, i } = hashes[0]!;
  const sha256 = own(ext, 'valueString');
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    const valueAt = pointer(pointer(at, i), 'valueString');
    fail(valueAt, 'attachment-sha256', `${valueAt} must be the file's SHA-256 in 64 lower-case hex digits.`);
  }
  checkElements(v, path, { language: opt(code), hash: opt(base64Binary), title: opt(str), creation: opt(dateTime) });
  return { index, contentType: v.contentType as string, size, sha256 };
}
