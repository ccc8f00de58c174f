/**
 * What both vault stores check and convert the same way: a new record's shape, an attachment
 * index, and bytes to and from the Buffers the database drivers use.
 */
import { MedledgerError } from '@medledger/core/errors';
import type { VaultRecord } from './vault-store.ts';

export const VAULT_SCHEMA_VERSION = 1;
export const OBJECT_ID = /^[0-9a-f]{32}$/;

export function checkNewRecord(r: VaultRecord): void {
  if (!OBJECT_ID.test(r.objectId)) throw new MedledgerError('BAD_REQUEST', { details: 'objectId must be 32 lower-case hex digits.' });
  if (r.state !== 'pending' || r.recordId !== null || r.erasedAt !== null || r.erasureTx !== null) {
    throw new MedledgerError('BAD_REQUEST', { details: 'A new vault record must be pending, with no recordId and no erasure.' });
  }
  if (r.sealedDataKey === null || r.resourceCiphertext === null) {
    throw new MedledgerError('BAD_REQUEST', { details: 'A new vault record needs its sealed key and ciphertext.' });
  }
  if (!Number.isSafeInteger(r.size) || r.size < 0 || !Number.isSafeInteger(r.createdAt)) {
    throw new MedledgerError('BAD_REQUEST', { details: 'size and createdAt must be integers.' });
  }
}

export function checkIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new MedledgerError('BAD_REQUEST', { details: 'index must be a natural number.' });
}

/** A Buffer over the same bytes (both drivers bind Buffers as BLOB / bytea). */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A plain Uint8Array of a BLOB / bytea: a view when it owns its memory, else a copy — drivers
 * decode small values into Node's shared Buffer pool, and a view would keep (and expose through
 * `.buffer`) other bytes.
 */
export function toBytes(b: Buffer): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? new Uint8Array(b.buffer, 0, b.byteLength) : new Uint8Array(b);
}
