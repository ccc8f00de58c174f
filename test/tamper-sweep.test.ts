/**
 * Tamper sweep (issue 9): for every table and file a node persists, one byte changed at a
 * fast-check-chosen position (several per target; seed 20261121 replayed when CI=true) must make
 * `verify` fail with a stable code that names what changed — the table and key, the height, or
 * the file — and the untouched original must verify clean, so the sweep can fail both ways.
 *
 * The nodes are real: two validators ordering on a real NATS server (finality votes,
 * certificates and validator sets), hospital A's vault on SQLite and hospital B's on a real
 * PostgreSQL, with records, files, consents, accesses, refusals and an erasure; and a solo node
 * for the orderer's log. SQLite targets are changed in a copy of the stopped node's data
 * directory; PostgreSQL rows are changed in place and put back.
 *
 * Left out on purpose, because nothing else holds a copy to compare with (see verify-vault.ts
 * and verify-store.ts): the nonce text and a lowered nonce expiry, the attachment rows of an
 * erased record, the patient-code key's value in consortium.json, and node.json's operator
 * settings (addresses, ports, limits); the sweep targets their other bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { isDeepStrictEqual } from 'node:util';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { Identity, IdentityFile } from '@medledger/core/client/identity';
import { VaultClient, type RecordIndex } from '@medledger/core/client/vault-client';
import type { RecordEntry } from '@medledger/core/contracts/state';
import { ATTACHMENT_SHA256_EXTENSION } from '@medledger/core/fhir/validate';
import { MedledgerError, type ErrorCode } from '@medledger/core/errors';
import { DataDirFiles, writeJson, type NodeConfig } from '../packages/node/src/config/data-dir.ts';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { verifyDataDir } from '../packages/node/src/store/verify-store.ts';
import { streamingFetch } from '../packages/node/src/vault/streaming-fetch.ts';
import { PgVaultScan, PgVaultStore } from '../packages/node/src/vault/pg-vault-store.ts';
import { SqliteVaultScan, SqliteVaultStore } from '../packages/node/src/vault/sqlite-vault-store.ts';
import { verifyVault } from '../packages/node/src/vault/verify-vault.ts';
import type { VaultAuditEntry, VaultStore } from '../packages/node/src/vault/vault-store.ts';
import { NatsCluster } from './nats-cluster.ts';
import { PostgresServer } from './postgres-server.ts';
import {
  CLI,
  enrolCast,
  makeNetwork,
  observation,
  send,
  startAll,
  startVaultNode,
  tempDir,
  type Cast,
  type TestNetwork,
} from './test-network.ts';

const ciEnv = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
if (ciEnv?.['CI'] === 'true') fc.configureGlobal({ seed: 20261121 });
/** byte positions tried per target */
const RUNS = 4;

const INSTITUTIONS = [
  { id: 'hosp-a', name: 'Hospital A', kind: 'hospital', validator: true },
  { id: 'hosp-b', name: 'Hospital B', kind: 'hospital', validator: true },
  { id: 'clinic-c', name: 'Clinic C', kind: 'clinic', validator: false },
] as const;

let nats: NatsCluster;
let pgServer: PostgresServer;
let net: TestNetwork;
let cast: Cast;
/** data directories of the stopped nodes: A (SQLite vault), B (PostgreSQL vault), C (solo) */
let aDir: string;
let bDir: string;
let cDir: string;
let pgUrl: string;

function documentWith(file: Uint8Array): JsonObject {
  return {
    resourceType: 'DocumentReference',
    status: 'current',
    description: 'synthetic scan',
    subject: { reference: 'Patient/synthetic-1' },
    content: [
      {
        attachment: {
          contentType: 'application/octet-stream',
          size: file.length,
          url: 'attachment:0',
          title: 'scan.bin',
          extension: [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: createHash('sha256').update(file).digest('hex') }],
        },
      },
    ],
  };
}

async function ok(node: LedgerNode, who: Identity, type: Parameters<typeof send>[3], body: JsonObject): Promise<string> {
  const r = await send(node.url, net.network, who, type, body);
  expect(r.code, `${type}: ${JSON.stringify(r.answer.body)}`).toBe('OK');
  return r.txId;
}

