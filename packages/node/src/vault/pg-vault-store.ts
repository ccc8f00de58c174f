/**
 * The vault store on PostgreSQL (what a hospital runs), through a `pg` pool. Every change of more
 * than one row is one transaction that first locks the record's row, so uploads, erasure and
 * registration of one record never interleave; an attachment is read one chunk per query.
 */
import pg from 'pg';
import { MedledgerError } from '@medledger/core/errors';
import type { VaultAttachment, VaultAuditEntry, VaultRecord, VaultRecordState, VaultScan, VaultStore, VaultTable } from './vault-store.ts';
import {
  ATTACHMENT_COLUMNS,
  AUDIT_COLUMNS,
  RECORD_COLUMNS,
  VAULT_SCHEMA_VERSION,
  attachmentOf,
  auditDigest,
  auditValues,
  auditOf,
  auditRowOf,
  checkIndex,
  checkNewRecord,
  recordOf,
  recordValues,
  toBuffer,
  toBytes,
  type AttachmentRow,
  type AuditRow,
  type RecordRow,
  type StateRow,
} from './store-helpers.ts';

/** Keys of the transaction-scoped advisory locks this store takes ('mlv' + a number). */
const LOCK_INIT = 0x6d6c7601;
const LOCK_AUDIT = 0x6d6c7602;

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS vault_meta (k text PRIMARY KEY, v text NOT NULL)',
  `CREATE TABLE IF NOT EXISTS vault_records (
    object_id text PRIMARY KEY,
    custodian text NOT NULL,
    patient_code text NOT NULL,
    category text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'registered', 'erased')),
    record_id text UNIQUE,
    sealed_data_key bytea,
    resource_ciphertext bytea,
    hash text NOT NULL,
    ciphertext_hash text NOT NULL,
    size bigint NOT NULL,
    created_at bigint NOT NULL,
    erased_at bigint,
    erasure_tx text
  )`,
  "CREATE INDEX IF NOT EXISTS vault_records_pending ON vault_records (created_at) WHERE state = 'pending'",
  `CREATE TABLE IF NOT EXISTS vault_attachments (
    object_id text NOT NULL REFERENCES vault_records (object_id) ON DELETE CASCADE,
    idx integer NOT NULL,
    content_type text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    ciphertext_hash text,
    chunks integer NOT NULL DEFAULT 0,
    complete boolean NOT NULL DEFAULT false,
    PRIMARY KEY (object_id, idx)
  )`,
  `CREATE TABLE IF NOT EXISTS vault_chunks (
    object_id text NOT NULL,
    idx integer NOT NULL,
    seq integer NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (object_id, idx, seq),
    FOREIGN KEY (object_id, idx) REFERENCES vault_attachments (object_id, idx) ON DELETE CASCADE
  )`,
  // Ciphertext does not compress: store it out of line as it is, without trying.
  'ALTER TABLE vault_records ALTER COLUMN resource_ciphertext SET STORAGE EXTERNAL',
  'ALTER TABLE vault_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL',
  `CREATE TABLE IF NOT EXISTS vault_nonces (
    key_id text NOT NULL,
    nonce text NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (key_id, nonce)
  )`,
  'CREATE INDEX IF NOT EXISTS vault_nonces_expiry ON vault_nonces (expires_at)',
  `CREATE TABLE IF NOT EXISTS vault_audit (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time bigint NOT NULL,
    custodian text NOT NULL,
    requester text NOT NULL,
    record_id text,
    object_id text,
    action text NOT NULL,
    outcome text NOT NULL,
    code text,
    ledger_tx text,
    digest text
  )`,
  'CREATE INDEX IF NOT EXISTS vault_audit_custodian ON vault_audit (custodian, seq)',
];

const UNIQUE_VIOLATION = '23505';

export class PgVaultStore implements VaultStore {
  private readonly pool: pg.Pool;
  private closed = false;

  constructor(options: { connectionString: string } | pg.PoolConfig) {
    // int8 columns (times, sizes, sequence numbers) come back as numbers, checked to be exact.
    this.pool = new pg.Pool({ ...options, types });
    // An idle client whose server went away emits 'error'; unhandled, that would end the process.
    // The next query on the pool reports the failure to its caller instead.
    this.pool.on('error', () => undefined);
  }

