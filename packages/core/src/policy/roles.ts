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

/** Every principal role: the Issuer, an institution acting through its own key, staff, patients. */
export type Role = 'issuer' | 'institution' | 'patient' | StaffRole;

/** Permissions that are not transactions: reads decided by the vault and the API. */
export type ReadPermission = 'records.readIdentified' | 'records.readDeidentified' | 'audit.read';
export type Permission = TxType | ReadPermission;

interface Grant {
  readonly roles: readonly Role[];
  /** when present, the author's institution must be of one of these kinds */
  readonly institutionKinds?: readonly InstitutionKind[];
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
  'access.breakGlass': { roles: ['doctor'], institutionKinds: ['hospital', 'clinic'] },
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
};

export interface PolicySubject {
  role: Role;
  institutionKind?: InstitutionKind | undefined;
}

/** Deny by default: true only when the table grants `permission` to this role and kind. */
export function can(subject: PolicySubject, permission: Permission): boolean {
  const grant = PermissionTable[permission];
  if (!grant.roles.includes(subject.role)) return false;
  if (grant.institutionKinds === undefined) return true;
  return subject.institutionKind !== undefined && grant.institutionKinds.includes(subject.institutionKind);
}