/** Waits until both nodes have applied the same height, made it final, and their vaults caught up. */
async function settle(nodes: LedgerNode[]): Promise<void> {
  for (let i = 0; i < 800; i++) {
    const top = Math.max(...nodes.map((n) => n.peer.store.head().height));
    if (nodes.every((n) => n.peer.store.head().height === top && (n.finality?.status.finalHeight ?? top) >= top)) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  for (const n of nodes) await n.vault!.idle();
}

/**
 * Fills one node's vault: a record with a file, registered, consented to and read with its file
 * by a doctor of the other hospital; one read by the patient and refused to that doctor; one
 * registered then erased; one stored and never registered.
 */
async function fillVault(
  node: LedgerNode,
  other: LedgerNode,
  author: Identity,
  reader: Identity,
  patient: Cast['patients'][number],
  institution: string,
  readerInstitution: string,
): Promise<void> {
  const nodes = [node, other];
  const client = new VaultClient(author, { fetch: streamingFetch });
  const register = async (resource: JsonObject, file?: Uint8Array): Promise<string> => {
    const stored = await client.store(node.url, institution, { patientCode: patient.code, resource });
    if (file !== undefined) await client.uploadAttachment(node.url, institution, stored.objectId, 0, new Blob([file]));
    const id = await ok(node, author, 'records.register', { patientCode: patient.code, registrationRequestId: null, ...stored.index });
    await settle(nodes);
    return id;
  };
  const file = new Uint8Array(randomBytes(100_000));
  const shared = await register(documentWith(file), file);
  const kept = await register(observation('kept, never shared'));
  const erased = await register(observation('to be erased'));
  await client.store(node.url, institution, { patientCode: patient.code, resource: observation('stored, never registered') });
  await ok(node, patient.identity, 'consent.grant', {
    patientCode: patient.code,
    grantee: { kind: 'institution', institution: readerInstitution },
    scope: { kind: 'records', recordIds: [shared] },
    purposes: ['TREAT'],
    period: { from: 0, to: null },
    deidentification: 'identified',
  });
  await settle(nodes);
  const index = (id: string): RecordIndex => node.peer.store.get('records', id) as unknown as RecordEntry;
  const fetched = await new VaultClient(reader).fetchRecord(node.url, index(shared), 'TREAT');
  const fileHash = createHash('sha256').update(file).digest('hex');
  let read = 0;
  for await (const piece of new VaultClient(reader).fetchAttachment(node.url, fetched, index(shared).hash, 0, fileHash)) {
    read += piece.length;
  }
  expect(read).toBe(file.length);
  await new VaultClient(patient.identity).fetchRecord(node.url, index(kept), 'TREAT');
  await expect(new VaultClient(reader).fetchRecord(node.url, index(kept), 'TREAT')).rejects.toMatchObject({ code: 'CONSENT_REQUIRED' });
  await ok(node, patient.identity, 'records.erase', { recordId: erased });
  await settle(nodes);
}

beforeAll(async () => {
  [nats, pgServer] = await startAll(NatsCluster.start(1), PostgresServer.start());
  pgUrl = pgServer.connectionString;
  net = await makeNetwork(
    { batchTimeoutMs: 5 },
    INSTITUTIONS.map((i) => ({ ...i })),
  );
  [aDir, bDir, cDir] = [net.nodeDir('hosp-a'), net.nodeDir('hosp-b'), net.nodeDir('clinic-c')];
  // node.json says how each node runs, as an operator's would: verify reads it.
  const stores = { 'hosp-a': { kind: 'sqlite' }, 'hosp-b': { kind: 'postgres', connectionString: pgUrl } } as const;
  for (const id of ['hosp-a', 'hosp-b'] as const) {
    const config: NodeConfig = {
      institution: id,
      ordering: { kind: 'nats', servers: nats.urls, stream: `TS_${net.network.slice(0, 12)}`, replicas: 1 },
      api: { host: '127.0.0.1', port: 0 },
      rateLimitPerMinute: 1_000_000,
      vault: { store: stores[id], institutions: [id] },
    };
    writeJson(join(net.nodeDir(id), DataDirFiles.config), config);
  }
  const [a, b] = await Promise.all([
    startVaultNode(net, nats.urls, 'TS', 'hosp-a'),
    startVaultNode(net, nats.urls, 'TS', 'hosp-b', stores['hosp-b']),
  ]);
  cast = await enrolCast(a.url, net, { 'hosp-a/dr-kim': 'doctor', 'hosp-a/aud-a': 'auditor', 'hosp-b/dr-park': 'doctor' }, [
    'hosp-a',
    'hosp-b',
  ]);
  await settle([a, b]);
  const staff = (id: string): Identity => cast.staff.get(id)!;
  await fillVault(a, b, staff('hosp-a/dr-kim'), staff('hosp-b/dr-park'), cast.patients[0]!, 'hosp-a', 'hosp-b');
  await fillVault(b, a, staff('hosp-b/dr-park'), staff('hosp-a/dr-kim'), cast.patients[1]!, 'hosp-b', 'hosp-a');
  await new VaultClient(staff('hosp-a/aud-a')).audit(a.url, 'hosp-a');
  await settle([a, b]);
  await a.stop();
  await b.stop();

  // A solo node keeps its orderer's log in its data directory.
  const c = await LedgerNode.start({ dataDir: cDir, genesis: net.genesis, institution: 'clinic-c', host: '127.0.0.1', port: 0 });
  const solo = await enrolCast(c.url, net, { 'clinic-c/dr-lee': 'doctor' }, ['clinic-c']);
  const p = solo.patients[0]!;
  await ok(c, p.identity, 'consent.grant', {
    patientCode: p.code,
    grantee: { kind: 'institution', institution: 'clinic-c' },
    scope: { kind: 'all' },
    purposes: ['TREAT'],
    period: { from: 0, to: null },
    deidentification: 'identified',
  });
  await c.stop();
}, 180_000);

afterAll(async () => {
  await pgServer?.stop();
  await nats?.stop();
});

// ------------------------------------------------------------------ changing one byte

type Cell = string | number | bigint | boolean | Buffer | Uint8Array | null;

/** A different character in the same place (letters stay letters, digits digits). */
function otherChar(c: string): string {
  if (/[0-9]/.test(c)) return String((Number(c) + 1) % 10);
  if (/[a-y]/i.test(c)) return String.fromCharCode(c.charCodeAt(0) + 1);
  if (/[zZ]/.test(c)) return c === 'z' ? 'a' : 'A';
  return c === '"' ? "'" : '"';
}

/** How many bytes of a cell one may change (a NULL has none). */
function cellLength(v: Cell): number {
  if (v === null) return 0;
  if (typeof v === 'boolean') return 1;
  if (typeof v === 'string') return v.length;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v).length;
  return v.length;
}