  async init(): Promise<void> {
    await this.transaction(async (c) => {
      // Two nodes starting on one database must not race CREATE TABLE IF NOT EXISTS.
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_INIT]);
      for (const s of SCHEMA) await c.query(s);
      await c.query("INSERT INTO vault_meta (k, v) VALUES ('schemaVersion', $1) ON CONFLICT (k) DO NOTHING", [
        String(VAULT_SCHEMA_VERSION),
      ]);
      const { rows } = await c.query<{ v: string }>("SELECT v FROM vault_meta WHERE k = 'schemaVersion'");
      let version = rows[0]?.v;
      if (version === '1') {
        // Version 1 → 2: the audit trail's hash chain (store-helpers.ts, auditDigest). Only now:
        // ALTER TABLE locks the audit table, which every vault request writes to. Rows already
        // written stay unchained.
        await c.query('ALTER TABLE vault_audit ADD COLUMN IF NOT EXISTS digest text');
        await c.query("UPDATE vault_meta SET v = $1 WHERE k = 'schemaVersion'", [String(VAULT_SCHEMA_VERSION)]);
        version = String(VAULT_SCHEMA_VERSION);
      }
      if (version !== String(VAULT_SCHEMA_VERSION)) {
        throw new MedledgerError('INTERNAL', {
          details: `The vault database has schema version ${version}; this node knows ${VAULT_SCHEMA_VERSION}.`,
        });
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async putRecord(record: VaultRecord): Promise<void> {
    checkNewRecord(record);
    const r = await this.pool.query(
      `INSERT INTO vault_records (${RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
       ON CONFLICT (object_id) DO NOTHING`,
      recordValues(record),
    );
    if (r.rowCount === 0) throw new MedledgerError('ALREADY_EXISTS', { details: 'A vault object with this id exists.' });
  }

  async getRecord(objectId: string): Promise<VaultRecord | undefined> {
    const { rows } = await this.pool.query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM vault_records WHERE object_id = $1`, [objectId]);
    return rows[0] === undefined ? undefined : recordOf(rows[0]);
  }

  async getRecordByRecordId(recordId: string): Promise<VaultRecord | undefined> {
    const { rows } = await this.pool.query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM vault_records WHERE record_id = $1`, [recordId]);
    return rows[0] === undefined ? undefined : recordOf(rows[0]);
  }

  async markRegistered(objectId: string, recordId: string): Promise<void> {
    await this.transaction(async (c) => {
      const r = await lockRecord(c, objectId);
      if (r.state === 'erased') throw new MedledgerError('RECORD_ERASED');
      if (r.state === 'registered') {
        if (r.record_id === recordId) return;
        throw new MedledgerError('ALREADY_EXISTS', { details: 'The vault object is registered under another record.' });
      }
      try {
        await c.query("UPDATE vault_records SET state = 'registered', record_id = $1 WHERE object_id = $2", [recordId, objectId]);
      } catch (e) {
        if (isUniqueViolation(e)) {
          throw new MedledgerError('ALREADY_EXISTS', { details: 'Another vault object is registered under this record.', cause: e });
        }
        throw e;
      }
    });
  }

  async pendingBefore(before: number): Promise<VaultRecord[]> {
    const { rows } = await this.pool.query<RecordRow>(
      `SELECT ${RECORD_COLUMNS} FROM vault_records WHERE state = 'pending' AND created_at < $1 ORDER BY created_at, object_id`,
      [before],
    );
    return rows.map(recordOf);
  }

  async deletePending(objectId: string): Promise<void> {
    // Attachments and chunks go with the record (ON DELETE CASCADE). Not pending: nothing to do,
    // so a sweeper racing a registration cannot delete what the index now points to.
    await this.pool.query("DELETE FROM vault_records WHERE object_id = $1 AND state = 'pending'", [objectId]);
  }

  async addAttachment(a: Omit<VaultAttachment, 'ciphertextHash' | 'chunks' | 'complete'>): Promise<void> {
    checkIndex(a.index);
    if (!Number.isSafeInteger(a.size) || a.size < 0) throw new MedledgerError('BAD_REQUEST', { details: 'size must be a natural number.' });
    await this.transaction(async (c) => {
      if ((await lockRecord(c, a.objectId)).state === 'erased') throw new MedledgerError('RECORD_ERASED');
      const r = await c.query(
        'INSERT INTO vault_attachments (object_id, idx, content_type, size, sha256) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (object_id, idx) DO NOTHING',
        [a.objectId, a.index, a.contentType, a.size, a.sha256],
      );
      if (r.rowCount === 0) throw new MedledgerError('ALREADY_EXISTS', { details: 'The attachment is already declared.' });
    });
  }

  async putAttachmentChunk(objectId: string, index: number, seq: number, bytes: Uint8Array): Promise<void> {
    await this.transaction(async (c) => {
      const a = await writableAttachment(c, objectId, index);
      if (a.complete) throw new MedledgerError('BAD_REQUEST', { details: 'The attachment is already complete.' });
      if (seq !== a.chunks) throw new MedledgerError('BAD_REQUEST', { details: `Expected chunk ${a.chunks}, got ${seq}.` });
      await c.query({
        name: 'vault_put_chunk',
        text: 'INSERT INTO vault_chunks (object_id, idx, seq, bytes) VALUES ($1, $2, $3, $4)',
        values: [objectId, index, seq, toBuffer(bytes)],
      });
      await c.query('UPDATE vault_attachments SET chunks = chunks + 1 WHERE object_id = $1 AND idx = $2', [objectId, index]);
    });
  }

  async completeAttachment(objectId: string, index: number, done: { ciphertextHash: string; chunks: number }): Promise<void> {
    await this.transaction(async (c) => {
      const a = await writableAttachment(c, objectId, index);
      if (a.complete) {
        if (a.ciphertext_hash === done.ciphertextHash && a.chunks === done.chunks) return;
        throw new MedledgerError('BAD_REQUEST', { details: 'The attachment was completed with another hash.' });
      }
      if (a.chunks !== done.chunks)
        throw new MedledgerError('RECORD_INCOMPLETE', { details: `${a.chunks} of ${done.chunks} chunks are stored.` });
      await c.query('UPDATE vault_attachments SET complete = true, ciphertext_hash = $1 WHERE object_id = $2 AND idx = $3', [
        done.ciphertextHash,
        objectId,
        index,
      ]);
    });
  }

  async resetAttachment(objectId: string, index: number): Promise<void> {
    await this.transaction(async (c) => {
      await writableAttachment(c, objectId, index);
      await c.query('DELETE FROM vault_chunks WHERE object_id = $1 AND idx = $2', [objectId, index]);
      await c.query('UPDATE vault_attachments SET chunks = 0, complete = false, ciphertext_hash = NULL WHERE object_id = $1 AND idx = $2', [
        objectId,
        index,
      ]);
    });
  }

  async attachments(objectId: string): Promise<VaultAttachment[]> {
    const { rows } = await this.pool.query<AttachmentRow>(
      `SELECT ${ATTACHMENT_COLUMNS} FROM vault_attachments WHERE object_id = $1 ORDER BY idx`,
      [objectId],
    );
    return rows.map(attachmentOf);
  }

  async *readAttachment(objectId: string, index: number): AsyncIterable<Uint8Array> {
    // One query per chunk on whichever pooled connection is free: memory stays at one chunk and
    // no connection is held while the caller sends the previous chunk on.
    const chunks = await readableAttachment(this.pool, objectId, index);
    for (let seq = 0; seq < chunks; seq++) {
      const { rows } = await this.pool.query<{ bytes: Buffer }>({
        name: 'vault_read_chunk',
        text: 'SELECT bytes FROM vault_chunks WHERE object_id = $1 AND idx = $2 AND seq = $3',
        values: [objectId, index, seq],
      });
      if (rows[0] === undefined) {
        // Shredded or reset while being read: say which.
        await readableAttachment(this.pool, objectId, index);
        throw new MedledgerError('RECORD_INCOMPLETE', { details: 'The attachment changed while it was read.' });
      }
      yield toBytes(rows[0].bytes);
    }
  }

  async shred(objectId: string, erasureTx: string, time: number): Promise<void> {
    await this.transaction(async (c) => {
      if ((await lockRecord(c, objectId)).state === 'erased') return;
      await c.query('DELETE FROM vault_chunks WHERE object_id = $1', [objectId]);
      await c.query(
        "UPDATE vault_records SET state = 'erased', sealed_data_key = NULL, resource_ciphertext = NULL, erased_at = $1, erasure_tx = $2 WHERE object_id = $3",
        [time, erasureTx, objectId],
      );
    });
  }

  async claimNonce(keyId: string, nonce: string, expiresAt: number, now: number): Promise<boolean> {
    // Pruning skips rows another claim has locked (no waiting, no deadlock between prunes), so
    // the claim itself also takes over an expired row. ON CONFLICT makes the claim one atomic
    // step: of concurrent claims of a live nonce exactly one inserts it.
    await this.pool.query(
      `DELETE FROM vault_nonces WHERE (key_id, nonce) IN
         (SELECT key_id, nonce FROM vault_nonces WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)`,
      [now],
    );
    const r = await this.pool.query(
      `INSERT INTO vault_nonces (key_id, nonce, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE vault_nonces.expires_at <= $4`,
      [keyId, nonce, expiresAt, now],
    );
    return r.rowCount === 1;
  }

  async audit(entry: VaultAuditEntry): Promise<number> {
    // Readers page with `seq > afterSeq`, so entries must become visible in seq order: an
    // identity value taken by a transaction that commits later would be skipped. The advisory
    // lock, taken before the value is drawn and held to commit, serialises the inserts — and
    // makes the last row read under it the previous link of the hash chain.
    return this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [LOCK_AUDIT]);
      const { rows } = await c.query<{ prev: string | null; seq: number }>(
        `SELECT (SELECT digest FROM vault_audit ORDER BY seq DESC LIMIT 1) AS prev,
                nextval(pg_get_serial_sequence('vault_audit', 'seq')) AS seq`,
      );
      const row = auditRowOf(rows[0]!.seq, entry);
      await c.query(
        `INSERT INTO vault_audit (seq, time, custodian, requester, record_id, object_id, action, outcome, code, ledger_tx, digest)
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [...auditValues(row), auditDigest(rows[0]!.prev ?? '', row)],
      );
      return row.seq;
    });
  }

  async auditEntries(custodian: string, afterSeq: number, limit: number): Promise<VaultAuditEntry[]> {
    const { rows } = await this.pool.query<AuditRow>(
      `SELECT ${AUDIT_COLUMNS} FROM vault_audit WHERE custodian = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [custodian, afterSeq, limit],
    );
    return rows.map(auditOf);
  }

