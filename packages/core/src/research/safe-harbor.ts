/**
 * The HIPAA Safe Harbor method (45 CFR 164.514(b)(2)) as data: its 18 kinds of identifiers and
 * the ordered rules that say, per FHIR R4 element (a FHIRPath over the R4 model), whether the
 * element is removed, kept, generalised, date-shifted or pseudonymised. `deidentify.ts` runs the
 * table; keeping the decisions here lets a reviewer read them against the regulation in one place.
 *
 * Rules run in table order and the first rule that decides an element wins: a later rule does
 * not touch an element (or anything inside it) that an earlier rule kept or transformed. The
 * table ends deny-by-default: free text, URIs and binary content nobody decided on are removed,
 * and so are elements the R4 model does not define, because any of the 18 kinds can hide in them.
 */

/**
 * The 18 kinds of 164.514(b)(2)(i), by their paragraph letter. Ages over 89 belong to (C): the
 * paragraph on dates also covers "all ages over 89" and the dates that reveal such an age.
 */
export const SafeHarborKinds = {
  names: { clause: 'A', description: 'Names of the individual, relatives, employers or household members' },
  geographic: { clause: 'B', description: 'Geographic subdivisions smaller than a state, ZIP codes beyond the permitted 3 digits' },
  dates: { clause: 'C', description: 'Date elements other than the year; ages over 89 and dates revealing them' },
  telephone: { clause: 'D', description: 'Telephone numbers' },
  fax: { clause: 'E', description: 'Fax numbers' },
  email: { clause: 'F', description: 'Electronic mail addresses' },
  ssn: { clause: 'G', description: 'Social security numbers (and other national person identifiers)' },
  medicalRecordNumber: { clause: 'H', description: 'Medical record numbers' },
  healthPlanBeneficiaryNumber: { clause: 'I', description: 'Health plan beneficiary numbers' },
  accountNumber: { clause: 'J', description: 'Account numbers' },
  certificateLicenceNumber: { clause: 'K', description: 'Certificate and licence numbers' },
  vehicleIdentifier: { clause: 'L', description: 'Vehicle identifiers and serial numbers, licence plates included' },
  deviceIdentifier: { clause: 'M', description: 'Device identifiers and serial numbers' },
  url: { clause: 'N', description: 'Web addresses (URLs)' },
  ipAddress: { clause: 'O', description: 'Internet Protocol (IP) addresses' },
  biometric: { clause: 'P', description: 'Biometric identifiers such as finger and voice prints' },
  photograph: { clause: 'Q', description: 'Full-face photographs and comparable images' },
  otherUniqueIdentifier: { clause: 'R', description: 'Any other unique identifying number, characteristic or code' },
} as const;
export type SafeHarborKind = keyof typeof SafeHarborKinds;
export const safeHarborKinds = Object.keys(SafeHarborKinds) as SafeHarborKind[];

/** What a rule does to the elements it selects. */
export const Methods = ['redact', 'keep', 'generalise', 'dateShift', 'pseudonymise'] as const;
export type Method = (typeof Methods)[number];

/** The two levels a study may ask for (a consent's `pseudonymised` / `anonymised`). */
export type DeidentificationTarget = 'pseudonymised' | 'anonymised';

/**
 * The coarser forms `generalise` produces.
 * - `zip3`: a US ZIP code → its first 3 digits, or "000" for the restricted areas below; any
 *   other postal code is removed (it cannot be generalised to a permitted form).
 * - `year`: a date, dateTime or instant → its year.
 * - `age90`: an age (Age or an age Quantity) of 90 years or more → "≥ 90 years"; younger ages stay.
 * - `birthDateOver89`: a Patient.birthDate that makes the patient 90 or older at the reference
 *   time is removed and replaced by the AGE_OVER_89_EXTENSION on the Patient; younger birth
 *   dates are left to the date rules.
 */
export type Generalisation = 'zip3' | 'year' | 'age90' | 'birthDateOver89';

