/**
 * What both vault stores check and convert the same way: a new record's shape, an attachment
 * index, the audit trail's hash chain, and bytes to and from the Buffers the database drivers use.
 */
import { createHash } from 'node:crypto';
import { MedledgerError } from '@medledger/core/errors';
import type { VaultAttachment, VaultAuditEntry, VaultAuditOutcome, VaultRecord, VaultRecordState } from './vault-store.ts';

/**
 * 2: audit rows carry `digest`, a hash chain (see auditDigest). A version-1 store is migrated on
 * `init()`: the column is added, rows written before stay unchained, the chain starts after them.
 */
export const VAULT_SCHEMA_VERSION = 2;
const OBJECT_ID = /^[0-9a-f]{32}$/;

export const RECORD_COLUMNS =
  'object_id, custodian, patient_code, category, state, record_id, sealed_data_key, resource_ciphertext, hash, ciphertext_hash, size, created_at, erased_at, erasure_tx';
export const ATTACHMENT_COLUMNS = 'object_id, idx, content_type, size, sha256, ciphertext_hash, chunks, complete';
export const AUDIT_COLUMNS = 'seq, time, custodian, requester, record_id, object_id, action, outcome, code, ledger_tx';

/** The rows both backends read (integers as numbers: the PostgreSQL store parses its int8s). */
export interface RecordRow {
  object_id: string;
  custodian: string;
  patient_code: string;
  category: string;
  state: VaultRecordState;
  record_id: string | null;
  sealed_data_key: Buffer | null;
  resource_ciphertext: Buffer | null;
  hash: string;
  ciphertext_hash: string;
  size: number;
  created_at: number;
  erased_at: number | null;
  erasure_tx: string | null;
}

export interface AttachmentRow {
  object_id: string;
  idx: number;
  content_type: string;
  size: number;
  sha256: string;
  ciphertext_hash: string | null;
  chunks: number;
  /** SQLite stores 0 / 1, PostgreSQL a boolean */
  complete: number | boolean;
}

export interface AuditRow {
  seq: number;
  time: number;
  custodian: string;
  requester: string;
  record_id: string | null;
  object_id: string | null;
  action: string;
  outcome: VaultAuditOutcome;
  code: string | null;
  ledger_tx: string | null;
}

export type StateRow = Pick<RecordRow, 'state' | 'record_id'>;

/**
 * The audit trail's hash chain: each row's digest is SHA-256 over the previous row's digest and
 * every field of the row, its seq included, so a changed, reordered or renumbered row breaks the
 * chain at that row. The first chained row follows '' (an empty store, or rows written by a
 * version-1 store, which have no digest). Unkeyed: it shows damage and edits by anyone who does
 * not also recompute every later digest; the last rows can be cut off unseen (nothing anchors
 * the head outside the database).
 */
export function auditDigest(prev: string, a: AuditRow): string {
  return createHash('sha256')
    .update(JSON.stringify(['medledger/vault-audit/v1', prev, ...auditValues(a)]))
    .digest('hex');
}

/** A row's columns in table order (seq … ledger_tx): what both stores insert and the digest covers. */
export function auditValues(a: AuditRow): (string | number | null)[] {
  return [a.seq, a.time, a.custodian, a.requester, a.record_id, a.object_id, a.action, a.outcome, a.code, a.ledger_tx];
}

/** The audit columns of an entry about to be stored as row `seq`. */
export function auditRowOf(seq: number, e: VaultAuditEntry): AuditRow {
  return {
    seq,
    time: e.time,
    custodian: e.custodian,
    requester: e.requester,
    record_id: e.recordId,
    object_id: e.objectId,
    action: e.action,
    outcome: e.outcome,
    code: e.code,
    ledger_tx: e.ledgerTx,
  };
}

/** A new record's values in the order of RECORD_COLUMNS. */
export function recordValues(record: VaultRecord): (string | number | Buffer | null)[] {
  return [
    record.objectId,
    record.custodian,
    record.patientCode,
    record.category,
    record.state,
    record.recordId,
    toBuffer(record.sealedDataKey!),
    toBuffer(record.resourceCiphertext!),
    record.hash,
    record.ciphertextHash,
    record.size,
    record.createdAt,
    record.erasedAt,
    record.erasureTx,
  ];
}

export function recordOf(r: RecordRow): VaultRecord {
  return {
    objectId: r.object_id,
    custodian: r.custodian,
    patientCode: r.patient_code,
    category: r.category,
    state: r.state,
    recordId: r.record_id,
    sealedDataKey: r.sealed_data_key === null ? null : toBytes(r.sealed_data_key),
    resourceCiphertext: r.resource_ciphertext === null ? null : toBytes(r.resource_ciphertext),
    hash: r.hash,
    ciphertextHash: r.ciphertext_hash,
    size: r.size,
    createdAt: r.created_at,
    erasedAt: r.erased_at,
    erasureTx: r.erasure_tx,
  };
}

export function attachmentOf(a: AttachmentRow): VaultAttachment {
  return {
    objectId: a.object_id,
    index: a.idx,
    contentType: a.content_type,
    size: a.size,
    sha256: a.sha256,
    ciphertextHash: a.ciphertext_hash,
    chunks: a.chunks,
    complete: a.complete === true || a.complete === 1,
  };
}

export function auditOf(a: AuditRow): VaultAuditEntry {
  return {
    seq: a.seq,
    time: a.time,
    custodian: a.custodian,
    requester: a.requester,
    recordId: a.record_id,
    objectId: a.object_id,
    action: a.action,
    outcome: a.outcome,
    code: a.code,
    ledgerTx: a.ledger_tx,
  };
}

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
