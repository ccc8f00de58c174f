/**
 * Guardians and delegates (issue 7): a patient appoints another registered person — by their
 * patient code, so the guardian signs with a key the ledger already binds to a person — who may
 * then consent on the patient's behalf within a scope (actions, record categories, purposes) and a
 * period. Revocable by the patient; the guardian may resign. Every appointment, revocation and act
 * lands in the patient's access history.
 */
import { Type, type Static } from '@sinclair/typebox';
import { reject, type ContractInput, type Draft } from './context.ts';
import { Category, PatientCode, Period, Purpose, TxRef } from './schemas.ts';
import type { AccessLogEntry, ConsentScope, GuardianAction, Guardianship, Patient, RecordEntry } from './state.ts';
import type { ErrorCode } from '../errors.ts';
import type { Purpose as PurposeCode } from '../policy/purposes.ts';

export const GuardianActions = [
  'consent.grant',
  'consent.narrow',
  'consent.revoke',
  'access.decide',
] as const satisfies readonly GuardianAction[];

export const AppointGuardianBody = Type.Object(
  {
    patientCode: PatientCode,
    /** the guardian's own patient code */
    guardian: PatientCode,
    scope: Type.Object(
      {
        actions: Type.Array(Type.Union(GuardianActions.map((a) => Type.Literal(a))), { minItems: 1, maxItems: 4, uniqueItems: true }),
        categories: Type.Union([Type.Array(Category, { minItems: 1, maxItems: 32, uniqueItems: true }), Type.Null()]),
        purposes: Type.Array(Purpose, { minItems: 1, maxItems: 16, uniqueItems: true }),
      },
      { additionalProperties: false },
    ),
    period: Period,
  },
  { additionalProperties: false },
);
export const RevokeGuardianBody = Type.Object({ guardianshipId: TxRef }, { additionalProperties: false });

const indexKey = (patientCode: string): string => `guardianships/${patientCode}`;

export function guardianshipsOf(draft: Draft, patientCode: string): Guardianship[] {
  const ids = draft.get<string[]>('meta', indexKey(patientCode)) ?? [];
  return ids.map((id) => draft.get<Guardianship>('guardianships', id)).filter((g): g is Guardianship => g !== undefined);
}

/** An entry of the patient's access history for a guardianship event (their own request: PATRQT). */
function history(
  input: ContractInput<unknown>,
  g: Guardianship,
  outcome: AccessLogEntry['outcome'],
  actor: string,
  reason: string,
  consentId: string | null = null,
): void {
  const actorPatient = input.draft.get<Patient>('patients', actor);
  const entry: AccessLogEntry = {
    entryId: input.txId,
    patientCode: g.patientCode,
    recordId: null,
    actor,
    actorRole: actor === g.patientCode ? 'patient' : 'guardian',
    institution: actorPatient?.home ?? 'unknown',
    custodian: null,
    purpose: 'PATRQT',
    outcome,
    code: null,
    consentId,
    reason,
    time: input.ctx.time,
    height: input.ctx.height,
  };
  input.draft.put('accessLog', input.txId, entry);
  input.events.push({
    type: 'access.logged',
    patientCode: g.patientCode,
    data: { entryId: input.txId, outcome, recordId: null },
  });
}

export function appointGuardian(input: ContractInput<Static<typeof AppointGuardianBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  // Only the patient appoints; a guardian cannot appoint another (no chains of delegation).
  if (principal.patient?.patientCode !== body.patientCode) reject('ROLE_FORBIDDEN', 'A patient appoints their own guardians.');
  if (body.guardian === body.patientCode) reject('TX_BODY_INVALID', 'A patient is not their own guardian.');
  if (draft.get('patients', body.guardian) === undefined) reject('PATIENT_UNKNOWN', 'The guardian is not registered.');
  if (body.period.to !== null && body.period.to <= body.period.from) reject('TX_BODY_INVALID', 'period.to must be after period.from.');
  const g: Guardianship = {
    guardianshipId: txId,
    patientCode: body.patientCode,
    guardian: body.guardian,
    scope: { actions: body.scope.actions, categories: body.scope.categories, purposes: body.scope.purposes },
    period: body.period,
    status: 'active',
    appointedAt: ctx.time,
    revokedAt: null,
    revokedBy: null,
  };
  draft.put('guardianships', txId, g);
  draft.put('meta', indexKey(body.patientCode), [...(draft.get<string[]>('meta', indexKey(body.patientCode)) ?? []), txId]);
  history(input, g, 'guardian-appointed', body.patientCode, 'identity.appointGuardian');
  input.events.push({ type: 'identity.guardianAppointed', patientCode: body.patientCode, data: { guardianshipId: txId } });
}

