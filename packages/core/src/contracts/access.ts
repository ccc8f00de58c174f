/**
 * Access: a member of staff requests access to a patient's records; the patient approves (which
 * grants a consent to that person) or denies; the custodian records each served access, which
 * the contract admits only if a consent covers it at block time, and each refusal; a doctor may
 * break the glass in an emergency with a reason — time-limited, logged, and queued for review.
 * Every entry lands in the patient's access log (seed 002 §4: who, when, what).
 */
import { Type, type Static } from '@sinclair/typebox';
import { reject, type ContractInput } from './context.ts';
import { addConsent, patientConsents } from './consent.ts';
import { Deidentification, Id, PatientCode, Purpose, Scope, StaffId, Text, TxRef } from './schemas.ts';
import { researchAccess } from './research.ts';
import type { AccessLogEntry, AccessRequest, Consent, Member, Patient, RecordEntry, Review, Staff } from './state.ts';
import { evaluateConsent } from '../policy/consent-evaluation.ts';
import { can } from '../policy/roles.ts';
import { isErrorCode } from '../errors.ts';
import { actingFor, noteGuardianAct } from './guardians.ts';

const DAY = 86_400_000;
/** An approval lasts 30 days unless the patient says otherwise, and at most a year. */
export const DEFAULT_APPROVAL_MS = 30 * DAY;
export const MAX_APPROVAL_MS = 365 * DAY;
/** Break-glass access lasts at most four hours. */
export const MAX_BREAK_GLASS_MS = 4 * 3_600_000;

export const RequestBody = Type.Object(
  { patientCode: PatientCode, scope: Scope, purpose: Purpose, deidentification: Deidentification, reason: Text(500) },
  { additionalProperties: false },
);
export const DecideBody = Type.Object(
  {
    requestId: TxRef,
    approve: Type.Boolean(),
    durationMs: Type.Union([Type.Integer({ minimum: 60_000, maximum: MAX_APPROVAL_MS }), Type.Null()]),
  },
  { additionalProperties: false },
);
export const ServedBody = Type.Object(
  {
    recordId: TxRef,
    requester: StaffId,
    purpose: Purpose,
    deidentification: Deidentification,
    /** a researcher's access names the study it is for */
    study: Type.Optional(Id),
  },
  { additionalProperties: false },
);
export const RefusedBody = Type.Object(
  {
    patientCode: PatientCode,
    recordId: Type.Union([TxRef, Type.Null()]),
    requester: Type.String({ minLength: 1, maxLength: 200 }),
    purpose: Purpose,
    code: Type.String({ pattern: '^[A-Z][A-Z_]{2,63}$' }),
  },
  { additionalProperties: false },
);
export const BreakGlassBody = Type.Object(
  {
    patientCode: PatientCode,
    reason: Type.Union([Type.Literal('ETREAT'), Type.Literal('BTG')]),
    justification: Type.String({ minLength: 10, maxLength: 1000 }),
    durationMs: Type.Integer({ minimum: 60_000, maximum: MAX_BREAK_GLASS_MS }),
  },
  { additionalProperties: false },
);

export const ReviewBreakGlassBody = Type.Object(
  {
    reviewId: TxRef,
    finding: Type.Union([Type.Literal('justified'), Type.Literal('unjustified')]),
    note: Type.String({ minLength: 1, maxLength: 1000 }),
  },
  { additionalProperties: false },
);

export function request(input: ContractInput<Static<typeof RequestBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  if (draft.get('patients', body.patientCode) === undefined) reject('PATIENT_UNKNOWN');
  const staff = principal.staff!;
  if (staff.role === 'researcher' && body.deidentification === 'identified') reject('DEIDENTIFICATION_REQUIRED');
  const req: AccessRequest = {
    requestId: txId,
    patientCode: body.patientCode,
    requester: staff.staffId,
    institution: staff.institution,
    scope: body.scope,
    purpose: body.purpose,
    deidentification: body.deidentification,
    reason: body.reason,
    status: 'pending',
    createdAt: ctx.time,
    decidedAt: null,
    consentId: null,
  };
  draft.put('accessRequests', txId, req);
  input.events.push({
    type: 'access.requested',
    patientCode: body.patientCode,
    data: { requestId: txId, requester: staff.staffId, institution: staff.institution },
  });
}

