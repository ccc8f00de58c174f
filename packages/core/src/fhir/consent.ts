/**
 * A patient's ledger consent as a FHIR R4 Consent, and back: a FHIR Consent the patient wants
 * granted maps onto exactly one `consent.grant` body (actor → grantee, purpose → purposes,
 * period, class / data → scope, securityLabel → de-identification). The patient signs that
 * body as a transaction and sends it inside the Consent (`sourceAttachment`), so the server
 * only checks that both say the same and submits it: nothing it holds signs for the patient.
 */
import type { Coding, Consent as FhirConsent, ConsentProvision, ConsentProvisionActor } from '@medplum/fhirtypes';
import type { Static } from '@sinclair/typebox';
import type { Consent, ConsentScope, Grantee } from '../contracts/state.ts';
import { GrantBody } from '../contracts/consent.ts';
import { checkBody } from '../contracts/schemas.ts';
import { canonicalJson } from '../codec/canonical-json.ts';
import { fromUtf8, utf8 } from '../codec/bytes.ts';
import { MedledgerError, isMedledgerError } from '../errors.ts';
import type { Tx } from '../ledger/tx.ts';
import { Purposes, isPurpose, type DeidentificationLevel, type Purpose } from '../policy/purposes.ts';
import { StaffRoles, type StaffRole } from '../policy/roles.ts';
import {
  Hl7Systems,
  MedledgerExtensions,
  MedledgerSystems,
  fromBase64,
  instantOf,
  institutionReference,
  patientReference,
  staffReference,
  toBase64,
} from './systems.ts';

export type GrantBodyValue = Static<typeof GrantBody>;

/** Consent.provision.securityLabel for each required de-identification level (v3 ObservationValue). */
export const DeidentificationLabels = { pseudonymised: 'PSEUDED', anonymised: 'ANONYED' } as const;

/** v3 ParticipationType IRCP (information recipient): the grantee of a permit. */
const RECIPIENT: Coding = { system: Hl7Systems.participationType, code: 'IRCP', display: 'information recipient' };
const CATEGORY: Coding = { system: Hl7Systems.loinc, code: '59284-0', display: 'Patient Consent' };
const OPT_IN: Coding = { system: Hl7Systems.actCode, code: 'OPTIN', display: 'opt-in' };

function granteeReference(g: Grantee): ConsentProvisionActor['reference'] {
  switch (g.kind) {
    case 'institution':
      return institutionReference(g.institution);
    case 'person':
      return staffReference(g.staffId);
    case 'role':
      return {
        type: 'PractitionerRole',
        identifier: { system: MedledgerSystems.role, value: g.institution === null ? g.role : `${g.institution}/${g.role}` },
      };
    case 'study':
      // R4 names no ResearchStudy among a provision's actors: the study's team is a Group.
      return { type: 'Group', identifier: { system: MedledgerSystems.study, value: g.studyId } };
  }
}

function scopeProvision(scope: ConsentScope): Pick<ConsentProvision, 'class' | 'data'> {
  switch (scope.kind) {
    case 'all':
      return {};
    case 'categories':
      return { class: scope.categories.map((code) => ({ system: Hl7Systems.resourceTypes, code })) };
    case 'records':
      return { data: scope.recordIds.map((id) => ({ meaning: 'instance', reference: { reference: `DocumentReference/${id}` } })) };
  }
}

/** The fields both directions share: what a consent.grant says, as a FHIR Consent. */
function consentShape(g: Omit<GrantBodyValue, 'patientCode'> & { patientCode: string }): FhirConsent {
  const deid = g.deidentification === 'identified' ? null : DeidentificationLabels[g.deidentification];
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: Hl7Systems.consentScope, code: g.grantee.kind === 'study' ? 'research' : 'patient-privacy' }] },
    category: [{ coding: [CATEGORY] }],
    patient: patientReference(g.patientCode),
    performer: [patientReference(g.patientCode)],
    policyRule: { coding: [OPT_IN] },
    provision: {
      type: 'permit',
      period: { start: instantOf(g.period.from), ...(g.period.to === null ? {} : { end: instantOf(g.period.to) }) },
      actor: [{ role: { coding: [RECIPIENT] }, reference: granteeReference(g.grantee) }],
      purpose: g.purposes.map((p) => ({ system: Hl7Systems.actReason, code: p, display: Purposes[p] })),
      ...(deid === null ? {} : { securityLabel: [{ system: Hl7Systems.observationValue, code: deid }] }),
      ...scopeProvision(g.scope),
    },
  };
}

