/**
 * Identity: institutions enrol and revoke their staff; a member of staff at a care institution
 * registers a patient's keys under the patient code (the keyed hash of the national id, so an
 * id number can be searched without being stored), with the patient's proof that they hold
 * the signing key. The registering institution becomes the patient's home institution.
 * A patient's keys are replaced by the patient, or after a lost device by their home institution,
 * and may be frozen (revoked without a successor) until then.
 */
import { Type, type Static } from '@sinclair/typebox';
import { canonicalBytes } from '../codec/canonical-json.ts';
import { concatBytes, fromBase64Url, utf8 } from '../codec/bytes.ts';
import { hmacSha256 } from '../crypto/hash.ts';
import { keyId } from '../crypto/ed25519.ts';
import { toHex } from '../codec/bytes.ts';
import { markGroupStale, staffIndexKey } from './groups.ts';
import { reject, type ContractInput, type Draft, type Principal } from './context.ts';
import { PatientCode, PublicKey, Qualification, Signature, StaffId, StaffRole, Text } from './schemas.ts';

const QualificationList = Type.Array(Qualification, { maxItems: 8, uniqueItems: true });
import type { KeyEntry, Patient, Staff } from './state.ts';

export const EnrolStaffBody = Type.Object(
  {
    localId: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{0,47}$' }),
    role: StaffRole,
    signingKey: PublicKey,
    encryptionKey: Type.Union([PublicKey, Type.Null()]),
    displayName: Text(200),
    /** issue 7: e.g. ["emergency"] for a doctor who may break the glass; absent: none */
    qualifications: Type.Optional(QualificationList),
  },
  { additionalProperties: false },
);
export const SetQualificationsBody = Type.Object({ staffId: StaffId, qualifications: QualificationList }, { additionalProperties: false });
export const RevokeStaffBody = Type.Object({ staffId: StaffId }, { additionalProperties: false });
export const RegisterPatientBody = Type.Object(
  { patientCode: PatientCode, signingKey: PublicKey, encryptionKey: PublicKey, possession: Signature },
  { additionalProperties: false },
);
/** The patient's new keys, with the proof (`patientRotationMessage`) that the new signing key signed them. */
export const RotatePatientKeysBody = Type.Object(
  { patientCode: PatientCode, signingKey: PublicKey, encryptionKey: PublicKey, possession: Signature },
  { additionalProperties: false },
);
export const FreezePatientBody = Type.Object({ patientCode: PatientCode }, { additionalProperties: false });

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

const ROTATION_DOMAIN = utf8('medledger/patient-key-rotation/v1\n');

/**
 * What a patient's new signing key signs to take over their patient code. Its own domain, so a
 * registration proof is never a rotation proof; it names no institution, because the patient
 * (planned) or their home institution (recovery) submits it and the home does not change.
 */