export function decide(input: ContractInput<Static<typeof DecideBody>>): void {
  const { draft, body, txId, ctx } = input;
  const req = draft.get<AccessRequest>('accessRequests', body.requestId);
  if (req === undefined) reject('REQUEST_NOT_FOUND');
  // The patient, or a guardian within their guardianship (issue 7): the request's purpose and
  // scope must lie inside it, whether approved or denied; an approval must also end inside it.
  const until = ctx.time + (body.durationMs ?? DEFAULT_APPROVAL_MS);
  const guardian = actingFor(input, req.patientCode, {
    action: 'access.decide',
    purposes: [req.purpose],
    scope: req.scope,
    ...(body.approve ? { until } : {}),
  });
  if (req.status !== 'pending') reject('REQUEST_CLOSED');
  let consentId: string | null = null;
  if (body.approve) {
    consentId = txId;
    const consent: Consent = {
      consentId,
      patientCode: req.patientCode,
      grantee: { kind: 'person', staffId: req.requester },
      scope: req.scope,
      purposes: [req.purpose],
      period: { from: ctx.time, to: ctx.time + (body.durationMs ?? DEFAULT_APPROVAL_MS) },
      deidentification: req.deidentification,
      status: 'active',
      version: 1,
      grantedAt: ctx.time,
      updatedAt: ctx.time,
      source: 'access-request',
      requestId: req.requestId,
      ...(guardian === null ? {} : { grantedBy: { guardian: guardian.guardian, guardianshipId: guardian.guardianshipId } }),
    };
    addConsent(draft, consent);
  }
  if (guardian !== null) noteGuardianAct(input, guardian, 'access.decide', consentId);
  draft.put('accessRequests', req.requestId, { ...req, status: body.approve ? 'approved' : 'denied', decidedAt: ctx.time, consentId });
  input.events.push({
    type: 'access.decided',
    patientCode: req.patientCode,
    data: { requestId: req.requestId, approved: body.approve, requester: req.requester },
  });
}

function logEntry(input: ContractInput<unknown>, e: Omit<AccessLogEntry, 'entryId' | 'time' | 'height'>): void {
  const entry: AccessLogEntry = { entryId: input.txId, time: input.ctx.time, height: input.ctx.height, ...e };
  input.draft.put('accessLog', input.txId, entry);
  input.events.push({
    type: 'access.logged',
    patientCode: e.patientCode,
    data: { entryId: input.txId, outcome: e.outcome, recordId: e.recordId },
  });
}

export function recordServed(input: ContractInput<Static<typeof ServedBody>>): void {
  const { draft, body, ctx, principal } = input;
  const record = draft.get<RecordEntry>('records', body.recordId);
  if (record === undefined) reject('RECORD_NOT_FOUND');
  if (record.custodian !== principal.institution!.id) reject('RECORD_NOT_CUSTODIAN');
  if (record.state === 'erased') reject('RECORD_ERASED');
  if (record.state !== 'active') reject('RECORD_RETRACTED');
  const requester = draft.get<Staff>('staff', body.requester);
  if (requester === undefined) reject('NOT_FOUND', 'No such requester.');
  if (requester.status !== 'active') reject('IDENTITY_REVOKED');
  const requesterInstitution = draft.get<Member>('members', requester.institution);
  if (requesterInstitution === undefined || requesterInstitution.status !== 'active')
    reject('NOT_A_MEMBER', 'The requester’s institution is not an active member.');
  researchAccess(draft, requester, {
    study: body.study,
    purpose: body.purpose,
    deidentification: body.deidentification,
    category: record.category,
  });
  // DESIGN §1: an auditor reads audit trails only. The role table decides who reads records at
  // all; a consent to an institution or a role must not reach its auditors.
  if (!can({ role: requester.role }, body.deidentification === 'identified' ? 'records.readIdentified' : 'records.readDeidentified'))
    reject('ROLE_FORBIDDEN', 'The requester’s role does not read records.');
  const decision = evaluateConsent(
    {
      requester: { staffId: requester.staffId, institution: requester.institution, role: requester.role, study: body.study ?? null },
      record: { recordId: record.recordId, category: record.category, custodian: record.custodian, patientCode: record.patientCode },
      purpose: body.purpose,
      deidentification: body.deidentification,
      time: ctx.time,
    },
    patientConsents(draft, record.patientCode),
  );
  if (!decision.allowed) reject(decision.code);
  // Why: the reason the requester gave when asking, when the consent answered a request.
  const consent = decision.consentId === null ? undefined : draft.get<Consent>('consents', decision.consentId);
  const asked = consent?.requestId ? draft.get<AccessRequest>('accessRequests', consent.requestId) : undefined;
  // Break-glass (issue 7): each record opened joins the review, and the entry carries the justification.
  const review = consent?.source === 'break-glass' ? draft.get<Review>('reviews', consent.consentId) : undefined;
  if (review !== undefined) draft.put('reviews', review.reviewId, { ...review, accessed: [...(review.accessed ?? []), record.recordId] });
  logEntry(input, {
    patientCode: record.patientCode,
    recordId: record.recordId,
    actor: requester.staffId,
    actorRole: requester.role,
    institution: requester.institution,
    custodian: record.custodian,
    purpose: body.purpose,
    outcome: 'served',
    code: null,
    consentId: decision.consentId,
    reason: review !== undefined ? `break-glass: ${review.justification}` : (asked?.reason ?? null),
    ...(body.study === undefined ? {} : { study: body.study }),
  });
}