/** A ledger consent as a FHIR Consent. */
export function fhirConsentOf(c: Consent): FhirConsent {
  const shape = consentShape(c);
  return {
    ...shape,
    id: c.consentId,
    meta: { versionId: String(c.version), lastUpdated: instantOf(c.updatedAt) },
    extension: [{ url: MedledgerExtensions.consentSource, valueCode: c.source }],
    status: c.status === 'active' ? 'active' : 'inactive',
    dateTime: instantOf(c.grantedAt),
  };
}

/** The FHIR Consent a client sends to ask for this grant (before it attaches the signed tx). */
export function fhirConsentForGrant(g: GrantBodyValue): FhirConsent {
  return consentShape(g);
}

// ---------------------------------------------------------------- FHIR -> consent.grant

const invalid = (details: string): MedledgerError => new MedledgerError('FHIR_CONSENT_INVALID', { details });

const TOP_LEVEL = new Set([
  'resourceType',
  'text',
  'status',
  'scope',
  'category',
  'patient',
  'dateTime',
  'performer',
  'policyRule',
  'provision',
  'sourceAttachment',
]);
const PROVISION = new Set(['type', 'period', 'actor', 'purpose', 'class', 'data', 'securityLabel']);
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;
const ID = /^[a-z0-9][a-z0-9-]{0,47}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(o: Record<string, unknown>, allowed: ReadonlySet<string>, where: string): void {
  // Names of elements only, never values: values may identify the patient.
  for (const k of Object.keys(o)) if (!allowed.has(k)) throw invalid(`${where}${k} is not supported; nothing it says could be honoured.`);
}

function millisOf(v: unknown, where: string): number {
  if (typeof v !== 'string' || !INSTANT.test(v)) throw invalid(`${where} must be an instant with seconds and a time zone.`);
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw invalid(`${where} is not a valid time.`);
  return ms;
}

function identifierOf(ref: unknown, where: string): { system: string; value: string } {
  if (!isObject(ref) || !isObject(ref['identifier'])) throw invalid(`${where} must be a Reference by identifier.`);
  const { system, value } = ref['identifier'];
  if (typeof system !== 'string' || typeof value !== 'string') throw invalid(`${where}.identifier needs a system and a value.`);
  return { system, value };
}

function granteeOf(ref: unknown): Grantee {
  const where = 'provision.actor[0].reference';
  const { system, value } = identifierOf(ref, where);
  switch (system) {
    case MedledgerSystems.institution:
      return { kind: 'institution', institution: value };
    case MedledgerSystems.staff:
      return { kind: 'person', staffId: value };
    case MedledgerSystems.study:
      return { kind: 'study', studyId: value };
    case MedledgerSystems.role: {
      const slash = value.indexOf('/');
      const role = slash < 0 ? value : value.slice(slash + 1);
      if (!Object.hasOwn(StaffRoles, role)) throw invalid(`${where}: the role is not one of ${Object.keys(StaffRoles).join(', ')}.`);
      const institution = slash < 0 ? null : value.slice(0, slash);
      if (institution !== null && !ID.test(institution)) throw invalid(`${where}: the institution is not an institution id.`);
      return { kind: 'role', role: role as StaffRole, institution };
    }
    default:
      throw invalid(`${where}.identifier.system names no grantee medledger knows.`);
  }
}

function codingsOf(v: unknown, where: string): { system: unknown; code: unknown }[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid(`${where} must be an array.`);
  return v.map((c, i) => {
    if (!isObject(c)) throw invalid(`${where}[${i}] must be a Coding.`);
    return { system: c['system'], code: c['code'] };
  });
}

function scopeOf(p: Record<string, unknown>): ConsentScope {
  const classes = codingsOf(p['class'], 'provision.class');
  const data = p['data'];
  if (classes.length > 0 && data !== undefined)
    throw invalid('provision has both class and data; a ledger consent covers one or the other.');
  if (classes.length > 0) {
    return {
      kind: 'categories',
      categories: classes.map((c, i) => {
        if (c.system !== Hl7Systems.resourceTypes || typeof c.code !== 'string')
          throw invalid(`provision.class[${i}] must be a FHIR resource type (${Hl7Systems.resourceTypes}).`);
        return c.code;
      }),
    };
  }
  if (data !== undefined) {
    if (!Array.isArray(data) || data.length === 0) throw invalid('provision.data must be a non-empty array.');
    return {
      kind: 'records',
      recordIds: data.map((d, i) => {
        const ref = isObject(d) && isObject(d['reference']) ? d['reference']['reference'] : undefined;
        const m = typeof ref === 'string' ? /^DocumentReference\/([0-9a-f]{64})$/.exec(ref) : null;
        if (!isObject(d) || d['meaning'] !== 'instance' || m === null)
          throw invalid(`provision.data[${i}] must be an instance reference to DocumentReference/<record id>.`);
        return m[1]!;
      }),
    };
  }
  return { kind: 'all' };
}

