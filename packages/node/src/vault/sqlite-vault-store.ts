/**
 * The vault store on SQLite (better-sqlite3, WAL, `synchronous=FULL`): the embedded default.
 * Methods run synchronously inside and resolve only after their write is committed and synced.
 */
import Database from 'better-sqlite3';
import { MedledgerError } from '@medledger/core/errors';
import type { VaultAttachment, VaultAuditEntry, VaultRecord, VaultScan, VaultStore, VaultTable } from './vault-store.ts';
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

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT',
  `CREATE TABLE IF NOT EXISTS records (
    object_id TEXT PRIMARY KEY,
    custodian TEXT NOT NULL,
    patient_code TEXT NOT NULL,
    category TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'registered', 'erased')),
    record_id TEXT UNIQUE,
    sealed_data_key BLOB,
    resource_ciphertext BLOB,
    hash TEXT NOT NULL,
    ciphertext_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    erased_at INTEGER,
    erasure_tx TEXT
  ) STRICT`,
  "CREATE INDEX IF NOT EXISTS records_pending ON records(created_at) WHERE state = 'pending'",
  `CREATE TABLE IF NOT EXISTS attachments (
    object_id TEXT NOT NULL REFERENCES records(object_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    ciphertext_hash TEXT,
    chunks INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (object_id, idx)
  ) STRICT`,
  `CREATE TABLE IF NOT EXISTS chunks (
    object_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (object_id, idx, seq),
    FOREIGN KEY (object_id, idx) REFERENCES attachments(object_id, idx) ON DELETE CASCADE
  ) STRICT`,
  `CREATE TABLE IF NOT EXISTS nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
  ) STRICT, WITHOUT ROWID`,
  'CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces(expires_at)',
  // AUTOINCREMENT: a sequence number is never handed out twice, so `afterSeq` paging is safe.
  `CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    custodian TEXT NOT NULL,
    requester TEXT NOT NULL,
    record_id TEXT,
    object_id TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    ledger_tx TEXT,
    digest TEXT
  ) STRICT`,
  'CREATE INDEX IF NOT EXISTS audit_custodian ON audit(custodian, seq)',
];

type Bind = (string | number | Buffer | null)[];

export class SqliteVaultStore implements VaultStore {
  private readonly db: Database.Database;
  private statements: ReturnType<SqliteVaultStore['prepare']> | null = null;

