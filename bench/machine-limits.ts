/**
 * Ceilings of this machine, measured in the same run as a benchmark so every headline figure can
 * be given as a fraction of the limit that bounds it: Ed25519 verification (one thread, and on
 * the thread pool over both cores), SHA-256, committed SQLite rows, and raw JetStream publishes.
 */
import { generateKeyPairSync, hash, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { tempDir } from '../test/test-network.ts';

function signedMessage(): { publicKey: ReturnType<typeof generateKeyPairSync>['publicKey']; msg: Buffer; sig: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const msg = Buffer.alloc(48, 7);
  return { publicKey, msg, sig: nodeSign(null, msg, privateKey) };
}

/** Ed25519 verifications per second with node:crypto on the thread pool (both cores). */
export async function verifyCeiling(n = 20_000): Promise<number> {
  const { publicKey, msg, sig } = signedMessage();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 512) {
    await Promise.all(
      Array.from(
        { length: Math.min(512, n - i) },
        () => new Promise<boolean>((res, rej) => nodeVerify(null, msg, publicKey, sig, (e, ok) => (e ? rej(e) : res(ok)))),
      ),
    );
  }
  return n / ((performance.now() - t0) / 1000);
}

/** Ed25519 verifications per second with node:crypto on the calling thread (one core). */
export function verifySyncCeiling(n = 10_000): number {
  const { publicKey, msg, sig } = signedMessage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) if (!nodeVerify(null, msg, publicKey, sig)) throw new Error('verify failed');
  return n / ((performance.now() - t0) / 1000);
}

/** One-shot SHA-256 hashes of 256-byte messages per second, one thread. */
export function sha256Ceiling(n = 200_000): number {
  const buf = Buffer.alloc(256, 1);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    buf[0] = i & 0xff;
    hash('sha256', buf, 'buffer');
  }
  return n / ((performance.now() - t0) / 1000);
}

/**
 * Rows per second committed to SQLite the way the node writes them: WAL, synchronous=FULL,
 * 1,000-row transactions of ~200-byte rows into a table with one secondary index.
 */
export function sqliteRowsCeiling(rows = 100_000): number {
  const dir = tempDir('sqlite-limit');
  const db = new Database(join(dir, 'rows.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB NOT NULL); CREATE INDEX t_k ON t (k)');
    const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    const value = Buffer.alloc(160, 3);
    const batch = db.transaction((from: number) => {
      for (let i = from; i < from + 1000; i++) insert.run(`key-${(i * 2654435761) % 1_000_003}`, value);
    });
    const t0 = performance.now();
    for (let i = 0; i < rows; i += 1000) batch(i);
    return rows / ((performance.now() - t0) / 1000);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Raw JetStream: 400-byte publishes acked at R3 (file storage) with ~1,000 in flight. */
export async function jetstreamCeiling(urls: string[], n = 10_000): Promise<number> {
  const nc = await connect({ servers: urls });
  try {
    const jsm = await jetstreamManager(nc);
    const name = `RAW_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
    await jsm.streams.add({ name, subjects: [`${name}.x`], storage: StorageType.File, num_replicas: 3 });
    const js = jetstream(nc);
    const payload = new Uint8Array(400);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1000)
      await Promise.all(Array.from({ length: Math.min(1000, n - i) }, () => js.publish(`${name}.x`, payload)));
    const rate = n / ((performance.now() - t0) / 1000);
    await jsm.streams.delete(name);
    return rate;
  } finally {
    await nc.close();
  }
}
