/**
 * Consent: a custodian asks the patient before registering a record (TMSMD §4.2 consent before a
 * record joins the chain) and the patient accepts or refuses; the patient grants, narrows and
 * revokes consents (grantee = institution, person or role; scope = records, categories or all;
 * purposes; period; required de-identification level).
 */
import { Type, type Static } from '@sinclair/typebox';
import { reject, type ContractInput, type Draft } from './context.ts';
import { Category, Deidentification, Grantee, PatientCode, Period, Purpose, Scope, Text, TxRef } from './schemas.ts';
import type { Consent, ConsentScope, RegistrationRequest } from './state.ts';
import { atLeastAsStrict } from '../policy/purposes.ts';
import { actingFor, noteGuardianAct } from './guardians.ts';

export const RequestRegistrationBody = Type.Object(
  { patientCode: PatientCode, category: Category, purpose: Purpose, note: Text(500) },
  { additionalProperties: false },
);
export const AnswerRegistrationBody = Type.Object({ requestId: TxRef, accept: Type.Boolean() }, { additionalProperties: false });
export const GrantBody = Type.Object(
  {
    patientCode: PatientCode,
    grantee: Grantee,
    scope: Scope,
    purposes: Type.Array(Purpose, { minItems: 1, maxItems: 16, uniqueItems: true }),
    period: Period,
    deidentification: Deidentification,
  },
  { additionalProperties: false },
);
export const NarrowBody = Type.Object(
  {
    consentId: TxRef,
    scope: Scope,
    purposes: Type.Array(Purpose, { minItems: 1, maxItems: 16, uniqueItems: true }),
    period: Period,
    deidentification: Deidentification,
  },
  { additionalProperties: false },
);
export const RevokeBody = Type.Object({ consentId: TxRef }, { additionalProperties: false });

/** A patient acts only for themselves. */
function assertSelf(input: ContractInput<unknown>, patientCode: string): void {
  if (input.principal.patient?.patientCode !== patientCode) reject('ROLE_FORBIDDEN', 'A patient acts only on their own data.');
}

export function patientConsents(draft: Draft, patientCode: string): Consent[] {
  const ids = draft.get<string[]>('patientConsents', patientCode) ?? [];
  return ids.map((id) => draft.get<Consent>('consents', id)).filter((c): c is Consent => c !== undefined);
}

/** Stores a new consent and indexes it under its patient; shared with access decisions. */
export function addConsent(draft: Draft, consent: Consent): void {
  draft.put('consents', consent.consentId, consent);
  const ids = draft.get<string[]>('patientConsents', consent.patientCode) ?? [];
  draft.put('patientConsents', consent.patientCode, [...ids, consent.consentId]);
}

export function requestRegistration(input: ContractInput<Static<typeof RequestRegistrationBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  if (draft.get('patients', body.patientCode) === undefined) reject('PATIENT_UNKNOWN');
  const request: RegistrationRequest = {
    requestId: txId,
    patientCode: body.patientCode,
    custodian: principal.institution!.id,
    requester: principal.staff!.staffId,
    category: body.category,
    purpose: body.purpose,
    status: 'pending',
    createdAt: ctx.time,
    answeredAt: null,
    recordId: null,
  };
  draft.put('regRequests', txId, request);
  input.events.push({
    type: 'consent.registrationRequested',
    patientCode: body.patientCode,
    data: { requestId: txId, custodian: request.custodian, category: body.category },
  });
}

export function answerRegistration(input: ContractInput<Static<typeof AnswerRegistrationBody>>): void {
  const { draft, body, ctx } = input;
  const request = draft.get<RegistrationRequest>('regRequests', body.requestId);
  if (request === undefined) reject('REQUEST_NOT_FOUND');
  assertSelf(input, request.patientCode);
  if (request.status !== 'pending') reject('REQUEST_CLOSED');
  draft.put('regRequests', request.requestId, { ...request, status: body.accept ? 'accepted' : 'refused', answeredAt: ctx.time });
  input.events.push({
    type: 'consent.registrationAnswered',
    patientCode: request.patientCode,
    data: { requestId: request.requestId, accepted: body.accept },
  });
}

