/**
 * The vault's storage (DESIGN §6): what a custodian keeps of the records it holds. One interface,
 * two backends — SQLite (the embedded default) and PostgreSQL (what a hospital runs) — and one
 * test suite run against both.
 *
 * The store never sees a plaintext record or a plaintext data key: it keeps ciphertext, and each
 * record's data key sealed under the vault's master key, which lives outside the database. Erasure
 * destroys the sealed key and the ciphertext in one transaction (crypto-shredding) and keeps the
 * hashes. Every write is durable before its promise resolves.
 */
import type { AttachmentRow, AuditRow, RecordRow } from './store-helpers.ts';

export type VaultRecordState = 'pending' | 'registered' | 'erased';

/** One record the vault holds: its FHIR resource, sealed, and the descriptors of its attachments. */
export interface VaultRecord {
  /** random 32 lower-case hex; the last part of the index pointer `vault:<custodian>/<objectId>` */
  objectId: string;
  /** the institution whose vault this is (an embedded node may keep several institutions' vaults) */
  custodian: string;
  patientCode: string;
  category: string;
  /** pending: uploaded, not yet in the index; registered: in the index as `recordId`; erased: shredded */
  state: VaultRecordState;
  recordId: string | null;
  /** the record's data key sealed under the vault master key; null once erased */
  sealedDataKey: Uint8Array | null;
  /** the encrypted FHIR resource (stream-AEAD format, at most a few MiB); null once erased */
  resourceCiphertext: Uint8Array | null;
  /** SHA-256 (hex) of the canonical resource plaintext, as in the index */
  hash: string;
  /** SHA-256 (hex) of `resourceCiphertext`, as in the index */
  ciphertextHash: string;
  /** plaintext size of the resource, bytes */
  size: number;
  createdAt: number;
  erasedAt: number | null;
  /** the ledger transaction that asked for the erasure */
  erasureTx: string | null;
}

/** An attachment (a DocumentReference's file): ciphertext kept as numbered chunks. */
export interface VaultAttachment {
  objectId: string;
  /** position in the DocumentReference's `content` array */
  index: number;
  contentType: string;
  /** plaintext size, bytes */
  size: number;
  /** SHA-256 (hex) of the plaintext, as declared in the resource */
  sha256: string;
  /** SHA-256 (hex) of the whole ciphertext (all chunks in order); null until complete */
  ciphertextHash: string | null;
  /** number of stored chunks */
  chunks: number;
  complete: boolean;
}

export type VaultAuditOutcome = 'served' | 'refused' | 'stored' | 'erased';

/** Every answer the vault gives, served or refused, with its code. */
export interface VaultAuditEntry {
  /** assigned by the store, increasing */
  seq?: number;
  time: number;
  custodian: string;
  /** what the request claimed to be (a staff id or a key id); not trusted when the code says so */
  requester: string;
  recordId: string | null;
  objectId: string | null;
  /** `GET /vault/records/:id` etc.: the route pattern, never a URL with ids */
  action: string;
  outcome: VaultAuditOutcome;
  /** the error code of a refusal; null when served */
  code: string | null;
  /** the ledger transaction written for this answer, if any */
  ledgerTx: string | null;
}

export interface VaultStore {
  /** Creates the schema if missing; safe to call on every start. */
  init(): Promise<void>;
  close(): Promise<void>;

  /** Adds a record (state pending). ALREADY_EXISTS if the objectId is taken. */
  putRecord(record: VaultRecord): Promise<void>;
  getRecord(objectId: string): Promise<VaultRecord | undefined>;
  getRecordByRecordId(recordId: string): Promise<VaultRecord | undefined>;
  /** pending → registered under `recordId` (idempotent for the same recordId). */
  markRegistered(objectId: string, recordId: string): Promise<void>;
  /** Records still pending created before `before` (uploads whose registration never came). */
  pendingBefore(before: number): Promise<VaultRecord[]>;
  /** Deletes a pending record and its attachments (never a registered or erased one). */
  deletePending(objectId: string): Promise<void>;

  /** Declares an attachment (no chunks yet). */
  addAttachment(a: Omit<VaultAttachment, 'ciphertextHash' | 'chunks' | 'complete'>): Promise<void>;
  /** Appends chunk `seq` (0, 1, 2, …, in order) of an attachment's ciphertext. */
  putAttachmentChunk(objectId: string, index: number, seq: number, bytes: Uint8Array): Promise<void>;
  /** Marks an attachment complete once every chunk is stored. */
  completeAttachment(objectId: string, index: number, done: { ciphertextHash: string; chunks: number }): Promise<void>;
  /** Drops an attachment's chunks (a failed upload) so it can be sent again. */
  resetAttachment(objectId: string, index: number): Promise<void>;
  attachments(objectId: string): Promise<VaultAttachment[]>;
  /** The ciphertext chunks in order, read one at a time (bounded memory for 20 MiB files). */
  readAttachment(objectId: string, index: number): AsyncIterable<Uint8Array>;

  /**
   * Crypto-shredding: in one transaction, destroys the sealed data key, the resource ciphertext
   * and every attachment chunk, and marks the record erased (hashes kept). Idempotent.
   */
  shred(objectId: string, erasureTx: string, time: number): Promise<void>;

  /**
   * Remembers a signature nonce until `expiresAt`; false if it was already seen (a replay).
   * Atomic: of two concurrent claims of one nonce, exactly one succeeds. Prunes expired nonces.
   */
  claimNonce(keyId: string, nonce: string, expiresAt: number, now: number): Promise<boolean>;

  audit(entry: VaultAuditEntry): Promise<number>;
  /** Audit entries of one custodian, oldest first, after `afterSeq`. */
  auditEntries(custodian: string, afterSeq: number, limit: number): Promise<VaultAuditEntry[]>;
}

/** The vault's tables by what they hold; each backend names them its own way. */
export type VaultTable = 'meta' | 'records' | 'attachments' | 'chunks' | 'nonces' | 'audit';

/**
 * Read-only access to every row exactly as stored, for `medledger verify` (verify-vault.ts).
 * Rows come in primary-key order, a page at a time after the last key seen, so a large vault is
 * checked in bounded memory. Both backends implement it next to their schema.
 */
export interface VaultScan {
  /** each table's name in this backend, for messages */
  readonly tables: Readonly<Record<VaultTable, string>>;
  /** the database file (SQLite), or null for a server */
  readonly file: string | null;
  /** structural damage the database itself finds (SQLite's integrity_check); [] when none */
  damage(): Promise<string[]>;
  meta(): Promise<{ k: string; v: string }[]>;
  records(afterObjectId: string, limit: number): Promise<RecordRow[]>;
  attachments(after: readonly [string, number], limit: number): Promise<AttachmentRow[]>;
  chunk(objectId: string, index: number, seq: number): Promise<Uint8Array | undefined>;
  chunkKeys(after: readonly [string, number, number], limit: number): Promise<{ object_id: string; idx: number; seq: number }[]>;
  nonces(after: readonly [string, string], limit: number): Promise<{ key_id: string; nonce: string; expires_at: number }[]>;
  audit(afterSeq: number, limit: number): Promise<(AuditRow & { digest: string | null })[]>;
  /** the next audit seq the backend would hand out, less one (never below the highest seq) */
  auditCounter(): Promise<number>;
  close(): Promise<void>;
}