/**
 * The keyed replacements `pseudonymise` produces (see deidentify.ts for the derivations).
 * - `patientId`: Patient.id → the study pseudonym.
 * - `patientIdentifier`: the Patient's identifiers → the single STUDY_PSEUDONYM_SYSTEM identifier.
 * - `resourceId`: the id of any other resource → a per-study keyed pseudonym of type and id.
 * - `reference`: Patient references → Patient/<study pseudonym>; references to the types in
 *   UnpseudonymisedReferenceTypes → relative `Type/id`; local `#id` references stay; references
 *   to other resources → `Type/<keyed pseudonym>`, consistent with `resourceId`; anything else
 *   (conditional or unparseable references) is removed.
 */
export type Pseudonymisation = 'patientId' | 'patientIdentifier' | 'resourceId' | 'reference';

export type RuleAction =
  | { readonly method: 'redact' }
  | { readonly method: 'keep' }
  | { readonly method: 'dateShift' }
  | { readonly method: 'generalise'; readonly to: Generalisation }
  | { readonly method: 'pseudonymise'; readonly to: Pseudonymisation };

export interface SafeHarborRule {
  readonly kind: SafeHarborKind;
  /** FHIRPath over the R4 model, evaluated at the resource root; selects the elements decided. */
  readonly path: string;
  readonly pseudonymised: RuleAction;
  readonly anonymised: RuleAction;
  /**
   * Only the selected elements the R4 model does not define. FHIRPath cannot tell an unknown
   * element from an element id (both are System.String), so the engine applies this filter.
   */
  readonly unmodelled?: true;
}

/** The identifier a pseudonymised Patient carries instead of its own identifiers. */
export const STUDY_PSEUDONYM_SYSTEM = 'urn:medledger:study-pseudonym';
/** Put on a Patient whose birth date was removed because it showed an age of 90 or more. */
export const AGE_OVER_89_EXTENSION = 'urn:medledger:age-over-89';

/**
 * 3-digit ZIP areas of 20,000 people or fewer (2000 census, as HHS publishes them for Safe
 * Harbor): their first 3 digits are not permitted and become "000".
 */
export const RestrictedZip3 = [
  '036',
  '059',
  '063',
  '102',
  '203',
  '556',
  '692',
  '790',
  '821',
  '823',
  '830',
  '831',
  '878',
  '879',
  '884',
  '890',
  '893',
] as const;

/** References to these stay readable (relative, without display): they name care providers, not the patient. */
export const UnpseudonymisedReferenceTypes = ['Organization', 'Practitioner', 'PractitionerRole'] as const;

/**
 * Identifier.type codes of HL7 v2 table 0203 (http://terminology.hl7.org/CodeSystem/v2-0203),
 * by the Safe Harbor kind they name. Every identifier is removed whatever its type; the type
 * only decides which kind the audit log records. Matched on the code alone, since exporters
 * also put these codes under older system URIs.
 */
export const IdentifierTypeKinds = {
  ssn: ['SS', 'NI', 'SB', 'TAX'], // plus NNxxx, national person identifier of country xxx
  medicalRecordNumber: ['MR', 'MRT', 'PI', 'PT'],
  healthPlanBeneficiaryNumber: ['MB', 'SN', 'MA', 'MC', 'NH', 'HC', 'JHN'],
  accountNumber: ['AN', 'ANT', 'ANC', 'AND', 'BA', 'BC', 'AM', 'MS', 'VS', 'DI', 'DS'],
  certificateLicenceNumber: ['DL', 'PPN', 'DP', 'LN', 'SL', 'MD', 'BCT', 'BR', 'MCT', 'NCT', 'CZ', 'PRC', 'WP', 'VP', 'SP', 'MI'],
  deviceIdentifier: ['UDI', 'SNO'],
} as const satisfies Partial<Record<SafeHarborKind, readonly string[]>>;

/** Identifier.system URIs of the US social security number. */
export const SsnSystems = ['http://hl7.org/fhir/sid/us-ssn', 'urn:oid:2.16.840.1.113883.4.1'] as const;

/**
 * LOINC codes of a patient's age (HL7 value set v3-LOINCObservationActContextAgeType): age,
 * estimated, reported, calculated. An Observation with one of these codes holds an age.
 */
export const AgeLoincCodes = ['30525-0', '21611-9', '21612-7', '29553-5'] as const;