export function patientRotationMessage(network: string, patientCode: string, signingKey: string, encryptionKey: string): Uint8Array {
  return concatBytes(ROTATION_DOMAIN, canonicalBytes({ network, patientCode, signingKey, encryptionKey }));
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
    ...(body.qualifications === undefined || body.qualifications.length === 0 ? {} : { qualifications: body.qualifications }),
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

/** The institution grants or withdraws its staff's qualifications (issue 7: `emergency`). */
export function setQualifications(input: ContractInput<Static<typeof SetQualificationsBody>>): void {
  const { draft, body, principal } = input;
  const staff = draft.get<Staff>('staff', body.staffId);
  if (staff === undefined) reject('NOT_FOUND', 'No such staff.');
  if (staff.institution !== principal.institution?.id) reject('ROLE_FORBIDDEN', 'Staff of another institution.');
  if (staff.status === 'revoked') reject('IDENTITY_REVOKED');
  // Only a doctor can use `emergency`; refusing it elsewhere keeps the flag meaningful.
  if (body.qualifications.includes('emergency') && staff.role !== 'doctor') reject('ROLE_FORBIDDEN', 'Only doctors break the glass.');
  const next: Staff = { ...staff, qualifications: body.qualifications };
  // None left: the field goes, as on a member of staff enrolled without any.
  if (body.qualifications.length === 0) delete next.qualifications;
  draft.put('staff', staff.staffId, next);
  input.events.push({ type: 'identity.qualificationsSet', data: { staffId: staff.staffId, qualifications: body.qualifications } });
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

/** Stores a patient's row and makes its signing key the patient's active key. */
function putPatient(draft: Draft, patient: Patient): void {
  draft.put('patients', patient.patientCode, patient);
  const key: KeyEntry = {
    keyId: patient.keyId,
    publicKey: patient.signingKey,
    owner: { kind: 'patient', patientCode: patient.patientCode },
    status: 'active',
  };
  draft.put('keys', patient.keyId, key);
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
  putPatient(draft, patient);
  input.events.push({ type: 'identity.patientRegistered', patientCode: body.patientCode, data: { home: patient.home } });
}

/**
 * The patient a key change is about, and who asks for it: the patient themselves (with their
 * current, active key), or staff of the patient's home institution, who have checked the person
 * in person (the same care roles that registered them, at the institution that did).
 */
function patientActedOn(input: ContractInput<{ patientCode: string }>): { patient: Patient; by: string } {
  const { draft, body, principal } = input;
  const patient = draft.get<Patient>('patients', body.patientCode);
  if (patient === undefined) reject('PATIENT_UNKNOWN');
  if (principal.role === 'patient') {
    if (principal.patient?.patientCode !== patient.patientCode) reject('ROLE_FORBIDDEN', 'A patient acts only on their own keys.');
    return { patient, by: 'patient' };
  }
  if (!isHomeStaff(principal, patient)) reject('NOT_HOME_INSTITUTION');
  return { patient, by: principal.staff!.staffId };
}

function isHomeStaff(principal: Principal, patient: Patient): boolean {
  return principal.staff !== null && principal.institution !== null && principal.institution.id === patient.home;
}

function revokeKey(draft: Draft, kid: string): void {
  const key = draft.get<KeyEntry>('keys', kid);
  if (key !== undefined && key.status !== 'revoked') draft.put('keys', kid, { ...key, status: 'revoked' });
}

/**
 * Replaces a patient's keys from this block on: the old key is revoked (a later tx it signs is
 * refused with IDENTITY_REVOKED), the new one acts for the same patient code, so consents,
 * records and the access log, all keyed by the code, stay the patient's. Also lifts a freeze.
 */
export function rotatePatientKeys(input: ContractInput<Static<typeof RotatePatientKeysBody>>): void {
  const { draft, body, ctx } = input;
  const { patient, by } = patientActedOn(input);
  const kid = keyId(body.signingKey);
  if (draft.get('keys', kid) !== undefined) reject('ALREADY_EXISTS', 'Signing key is in use.');
  const message = patientRotationMessage(ctx.network, patient.patientCode, body.signingKey, body.encryptionKey);
  if (!ctx.verifySignature(body.signingKey, message, fromBase64Url(body.possession))) reject('KEY_POSSESSION_INVALID');
  revokeKey(draft, patient.keyId);
  const next: Patient = {
    ...patient,
    signingKey: body.signingKey,
    encryptionKey: body.encryptionKey,
    keyId: kid,
    previousKeyIds: [...(patient.previousKeyIds ?? []), patient.keyId],
    keysRotatedAt: ctx.time,
  };
  delete next.frozenAt;
  putPatient(draft, next);
  input.events.push({
    type: 'identity.patientKeysRotated',
    patientCode: patient.patientCode,
    data: { mode: by === 'patient' ? 'planned' : 'recovery', by, keyId: kid, previousKeyId: patient.keyId },
  });
}

/**
 * Revokes a patient's key with no successor, so a thief holding a lost device is stopped before
 * the patient is back at their home institution for new keys (`rotatePatientKeys` lifts it).
 */
export function freezePatient(input: ContractInput<Static<typeof FreezePatientBody>>): void {
  const { draft, ctx } = input;
  const { patient, by } = patientActedOn(input);
  if (patient.frozenAt !== undefined) reject('PATIENT_FROZEN');
  revokeKey(draft, patient.keyId);
  draft.put('patients', patient.patientCode, { ...patient, frozenAt: ctx.time });
  input.events.push({ type: 'identity.patientFrozen', patientCode: patient.patientCode, data: { by, keyId: patient.keyId } });
}
