/**
 * One suite for the VaultStore interface, run against both backends: SQLite on a temp file and
 * PostgreSQL on a real server started for this file (postgres-server.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgVaultStore } from '../packages/node/src/vault/pg-vault-store.ts';
import { SqliteVaultStore } from '../packages/node/src/vault/sqlite-vault-store.ts';
import type { VaultAuditEntry, VaultRecord, VaultStore } from '../packages/node/src/vault/vault-store.ts';
import { PostgresServer } from './postgres-server.ts';
import { tempDir } from './test-network.ts';

interface Subject {
  store: VaultStore;
  /** A new store instance on the same storage (the test closes the old one first). */
  reopen(): Promise<VaultStore>;
  /** Chunk rows still stored for an object, read behind the store's back. */
  storedChunks(objectId: string): Promise<number>;
  cleanup(): Promise<void>;
}

const CHUNK = 64 * 1024 + 16;

function objectId(): string {
  return randomBytes(16).toString('hex');
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function newRecord(over: Partial<VaultRecord> = {}): VaultRecord {
  const resourceCiphertext = randomBytes(300);
  return {
    objectId: objectId(),
    custodian: 'hosp-a',
    patientCode: 'pc-' + randomBytes(4).toString('hex'),
    category: 'laboratory',
    state: 'pending',
    recordId: null,
    sealedDataKey: new Uint8Array(randomBytes(60)),
    resourceCiphertext: new Uint8Array(resourceCiphertext),
    hash: sha256(randomBytes(8)),
    ciphertextHash: sha256(resourceCiphertext),
    size: 280,
    createdAt: 1_700_000_000_000,
    erasedAt: null,
    erasureTx: null,
    ...over,
  };
}

function same(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  return a != null && b != null && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

/** Stores `chunks` as attachment `index` of `id` and completes it; returns the ciphertext hash. */
async function upload(store: VaultStore, id: string, index: number, chunks: Uint8Array[]): Promise<string> {
  const h = createHash('sha256');
  for (const [seq, c] of chunks.entries()) {
    h.update(c);
    await store.putAttachmentChunk(id, index, seq, c);
  }
  const ciphertextHash = h.digest('hex');
  await store.completeAttachment(id, index, { ciphertextHash, chunks: chunks.length });
  return ciphertextHash;
}

function auditEntry(over: Partial<VaultAuditEntry> = {}): VaultAuditEntry {
  return {
    time: 1_700_000_000_000,
    custodian: 'hosp-a',
    requester: 'staff-1',
    recordId: null,
    objectId: null,
    action: 'GET /vault/records/:id',
    outcome: 'served',
    code: null,
    ledgerTx: null,
    ...over,
  };
}

function describeVaultStore(name: string, make: () => Promise<Subject>): void {
  describe(name, () => {
    let s: Subject;
    let store: VaultStore;
    beforeEach(async () => {
      s = await make();
      store = s.store;
    });
    afterEach(async () => {
      await s.cleanup();
    });

    it('init is idempotent', async () => {
      await store.init();
      const r = newRecord();
      await store.putRecord(r);
      await store.init();
      expect((await store.getRecord(r.objectId))?.objectId).toBe(r.objectId);
    });

    it('puts and gets records, by objectId and by recordId', async () => {
      const r = newRecord();
      await store.putRecord(r);
      const got = await store.getRecord(r.objectId);
      const { sealedDataKey, resourceCiphertext, ...fields } = r;
      expect(got).toMatchObject(fields);
      expect(same(got?.sealedDataKey, sealedDataKey)).toBe(true);
      expect(same(got?.resourceCiphertext, resourceCiphertext)).toBe(true);
      expect(Buffer.isBuffer(got?.sealedDataKey)).toBe(false);
      expect(await store.getRecord(objectId())).toBeUndefined();
      expect(await store.getRecordByRecordId('rec-1')).toBeUndefined();
      await store.markRegistered(r.objectId, 'rec-1');
      const byId = await store.getRecordByRecordId('rec-1');
      expect(byId).toMatchObject({ objectId: r.objectId, state: 'registered', recordId: 'rec-1' });
    });

    it('refuses a taken objectId and a record that is not new', async () => {
      const r = newRecord();
      await store.putRecord(r);
      await expect(store.putRecord({ ...newRecord(), objectId: r.objectId })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      await expect(store.putRecord(newRecord({ state: 'registered', recordId: 'rec-x' }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(store.putRecord(newRecord({ objectId: 'not-hex' }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    });

    it('registers once: idempotent for the same recordId, refused for another', async () => {
      const r = newRecord();
      await store.putRecord(r);
      await store.markRegistered(r.objectId, 'rec-1');
      await store.markRegistered(r.objectId, 'rec-1');
      expect(await store.getRecord(r.objectId)).toMatchObject({ state: 'registered', recordId: 'rec-1' });
      await expect(store.markRegistered(r.objectId, 'rec-2')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      const other = newRecord();
      await store.putRecord(other);
      await expect(store.markRegistered(other.objectId, 'rec-1')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      expect((await store.getRecord(other.objectId))?.state).toBe('pending');
      await expect(store.markRegistered(objectId(), 'rec-3')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('lists and deletes stale pending uploads, never registered ones', async () => {
      const old1 = newRecord({ createdAt: 1000 });
      const old2 = newRecord({ createdAt: 2000 });
      const registered = newRecord({ createdAt: 1500 });
      const fresh = newRecord({ createdAt: 3000 });
      for (const r of [fresh, old2, registered, old1]) await store.putRecord(r);
      await store.markRegistered(registered.objectId, 'rec-r');
      await store.addAttachment({
        objectId: old1.objectId,
        index: 0,
        contentType: 'application/pdf',
        size: 10,
        sha256: sha256(randomBytes(1)),
      });
      await upload(store, old1.objectId, 0, [randomBytes(100)]);

      expect((await store.pendingBefore(2500)).map((r) => r.objectId)).toEqual([old1.objectId, old2.objectId]);

      await store.deletePending(registered.objectId);
      expect((await store.getRecord(registered.objectId))?.state).toBe('registered');
      await store.deletePending(old1.objectId);
      expect(await store.getRecord(old1.objectId)).toBeUndefined();
      expect(await store.attachments(old1.objectId)).toEqual([]);
      expect(await s.storedChunks(old1.objectId)).toBe(0);
      await store.deletePending(old1.objectId);
      expect((await store.pendingBefore(2500)).map((r) => r.objectId)).toEqual([old2.objectId]);
    });

    it('stores attachments as chunks in order, completes, resets and reads them back', async () => {
      const r = newRecord();
      await store.putRecord(r);
      const a = { objectId: r.objectId, index: 1, contentType: 'image/png', size: 500, sha256: sha256(randomBytes(4)) };
      await store.addAttachment(a);
      await store.addAttachment({ ...a, index: 0, contentType: 'application/pdf' });
      await expect(store.addAttachment(a)).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      await expect(store.addAttachment({ ...a, objectId: objectId() })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await store.attachments(r.objectId)).toEqual([
        { ...a, index: 0, contentType: 'application/pdf', ciphertextHash: null, chunks: 0, complete: false },
        { ...a, ciphertextHash: null, chunks: 0, complete: false },
      ]);

      const chunks = [randomBytes(200), randomBytes(200), randomBytes(116)].map((b) => new Uint8Array(b));
      await store.putAttachmentChunk(r.objectId, 1, 0, chunks[0]!);
      await expect(store.putAttachmentChunk(r.objectId, 1, 2, chunks[2]!)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(store.putAttachmentChunk(r.objectId, 1, 0, chunks[0]!)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(store.putAttachmentChunk(r.objectId, 7, 0, chunks[0]!)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(collect(store.readAttachment(r.objectId, 1))).rejects.toMatchObject({ code: 'RECORD_INCOMPLETE' });
      await expect(store.completeAttachment(r.objectId, 1, { ciphertextHash: 'x', chunks: 3 })).rejects.toMatchObject({
        code: 'RECORD_INCOMPLETE',
      });

      // A failed upload is reset and sent again from chunk 0.
      await store.resetAttachment(r.objectId, 1);
      expect((await store.attachments(r.objectId))[1]).toMatchObject({ chunks: 0, complete: false, ciphertextHash: null });
      expect(await s.storedChunks(r.objectId)).toBe(0);
      const ciphertextHash = await upload(store, r.objectId, 1, chunks);
      expect((await store.attachments(r.objectId))[1]).toEqual({ ...a, ciphertextHash, chunks: 3, complete: true });
      // Completing again with the same figures is a no-op; a complete attachment takes no chunk.
      await store.completeAttachment(r.objectId, 1, { ciphertextHash, chunks: 3 });
      await expect(store.completeAttachment(r.objectId, 1, { ciphertextHash: 'other', chunks: 3 })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
      await expect(store.putAttachmentChunk(r.objectId, 1, 3, chunks[0]!)).rejects.toMatchObject({ code: 'BAD_REQUEST' });

      const read = await collect(store.readAttachment(r.objectId, 1));
      expect(read.length).toBe(3);
      read.forEach((c, i) => expect(same(c, chunks[i])).toBe(true));
      await expect(collect(store.readAttachment(r.objectId, 0))).rejects.toMatchObject({ code: 'RECORD_INCOMPLETE' });
      await expect(collect(store.readAttachment(r.objectId, 5))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(collect(store.readAttachment(objectId(), 0))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('round-trips a 20 MiB attachment in 64 KiB + 16 chunks, one chunk in memory at a time', async () => {
      const r = newRecord();
      await store.putRecord(r);
      const count = (20 * 1024 * 1024) / (64 * 1024);
      await store.addAttachment({
        objectId: r.objectId,
        index: 0,
        contentType: 'application/dicom',
        size: 20 * 1024 * 1024,
        sha256: '0'.repeat(64),
      });
      const written = createHash('sha256');
      for (let seq = 0; seq < count; seq++) {
        const chunk = randomBytes(CHUNK);
        written.update(chunk);
        await store.putAttachmentChunk(r.objectId, 0, seq, chunk);
      }
      const ciphertextHash = written.digest('hex');
      await store.completeAttachment(r.objectId, 0, { ciphertextHash, chunks: count });

      const read = createHash('sha256');
      let chunks = 0;
      for await (const c of store.readAttachment(r.objectId, 0)) {
        expect(c.byteLength).toBe(CHUNK);
        read.update(c);
        chunks++;
      }
      expect(chunks).toBe(count);
      expect(read.digest('hex')).toBe(ciphertextHash);
    });

    it('shreds: key, ciphertext and chunks go, hashes stay, idempotently', async () => {
      const r = newRecord();
      await store.putRecord(r);
      await store.markRegistered(r.objectId, 'rec-s');
      const a = { objectId: r.objectId, index: 0, contentType: 'application/pdf', size: 300, sha256: sha256(randomBytes(4)) };
      await store.addAttachment(a);
      const ciphertextHash = await upload(store, r.objectId, 0, [randomBytes(CHUNK), randomBytes(CHUNK), randomBytes(10)]);
      expect(await s.storedChunks(r.objectId)).toBe(3);

      await store.shred(r.objectId, 'tx-erase', 1_700_000_100_000);
      const erased = await store.getRecord(r.objectId);
      expect(erased).toEqual({
        ...r,
        state: 'erased',
        recordId: 'rec-s',
        sealedDataKey: null,
        resourceCiphertext: null,
        erasedAt: 1_700_000_100_000,
        erasureTx: 'tx-erase',
      });
      expect((await store.getRecordByRecordId('rec-s'))?.state).toBe('erased');
      expect(await s.storedChunks(r.objectId)).toBe(0);
      expect(await store.attachments(r.objectId)).toEqual([{ ...a, ciphertextHash, chunks: 3, complete: true }]);
      await expect(collect(store.readAttachment(r.objectId, 0))).rejects.toMatchObject({ code: 'RECORD_ERASED' });

      // Again (a replayed erasure): nothing changes, the first erasure stays on record.
      await store.shred(r.objectId, 'tx-again', 1_700_000_200_000);
      expect(await store.getRecord(r.objectId)).toEqual(erased);

      await expect(store.putAttachmentChunk(r.objectId, 0, 3, randomBytes(10))).rejects.toMatchObject({ code: 'RECORD_ERASED' });
      await expect(store.resetAttachment(r.objectId, 0)).rejects.toMatchObject({ code: 'RECORD_ERASED' });
      await expect(store.addAttachment({ ...a, index: 1 })).rejects.toMatchObject({ code: 'RECORD_ERASED' });
      await expect(store.markRegistered(r.objectId, 'rec-s')).rejects.toMatchObject({ code: 'RECORD_ERASED' });
      await store.deletePending(r.objectId);
      expect((await store.getRecord(r.objectId))?.state).toBe('erased');
      await expect(store.shred(objectId(), 'tx', 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('claims a nonce once; a replay is refused', async () => {
      expect(await store.claimNonce('key-1', 'n-1', 10_000, 1000)).toBe(true);
      expect(await store.claimNonce('key-1', 'n-1', 10_000, 2000)).toBe(false);
      expect(await store.claimNonce('key-2', 'n-1', 10_000, 2000)).toBe(true);
      expect(await store.claimNonce('key-1', 'n-2', 10_000, 2000)).toBe(true);
    });

    it('of 20 concurrent claims of one nonce exactly one succeeds', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => store.claimNonce('key-c', 'n-c', 10_000, 1000)));
      expect(results.filter((x) => x).length).toBe(1);
    });

    it('prunes expired nonces, which may then be claimed again', async () => {
      expect(await store.claimNonce('key-1', 'n-1', 1000, 0)).toBe(true);
      expect(await store.claimNonce('key-1', 'n-1', 2000, 999)).toBe(false);
      expect(await store.claimNonce('key-1', 'n-1', 3000, 1000)).toBe(true);
      // n-2 expires at 1000; a claim at 1500 prunes it. Seen from a clock set back to 500, n-2
      // would still be live had it been kept, so its claim succeeding shows the row is gone.
      expect(await store.claimNonce('key-1', 'n-2', 1000, 0)).toBe(true);
      expect(await store.claimNonce('key-1', 'n-3', 9000, 1500)).toBe(true);
      expect(await store.claimNonce('key-1', 'n-2', 1000, 500)).toBe(true);
    });

    it('appends audit entries and lists them by custodian, after a sequence number', async () => {
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++) {
        seqs.push(await store.audit(auditEntry({ custodian: 'hosp-a', time: 1000 + i, requester: `staff-${i}` })));
        seqs.push(await store.audit(auditEntry({ custodian: 'hosp-b', time: 1000 + i, outcome: 'refused', code: 'CONSENT_REQUIRED' })));
      }
      expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
      expect(new Set(seqs).size).toBe(10);
      const full = auditEntry({
        custodian: 'hosp-a',
        recordId: 'rec-1',
        objectId: objectId(),
        outcome: 'erased',
        code: null,
        ledgerTx: 'tx-1',
        time: 2000,
      });
      const last = await store.audit(full);

      const a = await store.auditEntries('hosp-a', 0, 100);
      expect(a.map((e) => e.seq)).toEqual([seqs[0], seqs[2], seqs[4], seqs[6], seqs[8], last]);
      expect(a.map((e) => e.requester).slice(0, 5)).toEqual(['staff-0', 'staff-1', 'staff-2', 'staff-3', 'staff-4']);
      expect(a[5]).toEqual({ ...full, seq: last });
      expect((await store.auditEntries('hosp-a', seqs[4]!, 100)).map((e) => e.seq)).toEqual([seqs[6], seqs[8], last]);
      expect((await store.auditEntries('hosp-a', seqs[4]!, 2)).map((e) => e.seq)).toEqual([seqs[6], seqs[8]]);
      const b = await store.auditEntries('hosp-b', 0, 100);
      expect(b.every((e) => e.custodian === 'hosp-b' && e.outcome === 'refused' && e.code === 'CONSENT_REQUIRED')).toBe(true);
      expect(await store.auditEntries('clinic-c', 0, 100)).toEqual([]);

      const concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => store.audit(auditEntry({ custodian: 'lab-d', time: i }))));
      expect(new Set(concurrent).size).toBe(20);
      expect((await store.auditEntries('lab-d', 0, 100)).map((e) => e.seq)).toEqual([...concurrent].sort((x, y) => x - y));
    });

    it('keeps everything across a close and reopen', async () => {
      const kept = newRecord();
      const erased = newRecord();
      await store.putRecord(kept);
      await store.putRecord(erased);
      await store.markRegistered(kept.objectId, 'rec-k');
      await store.addAttachment({
        objectId: kept.objectId,
        index: 0,
        contentType: 'application/pdf',
        size: 9,
        sha256: sha256(randomBytes(2)),
      });
      const chunks = [randomBytes(CHUNK), randomBytes(5)];
      const ciphertextHash = await upload(store, kept.objectId, 0, chunks);
      await store.shred(erased.objectId, 'tx-e', 5000);
      expect(await store.claimNonce('key-1', 'n-1', 10_000, 1000)).toBe(true);
      const seq = await store.audit(auditEntry());
      await store.close();

      const again = await s.reopen();
      expect(await again.getRecordByRecordId('rec-k')).toMatchObject({ objectId: kept.objectId, state: 'registered' });
      expect(same((await again.getRecord(kept.objectId))?.sealedDataKey, kept.sealedDataKey)).toBe(true);
      expect(await again.getRecord(erased.objectId)).toMatchObject({ state: 'erased', sealedDataKey: null, erasureTx: 'tx-e' });
      expect(await again.attachments(kept.objectId)).toMatchObject([{ index: 0, ciphertextHash, chunks: 2, complete: true }]);
      const read = await collect(again.readAttachment(kept.objectId, 0));
      expect(read.length).toBe(2);
      read.forEach((c, i) => expect(same(c, chunks[i])).toBe(true));
      expect(await again.claimNonce('key-1', 'n-1', 10_000, 2000)).toBe(false);
      expect((await again.auditEntries('hosp-a', 0, 10)).map((e) => e.seq)).toEqual([seq]);
      expect(await again.audit(auditEntry())).toBeGreaterThan(seq);
    });
  });
}

describeVaultStore('SqliteVaultStore', async () => {
  const dir = tempDir('vault');
  const path = join(dir, 'vault.db');
  const opened: VaultStore[] = [];
  const open = async (): Promise<VaultStore> => {
    const store = new SqliteVaultStore(path);
    opened.push(store);
    await store.init();
    return store;
  };
  return {
    store: await open(),
    reopen: open,
    storedChunks: (id) => Promise.resolve(peekSqlite(path, 'SELECT count(*) FROM chunks WHERE object_id = ?', id)),
    cleanup: async () => {
      for (const store of opened) await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

function peekSqlite(path: string, sql: string, ...params: string[]): number {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare<string[], number>(sql)
      .pluck()
      .get(...params)!;
  } finally {
    db.close();
  }
}

describe('SqliteVaultStore crypto-shredding on disk', () => {
  it('leaves neither the sealed key nor attachment ciphertext in the database file or its WAL', async () => {
    const dir = tempDir('vault');
    const path = join(dir, 'vault.db');
    const store = new SqliteVaultStore(path);
    try {
      await store.init();
      const r = newRecord({ resourceCiphertext: new Uint8Array(randomBytes(CHUNK)) });
      await store.putRecord(r);
      await store.addAttachment({
        objectId: r.objectId,
        index: 0,
        contentType: 'application/pdf',
        size: 1,
        sha256: sha256(randomBytes(1)),
      });
      const chunk = randomBytes(CHUNK);
      await upload(store, r.objectId, 0, [chunk]);
      const onDisk = (): Buffer => Buffer.concat([path, `${path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)));
      const probes = [r.sealedDataKey!, r.resourceCiphertext!.subarray(1000, 1064), chunk.subarray(30_000, 30_064)].map((p) =>
        Buffer.from(p),
      );
      expect(probes.every((p) => onDisk().includes(p))).toBe(true);
      await store.shred(r.objectId, 'tx-erase', 1);
      expect(probes.map((p) => onDisk().includes(p))).toEqual([false, false, false]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('on PostgreSQL', () => {
  let server: PostgresServer | undefined;
  let databases = 0;

  beforeAll(async () => {
    server = await PostgresServer.start();
  });

  afterAll(async () => {
    await server?.stop();
  });

  describeVaultStore('PgVaultStore', async () => {
    // A fresh database per test; the server and its files go in afterAll.
    const connectionString = await server!.createDatabase(`vault_${++databases}`);
    const opened: VaultStore[] = [];
    const open = async (): Promise<VaultStore> => {
      const store = new PgVaultStore({ connectionString });
      opened.push(store);
      await store.init();
      return store;
    };
    const peek = new pg.Pool({ connectionString, max: 1 });
    return {
      store: await open(),
      reopen: open,
      storedChunks: async (id) => {
        const { rows } = await peek.query<{ n: number }>('SELECT count(*)::int AS n FROM vault_chunks WHERE object_id = $1', [id]);
        return rows[0]!.n;
      },
      cleanup: async () => {
        for (const store of opened) await store.close();
        await peek.end();
      },
    };
  });
});