/** The core extension holding a latitude and longitude: a geocode finer than a state. */
export const GEOLOCATION_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/geolocation';

// Patterns, written for FHIRPath `matches` (JavaScript regular expressions) without backslashes
// or quotes so they need no escaping inside FHIRPath string literals.
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const HEX4 = '[0-9A-Fa-f]{1,4}';
/** An IPv4 address standing alone, or an IPv6 address (full, or compressed with hex on both sides of ::). */
export const IP_ADDRESS_PATTERN = `(^|[^0-9.])${OCTET}([.]${OCTET}){3}([^0-9.]|[.]([^0-9]|$)|$)|(${HEX4}:){7}${HEX4}|(${HEX4}:)+:(${HEX4}:)*${HEX4}`;
/** A US social security number written with dashes. */
export const SSN_PATTERN = '(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)';
export const EMAIL_PATTERN = '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}';
/** A web address in text. */
export const URL_PATTERN = '(https?|ftp)://|www[.]';
/** A 17-character vehicle identification number (ISO 3779: no I, O or Q), letters and digits mixed. */
const VIN = '(?=[A-HJ-NPR-Z0-9]*[0-9])(?=[A-HJ-NPR-Z0-9]*[A-HJ-NPR-Z])[A-HJ-NPR-Z0-9]{17}';
export const VIN_IN_TEXT_PATTERN = `(^|[^A-Za-z0-9])${VIN}([^A-Za-z0-9]|$)`;
/** Words naming a vehicle identifier in an Identifier's system or type. */
export const VEHICLE_PATTERN = 'vehicle|licen[cs]e.?plate|number.?plate|(^|[^a-z])vin([^a-z]|$)';
/** Words naming a biometric record: in a document's or observation's type, or an attachment's title. */
export const BIOMETRIC_PATTERN =
  'biometric|finger.?print|voice.?print|palm.?print|iris (scan|template|image)|retina(l)? scan|(face|facial) (template|geometry)|minutiae';

// FHIRPath building blocks.
const q = (s: string): string => `'${s}'`;
const list = (items: readonly string[]): string => `(${items.map(q).join(' | ')})`;
/** A resource type at the root or contained anywhere. */
const anywhere = (type: string): string => `${type}.combine(descendants().ofType(${type}))`;
const IDENTIFIERS = 'descendants().ofType(Identifier)';
const typed = (codes: readonly string[]): string => `${IDENTIFIERS}.where(type.coding.exists(code in ${list(codes)}))`;
const CONTACT_POINTS = 'descendants().ofType(ContactPoint)';
const ATTACHMENTS = 'descendants().ofType(Attachment)';
const ADDRESSES = 'descendants().ofType(Address)';
const REFERENCES = 'descendants().ofType(Reference)';
/** A CodeableConcept (the focus) whose text or a coding's display matches `pattern`, ignoring case. */
const conceptMatches = (pattern: string): string =>
  `(text.exists(matches(${q(pattern)}, 'i')) or coding.display.exists(matches(${q(pattern)}, 'i')))`;
const AGE_CODE = `code.coding.exists(system = 'http://loinc.org' and code in ${list(AgeLoincCodes)})`;
/** Free text: FHIR string and markdown elements. */
const FREE_TEXT = `descendants().where(type().name in ${list(['string', 'markdown'])})`;
/**
 * Every type whose values can carry an identifier that no earlier rule found: text, URIs, binary
 * content, and `id` (Extension.valueId, DICOM UIDs, Meta.versionId). Codes, numbers and
 * booleans stay; see the module header of deidentify.ts on numbers.
 */
const OPEN_TYPES = ['string', 'markdown', 'xhtml', 'uri', 'url', 'oid', 'uuid', 'id', 'base64Binary'] as const;

// Rule constructors: one action at both levels, or one per level.
const both = (kind: SafeHarborKind, path: string, action: RuleAction): SafeHarborRule => ({
  kind,
  path,
  pseudonymised: action,
  anonymised: action,
});
const redact = (kind: SafeHarborKind, path: string): SafeHarborRule => both(kind, path, { method: 'redact' });
const keep = (kind: SafeHarborKind, path: string): SafeHarborRule => both(kind, path, { method: 'keep' });
const generalise = (kind: SafeHarborKind, path: string, to: Generalisation): SafeHarborRule =>
  both(kind, path, { method: 'generalise', to });