export function grant(input: ContractInput<Static<typeof GrantBody>>): void {
  const { draft, body, txId, ctx } = input;
  // The patient, or a guardian within their guardianship (issue 7).
  const guardian = actingFor(input, body.patientCode, {
    action: 'consent.grant',
    purposes: body.purposes,
    scope: body.scope,
    until: body.period.to,
  });
  if (body.period.to !== null && body.period.to <= body.period.from) reject('TX_BODY_INVALID', 'period.to must be after period.from.');
  // A consent names a registered study, so no later registration can take the name and the consent.
  if (body.grantee.kind === 'study' && draft.get('studies', body.grantee.studyId) === undefined) reject('STUDY_NOT_FOUND');
  const consent: Consent = {
    consentId: txId,
    patientCode: body.patientCode,
    grantee: body.grantee,
    scope: body.scope,
    purposes: body.purposes,
    period: body.period,
    deidentification: body.deidentification,
    status: 'active',
    version: 1,
    grantedAt: ctx.time,
    updatedAt: ctx.time,
    source: 'grant',
    requestId: null,
    ...(guardian === null ? {} : { grantedBy: { guardian: guardian.guardian, guardianshipId: guardian.guardianshipId } }),
  };
  addConsent(draft, consent);
  if (guardian !== null) noteGuardianAct(input, guardian, 'consent.grant', txId);
  input.events.push({ type: 'consent.granted', patientCode: body.patientCode, data: { consentId: txId } });
}

function scopeWithin(inner: ConsentScope, outer: ConsentScope): boolean {
  if (outer.kind === 'all') return true;
  if (inner.kind !== outer.kind) return false;
  if (inner.kind === 'categories' && outer.kind === 'categories') return inner.categories.every((c) => outer.categories.includes(c));
  if (inner.kind === 'records' && outer.kind === 'records') return inner.recordIds.every((r) => outer.recordIds.includes(r));
  return false;
}

export function narrow(input: ContractInput<Static<typeof NarrowBody>>): void {
  const { draft, body, ctx } = input;
  const consent = draft.get<Consent>('consents', body.consentId);
  if (consent === undefined) reject('CONSENT_NOT_FOUND');
  // A guardian changes only consents inside their guardianship: its categories and purposes.
  const guardian = actingFor(input, consent.patientCode, { action: 'consent.narrow', purposes: consent.purposes, scope: consent.scope });
  if (consent.status === 'revoked') reject('CONSENT_REVOKED');
  const narrower =
    scopeWithin(body.scope, consent.scope) &&
    body.purposes.every((p) => consent.purposes.includes(p)) &&
    body.period.from >= consent.period.from &&
    (consent.period.to === null || (body.period.to !== null && body.period.to <= consent.period.to)) &&
    (body.period.to === null || body.period.to > body.period.from) &&
    atLeastAsStrict(body.deidentification, consent.deidentification);
  if (!narrower) reject('CONSENT_NOT_NARROWER');
  draft.put('consents', consent.consentId, {
    ...consent,
    scope: body.scope,
    purposes: body.purposes,
    period: body.period,
    deidentification: body.deidentification,
    version: consent.version + 1,
    updatedAt: ctx.time,
  });
  if (guardian !== null) noteGuardianAct(input, guardian, 'consent.narrow', consent.consentId);
  input.events.push({ type: 'consent.narrowed', patientCode: consent.patientCode, data: { consentId: consent.consentId } });
}

export function revoke(input: ContractInput<Static<typeof RevokeBody>>): void {
  const { draft, body, ctx } = input;
  const consent = draft.get<Consent>('consents', body.consentId);
  if (consent === undefined) reject('CONSENT_NOT_FOUND');
  const guardian = actingFor(input, consent.patientCode, { action: 'consent.revoke', purposes: consent.purposes, scope: consent.scope });
  // An emergency access is ended by its review, not by a guardian in the middle of the emergency.
  if (guardian !== null && consent.source === 'break-glass')
    reject('GUARDIAN_OUT_OF_SCOPE', 'A guardian does not end a break-glass access.');
  if (consent.status === 'revoked') reject('CONSENT_REVOKED');
  draft.put('consents', consent.consentId, { ...consent, status: 'revoked', version: consent.version + 1, updatedAt: ctx.time });
  if (guardian !== null) noteGuardianAct(input, guardian, 'consent.revoke', consent.consentId);
  input.events.push({ type: 'consent.revoked', patientCode: consent.patientCode, data: { consentId: consent.consentId } });
}
