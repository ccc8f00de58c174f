/**
 * Roles, institution kinds and the role → permission table: the only place that decides who
 * may do what (DESIGN §1; TMSMD §4.2 role-based access control). Contracts, the vault, the API
 * and the UI all ask `can`.
 */
import type { TxType } from '../ledger/tx-types.ts';

export const InstitutionKinds = {
  hospital: 'Hospital',
  clinic: 'Clinic',
  laboratory: 'Laboratory',
  research: 'Research institute',
} as const;
export type InstitutionKind = keyof typeof InstitutionKinds;

export const StaffRoles = {
  doctor: 'Doctor',
  nurse: 'Nurse',
  operator: 'Operator (runs the institution’s record functions)',
  researcher: 'Researcher (de-identified data and aggregates only)',
  auditor: 'Auditor (reads audit trails only)',
} as const;
export type StaffRole = keyof typeof StaffRoles;

/**
 * Qualifications an institution grants to some of its staff on top of their role. `emergency`:
 * a doctor who may break the glass (HL7 ActReason BTG / ETREAT). A flag on the doctor rather than
 * a role of its own, so an emergency physician keeps every right of a doctor (records, group keys)
 * and the institution can grant or withdraw it without re-enrolling them.
 */
export const Qualifications = {
  emergency: 'May open a patient’s records without prior consent in an emergency (break-glass)',
} as const;
export type Qualification = keyof typeof Qualifications;

/** Every principal role: the Issuer, an institution acting through its own key, staff, patients. */
export type Role = 'issuer' | 'institution' | 'patient' | StaffRole;

/** Permissions that are not transactions: reads decided by the vault and the API. */
export type ReadPermission = 'records.readIdentified' | 'records.readDeidentified' | 'audit.read' | 'push.manage';
export type Permission = TxType | ReadPermission;

interface Grant {
  readonly roles: readonly Role[];
  /** when present, the author's institution must be of one of these kinds */
  readonly institutionKinds?: readonly InstitutionKind[];
  /** when present, the author (staff) must hold this qualification */
  readonly qualification?: Qualification;
}

const CARE: readonly InstitutionKind[] = ['hospital', 'clinic', 'laboratory'];

/** The declarative table. Anything not listed is denied. */
export const PermissionTable: { readonly [P in Permission]: Grant } = {
  'membership.propose': { roles: ['issuer', 'institution'] },
  'membership.vote': { roles: ['institution'] },
  'membership.setEndpoint': { roles: ['institution'] },
  'membership.rotateKey': { roles: ['institution'] },
  'identity.enrolStaff': { roles: ['institution'] },
  'identity.revokeStaff': { roles: ['institution'] },
  'identity.registerPatient': { roles: ['operator', 'doctor', 'nurse'], institutionKinds: CARE },
  // Staff act here only for patients whose home is their institution (checked by the contract),
  // and a home is always a care institution, since only care staff register patients.
  'identity.rotatePatientKeys': { roles: ['patient', 'operator', 'doctor', 'nurse'] },
  'identity.freezePatient': { roles: ['patient', 'operator', 'doctor', 'nurse'] },
  'records.register': { roles: ['doctor', 'nurse', 'operator'], institutionKinds: CARE },
  'records.amend': { roles: ['doctor', 'nurse', 'operator'], institutionKinds: CARE },
  'records.retract': { roles: ['doctor', 'operator'], institutionKinds: CARE },
  'records.erase': { roles: ['patient'] },
  'groups.rotate': { roles: ['institution', 'operator'] },
  'consent.requestRegistration': { roles: ['doctor', 'nurse', 'operator'], institutionKinds: CARE },
  'consent.answerRegistration': { roles: ['patient'] },
  'consent.grant': { roles: ['patient'] },
  'consent.narrow': { roles: ['patient'] },
  'consent.revoke': { roles: ['patient'] },
  'access.request': { roles: ['doctor', 'nurse', 'researcher'] },
  'access.decide': { roles: ['patient'] },
  'access.recordServed': { roles: ['institution', 'operator'], institutionKinds: CARE },
  'access.recordRefused': { roles: ['institution', 'operator'], institutionKinds: CARE },
  'access.breakGlass': { roles: ['doctor'], institutionKinds: ['hospital', 'clinic'], qualification: 'emergency' },
  // issue 7: the institution's auditors close the review of its own staff's break-glass accesses
  'access.reviewBreakGlass': { roles: ['auditor'], institutionKinds: ['hospital', 'clinic'] },
  'identity.setQualifications': { roles: ['institution'] },
  // a patient appoints and revokes; the contract lets a guardian resign too
  'identity.appointGuardian': { roles: ['patient'] },
  'identity.revokeGuardian': { roles: ['patient'] },
  'subscriptions.subscribe': { roles: ['doctor'], institutionKinds: CARE },
  // the subscriber, or the patient whose records it follows (checked by the contract)
  'subscriptions.cancel': { roles: ['doctor', 'patient'] },
  'research.registerStudy': { roles: ['researcher'], institutionKinds: ['research'] },
  'research.closeStudy': { roles: ['researcher'], institutionKinds: ['research'] },
  'research.openRound': { roles: ['researcher'], institutionKinds: ['research'] },
  'research.shareStudyKey': { roles: ['institution', 'operator'], institutionKinds: CARE },
  'research.submitShare': { roles: ['institution', 'operator'], institutionKinds: CARE },
  'research.closeShares': { roles: ['institution', 'operator'], institutionKinds: CARE },
  'research.revealSeeds': { roles: ['institution', 'operator'], institutionKinds: CARE },
  'research.release': { roles: ['institution', 'operator'], institutionKinds: CARE },
  'records.readIdentified': { roles: ['patient', 'doctor', 'nurse', 'operator'] },
  'records.readDeidentified': { roles: ['patient', 'doctor', 'nurse', 'operator', 'researcher'] },
  'audit.read': { roles: ['patient', 'auditor'] },
  // the node's webhook deliveries: list and re-drive the dead letters of the institution
  'push.manage': { roles: ['institution', 'operator'] },
};

export interface PolicySubject {
  role: Role;
  institutionKind?: InstitutionKind | undefined;
  qualifications?: readonly Qualification[] | undefined;
}

/** Deny by default: true only when the table grants `permission` to this role and kind. */
export function can(subject: PolicySubject, permission: Permission): boolean {
  const grant = PermissionTable[permission];
  if (!grant.roles.includes(subject.role)) return false;
  if (grant.qualification !== undefined && !(subject.qualifications ?? []).includes(grant.qualification)) return false;
  if (grant.institutionKinds === undefined) return true;
  return subject.institutionKind !== undefined && grant.institutionKinds.includes(subject.institutionKind);
}
