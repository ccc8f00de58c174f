/** The role → permission table decides alone, and denies whatever it does not list. */
import { describe, expect, it } from 'vitest';
import { TxTypes } from '../ledger/tx-types.ts';
import { InstitutionKinds, PermissionTable, StaffRoles, can, type InstitutionKind, type Permission, type Role } from './roles.ts';

const KINDS = Object.keys(InstitutionKinds) as InstitutionKind[];
const ROLES: Role[] = ['issuer', 'institution', 'patient', ...(Object.keys(StaffRoles) as (keyof typeof StaffRoles)[])];
const PERMISSIONS = Object.keys(PermissionTable) as Permission[];

describe('can: examples a hospital IT team would check', () => {
  const cases: readonly [Role, InstitutionKind | undefined, Permission, boolean][] = [
    // records
    ['doctor', 'hospital', 'records.register', true],
    ['nurse', 'clinic', 'records.register', true],
    ['operator', 'laboratory', 'records.register', true],
    ['researcher', 'research', 'records.register', false],
    ['researcher', 'hospital', 'records.register', false],
    ['doctor', 'research', 'records.register', false], // research institute staff register nothing
    ['operator', 'research', 'records.register', false],
    ['auditor', 'hospital', 'records.register', false],
    ['patient', undefined, 'records.register', false],
    ['institution', 'hospital', 'records.register', false],
    ['issuer', undefined, 'records.register', false],
    ['nurse', 'hospital', 'records.retract', false],
    ['doctor', 'hospital', 'records.retract', true],
    ['doctor', 'research', 'records.amend', false],
    // audit
    ['auditor', 'hospital', 'audit.read', true],
    ['auditor', undefined, 'audit.read', true],
    ['patient', undefined, 'audit.read', true],
    ['doctor', 'hospital', 'audit.read', false],
    ['institution', 'hospital', 'audit.read', false],
    ['auditor', 'hospital', 'records.readIdentified', false],
    ['auditor', 'hospital', 'records.readDeidentified', false],
    // research
    ['researcher', 'research', 'records.readIdentified', false],
    ['researcher', 'research', 'records.readDeidentified', true],
    ['researcher', 'research', 'access.request', true],
    // identity and membership
    ['institution', 'hospital', 'identity.enrolStaff', true],
    ['institution', 'research', 'identity.enrolStaff', true],
    ['doctor', 'hospital', 'identity.enrolStaff', false],
    ['issuer', undefined, 'identity.enrolStaff', false],
    ['patient', undefined, 'identity.enrolStaff', false],
    ['operator', 'hospital', 'identity.registerPatient', true],
    ['operator', 'research', 'identity.registerPatient', false],
    ['issuer', undefined, 'membership.propose', true],
    ['issuer', undefined, 'membership.vote', false],
    ['institution', 'laboratory', 'membership.vote', true],
    ['doctor', 'hospital', 'membership.vote', false],
    // consent: the patient's alone
    ['patient', undefined, 'consent.grant', true],
    ['patient', undefined, 'consent.revoke', true],
    ['patient', undefined, 'access.decide', true],
    ['doctor', 'hospital', 'consent.grant', false],
    ['institution', 'hospital', 'access.decide', false],
    // access
    // break-glass needs the emergency qualification too (issue 7; tested below)
    ['doctor', 'hospital', 'access.breakGlass', false],
    ['doctor', 'clinic', 'access.breakGlass', false],
    ['doctor', 'laboratory', 'access.breakGlass', false],
    ['nurse', 'hospital', 'access.breakGlass', false],
    ['institution', 'hospital', 'access.recordServed', true],
    ['operator', 'clinic', 'access.recordServed', true],
    ['institution', 'research', 'access.recordServed', false],
    ['doctor', 'hospital', 'access.recordServed', false],
  ];

  it.each(cases)('%s at %s → %s: %s', (role, institutionKind, permission, allowed) => {
    expect(can({ role, institutionKind }, permission)).toBe(allowed);
  });
});

describe('deny by default', () => {
  it('grants a permission limited to institution kinds only when the kind is known', () => {
    for (const p of PERMISSIONS) {
      const grant = PermissionTable[p];
      if (grant.institutionKinds === undefined) continue;
      for (const role of grant.roles) expect(can({ role }, p), `${role} ${p}`).toBe(false);
    }
  });

  it('grants nothing beyond the table, for any role and kind', () => {
    for (const p of PERMISSIONS) {
      const grant = PermissionTable[p];
      for (const role of ROLES) {
        for (const kind of [undefined, ...KINDS]) {
          const listed =
            grant.roles.includes(role) &&
            (grant.institutionKinds === undefined || (kind !== undefined && grant.institutionKinds.includes(kind))) &&
            grant.qualification === undefined;
          expect(can({ role, institutionKind: kind }, p), `${role} at ${String(kind)}: ${p}`).toBe(listed);
        }
      }
    }
  });

  it('has a row for every transaction type', () => {
    for (const type of Object.keys(TxTypes)) expect(Object.hasOwn(PermissionTable, type), type).toBe(true);
  });

  it('gives the Issuer no power over records, consents or access', () => {
    const allowed = PERMISSIONS.filter((p) => can({ role: 'issuer' }, p));
    expect(allowed).toEqual(['membership.propose']);
  });

  it('lets a researcher request access, run studies of a research institute and read de-identified data, nothing else', () => {
    for (const kind of [undefined, ...KINDS]) {
      const allowed = PERMISSIONS.filter((p) => can({ role: 'researcher', institutionKind: kind }, p));
      const studies = kind === 'research' ? ['research.registerStudy', 'research.closeStudy', 'research.openRound'] : [];
      expect(allowed, String(kind)).toEqual(['access.request', ...studies, 'records.readDeidentified']);
    }
  });

  it('lets an auditor read audit trails and close break-glass reviews of a hospital or clinic, nothing else', () => {
    for (const kind of [undefined, ...KINDS]) {
      const reviews = kind === 'hospital' || kind === 'clinic' ? ['access.reviewBreakGlass'] : [];
      expect(PERMISSIONS.filter((p) => can({ role: 'auditor', institutionKind: kind }, p))).toEqual([...reviews, 'audit.read']);
    }
  });

  it('lets only a doctor with the emergency qualification, at a hospital or clinic, break the glass (issue 7)', () => {
    const emergency = ['emergency'] as const;
    expect(can({ role: 'doctor', institutionKind: 'hospital', qualifications: emergency }, 'access.breakGlass')).toBe(true);
    expect(can({ role: 'doctor', institutionKind: 'clinic', qualifications: emergency }, 'access.breakGlass')).toBe(true);
    expect(can({ role: 'doctor', institutionKind: 'hospital', qualifications: [] }, 'access.breakGlass')).toBe(false);
    expect(can({ role: 'doctor', institutionKind: 'laboratory', qualifications: emergency }, 'access.breakGlass')).toBe(false);
    expect(can({ role: 'nurse', institutionKind: 'hospital', qualifications: emergency }, 'access.breakGlass')).toBe(false);
    // a qualification adds to a role's grants only where the table asks for it
    expect(can({ role: 'doctor', institutionKind: 'hospital', qualifications: emergency }, 'records.register')).toBe(true);
  });

  it('lets a research institute’s staff change no record, whatever their role', () => {
    const writes: Permission[] = ['records.register', 'records.amend', 'records.retract', 'identity.registerPatient', 'access.breakGlass'];
    for (const role of Object.keys(StaffRoles) as Role[]) {
      for (const p of writes) expect(can({ role, institutionKind: 'research' }, p), `${role} ${p}`).toBe(false);
    }
  });
});