export function recordRefused(input: ContractInput<Static<typeof RefusedBody>>): void {
  const { draft, body, principal } = input;
  if (!isErrorCode(body.code)) reject('TX_BODY_INVALID', 'code must be a medledger error code.');
  if (body.recordId !== null) {
    const record = draft.get<RecordEntry>('records', body.recordId);
    if (record === undefined) reject('RECORD_NOT_FOUND');
    if (record.custodian !== principal.institution!.id) reject('RECORD_NOT_CUSTODIAN');
    if (record.patientCode !== body.patientCode) reject('TX_BODY_INVALID', 'The record is not this patient’s.');
  }
  const requester = draft.get<Staff>('staff', body.requester);
  logEntry(input, {
    patientCode: body.patientCode,
    recordId: body.recordId,
    actor: body.requester,
    actorRole: requester?.role ?? 'unknown',
    institution: requester?.institution ?? 'unknown',
    custodian: principal.institution!.id,
    purpose: body.purpose,
    outcome: 'refused',
    code: body.code,
    consentId: null,
    reason: null,
  });
}

export function breakGlass(input: ContractInput<Static<typeof BreakGlassBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  const patient = draft.get<Patient>('patients', body.patientCode);
  if (patient === undefined) reject('PATIENT_UNKNOWN');
  const staff = principal.staff!;
  const expiresAt = ctx.time + body.durationMs;
  addConsent(draft, {
    consentId: txId,
    patientCode: body.patientCode,
    grantee: { kind: 'person', staffId: staff.staffId },
    scope: { kind: 'all' },
    purposes: ['ETREAT', 'BTG'],
    period: { from: ctx.time, to: expiresAt },
    deidentification: 'identified',
    status: 'active',
    version: 1,
    grantedAt: ctx.time,
    updatedAt: ctx.time,
    source: 'break-glass',
    requestId: null,
  });
  const review: Review = {
    reviewId: txId,
    patientCode: body.patientCode,
    doctor: staff.staffId,
    institution: staff.institution,
    reason: body.reason,
    justification: body.justification,
    openedAt: ctx.time,
    expiresAt,
    status: 'open',
  };
  draft.put('reviews', txId, review);
  logEntry(input, {
    patientCode: body.patientCode,
    recordId: null,
    actor: staff.staffId,
    actorRole: staff.role,
    institution: staff.institution,
    custodian: null,
    purpose: body.reason,
    outcome: 'break-glass',
    code: null,
    consentId: txId,
    reason: body.justification,
  });
  input.events.push({
    type: 'access.breakGlass',
    patientCode: body.patientCode,
    data: { reviewId: txId, doctor: staff.staffId, expiresAt },
  });
}

/**
 * An auditor of the doctor's institution closes a break-glass review with a finding (issue 7).
 * The patient sees it in their access history.
 */
export function reviewBreakGlass(input: ContractInput<Static<typeof ReviewBreakGlassBody>>): void {
  const { draft, body, ctx, principal } = input;
  const review = draft.get<Review>('reviews', body.reviewId);
  if (review === undefined) reject('REVIEW_NOT_FOUND');
  const auditor = principal.staff!;
  if (auditor.institution !== review.institution) reject('ROLE_FORBIDDEN', 'Auditors review their own institution’s break-glass accesses.');
  if (review.status !== 'open') reject('REVIEW_CLOSED');
  // A closed review covers every read it lists: closing it before the access expires ends the access.
  const access = draft.get<Consent>('consents', review.reviewId);
  if (access !== undefined && access.status !== 'revoked' && (access.period.to === null || ctx.time < access.period.to)) {
    draft.put('consents', access.consentId, { ...access, status: 'revoked', version: access.version + 1, updatedAt: ctx.time });
  }
  draft.put('reviews', review.reviewId, {
    ...review,
    status: 'closed',
    closure: { reviewer: auditor.staffId, finding: body.finding, note: body.note, closedAt: ctx.time, height: ctx.height },
  });
  logEntry(input, {
    patientCode: review.patientCode,
    recordId: null,
    actor: auditor.staffId,
    actorRole: auditor.role,
    institution: auditor.institution,
    custodian: null,
    purpose: review.reason,
    outcome: 'break-glass-reviewed',
    code: null,
    consentId: review.reviewId,
    reason: body.finding,
  });
  input.events.push({
    type: 'access.breakGlassReviewed',
    patientCode: review.patientCode,
    data: { reviewId: review.reviewId, finding: body.finding, reviewer: auditor.staffId },
  });
}