  /** `path` is the database file; `:memory:` works but keeps nothing across a restart. */
  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    // Crypto-shredding must not leave the sealed key or ciphertext in freed pages (see shred()).
    this.db.pragma('secure_delete = ON');
  }

  init(): Promise<void> {
    return settle(() => {
      this.db
        .transaction(() => {
          for (const s of SCHEMA) this.db.exec(s);
          this.db.prepare("INSERT INTO meta(k, v) VALUES ('schemaVersion', ?) ON CONFLICT(k) DO NOTHING").run(String(VAULT_SCHEMA_VERSION));
          let version = this.db.prepare<[], { v: string }>("SELECT v FROM meta WHERE k = 'schemaVersion'").get()?.v;
          if (version === '1') {
            // Version 2 chains the audit trail; rows already written stay as they are.
            const columns = this.db.prepare<[], string>("SELECT name FROM pragma_table_info('audit')").pluck().all();
            if (!columns.includes('digest')) this.db.exec('ALTER TABLE audit ADD COLUMN digest TEXT');
            this.db.prepare("UPDATE meta SET v = ? WHERE k = 'schemaVersion'").run(String(VAULT_SCHEMA_VERSION));
            version = String(VAULT_SCHEMA_VERSION);
          }
          if (version !== String(VAULT_SCHEMA_VERSION)) {
            throw new MedledgerError('INTERNAL', {
              details: `The vault database has schema version ${version}; this node knows ${VAULT_SCHEMA_VERSION}.`,
            });
          }
        })
        .immediate();
      this.statements ??= this.prepare();
    });
  }

  close(): Promise<void> {
    return settle(() => {
      if (this.db.open) this.db.close();
    });
  }

  putRecord(record: VaultRecord): Promise<void> {
    return settle(() => {
      checkNewRecord(record);
      const r = this.s.insertRecord.run(...recordValues(record));
      if (r.changes === 0) throw new MedledgerError('ALREADY_EXISTS', { details: 'A vault object with this id exists.' });
    });
  }

  getRecord(objectId: string): Promise<VaultRecord | undefined> {
    return settle(() => optionalRecord(this.s.record.get(objectId)));
  }

  getRecordByRecordId(recordId: string): Promise<VaultRecord | undefined> {
    return settle(() => optionalRecord(this.s.recordByRecordId.get(recordId)));
  }

  markRegistered(objectId: string, recordId: string): Promise<void> {
    return settle(() =>
      this.db
        .transaction(() => {
          const r = this.state(objectId);
          if (r.state === 'erased') throw new MedledgerError('RECORD_ERASED');
          if (r.state === 'registered') {
            if (r.record_id === recordId) return;
            throw new MedledgerError('ALREADY_EXISTS', { details: 'The vault object is registered under another record.' });
          }
          if (this.s.recordIdTaken.get(recordId) !== undefined) {
            throw new MedledgerError('ALREADY_EXISTS', { details: 'Another vault object is registered under this record.' });
          }
          this.s.register.run(recordId, objectId);
        })
        .immediate(),
    );
  }

  pendingBefore(before: number): Promise<VaultRecord[]> {
    return settle(() => this.s.pendingBefore.all(before).map(recordOf));
  }

  deletePending(objectId: string): Promise<void> {
    // Attachments and chunks go with the record (ON DELETE CASCADE). Not pending: nothing to do,
    // so a sweeper racing a registration cannot delete what the index now points to.
    return settle(() => {
      this.s.deletePending.run(objectId);
    });
  }

  addAttachment(a: Omit<VaultAttachment, 'ciphertextHash' | 'chunks' | 'complete'>): Promise<void> {
    return settle(() =>
      this.db
        .transaction(() => {
          checkIndex(a.index);
          if (!Number.isSafeInteger(a.size) || a.size < 0)
            throw new MedledgerError('BAD_REQUEST', { details: 'size must be a natural number.' });
          if (this.state(a.objectId).state === 'erased') throw new MedledgerError('RECORD_ERASED');
          const r = this.s.insertAttachment.run(a.objectId, a.index, a.contentType, a.size, a.sha256);
          if (r.changes === 0) throw new MedledgerError('ALREADY_EXISTS', { details: 'The attachment is already declared.' });
        })
        .immediate(),
    );
  }

  putAttachmentChunk(objectId: string, index: number, seq: number, bytes: Uint8Array): Promise<void> {
    return settle(() =>
      this.db
        .transaction(() => {
          const a = this.writableAttachment(objectId, index);
          if (a.complete !== 0) throw new MedledgerError('BAD_REQUEST', { details: 'The attachment is already complete.' });
          if (seq !== a.chunks) throw new MedledgerError('BAD_REQUEST', { details: `Expected chunk ${a.chunks}, got ${seq}.` });
          this.s.insertChunk.run(objectId, index, seq, toBuffer(bytes));
          this.s.countChunk.run(objectId, index);
        })
        .immediate(),
    );
  }

  completeAttachment(objectId: string, index: number, done: { ciphertextHash: string; chunks: number }): Promise<void> {
    return settle(() =>
      this.db
        .transaction(() => {
          const a = this.writableAttachment(objectId, index);
          if (a.complete !== 0) {
            if (a.ciphertext_hash === done.ciphertextHash && a.chunks === done.chunks) return;
            throw new MedledgerError('BAD_REQUEST', { details: 'The attachment was completed with another hash.' });
          }
          if (a.chunks !== done.chunks) {
            throw new MedledgerError('RECORD_INCOMPLETE', { details: `${a.chunks} of ${done.chunks} chunks are stored.` });
          }
          this.s.complete.run(done.ciphertextHash, objectId, index);
        })
        .immediate(),
    );
  }

  resetAttachment(objectId: string, index: number): Promise<void> {
    return settle(() =>
      this.db
        .transaction(() => {
          this.writableAttachment(objectId, index);
          this.s.deleteChunks.run(objectId, index);
          this.s.reset.run(objectId, index);
        })
        .immediate(),
    );
  }

  attachments(objectId: string): Promise<VaultAttachment[]> {
    return settle(() => this.s.attachments.all(objectId).map(attachmentOf));
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- better-sqlite3 reads synchronously; the interface is async.
  async *readAttachment(objectId: string, index: number): AsyncIterable<Uint8Array> {
    // One chunk per query rather than one open cursor: a cursor would pin the connection (and
    // the WAL snapshot) across the caller's awaits, and keep other writes from running.
    const chunks = this.readableAttachment(objectId, index);
    for (let seq = 0; seq < chunks; seq++) {
      const bytes = this.s.chunk.get(objectId, index, seq);
      if (bytes === undefined) {
        // Shredded or reset while being read: say which.
        this.readableAttachment(objectId, index);
        throw new MedledgerError('RECORD_INCOMPLETE', { details: 'The attachment changed while it was read.' });
      }
      yield toBytes(bytes);
    }
  }

  shred(objectId: string, erasureTx: string, time: number): Promise<void> {
    return settle(() => {
      const erased = this.db
        .transaction(() => {
          if (this.state(objectId).state === 'erased') return false;
          this.s.deleteObjectChunks.run(objectId);
          this.s.erase.run(time, erasureTx, objectId);
          return true;
        })
        .immediate();
      // secure_delete zeroed the freed content in the new page images; checkpointing copies them
      // over the old ones in the database file and truncates the WAL, which held older images.
      if (erased) this.db.pragma('wal_checkpoint(TRUNCATE)');
    });
  }

  claimNonce(keyId: string, nonce: string, expiresAt: number, now: number): Promise<boolean> {
    return settle(() =>
      this.db
        .transaction(() => {
          this.s.pruneNonces.run(now);
          return this.s.claimNonce.run(keyId, nonce, expiresAt).changes === 1;
        })
        .immediate(),
    );
  }

  audit(entry: VaultAuditEntry): Promise<number> {
    // The seq is chosen here, as AUTOINCREMENT would (above every seq ever handed out), so the
    // row is written once with its digest; the write lock makes this the next row of the chain.
    return settle(() =>
      this.db
        .transaction(() => {
          const last = this.s.lastAudit.get();
          const seq = Math.max(last?.seq ?? 0, this.s.auditSequence.get() ?? 0) + 1;
          const row = auditRowOf(seq, entry);
          const digest = auditDigest(last?.digest ?? '', row);
          this.s.insertAudit.run(...auditValues(row), digest);
          return seq;
        })
        .immediate(),
    );
  }

  auditEntries(custodian: string, afterSeq: number, limit: number): Promise<VaultAuditEntry[]> {
    return settle(() => this.s.auditEntries.all(custodian, afterSeq, limit).map(auditOf));
  }

  private get s(): ReturnType<SqliteVaultStore['prepare']> {
    if (this.statements === null) throw new MedledgerError('INTERNAL', { details: 'The vault store is used before init().' });
    return this.statements;
  }

  private prepare() {
    const db = this.db;
    return {
      insertRecord: db.prepare<Bind>(
        `INSERT INTO records(${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(object_id) DO NOTHING`,
      ),
      record: db.prepare<[string], RecordRow>(`SELECT ${RECORD_COLUMNS} FROM records WHERE object_id = ?`),
      recordByRecordId: db.prepare<[string], RecordRow>(`SELECT ${RECORD_COLUMNS} FROM records WHERE record_id = ?`),
      state: db.prepare<[string], StateRow>('SELECT state, record_id FROM records WHERE object_id = ?'),
      recordIdTaken: db.prepare<[string], { x: number }>('SELECT 1 AS x FROM records WHERE record_id = ?'),
      register: db.prepare<[string, string]>("UPDATE records SET state = 'registered', record_id = ? WHERE object_id = ?"),
      pendingBefore: db.prepare<[number], RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM records WHERE state = 'pending' AND created_at < ? ORDER BY created_at, object_id`,
      ),
      deletePending: db.prepare<[string]>("DELETE FROM records WHERE object_id = ? AND state = 'pending'"),
      erase: db.prepare<[number, string, string]>(
        "UPDATE records SET state = 'erased', sealed_data_key = NULL, resource_ciphertext = NULL, erased_at = ?, erasure_tx = ? WHERE object_id = ?",
      ),
      insertAttachment: db.prepare<[string, number, string, number, string]>(
        'INSERT INTO attachments(object_id, idx, content_type, size, sha256) VALUES (?, ?, ?, ?, ?) ON CONFLICT(object_id, idx) DO NOTHING',
      ),
      attachment: db.prepare<[string, number], AttachmentRow>(
        `SELECT ${ATTACHMENT_COLUMNS} FROM attachments WHERE object_id = ? AND idx = ?`,
      ),
      attachments: db.prepare<[string], AttachmentRow>(`SELECT ${ATTACHMENT_COLUMNS} FROM attachments WHERE object_id = ? ORDER BY idx`),
      countChunk: db.prepare<[string, number]>('UPDATE attachments SET chunks = chunks + 1 WHERE object_id = ? AND idx = ?'),
      complete: db.prepare<[string, string, number]>(
        'UPDATE attachments SET complete = 1, ciphertext_hash = ? WHERE object_id = ? AND idx = ?',
      ),
      reset: db.prepare<[string, number]>(
        'UPDATE attachments SET chunks = 0, complete = 0, ciphertext_hash = NULL WHERE object_id = ? AND idx = ?',
      ),
      insertChunk: db.prepare<[string, number, number, Buffer]>('INSERT INTO chunks(object_id, idx, seq, bytes) VALUES (?, ?, ?, ?)'),
      chunk: db.prepare<[string, number, number], Buffer>('SELECT bytes FROM chunks WHERE object_id = ? AND idx = ? AND seq = ?').pluck(),
      deleteChunks: db.prepare<[string, number]>('DELETE FROM chunks WHERE object_id = ? AND idx = ?'),
      deleteObjectChunks: db.prepare<[string]>('DELETE FROM chunks WHERE object_id = ?'),
      pruneNonces: db.prepare<[number]>('DELETE FROM nonces WHERE expires_at <= ?'),
      claimNonce: db.prepare<[string, string, number]>(
        'INSERT INTO nonces(key_id, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT(key_id, nonce) DO NOTHING',
      ),
      insertAudit: db.prepare<Bind>(
        'INSERT INTO audit(seq, time, custodian, requester, record_id, object_id, action, outcome, code, ledger_tx, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      lastAudit: db.prepare<[], { seq: number; digest: string | null }>('SELECT seq, digest FROM audit ORDER BY seq DESC LIMIT 1'),
      auditSequence: db.prepare<[], number>("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").pluck(),
      auditEntries: db.prepare<[string, number, number], AuditRow>(
        `SELECT ${AUDIT_COLUMNS} FROM audit WHERE custodian = ? AND seq > ? ORDER BY seq LIMIT ?`,
      ),
    };
  }

  private state(objectId: string): StateRow {
    const r = this.s.state.get(objectId);
    if (r === undefined) throw new MedledgerError('NOT_FOUND', { details: 'No such vault object.' });
    return r;
  }

  /** The attachment, if its record still holds ciphertext; to be called inside a transaction. */
  private writableAttachment(objectId: string, index: number): AttachmentRow {
    if (this.state(objectId).state === 'erased') throw new MedledgerError('RECORD_ERASED');
    const a = this.s.attachment.get(objectId, index);
    if (a === undefined) throw new MedledgerError('NOT_FOUND', { details: 'No such attachment.' });
    return a;
  }

  /** The number of chunks of a complete attachment of a record not erased. */
  private readableAttachment(objectId: string, index: number): number {
    const a = this.writableAttachment(objectId, index);
    if (a.complete === 0) throw new MedledgerError('RECORD_INCOMPLETE', { details: 'The attachment upload is not complete.' });
    return a.chunks;
  }
}

/** Runs a synchronous store operation as the interface's promise (a throw becomes a rejection). */
function settle<T>(f: () => T): Promise<T> {
  return new Promise((resolve) => resolve(f()));
}

function optionalRecord(r: RecordRow | undefined): VaultRecord | undefined {
  return r === undefined ? undefined : recordOf(r);
}

const SQLITE_TABLES: Readonly<Record<VaultTable, string>> = {
  meta: 'meta',
  records: 'records',
  attachments: 'attachments',
  chunks: 'chunks',
  nonces: 'nonces',
  audit: 'audit',
};

/** Every row of a SQLite vault as stored, read-only, for `medledger verify`. */
export class SqliteVaultScan implements VaultScan {
  readonly tables = SQLITE_TABLES;
  private readonly db: Database.Database;

  constructor(readonly file: string) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
  }

  damage(): Promise<string[]> {
    return settle(() => {
      const problems = this.db
        .prepare<[], string>('PRAGMA integrity_check')
        .pluck()
        .all()
        .filter((m) => m !== 'ok');
      // The tables as init() makes them, whitespace aside (a version-1 store's audit table was
      // respelled by ALTER TABLE): a changed definition changes what the store accepts.
      const fresh = new Database(':memory:');
      try {
        for (const s of SCHEMA) fresh.exec(s);
        const definitions = (db: Database.Database): Map<string, string> =>
          new Map(
            db
              .prepare<[], { type: string; name: string; tbl: string; sql: string | null }>(
                'SELECT type, name, tbl_name AS tbl, sql FROM sqlite_master',
              )
              .all()
              .map((r) => [r.name, `${r.type} ${r.tbl} ${(r.sql ?? '').replace(/\s+/g, '')}`]),
          );
        const want = definitions(fresh);
        const have = definitions(this.db);
        for (const [name, def] of have) if (want.get(name) !== def) problems.push(`the definition of ${name} differs from the vault’s`);
        for (const name of want.keys()) if (!have.has(name)) problems.push(`${name} is missing`);
      } finally {
        fresh.close();
      }
      return problems;
    });
  }

  meta(): Promise<{ k: string; v: string }[]> {
    return settle(() => this.db.prepare<[], { k: string; v: string }>('SELECT k, v FROM meta ORDER BY k').all());
  }

  records(afterObjectId: string, limit: number): Promise<RecordRow[]> {
    return settle(() =>
      this.db
        .prepare<[string, number], RecordRow>(`SELECT ${RECORD_COLUMNS} FROM records WHERE object_id > ? ORDER BY object_id LIMIT ?`)
        .all(afterObjectId, limit),
    );
  }

  attachments(after: readonly [string, number], limit: number): Promise<AttachmentRow[]> {
    return settle(() =>
      this.db
        .prepare<[string, number, number], AttachmentRow>(
          `SELECT ${ATTACHMENT_COLUMNS} FROM attachments WHERE (object_id, idx) > (?, ?) ORDER BY object_id, idx LIMIT ?`,
        )
        .all(...after, limit),
    );
  }

  chunk(objectId: string, index: number, seq: number): Promise<Uint8Array | undefined> {
    return settle(() => {
      const b = this.db
        .prepare<[string, number, number], Buffer>('SELECT bytes FROM chunks WHERE object_id = ? AND idx = ? AND seq = ?')
        .pluck()
        .get(objectId, index, seq);
      return b === undefined ? undefined : toBytes(b);
    });
  }

  chunkKeys(after: readonly [string, number, number], limit: number): Promise<{ object_id: string; idx: number; seq: number }[]> {
    return settle(() =>
      this.db
        .prepare<[string, number, number, number], { object_id: string; idx: number; seq: number }>(
          'SELECT object_id, idx, seq FROM chunks WHERE (object_id, idx, seq) > (?, ?, ?) ORDER BY object_id, idx, seq LIMIT ?',
        )
        .all(...after, limit),
    );
  }

  nonces(after: readonly [string, string], limit: number): Promise<{ key_id: string; nonce: string; expires_at: number }[]> {
    return settle(() =>
      this.db
        .prepare<[string, string, number], { key_id: string; nonce: string; expires_at: number }>(
          'SELECT key_id, nonce, expires_at FROM nonces WHERE (key_id, nonce) > (?, ?) ORDER BY key_id, nonce LIMIT ?',
        )
        .all(...after, limit),
    );
  }

  audit(afterSeq: number, limit: number): Promise<(AuditRow & { digest: string | null })[]> {
    return settle(() =>
      this.db
        .prepare<[number, number], AuditRow & { digest: string | null }>(
          `SELECT ${AUDIT_COLUMNS}, digest FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`,
        )
        .all(afterSeq, limit),
    );
  }

  auditCounter(): Promise<number> {
    return settle(() => this.db.prepare<[], number | null>("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").pluck().get() ?? 0);
  }

  close(): Promise<void> {
    return settle(() => {
      if (this.db.open) this.db.close();
    });
  }
}