  private async transaction<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const out = await work(c);
      await c.query('COMMIT');
      return out;
    } catch (e) {
      try {
        await c.query('ROLLBACK');
      } catch (rollback) {
        // The connection is unusable: release() destroys it instead of returning it to the pool.
        broken = rollback instanceof Error ? rollback : new Error('ROLLBACK failed');
      }
      throw e;
    } finally {
      c.release(broken);
    }
  }
}

/** Locks the record's row for the rest of the transaction; the one lock order of this store. */
async function lockRecord(c: pg.PoolClient, objectId: string): Promise<StateRow> {
  const { rows } = await c.query<StateRow>('SELECT state, record_id FROM vault_records WHERE object_id = $1 FOR UPDATE', [objectId]);
  if (rows[0] === undefined) throw new MedledgerError('NOT_FOUND', { details: 'No such vault object.' });
  return rows[0];
}

/** The attachment, its record locked and still holding ciphertext. */
async function writableAttachment(c: pg.PoolClient, objectId: string, index: number): Promise<AttachmentRow> {
  if ((await lockRecord(c, objectId)).state === 'erased') throw new MedledgerError('RECORD_ERASED');
  const { rows } = await c.query<AttachmentRow>(`SELECT ${ATTACHMENT_COLUMNS} FROM vault_attachments WHERE object_id = $1 AND idx = $2`, [
    objectId,
    index,
  ]);
  if (rows[0] === undefined) throw new MedledgerError('NOT_FOUND', { details: 'No such attachment.' });
  return rows[0];
}

