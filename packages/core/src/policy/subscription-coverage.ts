/**
 * Does a consent cover a subscription to a patient's new records (issue 7)? Unlike a read, a
 * subscription concerns records that do not exist yet, so only a consent to the subscriber (as a
 * person, their role or their institution) whose scope reaches future records — all records, or
 * the categories followed — and that is active now, for this purpose, identified, covers it. The
 * custodian's own staff get no exception here: deny by default. Delivery asks again for each
 * record, so a subscription stops when its consent is revoked, narrowed or ends.
 */
import type { ErrorCode } from '../errors.ts';
import type { Consent } from '../contracts/state.ts';
import { granteeCovers, type AccessQuestion } from './consent-evaluation.ts';
import type { Purpose } from './purposes.ts';

export interface SubscriptionQuestion {
  requester: AccessQuestion['requester'];
  patientCode: string;
  /** the categories followed (null: every category), or the one category of a new record */
  categories: readonly string[] | null;
  purpose: Purpose;
  time: number;
}

export type SubscriptionDecision = { allowed: true; consentId: string } | { allowed: false; code: ErrorCode };

function reachesFuture(c: Consent, categories: readonly string[] | null): boolean {
  if (c.scope.kind === 'all') return true;
  if (c.scope.kind === 'records' || categories === null) return false;
  const allowed = c.scope.categories;
  return categories.every((x) => allowed.includes(x));
}

export function subscriptionCoverage(q: SubscriptionQuestion, consents: readonly Consent[]): SubscriptionDecision {
  let miss: { code: ErrorCode; updatedAt: number } = { code: 'CONSENT_REQUIRED', updatedAt: -1 };
  const note = (c: Consent, code: ErrorCode): void => {
    if (c.updatedAt >= miss.updatedAt) miss = { code, updatedAt: c.updatedAt };
  };
  const ordered = [...consents].sort((a, b) => (a.consentId < b.consentId ? -1 : a.consentId > b.consentId ? 1 : 0));
  for (const c of ordered) {
    // A break-glass consent is for the emergency itself, never a standing subscription.
    if (c.patientCode !== q.patientCode || c.source === 'break-glass') continue;
    if (!granteeCovers(c.grantee, q.requester) || !reachesFuture(c, q.categories)) continue;
    if (c.status === 'revoked') note(c, 'CONSENT_REVOKED');
    else if (!c.purposes.includes(q.purpose)) note(c, 'CONSENT_PURPOSE_MISMATCH');
    else if (q.time < c.period.from) note(c, 'CONSENT_NOT_YET_VALID');
    else if (c.period.to !== null && q.time >= c.period.to) note(c, 'CONSENT_EXPIRED');
    else if (c.deidentification !== 'identified') note(c, 'DEIDENTIFICATION_REQUIRED');
    else return { allowed: true, consentId: c.consentId };
  }
  return { allowed: false, code: miss.code };
}
