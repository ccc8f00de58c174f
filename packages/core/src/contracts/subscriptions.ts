/**
 * Push subscriptions (issue 7): a doctor follows a patient's new records. The contract admits a
 * subscription only under a consent that covers the doctor (deny by default); the doctor's
 * institution's node delivers each new registration and asks the same question again for each
 * record, so a revoked or ended consent stops the deliveries. The subscriber or the patient
 * cancels it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { reject, type ContractInput } from './context.ts';
import { patientConsents } from './consent.ts';
import { Category, PatientCode, Purpose, TxRef } from './schemas.ts';
import type { Subscription } from './state.ts';
import { subscriptionCoverage } from '../policy/subscription-coverage.ts';

export const SubscribeBody = Type.Object(
  {
    patientCode: PatientCode,
    categories: Type.Union([Type.Array(Category, { minItems: 1, maxItems: 32, uniqueItems: true }), Type.Null()]),
    purpose: Purpose,
  },
  { additionalProperties: false },
);
export const CancelBody = Type.Object({ subscriptionId: TxRef }, { additionalProperties: false });

export function subscribe(input: ContractInput<Static<typeof SubscribeBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  if (draft.get('patients', body.patientCode) === undefined) reject('PATIENT_UNKNOWN');
  const staff = principal.staff!;
  const decision = subscriptionCoverage(
    {
      requester: { staffId: staff.staffId, institution: staff.institution, role: staff.role },
      patientCode: body.patientCode,
      categories: body.categories,
      purpose: body.purpose,
      time: ctx.time,
    },
    patientConsents(draft, body.patientCode),
  );
  if (!decision.allowed) reject(decision.code);
  const subscription: Subscription = {
    subscriptionId: txId,
    patientCode: body.patientCode,
    subscriber: staff.staffId,
    institution: staff.institution,
    categories: body.categories,
    purpose: body.purpose,
    consentId: decision.consentId,
    status: 'active',
    createdAt: ctx.time,
    cancelledAt: null,
    cancelledBy: null,
  };
  draft.put('subscriptions', txId, subscription);
  input.events.push({
    type: 'subscription.created',
    patientCode: body.patientCode,
    data: { subscriptionId: txId, subscriber: staff.staffId, consentId: decision.consentId },
  });
}

export function cancel(input: ContractInput<Static<typeof CancelBody>>): void {
  const { draft, body, ctx, principal } = input;
  const s = draft.get<Subscription>('subscriptions', body.subscriptionId);
  if (s === undefined) reject('SUBSCRIPTION_NOT_FOUND');
  const by = principal.staff?.staffId ?? principal.patient?.patientCode;
  if (by !== s.subscriber && by !== s.patientCode) reject('ROLE_FORBIDDEN', 'The subscriber or the patient cancels a subscription.');
  if (s.status !== 'active') reject('SUBSCRIPTION_CLOSED');
  draft.put('subscriptions', s.subscriptionId, { ...s, status: 'cancelled', cancelledAt: ctx.time, cancelledBy: by });
  input.events.push({ type: 'subscription.cancelled', patientCode: s.patientCode, data: { subscriptionId: s.subscriptionId } });
}