/** The cell with byte (or character, or decimal digit) `at` changed. */
function changeCell(v: Cell, at: number): Cell {
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'string') return v.slice(0, at) + otherChar(v[at]!) + v.slice(at + 1);
  if (typeof v === 'number' || typeof v === 'bigint') {
    const s = String(v);
    const changed = s.slice(0, at) + otherChar(s[at]!) + s.slice(at + 1);
    return typeof v === 'bigint' ? BigInt(changed) : Number(changed);
  }
  const out = Buffer.from(v!);
  out[at] = out[at]! ^ 0x5a;
  return out;
}

/** Picks the column and offset of byte `pos` of a row, counting over the given columns. */
function pickByte(row: Record<string, Cell>, columns: readonly string[], pos: number): { column: string; at: number } | null {
  const total = columns.reduce((n, c) => n + cellLength(row[c] ?? null), 0);
  if (total === 0) return null;
  let p = pos % total;
  for (const column of columns) {
    const n = cellLength(row[column] ?? null);
    if (p < n) return { column, at: p };
    p -= n;
  }
  return null;
}

/** The finding verify reports on `dir`, or null when it finds none. */
async function finding(dir: string): Promise<MedledgerError | null> {
  try {
    await verifyDataDir(dir);
    return null;
  } catch (e) {
    if (!(e instanceof MedledgerError)) throw e;
    return e;
  }
}

function copyOf(dir: string): string {
  const copy = join(tempDir('tamper'), 'node');
  cpSync(dir, copy, { recursive: true });
  return copy;
}

/** A target: rows of one kind in one table, and how a finding must name the changed row. */
interface RowTarget {
  name: string;
  table: string;
  /** SQL condition choosing the row kind */
  where?: string;
  /** the columns whose bytes may be changed (default: every column) */
  columns?: readonly string[];
  codes: readonly ErrorCode[];
  /** true when the finding names this row, as it was or as it is now */
  names: (payload: Record<string, unknown>, before: Record<string, Cell>, after: Record<string, Cell>) => boolean;
}

const byKey =
  (table: string, key: (r: Record<string, Cell>) => string, field = 'key') =>
  (p: Record<string, unknown>, before: Record<string, Cell>, after: Record<string, Cell>): boolean =>
    p['table'] === table && [key(before), key(after)].includes(String(p[field]));

interface Tally {
  tried: number;
  refused: number;
}

