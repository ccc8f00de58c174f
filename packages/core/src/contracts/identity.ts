/**
 * Identity: institutions enrol and revoke their staff; a member of staff at a care institution
 * registers a patient's keys under the patient code (the keyed hash of the national id, so an
 * id number can be searched without being stored), with the patient's proof that they hold
 * the signing key. The registering institution becomes the patient's home institution.
 */
import { Type, type Static } from '@sinclair/typebox';
import { canonicalBytes } from '../codec/canonical-json.ts';
import { concatBytes, fromBase64Url, utf8 } from '../codec/bytes.ts';
import { hmacSha256 } from '../crypto/hash.ts';
import { keyId } from '../crypto/ed25519.ts';
import { toHex } from '../codec/bytes.ts';
import { markGroupStale, staffIndexKey } from './groups.ts';
import { reject, type ContractInput } from './context.ts';
import { PatientCode, PublicKey, Signature, StaffId, StaffRole, Text } from './schemas.ts';
import type { KeyEntry, Patient, Staff } from './state.ts';

export const EnrolStaffBody = Type.Object(
  {
    localId: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{0,47}$' }),
    role: StaffRole,
    signingKey: PublicKey,
    encryptionKey: Type.Union([PublicKey, Type.Null()]),
    displayName: Text(200),
  },
  { additionalProperties: false },
);
export const RevokeStaffBody = Type.Object({ staffId: StaffId }, { additionalProperties: false });
export const RegisterPatientBody = Type.Object(
  { patientCode: PatientCode, signingKey: PublicKey, encryptionKey: PublicKey, possession: Signature },
  { additionalProperties: false },
);

/** The patient code of a national id under the consortium's patient-code key (HMAC-SHA-256). */
export function patientCodeOf(patientCodeKey: Uint8Array, nationalId: string): string {
  // Normalised so "123-45 678" and "12345678" are the same person.
  const normalised = nationalId.normalize('NFKC').replace(/[\s-]/g, '').toUpperCase();
  return toHex(hmacSha256(patientCodeKey, normalised));
}

const POSSESSION_DOMAIN = utf8('medledger/patient-key/v1\n');

/**
 * What a patient signs to prove they hold the key being registered for them, and at which
 * institution: another member cannot replay the proof to become the patient's home.
 */
export function patientPossessionMessage(
  network: string,
  patientCode: string,
  signingKey: string,
  encryptionKey: string,
  institution: string,
): Uint8Array {
  return concatBytes(POSSESSION_DOMAIN, canonicalBytes({ network, patientCode, signingKey, encryptionKey, institution }));
}

export function enrolStaff(input: ContractInput<Static<typeof EnrolStaffBody>>): void {
  const { draft, body, ctx, principal } = input;
  const inst = principal.institution;
  if (inst === null) reject('ROLE_FORBIDDEN');
  // A research institute has researchers, operators and auditors, never clinical staff who
  // could be granted identified data for treatment.
  if (inst.kind === 'research' && (body.role === 'doctor' || body.role === 'nurse'))
    reject('ROLE_FORBIDDEN', 'A research institute does not enrol clinical staff.');
  const staffId = `${inst.id}/${body.localId}`;
  if (draft.get('staff', staffId) !== undefined) reject('ALREADY_EXISTS', 'Staff id is taken.');
  const kid = keyId(body.signingKey);
  if (draft.get('keys', kid) !== undefined) reject('ALREADY_EXISTS', 'Signing key is in use.');
  const staff: Staff = {
    staffId,
    institution: inst.id,
    role: body.role,
    signingKey: body.signingKey,
    encryptionKey: body.encryptionKey,
    displayName: body.displayName,
    status: 'active',
    enrolledAt: ctx.time,
  };
  const key: KeyEntry = {
    keyId: kid,
    publicKey: body.signingKey,
    owner: { kind: 'staff', staffId, institution: inst.id },
    status: 'active',
  };
  draft.put('staff', staffId, staff);
  draft.put('keys', kid, key);
  const index = staffIndexKey(inst.id);
  draft.put('meta', index, [...(draft.get<string[]>('meta', index) ?? []), staffId]);
  markGroupStale(draft, inst.id, body.role);
  input.events.push({ type: 'identity.staffEnrolled', data: { staffId, role: body.role } });
}

export function revokeStaff(input: ContractInput<Static<typeof RevokeStaffBody>>): void {
  const { draft, body, principal } = input;
  const staff = draft.get<Staff>('staff', body.staffId);
  if (staff === undefined) reject('NOT_FOUND', 'No such staff.');
  if (staff.institution !== principal.institution?.id) reject('ROLE_FORBIDDEN', 'Staff of another institution.');
  if (staff.status === 'revoked') reject('IDENTITY_REVOKED');
  draft.put('staff', staff.staffId, { ...staff, status: 'revoked' });
  const kid = keyId(staff.signingKey);
  const key = draft.get<KeyEntry>('keys', kid);
  if (key !== undefined) draft.put('keys', kid, { ...key, status: 'revoked' });
  markGroupStale(draft, staff.institution, staff.role);
  input.events.push({ type: 'identity.staffRevoked', data: { staffId: staff.staffId } });
}

export function registerPatient(input: ContractInput<Static<typeof RegisterPatientBody>>): void {
  const { draft, body, ctx, principal } = input;
  if (draft.get('patients', body.patientCode) !== undefined) reject('ALREADY_EXISTS', 'Patient code is registered.');
  const kid = keyId(body.signingKey);
  if (draft.get('keys', kid) !== undefined) reject('ALREADY_EXISTS', 'Signing key is in use.');
  const message = patientPossessionMessage(ctx.network, body.patientCode, body.signingKey, body.encryptionKey, principal.institution!.id);
  if (!ctx.verifySignature(body.signingKey, message, fromBase64Url(body.possession))) reject('KEY_POSSESSION_INVALID');
  const patient: Patient = {
    patientCode: body.patientCode,
    signingKey: body.signingKey,
    encryptionKey: body.encryptionKey,
    keyId: kid,
    home: principal.institution!.id,
    registeredAt: ctx.time,
  };
  const key: KeyEntry = {
    keyId: kid,
    publicKey: body.signingKey,
    owner: { kind: 'patient', patientCode: body.patientCode },
    status: 'active',
  };
  draft.put('patients', body.patientCode, patient);
  draft.put('keys', kid, key);
  input.events.push({ type: 'identity.patientRegistered', patientCode: body.patientCode, data: { home: patient.home } });
}