const pseudonymise = (kind: SafeHarborKind, path: string, to: Pseudonymisation): SafeHarborRule =>
  both(kind, path, { method: 'pseudonymise', to });
/** Dates: shifted per patient and study when pseudonymised, cut to the year when anonymised. */
const dates = (path: string, anonymised: RuleAction): SafeHarborRule => ({
  kind: 'dates',
  path,
  pseudonymised: { method: 'dateShift' },
  anonymised,
});

/**
 * The rule table, in the order it runs. FHIRPath's `|` is a set union that merges equal values,
 * so two identical names would be selected once and one would survive: the table uses
 * `combine`, which keeps duplicates, and `|` only inside literal lists.
 */
export const SafeHarborRules: readonly SafeHarborRule[] = [
  // Free text and people other than the patient, removed whole so no later rule has to look inside.
  // (A) The narrative retells the record in prose, names first; notes carry authors' names and prose.
  redact('names', 'descendants().ofType(Narrative)'),
  redact('names', 'descendants().ofType(Annotation)'),
  // (A) Contacts are relatives, guardians and employers: names, telecoms, addresses, organisations.
  redact('names', `${anywhere('Patient')}.contact`),
  redact('names', 'descendants().ofType(HumanName)'),
  redact('names', `${REFERENCES}.display`),

  // (Q) Photographs of a person are removed entirely; (P) biometric content and (Q) images lose
  // their payload here, under their own kind, before the general attachment rules below.
  redact('photograph', 'photo.combine(descendants().photo)'),
  redact(
    'biometric',
    `${anywhere('DocumentReference')}.where(type.exists(${conceptMatches(BIOMETRIC_PATTERN)}) or category.exists(${conceptMatches(BIOMETRIC_PATTERN)}))` +
      '.content.attachment.select(data.combine(url).combine(hash).combine(title))',
  ),
  redact('biometric', `${ATTACHMENTS}.where(title.exists(matches(${q(BIOMETRIC_PATTERN)}, 'i'))).select(data.combine(url).combine(hash))`),
  redact('biometric', `${anywhere('Observation')}.where(code.exists(${conceptMatches(BIOMETRIC_PATTERN)})).value`),
  redact('biometric', `${anywhere('Observation')}.component.where(code.exists(${conceptMatches(BIOMETRIC_PATTERN)})).value`),
  redact(
    'photograph',
    `${ATTACHMENTS}.where(contentType.startsWith('image/') or contentType.startsWith('video/')).select(data.combine(url).combine(hash).combine(title))`,
  ),
  // Every attachment keeps its contentType and size only: inline data, its address, its hash (a
  // fingerprint of the file), title, dates and extensions (medledger's file SHA-256) all go.
  redact('otherUniqueIdentifier', `${ATTACHMENTS}.data`),
  redact('url', `${ATTACHMENTS}.url`),
  redact('otherUniqueIdentifier', `${ATTACHMENTS}.hash`),
  redact('names', `${ATTACHMENTS}.title`),
  redact('dates', `${ATTACHMENTS}.creation`),
  redact('otherUniqueIdentifier', `${ATTACHMENTS}.language`),
  redact('otherUniqueIdentifier', `${ATTACHMENTS}.extension`),

  // Identifiers, wherever they occur (Reference.identifier and extensions included), all removed;
  // the order only decides which kind the log names. First by v2-0203 type or system ...
  redact(
    'ssn',
    `${IDENTIFIERS}.where(system in ${list(SsnSystems)} or type.coding.exists(code in ${list(IdentifierTypeKinds.ssn)} or code.startsWith('NN')))`,
  ),
  redact('medicalRecordNumber', typed(IdentifierTypeKinds.medicalRecordNumber)),
  redact('healthPlanBeneficiaryNumber', typed(IdentifierTypeKinds.healthPlanBeneficiaryNumber)),
  redact('accountNumber', typed(IdentifierTypeKinds.accountNumber)),
  redact('certificateLicenceNumber', typed(IdentifierTypeKinds.certificateLicenceNumber)),
  redact('deviceIdentifier', typed(IdentifierTypeKinds.deviceIdentifier)),
  // ... (L) R4 has no vehicle element: a VIN or plate arrives as an Identifier whose system or
  // type names it, or whose value has the shape of a VIN (and in free text, matched further down) ...
  redact(
    'vehicleIdentifier',
    `${IDENTIFIERS}.where(system.matches(${q(VEHICLE_PATTERN)}, 'i') or type.exists(${conceptMatches(VEHICLE_PATTERN)}) or value.matches(${q(`^${VIN}$`)}))`,
  ),
  // ... (O) nor an IP address element: as an Identifier value, a ContactPoint, Device.url or text ...
  redact('ipAddress', `${IDENTIFIERS}.where(value.matches(${q(IP_ADDRESS_PATTERN)}))`),
  redact('url', `${IDENTIFIERS}.where(value.matches('^[A-Za-z][A-Za-z0-9+.-]*://'))`),
  // ... then by the resource that holds them ...
  redact('healthPlanBeneficiaryNumber', `${anywhere('Coverage')}.identifier`),
  redact('deviceIdentifier', `${anywhere('Device')}.identifier`),
  redact('medicalRecordNumber', `${anywhere('Patient')}.identifier`),
  // ... and (R) every other identifier: prescription, order, accession and document numbers.
  redact('otherUniqueIdentifier', IDENTIFIERS),

  // (I) Coverage holds the plan's numbers for this beneficiary outside Identifier.
  redact('healthPlanBeneficiaryNumber', `${anywhere('Coverage')}.subscriberId`),
  redact('healthPlanBeneficiaryNumber', `${anywhere('Coverage')}.dependent`),
  redact('healthPlanBeneficiaryNumber', `${anywhere('Coverage')}.class.value`),
  // (M) A device's serial, lot and UDI; (O, N) its network address. Make and model stay (below).
  redact('deviceIdentifier', `${anywhere('Device')}.serialNumber`),
  redact('deviceIdentifier', `${anywhere('Device')}.lotNumber`),
  redact('deviceIdentifier', `${anywhere('Device')}.distinctIdentifier`),
  redact('deviceIdentifier', `${anywhere('Device')}.udiCarrier`),
  redact('ipAddress', `${anywhere('Device')}.url.where(matches(${q(IP_ADDRESS_PATTERN)}))`),
  redact('url', `${anywhere('Device')}.url`),

  // (D, E, F, N, O) Telecoms by system; any other (system `other`) as (R).
  redact('telephone', `${CONTACT_POINTS}.where(system in ${list(['phone', 'sms', 'pager'])})`),
  redact('fax', `${CONTACT_POINTS}.where(system = 'fax')`),
  redact('email', `${CONTACT_POINTS}.where(system = 'email')`),
  redact('url', `${CONTACT_POINTS}.where(system = 'url')`),
  redact('ipAddress', `${CONTACT_POINTS}.where(value.matches(${q(IP_ADDRESS_PATTERN)}))`),
  redact('otherUniqueIdentifier', CONTACT_POINTS),

  // (B) Addresses keep state and country and the permitted ZIP3; the rest is below state level.
  redact('geographic', `descendants().where(url = ${q(GEOLOCATION_EXTENSION)})`),
  generalise('geographic', `${ADDRESSES}.postalCode`, 'zip3'),
  keep('geographic', `${ADDRESSES}.state`),
  keep('geographic', `${ADDRESSES}.country`),
  redact('geographic', `${ADDRESSES}.line`),
  redact('geographic', `${ADDRESSES}.city`),
  redact('geographic', `${ADDRESSES}.district`),
  redact('geographic', `${ADDRESSES}.text`),

  // (C) Ages over 89, before the general date rules: a birth date showing 90 or more goes
  // whole (its year too); ages of 90 or more become "≥ 90 years".
  generalise('dates', `${anywhere('Patient')}.birthDate`, 'birthDateOver89'),
  generalise('dates', 'descendants().ofType(Age)', 'age90'),
  generalise('dates', `${anywhere('Condition')}.select(onset.combine(abatement)).ofType(Range).select(low.combine(high))`, 'age90'),
  generalise('dates', `${anywhere('Observation')}.where(${AGE_CODE}).value.ofType(Quantity)`, 'age90'),
  generalise('dates', `${anywhere('Observation')}.component.where(${AGE_CODE}).value.ofType(Quantity)`, 'age90'),
  generalise('dates', `${anywhere('Observation')}.referenceRange.age.select(low.combine(high))`, 'age90'),
  // (C) Every date element: birth, death, onset, effective, issued, authored, periods, timings,
  // extension values. An instant cannot hold a year alone, so anonymised instants are removed.
  dates('descendants().ofType(date)', { method: 'generalise', to: 'year' }),
  dates('descendants().ofType(dateTime)', { method: 'generalise', to: 'year' }),
  dates('descendants().ofType(instant)', { method: 'redact' }),

  // (R) The patient and the records, under keyed pseudonyms of the study: the hospital's ids
  // would link the data back to its records and to the ledger's index.
  pseudonymise('otherUniqueIdentifier', 'Patient.id', 'patientId'),
  pseudonymise('otherUniqueIdentifier', 'Patient', 'patientIdentifier'),
  pseudonymise('otherUniqueIdentifier', 'id', 'resourceId'),
  pseudonymise('otherUniqueIdentifier', `${REFERENCES}.reference`, 'reference'),
  // (N) meta.source names the system (and often the message) the record came from.
  redact('url', 'descendants().ofType(Meta).source'),

  // Structural URIs stay: code systems, units, reference types, the rules the resource follows.
  keep('otherUniqueIdentifier', 'descendants().ofType(Coding).system'),
  keep('otherUniqueIdentifier', 'descendants().ofType(Quantity).system'),
  keep('otherUniqueIdentifier', `${REFERENCES}.type`),
  keep('otherUniqueIdentifier', 'implicitRules.combine(descendants().implicitRules)'),

  // Identifiers in free text. The sweep at the end removes free text anyway; these name the
  // kind in the log and catch identifiers inside the few texts kept below. Telephone numbers
  // have no shape that tells them from clinical numbers; they go with the sweep.
  redact('ssn', `${FREE_TEXT}.where(matches(${q(SSN_PATTERN)}))`),
  redact('email', `${FREE_TEXT}.where(matches(${q(EMAIL_PATTERN)}))`),
  redact(
    'ipAddress',
    `descendants().where(type().name in ${list(['string', 'markdown', 'uri', 'url'])}).where(matches(${q(IP_ADDRESS_PATTERN)}))`,
  ),
  redact('vehicleIdentifier', `${FREE_TEXT}.where(matches(${q(VIN_IN_TEXT_PATTERN)}))`),
  redact('url', `${FREE_TEXT}.where(matches(${q(URL_PATTERN)}, 'i'))`),

  // Clinical text that stays: the names of codes, units, waveforms, a device's make and model.
  keep('otherUniqueIdentifier', 'descendants().ofType(Coding).display'),
  keep('otherUniqueIdentifier', 'descendants().ofType(Coding).version'),
  keep('otherUniqueIdentifier', 'descendants().ofType(CodeableConcept).text'),
  keep('otherUniqueIdentifier', 'descendants().ofType(Quantity).unit'),
  keep('otherUniqueIdentifier', 'descendants().ofType(SampledData).data'),
  keep('deviceIdentifier', `${anywhere('Device')}.manufacturer`),
  keep('deviceIdentifier', `${anywhere('Device')}.modelNumber`),

  // Deny by default: every other text, URI, id and binary value (Observation.valueString,
  // DiagnosticReport.conclusion, dosage text, device names, extension strings, ...), and every
  // element the R4 model does not define.
  redact('otherUniqueIdentifier', `descendants().where(type().name in ${list(OPEN_TYPES)})`),
  { ...redact('otherUniqueIdentifier', "descendants().where(type().namespace = 'System')"), unmodelled: true },
];
