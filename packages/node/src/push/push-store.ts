/**
 * The node's durable outbox of webhook deliveries (issue 7): SQLite in the data dir (`push.db`,
 * WAL, `synchronous=FULL`). The ledger height up to which new records were turned into deliveries
 * is committed in the same SQLite transaction as those deliveries, so a node killed at any instant
 * neither loses a notification nor makes one twice; a delivery leaves `pending` only once the
 * receiver acknowledged it (`delivered`), after its last failed attempt (`dead`, the dead-letter
 * list, re-drivable), or when its subscription no longer holds (`dropped`).
 */
import Database from 'better-sqlite3';

export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'dropped';

export interface Delivery {
  deliveryId: string;
  subscriptionId: string;
  institution: string;
  subscriber: string;
  patientCode: string;
  recordId: string;
  url: string;
  /** the JSON body sent, exactly */
  body: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  /** the last failure: an HTTP status or an error name, or the code that dropped it; never patient data */
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  delivery_id: string;
  subscription_id: string;
  institution: string;
  subscriber: string;
  patient_code: string;
  record_id: string;
  url: string;
  body: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT',
  `CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    institution TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    patient_code TEXT NOT NULL,
    record_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'dropped')),
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT`,
  "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending'",
  'CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries(institution, status, updated_at)',
  `CREATE TABLE IF NOT EXISTS nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
  ) STRICT, WITHOUT ROWID`,
];

const of = (r: Row): Delivery => ({
  deliveryId: r.delivery_id,
  subscriptionId: r.subscription_id,
  institution: r.institution,
  subscriber: r.subscriber,
  patientCode: r.patient_code,
  recordId: r.record_id,
  url: r.url,
  body: r.body,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class PushStore {
  private readonly db: Database.Database;

  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    for (const s of SCHEMA) this.db.exec(s);
  }

  close(): void {
    this.db.close();
  }

  /** The last ledger height turned into deliveries, or null before the first start. */
  cursor(): number | null {
    const row = this.db.prepare<[], { v: string }>("SELECT v FROM meta WHERE k = 'cursor'").get();
    return row === undefined ? null : Number(row.v);
  }

  /** Adds the deliveries of `height` (each once) and moves the cursor, in one transaction. */
  advance(height: number, deliveries: readonly Omit<Delivery, 'status' | 'attempts' | 'lastError' | 'updatedAt'>[]): void {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO deliveries(delivery_id, subscription_id, institution, subscriber, patient_code, record_id, url, body,
         status, attempts, next_attempt_at, last_error, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, NULL, ?, ?)`,
    );
    const setCursor = this.db.prepare("INSERT INTO meta(k, v) VALUES ('cursor', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v");
    this.db.transaction(() => {
      for (const d of deliveries)
        insert.run(
          d.deliveryId,
          d.subscriptionId,
          d.institution,
          d.subscriber,
          d.patientCode,
          d.recordId,
          d.url,
          d.body,
          d.nextAttemptAt,
          d.createdAt,
          d.createdAt,
        );
      setCursor.run(String(height));
    })();
  }

  /** Pending deliveries due at `now`, oldest first. */
  due(now: number, limit: number): Delivery[] {
    return this.db
      .prepare<[number, number], Row>(
        "SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, delivery_id LIMIT ?",
      )
      .all(now, limit)
      .map(of);
  }

  /** When the next pending delivery is due, or null when none is pending. */
  nextDue(): number | null {
    const row = this.db
      .prepare<[], { t: number | null }>("SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'")
      .get();
    return row?.t ?? null;
  }

  get(deliveryId: string): Delivery | undefined {
    const row = this.db.prepare<[string], Row>('SELECT * FROM deliveries WHERE delivery_id = ?').get(deliveryId);
    return row === undefined ? undefined : of(row);
  }

  /** Records the outcome of one attempt. */
  settle(
    deliveryId: string,
    next: { status: DeliveryStatus; attempts: number; nextAttemptAt: number; lastError: string | null },
    now: number,
  ): void {
    this.db
      .prepare('UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE delivery_id = ?')
      .run(next.status, next.attempts, next.nextAttemptAt, next.lastError, now, deliveryId);
  }

  list(institution: string, status: DeliveryStatus, limit: number): Delivery[] {
    return this.db
      .prepare<[string, string, number], Row>(
        'SELECT * FROM deliveries WHERE institution = ? AND status = ? ORDER BY updated_at DESC, delivery_id LIMIT ?',
      )
      .all(institution, status, limit)
      .map(of);
  }

  /** Puts a dead letter back in the queue with fresh attempts; false when there is no such dead letter. */
  redrive(institution: string, deliveryId: string, now: number): boolean {
    const r = this.db
      .prepare(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE delivery_id = ? AND institution = ? AND status = 'dead'",
      )
      .run(now, now, deliveryId, institution);
    return r.changes === 1;
  }

  /** Claims a signed request's nonce; false if it was seen before (a replay). */
  claimNonce(keyId: string, nonce: string, keepUntil: number, now: number): boolean {
    this.db.prepare('DELETE FROM nonces WHERE expires_at < ?').run(now);
    const r = this.db.prepare('INSERT OR IGNORE INTO nonces(key_id, nonce, expires_at) VALUES (?, ?, ?)').run(keyId, nonce, keepUntil);
    return r.changes === 1;
  }
}