function deidentificationOf(p: Record<string, unknown>): DeidentificationLevel {
  const labels = codingsOf(p['securityLabel'], 'provision.securityLabel');
  if (labels.length === 0) return 'identified';
  if (labels.length > 1) throw invalid('provision.securityLabel names one de-identification level at most.');
  const [label] = labels;
  for (const [level, code] of Object.entries(DeidentificationLabels)) {
    if (label!.system === Hl7Systems.observationValue && label!.code === code) return level as DeidentificationLevel;
  }
  throw invalid('provision.securityLabel must be PSEUDED or ANONYED (v3 ObservationValue).');
}

/**
 * The `consent.grant` body a FHIR Consent asks for, or FHIR_CONSENT_INVALID naming the element
 * that cannot be honoured. Strict: an element this mapping does not understand is refused, not
 * dropped, so a grant is never wider than what the patient wrote.
 */
export function grantBodyOf(value: unknown): GrantBodyValue {
  if (!isObject(value) || value['resourceType'] !== 'Consent') throw invalid('The body must be a FHIR Consent.');
  onlyKeys(value, TOP_LEVEL, '');
  if (value['status'] !== 'active') throw invalid('status must be active: a grant takes effect as written.');
  const patient = identifierOf(value['patient'], 'patient');
  if (patient.system !== MedledgerSystems.patientCode || !/^[0-9a-f]{64}$/.test(patient.value))
    throw invalid(`patient must be identified by its patient code (${MedledgerSystems.patientCode}).`);
  const p = value['provision'];
  if (!isObject(p)) throw invalid('provision is required.');
  onlyKeys(p, PROVISION, 'provision.');
  if (p['type'] !== 'permit') throw invalid('provision.type must be permit.');
  const period = p['period'];
  if (!isObject(period) || period['start'] === undefined) throw invalid('provision.period.start is required.');
  const actors = p['actor'];
  if (!Array.isArray(actors) || actors.length !== 1 || !isObject(actors[0]))
    throw invalid('provision.actor must name exactly one recipient.');
  const role = codingsOf(isObject(actors[0]['role']) ? actors[0]['role']['coding'] : undefined, 'provision.actor[0].role.coding');
  if (!role.some((c) => c.system === RECIPIENT.system && c.code === RECIPIENT.code))
    throw invalid('provision.actor[0].role must be IRCP (v3 ParticipationType).');
  const purposes = codingsOf(p['purpose'], 'provision.purpose').map((c, i): Purpose => {
    if (c.system !== Hl7Systems.actReason || typeof c.code !== 'string' || !isPurpose(c.code))
      throw invalid(`provision.purpose[${i}] must be one of ${Object.keys(Purposes).join(', ')} (${Hl7Systems.actReason}).`);
    return c.code;
  });
  if (purposes.length === 0) throw invalid('provision.purpose names at least one purpose of use.');
  const body: GrantBodyValue = {
    patientCode: patient.value,
    grantee: granteeOf(actors[0]['reference']),
    scope: scopeOf(p),
    purposes,
    period: {
      from: millisOf(period['start'], 'provision.period.start'),
      to: period['end'] === undefined ? null : millisOf(period['end'], 'provision.period.end'),
    },
    deidentification: deidentificationOf(p),
  };
  // The contract would reject it too, but only after it is on the ledger as an attempt.
  if (body.period.to !== null && body.period.to <= body.period.from) throw invalid('provision.period.end must be after its start.');
  try {
    checkBody(GrantBody, body);
  } catch (e) {
    throw invalid(isMedledgerError(e) && e.details !== undefined ? e.details : 'It does not make a valid grant.');
  }
  return body;
}

// ---------------------------------------------------------------- the signed transaction

/** The Consent with the patient's signed `consent.grant` attached as its source. */
export function withSignedGrant(consent: FhirConsent, tx: Tx): FhirConsent {
  return { ...consent, sourceAttachment: { contentType: 'application/json', data: toBase64(utf8(JSON.stringify(tx))) } };
}

/** The transaction a posted Consent carries (parsed JSON, still to be decoded and checked). */
export function signedGrantOf(value: unknown): unknown {
  const a = isObject(value) ? value['sourceAttachment'] : undefined;
  if (!isObject(a) || a['contentType'] !== 'application/json' || typeof a['data'] !== 'string')
    throw invalid('sourceAttachment must carry the signed consent.grant transaction as application/json.');
  const bytes = fromBase64(a['data']);
  if (bytes === null) throw invalid('sourceAttachment.data is not base64.');
  try {
    return JSON.parse(fromUtf8(bytes)) as unknown;
  } catch {
    throw invalid('sourceAttachment.data is not JSON.');
  }
}

/** True when the signed body is exactly the grant the Consent asks for. */
export function sameGrant(a: unknown, b: GrantBodyValue): boolean {
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}