/** The number of chunks of a complete attachment of a record not erased. */
async function readableAttachment(pool: pg.Pool, objectId: string, index: number): Promise<number> {
  const { rows } = await pool.query<{ state: VaultRecordState; chunks: number | null; complete: boolean | null }>(
    `SELECT r.state, a.chunks, a.complete FROM vault_records r
     LEFT JOIN vault_attachments a ON a.object_id = r.object_id AND a.idx = $2 WHERE r.object_id = $1`,
    [objectId, index],
  );
  const r = rows[0];
  if (r === undefined) throw new MedledgerError('NOT_FOUND', { details: 'No such vault object.' });
  if (r.state === 'erased') throw new MedledgerError('RECORD_ERASED');
  if (r.chunks === null) throw new MedledgerError('NOT_FOUND', { details: 'No such attachment.' });
  if (r.complete !== true) throw new MedledgerError('RECORD_INCOMPLETE', { details: 'The attachment upload is not complete.' });
  return r.chunks;
}

function isUniqueViolation(e: unknown): boolean {
  return e instanceof pg.DatabaseError && e.code === UNIQUE_VIOLATION;
}

function parseInt8(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new MedledgerError('INTERNAL', { details: 'A vault integer is outside the safe range.' });
  return n;
}

/** pg's own parsers, but int8 as an exact number: the vault's int8s hold times and sizes below 2^53. */
const types: pg.CustomTypesConfig = {
  getTypeParser: (oid, format) =>
    oid === pg.types.builtins.INT8 ? parseInt8 : (pg.types.getTypeParser(oid, format) as (v: string) => unknown),
};

