/**
 * JSON Schemas (TypeBox) of transaction bodies' shared parts. The same schemas validate bodies
 * in contracts and describe them in the OpenAPI document.
 */
import { Type, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Purposes, DeidentificationLevels } from '../policy/purposes.ts';
import { StaffRoles, InstitutionKinds, Qualifications } from '../policy/roles.ts';
import { MedledgerError } from '../errors.ts';

export const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 in lower-case hex' });
export const PatientCode = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'keyed hash of the national id' });
/** base64url of 32 bytes: the last character carries 4 bits and 2 zero padding bits (RFC 4648 §5). */
export const PUBLIC_KEY_PATTERN = '^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$';
/** base64url of 64 bytes: the last character carries 2 bits and 4 zero padding bits. */
export const SIGNATURE_PATTERN = '^[A-Za-z0-9_-]{85}[AQgw]$';
export const PublicKey = Type.String({ pattern: PUBLIC_KEY_PATTERN, description: 'raw 32-byte key, base64url' });
export const Signature = Type.String({ pattern: SIGNATURE_PATTERN, description: 'Ed25519 signature, base64url' });
export const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}$', description: 'lower-case slug' });
export const TxRef = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'id of the transaction that created it' });
export const StaffId = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}/[a-z0-9][a-z0-9.-]{0,47}$', description: 'institution/local id' });
/** FHIR R4 resource type names (e.g. Condition, Observation, DocumentReference). */
export const Category = Type.String({ pattern: '^[A-Z][A-Za-z]{1,63}$' });
/** A union of string literals from a code table, keeping the literal types. */
function literals<T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)));
}
const keysOf = <T extends object>(table: T) => Object.keys(table) as (keyof T & string)[];

export const Purpose = literals(keysOf(Purposes));
export const Deidentification = literals(DeidentificationLevels);
export const StaffRole = literals(keysOf(StaffRoles));
export const InstitutionKind = literals(keysOf(InstitutionKinds));
export const Qualification = literals(keysOf(Qualifications));
export const Text = (max: number) => Type.String({ maxLength: max });
export const Millis = Type.Integer({ minimum: 0, maximum: 8.64e15 });

export const Grantee = Type.Union([
  Type.Object({ kind: Type.Literal('institution'), institution: Id }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('person'), staffId: StaffId }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('role'), role: StaffRole, institution: Type.Union([Id, Type.Null()]) }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('study'), studyId: Id }, { additionalProperties: false }),
]);

export const Scope = Type.Union([
  Type.Object({ kind: Type.Literal('all') }, { additionalProperties: false }),
  Type.Object(
    { kind: Type.Literal('categories'), categories: Type.Array(Category, { minItems: 1, maxItems: 32, uniqueItems: true }) },
    { additionalProperties: false },
  ),
  Type.Object(
    { kind: Type.Literal('records'), recordIds: Type.Array(TxRef, { minItems: 1, maxItems: 256, uniqueItems: true }) },
    { additionalProperties: false },
  ),
]);

export const Period = Type.Object({ from: Millis, to: Type.Union([Millis, Type.Null()]) }, { additionalProperties: false });

/** Validates a body against its schema, rejecting with TX_BODY_INVALID and the first bad path. */
export function checkBody(schema: TSchema, body: unknown): void {
  if (Value.Check(schema, body)) return;
  const first = Value.Errors(schema, body).First();
  throw new MedledgerError(
    'TX_BODY_INVALID',
    first ? { details: `${first.path || '/'}: ${first.message}`, payload: { path: first.path } } : {},
  );
}