export function revokeGuardian(input: ContractInput<Static<typeof RevokeGuardianBody>>): void {
  const { draft, body, ctx, principal } = input;
  const g = draft.get<Guardianship>('guardianships', body.guardianshipId);
  if (g === undefined) reject('GUARDIANSHIP_NOT_FOUND');
  const by = principal.patient?.patientCode;
  if (by !== g.patientCode && by !== g.guardian) reject('ROLE_FORBIDDEN', 'The patient or the guardian ends a guardianship.');
  if (g.status === 'revoked') reject('GUARDIANSHIP_REVOKED');
  draft.put('guardianships', g.guardianshipId, { ...g, status: 'revoked', revokedAt: ctx.time, revokedBy: by });
  history(input, g, 'guardian-revoked', by, 'identity.revokeGuardian');
  input.events.push({ type: 'identity.guardianRevoked', patientCode: g.patientCode, data: { guardianshipId: g.guardianshipId } });
}

/** What a guardian's act would give: checked against each guardianship's scope. */
export interface GuardianAct {
  action: GuardianAction;
  /** purposes a new consent names (grant, approval) */
  purposes?: readonly PurposeCode[];
  /** the scope of a new consent */
  scope?: ConsentScope;
  /** when a new consent ends (null: never) */
  until?: number | null;
}

function scopeWithinCategories(draft: Draft, patientCode: string, scope: ConsentScope, categories: readonly string[]): boolean {
  switch (scope.kind) {
    case 'all':
      return false;
    case 'categories':
      return scope.categories.every((c) => categories.includes(c));
    case 'records':
      return scope.recordIds.every((id) => {
        const r = draft.get<RecordEntry>('records', id);
        return r !== undefined && r.patientCode === patientCode && categories.includes(r.category);
      });
  }
}

function withinScope(draft: Draft, g: Guardianship, act: GuardianAct): boolean {
  if (!g.scope.actions.includes(act.action)) return false;
  if (act.purposes !== undefined && !act.purposes.every((p) => g.scope.purposes.includes(p))) return false;
  if (act.scope !== undefined && g.scope.categories !== null && !scopeWithinCategories(draft, g.patientCode, act.scope, g.scope.categories))
    return false;
  // A consent the guardian gives does not outlast the guardianship.
  if (act.until !== undefined && g.period.to !== null && (act.until === null || act.until > g.period.to)) return false;
  return true;
}

/**
 * Who acts for `patientCode` in this tx: null when the patient themselves; the guardianship when
 * a guardian acting within it. Rejects otherwise — ROLE_FORBIDDEN when the author is neither, or
 * the reason the nearest guardianship does not allow it (revoked, not begun, ended, out of scope).
 */
export function actingFor(input: ContractInput<unknown>, patientCode: string, act: GuardianAct): Guardianship | null {
  const author = input.principal.patient?.patientCode;
  if (author === patientCode) return null;
  if (author === undefined) reject('ROLE_FORBIDDEN', 'A patient acts only on their own data.');
  const mine = guardianshipsOf(input.draft, patientCode).filter((g) => g.guardian === author);
  if (mine.length === 0) reject('ROLE_FORBIDDEN', 'A patient acts only on their own data.');
  const t = input.ctx.time;
  let miss: ErrorCode = 'GUARDIAN_OUT_OF_SCOPE';
  // Deterministic: the oldest guardianship that allows the act wins.
  for (const g of [...mine].sort((a, b) => a.appointedAt - b.appointedAt || (a.guardianshipId < b.guardianshipId ? -1 : 1))) {
    if (g.status === 'revoked') miss = 'GUARDIANSHIP_REVOKED';
    else if (t < g.period.from) miss = 'GUARDIANSHIP_NOT_YET_VALID';
    else if (g.period.to !== null && t >= g.period.to) miss = 'GUARDIANSHIP_EXPIRED';
    else if (!withinScope(input.draft, g, act)) miss = 'GUARDIAN_OUT_OF_SCOPE';
    else return g;
  }
  reject(miss);
}

/** Records a guardian's act in the patient's history (called by the contract that accepted it). */
export function noteGuardianAct(input: ContractInput<unknown>, g: Guardianship, action: GuardianAction, consentId: string | null): void {
  history(input, g, 'guardian-acted', g.guardian, action, consentId);
}