const PG_TABLES: Readonly<Record<VaultTable, string>> = {
  meta: 'vault_meta',
  records: 'vault_records',
  attachments: 'vault_attachments',
  chunks: 'vault_chunks',
  nonces: 'vault_nonces',
  audit: 'vault_audit',
};

/** Every row of a PostgreSQL vault as stored, in one read-only transaction's snapshot, for `medledger verify`. */
export class PgVaultScan implements VaultScan {
  readonly tables = PG_TABLES;
  readonly file = null;
  private readonly client: pg.Client;
  private opened: Promise<void> | null = null;

  constructor(connectionString: string) {
    this.client = new pg.Client({ connectionString, types });
  }

  /** One snapshot for the whole check, so a vault in use is seen as of one instant. */
  private async q<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    this.opened ??= (async () => {
      await this.client.connect();
      await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    })();
    await this.opened;
    return (await this.client.query<R>(text, values)).rows;
  }

  damage(): Promise<string[]> {
    // PostgreSQL checks its pages as it reads them (and with data checksums, when the cluster
    // has them); a page it cannot read fails the queries below.
    return Promise.resolve([]);
  }

  meta(): Promise<{ k: string; v: string }[]> {
    return this.q('SELECT k, v FROM vault_meta ORDER BY k');
  }

  records(afterObjectId: string, limit: number): Promise<RecordRow[]> {
    return this.q(`SELECT ${RECORD_COLUMNS} FROM vault_records WHERE object_id > $1 ORDER BY object_id LIMIT $2`, [afterObjectId, limit]);
  }

  attachments(after: readonly [string, number], limit: number): Promise<AttachmentRow[]> {
    return this.q(
      `SELECT ${ATTACHMENT_COLUMNS} FROM vault_attachments WHERE (object_id, idx) > ($1, $2) ORDER BY object_id, idx LIMIT $3`,
      [...after, limit],
    );
  }

  async chunk(objectId: string, index: number, seq: number): Promise<Uint8Array | undefined> {
    const rows = await this.q<{ bytes: Buffer }>('SELECT bytes FROM vault_chunks WHERE object_id = $1 AND idx = $2 AND seq = $3', [
      objectId,
      index,
      seq,
    ]);
    return rows[0] === undefined ? undefined : toBytes(rows[0].bytes);
  }

  chunkKeys(after: readonly [string, number, number], limit: number): Promise<{ object_id: string; idx: number; seq: number }[]> {
    return this.q(
      'SELECT object_id, idx, seq FROM vault_chunks WHERE (object_id, idx, seq) > ($1, $2, $3) ORDER BY object_id, idx, seq LIMIT $4',
      [...after, limit],
    );
  }

  nonces(after: readonly [string, string], limit: number): Promise<{ key_id: string; nonce: string; expires_at: number }[]> {
    return this.q('SELECT key_id, nonce, expires_at FROM vault_nonces WHERE (key_id, nonce) > ($1, $2) ORDER BY key_id, nonce LIMIT $3', [
      ...after,
      limit,
    ]);
  }

  audit(afterSeq: number, limit: number): Promise<(AuditRow & { digest: string | null })[]> {
    return this.q(`SELECT ${AUDIT_COLUMNS}, digest FROM vault_audit WHERE seq > $1 ORDER BY seq LIMIT $2`, [afterSeq, limit]);
  }

  async auditCounter(): Promise<number> {
    // The identity's sequence: its last value, or null if none was drawn yet.
    const rows = await this.q<{ n: number | null }>(
      "SELECT pg_sequence_last_value(pg_get_serial_sequence('vault_audit', 'seq')::regclass) AS n",
    );
    return rows[0]?.n ?? 0;
  }

  async close(): Promise<void> {
    if (this.opened !== null) await this.opened.then(() => this.client.query('ROLLBACK')).catch(() => undefined);
    await this.client.end().catch(() => undefined);
  }
}