/** Changes one byte of a row of `t` in a copy of `dir`'s `db`; expects verify to name it. */
async function sweepSqlite(dir: string, db: 'chain.db' | 'vault.db', t: RowTarget, tally: Tally): Promise<void> {
  const rowCount = ((): number => {
    const d = new Database(join(dir, db), { readonly: true });
    try {
      return d
        .prepare(`SELECT count(*) FROM ${t.table}${t.where === undefined ? '' : ` WHERE ${t.where}`}`)
        .pluck()
        .get() as number;
    } finally {
      d.close();
    }
  })();
  expect(rowCount, `${t.name}: no rows to change`).toBeGreaterThan(0);
  await fc.assert(
    fc.asyncProperty(fc.nat(), fc.nat(), async (rowPick, pos) => {
      const copy = copyOf(dir);
      const d = new Database(join(copy, db));
      d.defaultSafeIntegers(false);
      const rows = d.prepare(`SELECT * FROM ${t.table}${t.where === undefined ? '' : ` WHERE ${t.where}`} ORDER BY 1`).all() as Record<
        string,
        Cell
      >[];
      const before = rows[rowPick % rows.length]!;
      const columns = t.columns ?? Object.keys(before);
      const pick = pickByte(before, columns, pos)!;
      const after = { ...before, [pick.column]: changeCell(before[pick.column]!, pick.at) };
      const match = Object.keys(before)
        .map((c) => (before[c] === null ? `${c} IS NULL` : `${c} = @${c}`))
        .join(' AND ');
      const bind = Object.fromEntries(Object.entries(before).filter(([, v]) => v !== null));
      try {
        const changed = d
          .prepare(`UPDATE ${t.table} SET ${pick.column} = @changed_value WHERE ${match}`)
          .run({ ...bind, changed_value: after[pick.column] });
        expect(changed.changes).toBe(1);
      } catch (e) {
        // A constraint of the table itself refused the change: it cannot be stored this way.
        if (e instanceof Error && 'code' in e && String(e.code).startsWith('SQLITE_CONSTRAINT')) {
          tally.refused++;
          return;
        } else throw e;
      } finally {
        d.close();
      }
      tally.tried++;
      const err = await finding(copy);
      const what = `${t.name}: ${pick.column} byte ${pick.at}`;
      expect(err, `${what} went unnoticed`).not.toBeNull();
      expect(t.codes, `${what}: ${err!.message}`).toContain(err!.code);
      expect(t.names(err!.payload, before, after), `${what}: ${err!.message} ${JSON.stringify(err!.payload)}`).toBe(true);
      // Never record contents in a finding: no patient code appears in it.
      for (const p of cast.patients) expect(err!.message).not.toContain(p.code);
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
}

/** Genesis: a change of spelling (JSON whitespace) that leaves the same document. */
function sameJson(a: Buffer, b: Buffer): boolean {
  try {
    return isDeepStrictEqual(JSON.parse(a.toString('utf8')), JSON.parse(b.toString('utf8')));
  } catch {
    return false;
  }
}

/**
 * An identity file whose X25519 private key changed only in bits the key never uses: RFC 7748
 * §5 (decodeScalar25519) clears the 3 low bits of the first byte and sets the top two of the
 * last, so such a file holds the very same key.
 */
function sameKeys(a: Buffer, b: Buffer): boolean {
  let x: IdentityFile;
  let y: IdentityFile;
  try {
    [x, y] = [JSON.parse(a.toString('utf8')) as IdentityFile, JSON.parse(b.toString('utf8')) as IdentityFile];
  } catch {
    return false;
  }
  // A flipped byte may rename a key or change a type: such a file is not the same one.
  const keyOf = (f: IdentityFile): unknown => (f as { encryption?: { privateKey?: unknown } } | null)?.encryption?.privateKey;
  if (typeof keyOf(x) !== 'string' || typeof keyOf(y) !== 'string') return false;
  const canonical = [x, y].every(
    (f) => Buffer.from(f.encryption.privateKey, 'base64url').toString('base64url') === f.encryption.privateKey,
  );
  const [p, q] = [x, y].map((f) => Buffer.from(f.encryption.privateKey, 'base64url'));
  if (p!.length !== q!.length) return false;
  const diff = p!.map((v, i) => v ^ q![i]!);
  const unused = diff.every((d, i) => (i === 0 ? (d & ~0x07) === 0 : i === 31 ? (d & ~0xc0) === 0 : d === 0));
  return (
    canonical && unused && isDeepStrictEqual({ ...x, encryption: x.encryption.publicKey }, { ...y, encryption: y.encryption.publicKey })
  );
}

/**
 * Changes one byte of a file in a copy of `dir` (at one of `positions`, by default anywhere);
 * expects verify to name the file — unless `same` says the file still means what it meant.
 */
async function sweepFile(
  dir: string,
  file: string,
  codes: readonly ErrorCode[],
  o: { positions?: (text: Buffer) => number[]; same?: (original: Buffer, changed: Buffer) => boolean } = {},
): Promise<number> {
  const original = readFileSync(join(dir, file));
  const allowed = o.positions?.(original) ?? [...original.keys()];
  expect(allowed.length).toBeGreaterThan(0);
  let tried = 0;
  await fc.assert(
    fc.asyncProperty(fc.nat(), async (pos) => {
      const at = allowed[pos % allowed.length]!;
      const copy = copyOf(dir);
      const changed = Buffer.from(original);
      const c = String.fromCharCode(original[at]!);
      changed[at] = /[\x20-\x7e\n]/.test(c) ? otherChar(c).charCodeAt(0) : original[at]! ^ 0x5a;
      writeFileSync(join(copy, file), changed);
      const err = await finding(copy);
      const what = `${file} byte ${at}`;
      if (o.same?.(original, changed) === true) {
        // What the file means did not change, only how it is spelled: nothing to report.
        expect(err, what).toBeNull();
        return;
      }
      tried++;
      expect(err, `${what} went unnoticed`).not.toBeNull();
      expect(codes, `${what}: ${err!.message}`).toContain(err!.code);
      expect(JSON.stringify(err!.payload), `${what}: ${err!.message}`).toContain(`"${file}"`);
    }),
    { numRuns: RUNS * 2, endOnFailure: true },
  );
  return tried;
}

/** What a database holds as its queries see it: its schema, every row of every table, its own check. */
interface Contents {
  schema: string;
  tables: Map<string, string[]>;
  check: string;
}

function contentsOf(path: string): Contents | string {
  let d: Database.Database | null = null;
  try {
    d = new Database(path, { readonly: true });
    const objects = d.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all() as {
      type: string;
      name: string;
      sql: string | null;
    }[];
    const tables = new Map<string, string[]>();
    for (const o of objects.filter((x) => x.type === 'table')) {
      const rows = d.prepare(`SELECT * FROM "${o.name}" ORDER BY 1, 2`).raw().all() as unknown[][];
      tables.set(
        o.name,
        rows.map((r) => JSON.stringify(r.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)))),
      );
    }
    // Whitespace aside, as verify compares definitions (a migration may respell them).
    const schema = JSON.stringify(objects.map((o) => [o.type, o.name, (o.sql ?? '').replace(/\s+/g, '')]));
    return { schema, tables, check: JSON.stringify(d.pragma('integrity_check')) };
  } catch (e) {
    return `unreadable: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    d?.close();
  }
}

/** The tables whose rows differ; null when the schema, the check or the readability differ. */
function changedTables(a: Contents | string, b: Contents | string): string[] | null {
  if (typeof a === 'string' || typeof b === 'string' || a.schema !== b.schema || a.check !== b.check) return null;
  return [...new Set([...a.tables.keys(), ...b.tables.keys()])].filter((t) => !isDeepStrictEqual(a.tables.get(t), b.tables.get(t)));
}

const TAMPER_CODES: readonly ErrorCode[] = ['CHAIN_BROKEN', 'STATE_MISMATCH', 'FINALITY_INVALID', 'VAULT_TAMPERED', 'DATA_DIR_TAMPERED'];

/**
 * Flips one byte anywhere in a database file. Either what the database holds changed — then
 * verify must report it — or the byte lay where SQLite keeps nothing it reads (a free page, the
 * unused part of a page, a counter in the header) and verify must pass: there is nothing to see.
 * `unseen` tells the rows verify is documented not to see (see the file header).
 */
async function sweepRaw(
  dir: string,
  file: string,
  unseen: (table: string, before: Contents, after: Contents) => boolean = () => false,
): Promise<{ caught: number; inert: number }> {
  const original = readFileSync(join(dir, file));
  const before = contentsOf(join(dir, file));
  const out = { caught: 0, inert: 0 };
  await fc.assert(
    fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (pos, mask) => {
      const at = pos % original.length;
      const copy = copyOf(dir);
      const changed = Buffer.from(original);
      changed[at] = changed[at]! ^ mask;
      writeFileSync(join(copy, file), changed);
      const now = contentsOf(join(copy, file));
      const tables = changedTables(before, now);
      const err = await finding(copy);
      const what = `${file} byte ${at} ^ ${mask} (${tables === null ? 'schema or structure' : tables.join(', ') || 'nothing'} changed)`;
      if (tables !== null && tables.length === 0) {
        expect(err, `${what}: ${err?.message ?? ''}`).toBeNull();
        out.inert++;
      } else if (tables === null || tables.some((t) => !unseen(t, before as Contents, now as Contents))) {
        expect(err, `${what} went unnoticed`).not.toBeNull();
        expect(TAMPER_CODES, `${what}: ${err!.message}`).toContain(err!.code);
        out.caught++;
      }
    }),
    { numRuns: RUNS * 4, endOnFailure: true },
  );
  return out;
}

// ------------------------------------------------------------------ the sweep

describe('an intact node verifies clean', () => {
  it('every data directory, with its finality tables, solo log and vault, verifies with nothing reported', async () => {
    const a = await verifyDataDir(aDir);
    expect(a.finality.votes).toBeGreaterThan(0);
    expect(a.finality.certificates).toBeGreaterThan(0);
    expect(a.finality.validatorSets).toBeGreaterThan(0);
    expect(a.vault).toMatchObject({ records: { pending: 1, registered: 2, erased: 1 }, attachments: 1 });
    expect(a.vault!.chunks).toBeGreaterThan(2);
    expect(a.vault!.nonces).toBeGreaterThan(0);
    expect(a.vault!.auditUnchained).toBe(0);
    expect(a.vault!.createdAtUnchecked).toBe(0);
    expect(a.files).toEqual(expect.arrayContaining(['genesis.json', 'node.json', 'consortium.json', 'keys/hosp-a.json', 'vault.db']));
    const b = await verifyDataDir(bDir);
    expect(b.vault).toMatchObject({ records: { pending: 1, registered: 2, erased: 1 }, attachments: 1 });
    const c = await verifyDataDir(cDir);
    expect(c.orderer!.entries).toBeGreaterThanOrEqual(3);
    expect(c.vault).toBeNull();
  });
});

describe('chain.db', () => {
  const tally: Tally = { tried: 0, refused: 0 };
  const meta = (key: string): RowTarget => ({
    name: `meta ${key}`,
    table: 'meta',
    where: `k = '${key}'`,
    codes: ['CHAIN_BROKEN', 'STATE_MISMATCH'],
    names: byKey('meta', (r) => String(r['k'])),
  });
  const targets: RowTarget[] = [
    meta('genesis'),
    meta('network'),
    meta('schemaVersion'),
    { name: 'blocks', table: 'blocks', codes: ['CHAIN_BROKEN'], names: byKey('blocks', (r) => String(r['height']), 'height') },
    { name: 'txs', table: 'txs', codes: ['STATE_MISMATCH'], names: byKey('txs', (r) => String(r['tx_id'])) },
    { name: 'votes', table: 'votes', codes: ['FINALITY_INVALID'], names: byKey('votes', (r) => String(r['height']), 'height') },
    { name: 'finality', table: 'finality', codes: ['FINALITY_INVALID'], names: byKey('finality', (r) => String(r['height']), 'height') },
    {
      name: 'validator_sets',
      table: 'validator_sets',
      codes: ['FINALITY_INVALID'],
      names: byKey('validator_sets', (r) => String(r['from_height']), 'height'),
    },
  ];
  for (const t of targets) {
    it(`a changed byte of a ${t.name} row is named`, async () => {
      await sweepSqlite(aDir, 'chain.db', t, tally);
    });
  }

  it('the first validator set moved to a later height is named, though the set itself is right there', async () => {
    const copy = copyOf(aDir);
    const d = new Database(join(copy, 'chain.db'));
    const first = d.prepare('SELECT min(from_height) FROM validator_sets').pluck().get() as number;
    d.prepare('UPDATE validator_sets SET from_height = ? WHERE from_height = ?').run(first + 1, first);
    d.close();
    expect(await finding(copy)).toMatchObject({ code: 'FINALITY_INVALID', payload: { table: 'validator_sets', height: first + 1 } });
  });

  it('a changed byte of a row of every state table holding rows is named by table and key', async () => {
    const d = new Database(join(aDir, 'chain.db'), { readonly: true });
    const tables = (
      d.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 's\\_%' ESCAPE '\\'").pluck().all() as string[]
    ).filter((name) => (d.prepare(`SELECT count(*) FROM ${name}`).pluck().get() as number) > 0);
    d.close();
    expect(tables.length).toBeGreaterThan(8);
    for (const table of tables) {
      await sweepSqlite(
        aDir,
        'chain.db',
        { name: table, table, codes: ['STATE_MISMATCH'], names: byKey(table.slice(2), (r) => String(r['key'])) },
        tally,
      );
    }
    expect(tally.tried).toBeGreaterThan(tally.refused);
  });
});

const vaultTargets = (t: Record<'meta' | 'records' | 'attachments' | 'chunks' | 'nonces' | 'audit', string>): RowTarget[] => {
  const record = (state: string): RowTarget => ({
    name: `${state} record`,
    table: t.records,
    where: `state = '${state}'`,
    codes: ['VAULT_TAMPERED'],
    names: byKey(t.records, (r) => String(r['object_id'])),
  });
  const attachmentKey = (r: Record<string, Cell>): string => `${String(r['object_id'])}/${String(r['idx'])}`;
  const audit = (outcome: string): RowTarget => ({
    name: `audit (${outcome})`,
    table: t.audit,
    where: `outcome = '${outcome}'`,
    codes: ['VAULT_TAMPERED'],
    // A row that moved breaks the chain where it was: the next row names it.
    names: (p, before, after) =>
      p['table'] === t.audit && [Number(before['seq']), Number(before['seq']) + 1, Number(after['seq'])].includes(Number(p['key'])),
  });
  return [
    { name: 'meta', table: t.meta, codes: ['VAULT_TAMPERED'], names: byKey(t.meta, (r) => String(r['k'])) },
    record('pending'),
    record('registered'),
    record('erased'),
    {
      name: 'attachment',
      table: t.attachments,
      codes: ['VAULT_TAMPERED'],
      names: (p, before, after) =>
        (p['table'] === t.attachments || p['table'] === t.chunks) &&
        [attachmentKey(before), attachmentKey(after)].some((k) => String(p['key']).startsWith(k)),
    },
    {
      name: 'chunk',
      table: t.chunks,
      codes: ['VAULT_TAMPERED'],
      names: (p, before, after) =>
        (p['table'] === t.chunks || p['table'] === t.attachments) &&
        [attachmentKey(before), attachmentKey(after)].some((k) => String(p['key']).startsWith(k)),
    },
    // The nonce text and expiry have no second copy (verify-vault.ts): the key id does.
    { name: 'nonce', table: t.nonces, columns: ['key_id'], codes: ['VAULT_TAMPERED'], names: byKey(t.nonces, (r) => String(r['key_id'])) },
    audit('stored'),
    audit('served'),
    audit('refused'),
    audit('erased'),
  ];
};

describe('vault.db (SQLite)', () => {
  const tally: Tally = { tried: 0, refused: 0 };
  for (const t of vaultTargets({
    meta: 'meta',
    records: 'records',
    attachments: 'attachments',
    chunks: 'chunks',
    nonces: 'nonces',
    audit: 'audit',
  })) {
    it(`a changed byte of a ${t.name} row is named`, async () => {
      await sweepSqlite(aDir, 'vault.db', t, tally);
    });
  }
});

describe('vault tables on PostgreSQL', () => {
  const tables = {
    meta: 'vault_meta',
    records: 'vault_records',
    attachments: 'vault_attachments',
    chunks: 'vault_chunks',
    nonces: 'vault_nonces',
    audit: 'vault_audit',
  };
  for (const t of vaultTargets(tables)) {
    it(`a changed byte of a ${t.name} row is named, and the row put back verifies clean`, async () => {
      const client = new pg.Client({ connectionString: pgUrl });
      await client.connect();
      try {
        const where = t.where === undefined ? '' : ` WHERE ${t.where}`;
        expect((await client.query(`SELECT 1 FROM ${t.table}${where}`)).rowCount).toBeGreaterThan(0);
        await fc.assert(
          fc.asyncProperty(fc.nat(), fc.nat(), async (rowPick, pos) => {
            const { rows } = await client.query<Record<string, Cell> & { row_ctid: string }>(
              `SELECT ctid::text AS row_ctid, * FROM ${t.table}${where} ORDER BY 2, 3`,
            );
            const { row_ctid: ctid, ...before } = rows[rowPick % rows.length]!;
            const pick = pickByte(before, t.columns ?? Object.keys(before), pos)!;
            const after = { ...before, [pick.column]: changeCell(before[pick.column]!, pick.at) };
            let moved: string;
            try {
              moved = (
                await client.query<{ c: string }>(
                  `UPDATE ${t.table} SET ${pick.column} = $1 WHERE ctid = $2::tid RETURNING ctid::text AS c`,
                  [after[pick.column], ctid],
                )
              ).rows[0]!.c;
            } catch (e) {
              // The table refused the change: a CHECK, a key, a reference, or an identity column.
              if (e instanceof pg.DatabaseError && (String(e.code).startsWith('23') || e.code === '428C9')) return;
              throw e;
            }
            try {
              const err = await finding(bDir);
              const what = `${t.name}: ${pick.column} byte ${pick.at}`;
              expect(err, `${what} went unnoticed`).not.toBeNull();
              expect(t.codes, `${what}: ${err!.message}`).toContain(err!.code);
              expect(t.names(err!.payload, before, after), `${what}: ${err!.message} ${JSON.stringify(err!.payload)}`).toBe(true);
            } finally {
              await client.query(`UPDATE ${t.table} SET ${pick.column} = $1 WHERE ctid = $2::tid`, [before[pick.column], moved]);
            }
          }),
          { numRuns: RUNS, endOnFailure: true },
        );
      } finally {
        await client.end();
      }
      expect(await finding(bDir)).toBeNull();
    });
  }
});

describe('files', () => {
  it('genesis.json, keys, the vault key and group keyring: a changed byte is named by file', async () => {
    expect(await sweepFile(cDir, DataDirFiles.genesis, ['DATA_DIR_TAMPERED'], { same: sameJson })).toBeGreaterThan(0);
    expect(await sweepFile(cDir, 'keys/clinic-c.json', ['DATA_DIR_TAMPERED'], { same: sameKeys })).toBeGreaterThan(0);
    expect(await sweepFile(aDir, 'vault-keys/hosp-a.key', ['DATA_DIR_TAMPERED'])).toBeGreaterThan(0);
    expect(await sweepFile(aDir, 'vault-keys/hosp-a.groups.json', ['DATA_DIR_TAMPERED'])).toBeGreaterThan(0);
  });

  it('node.json and consortium.json: a changed byte of what has a second copy is named by file', async () => {
    // node.json: the names of members it serves, the kinds, and its keys' names; not the
    // operator's addresses and limits, which nothing else holds.
    const spans = (text: Buffer, re: RegExp): number[] =>
      [...text.toString('utf8').matchAll(re)].flatMap((m) => Array.from({ length: m[0].length }, (_, i) => m.index + i));
    expect(
      await sweepFile(aDir, DataDirFiles.config, ['DATA_DIR_TAMPERED'], {
        positions: (t) => spans(t, /"(?:institution|kind)": "[^"]*"|"institutions": \[[^\]]*\]|"(?:ordering|vault|store|api)"/g),
      }),
    ).toBeGreaterThan(0);
    // consortium.json: everything but the key's own characters.
    expect(
      await sweepFile(cDir, DataDirFiles.consortium, ['DATA_DIR_TAMPERED'], {
        positions: (t) => {
          const text = t.toString('utf8');
          const start = text.indexOf(': "') + 3;
          const end = text.indexOf('"', start);
          return [...t.keys()].filter((i) => i < start || i >= end);
        },
      }),
    ).toBeGreaterThan(0);
  });

  it('the solo orderer’s log: a changed byte of a segment is named by file', async () => {
    const segments = readdirSync(join(cDir, DataDirFiles.orderer));
    expect(segments.length).toBeGreaterThan(0);
    for (const s of segments) expect(await sweepFile(cDir, `${DataDirFiles.orderer}/${s}`, ['CHAIN_BROKEN'])).toBeGreaterThan(0);
  });
});

describe('database files, byte by byte', () => {
  it('a byte flipped anywhere in chain.db or vault.db is reported, unless SQLite keeps nothing there', async () => {
    const chain = await sweepRaw(aDir, DataDirFiles.chain);
    const vault = await sweepRaw(aDir, DataDirFiles.vault, (table, before, after) => {
      // Not seen, as documented: the nonce text and expiry, and an erased record's attachment
      // rows, have no second copy; SQLite's counter of audit seqs raised only skips seqs (lowered
      // below the last seq, it is reported).
      if (table === 'nonces' || table === 'sqlite_sequence') return true;
      if (table !== 'attachments') return false;
      const erased = new Set(
        before.tables
          .get('records')!
          .map((r) => JSON.parse(r) as unknown[])
          .filter((r) => r[4] === 'erased')
          .map((r) => r[0]),
      );
      const was = new Set(before.tables.get(table));
      const is = new Set(after.tables.get(table));
      const differing = [...was].filter((r) => !is.has(r)).concat([...is].filter((r) => !was.has(r)));
      return differing.every((r) => erased.has((JSON.parse(r) as unknown[])[0]));
    });
    expect(chain.caught + vault.caught).toBeGreaterThan(0);
  });
});

describe('a version-1 vault, migrated', () => {
  const entry = (requester: string): VaultAuditEntry => ({
    time: 1_700_000_000_000,
    custodian: 'hosp-a',
    requester,
    recordId: null,
    objectId: null,
    action: 'GET /vault/:institution/audit',
    outcome: 'served',
    code: null,
    ledgerTx: null,
  });
  const noLedger = { get: () => undefined };

  /** Makes `store`'s database a version-1 one (no digest column) holding two audit rows. */
  async function asVersion1(store: VaultStore, downgrade: () => Promise<void>): Promise<void> {
    await store.init();
    await store.close();
    await downgrade();
  }

  it('keeps its audit rows readable and unchained, and chains the rows written after (SQLite and PostgreSQL)', async () => {
    const path = join(tempDir('v1'), 'vault.db');
    const v1Rows =
      "INSERT INTO audit(time, custodian, requester, action, outcome) VALUES (1, 'hosp-a', 'before-1', 'a', 'served'), (2, 'hosp-a', 'before-2', 'a', 'served')";
    await asVersion1(new SqliteVaultStore(path), () => {
      const d = new Database(path);
      d.exec('ALTER TABLE audit DROP COLUMN digest');
      d.exec("UPDATE meta SET v = '1'");
      d.exec(v1Rows);
      d.close();
      return Promise.resolve();
    });
    const url = await pgServer.createDatabase('tamper_v1');
    await asVersion1(new PgVaultStore({ connectionString: url }), async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('ALTER TABLE vault_audit DROP COLUMN digest');
      await c.query("UPDATE vault_meta SET v = '1'");
      await c.query(v1Rows.replace('audit(', 'vault_audit('));
      await c.end();
    });
    for (const [store, scan] of [
      [() => new SqliteVaultStore(path), () => new SqliteVaultScan(path)],
      [() => new PgVaultStore({ connectionString: url }), () => new PgVaultScan(url)],
    ] as const) {
      const upgraded = store();
      await upgraded.init();
      await upgraded.audit(entry('after-1'));
      await upgraded.audit(entry('after-2'));
      expect((await upgraded.auditEntries('hosp-a', 0, 10)).map((e) => e.requester)).toEqual([
        'before-1',
        'before-2',
        'after-1',
        'after-2',
      ]);
      await upgraded.close();
      const s1 = scan();
      const intact = await verifyVault({ scan: s1, ledger: noLedger, masterKeys: new Map(), now: Date.now() }).finally(() => s1.close());
      expect(intact).toMatchObject({ auditEntries: 4, auditUnchained: 2 });
    }
    // A row written after the upgrade is covered: a changed byte of it breaks the chain.
    const d = new Database(path);
    d.exec("UPDATE audit SET requester = 'after-3' WHERE requester = 'after-2'");
    d.close();
    const s2 = new SqliteVaultScan(path);
    await expect(
      verifyVault({ scan: s2, ledger: noLedger, masterKeys: new Map(), now: Date.now() }).finally(() => s2.close()),
    ).rejects.toMatchObject({
      code: 'VAULT_TAMPERED',
      payload: { table: 'audit', key: '4' },
    });
  });
});

describe('medledger verify', () => {
  it('exits 0 on an intact data directory with its vault, and 3 naming the table and key of a changed vault row', async () => {
    const run = (dir: string): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, '--json', 'verify', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (status) => resolve({ status, stdout, stderr }));
      });
    const copy = copyOf(aDir);
    const d = new Database(join(copy, 'vault.db'));
    const objectId = d
      .prepare("SELECT object_id FROM records WHERE state = 'registered' ORDER BY object_id LIMIT 1")
      .pluck()
      .get() as string;
    d.prepare('UPDATE records SET size = size + 1 WHERE object_id = ?').run(objectId);
    d.close();
    const [intact, changed] = await Promise.all([run(aDir), run(copy)]);
    expect(intact.status, intact.stderr).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ status: 'intact', vault: { records: { registered: 2 } } });
    expect(changed.status).toBe(3);
    expect(changed.stderr).toContain('VAULT_TAMPERED');
    expect(changed.stderr).toContain(`records ${objectId} (size)`);
  });
});
