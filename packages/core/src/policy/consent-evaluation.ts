/**
 * Does a consent cover this access? The single decision used by contracts (served accesses),
 * the vault (before serving) and the UI (to explain a refusal). Deny by default; when nothing
 * covers the access, the answer names the nearest miss so a person learns why.
 */
import type { ErrorCode } from '../errors.ts';
import type { Consent, ConsentScope, Grantee } from '../contracts/state.ts';
import { atLeastAsStrict, type DeidentificationLevel, type Purpose } from './purposes.ts';
import type { StaffRole } from './roles.ts';

export interface AccessQuestion {
  /** `study`: the study a researcher asks for, once its team membership was checked */
  requester: { staffId: string; institution: string; role: StaffRole; study?: string | null };
  record: { recordId: string; category: string; custodian: string; patientCode: string };
  purpose: Purpose;
  /** the identification level the requester would receive */
  deidentification: DeidentificationLevel;
  time: number;
}

export type ConsentDecision =
  { allowed: true; consentId: string | null; basis: 'consent' | 'custodian' } | { allowed: false; code: ErrorCode };

export function granteeCovers(grantee: Grantee, requester: AccessQuestion['requester']): boolean {
  switch (grantee.kind) {
    case 'institution':
      return grantee.institution === requester.institution;
    case 'person':
      return grantee.staffId === requester.staffId;
    case 'role':
      return grantee.role === requester.role && (grantee.institution === null || grantee.institution === requester.institution);
    case 'study':
      return requester.role === 'researcher' && requester.study === grantee.studyId;
  }
}

export function scopeCovers(scope: ConsentScope, record: AccessQuestion['record']): boolean {
  switch (scope.kind) {
    case 'all':
      return true;
    case 'categories':
      return scope.categories.includes(record.category);
    case 'records':
      return scope.recordIds.includes(record.recordId);
  }
}

/**
 * Decides an access. The custodian's own clinical staff may read its own records for
 * treatment (the custodian holds them anyway, seed 002 §3); everyone else needs a consent.
 */
export function evaluateConsent(q: AccessQuestion, consents: readonly Consent[]): ConsentDecision {
  // TMSMD §4.2: researchers only ever see data with identifying information removed.
  if (q.requester.role === 'researcher' && q.deidentification === 'identified') {
    return { allowed: false, code: 'DEIDENTIFICATION_REQUIRED' };
  }
  if (
    q.requester.institution === q.record.custodian &&
    q.requester.role !== 'researcher' &&
    q.requester.role !== 'auditor' &&
    (q.purpose === 'TREAT' || q.purpose === 'ETREAT' || q.purpose === 'HOPERAT' || q.purpose === 'CAREMGT')
  ) {
    return { allowed: true, consentId: null, basis: 'custodian' };
  }
  // When nothing covers the access, the reason given is that of the most recently changed
  // consent for this requester and record: the one the patient most likely has in mind.
  let miss: { code: ErrorCode; updatedAt: number } = { code: 'CONSENT_REQUIRED', updatedAt: -1 };
  const note = (c: Consent, code: ErrorCode): void => {
    if (c.updatedAt >= miss.updatedAt) miss = { code, updatedAt: c.updatedAt };
  };
  // Sorted for a deterministic answer when several consents apply.
  const ordered = [...consents].sort((a, b) => (a.consentId < b.consentId ? -1 : a.consentId > b.consentId ? 1 : 0));
  for (const c of ordered) {
    if (c.patientCode !== q.record.patientCode) continue;
    if (!granteeCovers(c.grantee, q.requester) || !scopeCovers(c.scope, q.record)) continue;
    if (c.status === 'revoked') {
      note(c, 'CONSENT_REVOKED');
      continue;
    }
    if (!c.purposes.includes(q.purpose)) {
      note(c, 'CONSENT_PURPOSE_MISMATCH');
      continue;
    }
    if (q.time < c.period.from) {
      note(c, 'CONSENT_NOT_YET_VALID');
      continue;
    }
    if (c.period.to !== null && q.time >= c.period.to) {
      note(c, 'CONSENT_EXPIRED');
      continue;
    }
    if (!atLeastAsStrict(q.deidentification, c.deidentification)) {
      note(c, 'DEIDENTIFICATION_REQUIRED');
      continue;
    }
    return { allowed: true, consentId: c.consentId, basis: 'consent' };
  }
  return { allowed: false, code: miss.code };
}
