/**
 * `medledger verify` for a vault (issue 9): every row of every vault table is checked against
 * what vouches for it, and the first row that fails is named by table and key — never by its
 * contents — with VAULT_TAMPERED.
 *
 * - records: the sealed data key must open under the custodian's master key (its AAD binds
 *   custodian and object id); the ciphertext must hash to `ciphertext_hash` and open under that
 *   key (its AAD binds patient code and category) to a plaintext of `hash` and `size`; a
 *   registered or erased row must agree with the ledger's index entry, which points back at it;
 *   `created_at` must equal the time of the record's hash-chained `stored` audit row.
 * - attachments: each must be declared by its record's (authenticated) resource with that content
 *   type, size and SHA-256; a complete one's chunks must hash to `ciphertext_hash` and open, in
 *   order, to a file of that size and SHA-256.
 * - chunks: each belongs to a stored attachment, below its chunk count.
 * - audit: the hash chain (store-helpers.ts, auditDigest) links every row.
 * - meta: exactly the schema version this node writes.
 * - nonces: a replay cache, not a record. Each row must name a key on the ledger and expire
 *   within the horizon the vault keeps nonces for. The nonce text and a lowered expiry have no
 *   second copy anywhere: such a change is not detectable, and its effect is bounded — the one
 *   request could be replayed only while its own signature is still in its time window.
 *
 * Not covered, because nothing else holds them: the attachment rows of an erased record (its
 * resource, which declared them, is shredded), the chunks of an unfinished upload (never served;
 * sent again from the start), and audit rows written before the chain existed (version 1 stores).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBase64Url, toBase64Url, utf8 } from '@medledger/core/codec/bytes';
import { recordAad } from '@medledger/core/client/seal-record';
import { attachmentAad } from '@medledger/core/client/vault-client';
import type { RecordEntry, StateReader } from '@medledger/core/contracts/state';
import { parseGroupKeyId } from '@medledger/core/contracts/groups';
import { decryptWithDataKey } from '@medledger/core/crypto/record-envelope';
import { decryptBytes, decryptStream } from '@medledger/core/crypto/stream-aead';
import { describeAttachments, validateResource } from '@medledger/core/fhir/validate';
import { MedledgerError } from '@medledger/core/errors';
import { DataDirFiles } from '../config/data-dir.ts';
import { VAULT_SCHEMA_VERSION, auditDigest, type RecordRow } from './store-helpers.ts';
import { STORE_RECORD_ACTION } from './vault-service.ts';
import type { VaultScan, VaultTable } from './vault-store.ts';

export interface VaultVerification {
  records: { pending: number; registered: number; erased: number };
  attachments: number;
  chunks: number;
  nonces: number;
  auditEntries: number;
  /** audit rows written before the chain existed: not covered */
  auditUnchained: number;
  /** records without a chained `stored` audit row (written before the chain): createdAt not covered */
  createdAtUnchecked: number;
}

export interface VerifyVaultOptions {
  scan: VaultScan;
  /** the ledger's state, already verified against the chain */
  ledger: StateReader;
  /** the vault master key of each institution whose key file is in the data directory */
  masterKeys: ReadonlyMap<string, Uint8Array>;
  /** the wall clock, ms: the bound on nonce expiry */
  now: number;
}

/**
 * The furthest a nonce's expiry can lie ahead: its signature's lifetime (5 min) and the 2 min
 * the vault keeps it after, from a creation time at most the accepted clock skew ahead
 * (vault-service.ts); rounded up to 15 min for a skew set wider than the default.
 */
const NONCE_HORIZON_MS = 15 * 60_000;
const PAGE = 500;
const OBJECT_ID = /^[0-9a-f]{32}$/;

interface HeldRecord {
  state: RecordRow['state'];
  hash: string;
  dataKey: Uint8Array | null;
  /** the files the record's resource declares, by index; null once erased */
  declared: Map<number, { contentType: string; size: number; sha256: string }> | null;
  stored: Set<number>;
}

function tampered(table: string, key: string, what: string, column?: string): never {
  throw new MedledgerError('VAULT_TAMPERED', {
    details: `${table} ${key}${column === undefined ? '' : ` (${column})`}: ${what}.`,
    payload: { table, key, ...(column === undefined ? {} : { column }), what },
  });
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every row of a table, a page at a time, in key order. */
async function* pages<R, K>(fetch: (after: K, limit: number) => Promise<R[]>, first: K, keyOf: (r: R) => K): AsyncGenerator<R> {
  let after = first;
  for (;;) {
    const rows = await fetch(after, PAGE);
    for (const r of rows) yield r;
    if (rows.length < PAGE) return;
    after = keyOf(rows[rows.length - 1]!);
  }
}

/** The AAD a record's data key is sealed under (vault-service.ts, sealKey). */
function sealAad(custodian: string, objectId: string): Uint8Array {
  return utf8(`medledger/vault-key/v1 ${custodian} ${objectId}`);
}

/** The AAD of a group key in its keyring file (group-keyring.ts). */
function groupAad(groupKeyId: string): Uint8Array {
  return utf8(`medledger/group-key/v1 ${groupKeyId}`);
}

function dataDirTampered(file: string, what: string, keyFile?: string): never {
  throw new MedledgerError('DATA_DIR_TAMPERED', {
    details: `${file}: ${what}.`,
    payload: { file, ...(keyFile === undefined ? {} : { keyFile }), what },
  });
}

/**
 * Reads the vault key files of a data directory (`vault-keys/<institution>.key`, written once as
 * base64url and a newline) and checks each institution's group keyring
 * (`<institution>.groups.json`): every entry must open under the master key, bound to its id.
 */
export async function readVaultKeys(dataDir: string): Promise<Map<string, Uint8Array>> {
  const dir = join(dataDir, DataDirFiles.vaultKeys);
  const keys = new Map<string, Uint8Array>();
  if (!existsSync(dir)) return keys;
  const names = readdirSync(dir).sort();
  for (const name of names) {
    const m = /^(.+)\.key$/.exec(name);
    if (m === null) continue;
    const file = `${DataDirFiles.vaultKeys}/${name}`;
    const text = readFileSync(join(dir, name), 'utf8');
    let key: Uint8Array | null;
    try {
      key = fromBase64Url(text.slice(0, -1));
    } catch {
      key = null;
    }
    if (key === null || key.length !== 32 || text !== `${toBase64Url(key)}\n`)
      dataDirTampered(file, 'is not a vault master key as written');
    keys.set(m[1]!, key);
  }
  for (const name of names) {
    const m = /^(.+)\.groups\.json$/.exec(name);
    if (m === null) continue;
    const file = `${DataDirFiles.vaultKeys}/${name}`;
    const institution = m[1]!;
    const key = keys.get(institution) ?? dataDirTampered(file, 'has no master key beside it');
    const text = readFileSync(join(dir, name), 'utf8');
    let sealed: unknown;
    try {
      sealed = JSON.parse(text);
    } catch {
      dataDirTampered(file, 'is not valid JSON');
    }
    if (typeof sealed !== 'object' || sealed === null || Array.isArray(sealed) || text !== JSON.stringify(sealed, null, 2) + '\n') {
      dataDirTampered(file, 'is not a group keyring as written');
    }
    for (const [id, value] of Object.entries(sealed)) {
      if (parseGroupKeyId(id)?.institution !== institution) dataDirTampered(file, `entry ${id} is not a group key of ${institution}`);
      let opened: Uint8Array | null = null;
      try {
        if (typeof value === 'string') opened = await decryptWithDataKey(key, fromBase64Url(value), groupAad(id));
      } catch {
        opened = null;
      }
      if (opened?.length !== 32) {
        // Either file may have changed: the keyring entry or the master key it is sealed under.
        const keyFile = `${DataDirFiles.vaultKeys}/${institution}.key`;
        dataDirTampered(file, `group key ${id} does not open under ${keyFile}`, keyFile);
      }
    }
  }
  return keys;
}

/** Checks every row of a vault; throws VAULT_TAMPERED naming the first bad one. */
export async function verifyVault(o: VerifyVaultOptions): Promise<VaultVerification> {
  const { scan, ledger } = o;
  const t = scan.tables;
  const out: VaultVerification = {
    records: { pending: 0, registered: 0, erased: 0 },
    attachments: 0,
    chunks: 0,
    nonces: 0,
    auditEntries: 0,
    auditUnchained: 0,
    createdAtUnchecked: 0,
  };
  const damage = await scan.damage();
  if (damage.length > 0) {
    throw new MedledgerError('VAULT_TAMPERED', {
      details: `${scan.file ?? 'the vault database'} is damaged: ${damage[0]!.slice(0, 200)}.`,
      payload: { file: scan.file, what: 'integrity_check' },
    });
  }

  const meta = await scan.meta();
  for (const row of meta) {
    if (row.k !== 'schemaVersion') tampered(t.meta, row.k, 'is not a key the vault writes');
    if (row.v !== String(VAULT_SCHEMA_VERSION)) tampered(t.meta, row.k, `is not schema version ${VAULT_SCHEMA_VERSION}`, 'v');
  }
  if (meta.length !== 1) tampered(t.meta, 'schemaVersion', 'is missing');

  // The audit chain first: its `stored` rows then vouch for the records' createdAt.
  const storedAt = new Map<string, number>();
  let prev = '';
  let chained = false;
  let lastSeq = 0;
  for await (const row of pages(
    (after: number, n) => scan.audit(after, n),
    0,
    (r) => r.seq,
  )) {
    const key = String(row.seq);
    lastSeq = row.seq;
    out.auditEntries++;
    if (row.digest === null) {
      if (chained) tampered(t.audit, key, 'has no digest after the chain began', 'digest');
      out.auditUnchained++;
      continue;
    }
    chained = true;
    if (row.digest !== auditDigest(prev, row)) tampered(t.audit, key, 'breaks the hash chain (this row or its digest changed)');
    prev = row.digest;
    if (row.action === STORE_RECORD_ACTION && row.outcome === 'stored' && row.object_id !== null && !storedAt.has(row.object_id)) {
      storedAt.set(row.object_id, row.time);
    }
  }
  if ((await scan.auditCounter()) < lastSeq)
    tampered(t.audit, String(lastSeq), 'lies above the sequence counter, which would hand out its seq again');

  const held = new Map<string, HeldRecord>();
  for await (const r of pages(
    (after: string, n) => scan.records(after, n),
    '',
    (x) => x.object_id,
  )) {
    held.set(r.object_id, await verifyRecord(o, t, r, storedAt, out));
  }

  const attachmentChunks = new Map<string, { chunks: number; erased: boolean }>();
  for await (const a of pages(
    (after: readonly [string, number], n) => scan.attachments(after, n),
    ['', -1] as const,
    (x) => [x.object_id, x.idx] as const,
  )) {
    const key = `${a.object_id}/${a.idx}`;
    const record = held.get(a.object_id) ?? tampered(t.attachments, key, 'belongs to no record');
    const complete = a.complete === 1 || a.complete === true ? true : a.complete === 0 || a.complete === false ? false : null;
    if (complete === null) tampered(t.attachments, key, 'is neither complete nor incomplete', 'complete');
    if (complete !== (a.ciphertext_hash !== null))
      tampered(t.attachments, key, 'has a ciphertext hash exactly when it is complete', 'complete');
    if (!Number.isSafeInteger(a.chunks) || a.chunks < 0) tampered(t.attachments, key, 'has no chunk count', 'chunks');
    attachmentChunks.set(`${a.object_id}\u0000${a.idx}`, { chunks: a.chunks, erased: record.state === 'erased' });
    out.attachments++;
    if (record.declared === null || record.dataKey === null) continue; // erased: nothing left vouches for it
    const declared = record.declared.get(a.idx) ?? tampered(t.attachments, key, 'is not a file its record declares', 'idx');
    if (declared.contentType !== a.content_type) tampered(t.attachments, key, 'differs from its record’s resource', 'content_type');
    if (declared.size !== a.size) tampered(t.attachments, key, 'differs from its record’s resource', 'size');
    if (declared.sha256 !== a.sha256) tampered(t.attachments, key, 'differs from its record’s resource', 'sha256');
    record.stored.add(a.idx);
    if (!complete) continue;
    // Read in order, hashed and opened as the vault serves it.
    const ctHash = createHash('sha256');
    const plainHash = createHash('sha256');
    let size = 0;
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      for (let seq = 0; seq < a.chunks; seq++) {
        const bytes = (await scan.chunk(a.object_id, a.idx, seq)) ?? tampered(t.chunks, `${key}/${seq}`, 'is missing');
        ctHash.update(bytes);
        yield bytes;
      }
    };
    try {
      for await (const plain of decryptStream(record.dataKey, attachmentAad(record.hash, a.idx), chunks())) {
        plainHash.update(plain);
        size += plain.length;
      }
    } catch (e) {
      if (e instanceof MedledgerError && e.code === 'VAULT_TAMPERED') throw e;
      tampered(t.chunks, key, 'do not open under the record’s data key (a chunk changed, moved or went missing)');
    }
    if (ctHash.digest('hex') !== a.ciphertext_hash) tampered(t.attachments, key, 'differs from the hash of its chunks', 'ciphertext_hash');
    if (plainHash.digest('hex') !== a.sha256 || size !== a.size) tampered(t.attachments, key, 'differs from the file its chunks hold');
  }
  for (const [objectId, record] of held) {
    // A registered record was stored whole: its answer, which it was registered with, came after.
    if (record.state !== 'registered' || record.declared === null) continue;
    for (const index of record.declared.keys()) {
      if (!record.stored.has(index)) tampered(t.attachments, `${objectId}/${index}`, 'is declared by its record but missing');
    }
  }

  const counted = new Map<string, number>();
  const chunkStart = ['', -1, -1] as const;
  for await (const c of pages(
    (after: readonly [string, number, number], n) => scan.chunkKeys(after, n),
    chunkStart,
    (x) => [x.object_id, x.idx, x.seq] as const,
  )) {
    const key = `${c.object_id}/${c.idx}/${c.seq}`;
    const k = `${c.object_id}\u0000${c.idx}`;
    const a = attachmentChunks.get(k) ?? tampered(t.chunks, key, 'belongs to no attachment');
    if (a.erased) tampered(t.chunks, key, 'survived its record’s erasure');
    if (c.seq < 0 || c.seq >= a.chunks) tampered(t.chunks, key, 'lies beyond its attachment’s chunk count', 'seq');
    counted.set(k, (counted.get(k) ?? 0) + 1);
    out.chunks++;
  }
  for (const [k, a] of attachmentChunks) {
    if (!a.erased && (counted.get(k) ?? 0) !== a.chunks) {
      tampered(t.attachments, k.replace('\u0000', '/'), 'counts other chunks than are stored', 'chunks');
    }
  }

  for await (const n of pages(
    (after: readonly [string, string], limit) => scan.nonces(after, limit),
    ['', ''] as const,
    (x) => [x.key_id, x.nonce] as const,
  )) {
    if (ledger.get('keys', n.key_id) === undefined) tampered(t.nonces, n.key_id, 'names no key on the ledger', 'key_id');
    if (n.nonce.length === 0 || n.nonce.length > 256) tampered(t.nonces, n.key_id, 'is not a nonce the vault accepts', 'nonce');
    if (!Number.isSafeInteger(n.expires_at) || n.expires_at > o.now + NONCE_HORIZON_MS) {
      tampered(t.nonces, n.key_id, 'expires later than any nonce the vault keeps', 'expires_at');
    }
    out.nonces++;
  }
  return out;
}

async function verifyRecord(
  o: VerifyVaultOptions,
  t: Readonly<Record<VaultTable, string>>,
  r: RecordRow,
  storedAt: ReadonlyMap<string, number>,
  out: VaultVerification,
): Promise<HeldRecord> {
  const table = t.records;
  const key = r.object_id;
  if (!OBJECT_ID.test(key)) tampered(table, key, 'is not an object id the vault makes', 'object_id');
  if (r.state !== 'pending' && r.state !== 'registered' && r.state !== 'erased') tampered(table, key, 'has no known state', 'state');
  const at = storedAt.get(key);
  if (at === undefined) out.createdAtUnchecked++;
  else if (at !== r.created_at) tampered(table, key, 'differs from the time its audit row says it was stored', 'created_at');

  if (r.state === 'erased') {
    if (r.sealed_data_key !== null || r.resource_ciphertext !== null) tampered(table, key, 'keeps key or ciphertext after erasure');
    if (r.erased_at === null || r.erasure_tx === null) tampered(table, key, 'is erased without its erasure', 'erasure_tx');
    matchesIndex(o.ledger, table, r);
    out.records.erased++;
    return { state: r.state, hash: r.hash, dataKey: null, declared: null, stored: new Set() };
  }

  if (r.erased_at !== null || r.erasure_tx !== null) tampered(table, key, 'names an erasure but is not erased', 'erasure_tx');
  const masterKey = o.masterKeys.get(r.custodian) ?? tampered(table, key, 'names a custodian whose vault key is not here', 'custodian');
  if (r.sealed_data_key === null || r.resource_ciphertext === null) tampered(table, key, 'lacks its sealed key or ciphertext');
  let dataKey: Uint8Array;
  try {
    dataKey = await decryptWithDataKey(masterKey, r.sealed_data_key, sealAad(r.custodian, r.object_id));
  } catch {
    tampered(table, key, 'has a sealed data key that does not open (its sealed key, custodian or object id changed)', 'sealed_data_key');
  }
  if (sha256Hex(r.resource_ciphertext) !== r.ciphertext_hash) {
    tampered(table, key, 'has a ciphertext that differs from its hash', 'ciphertext_hash');
  }
  let plaintext: Uint8Array;
  try {
    plaintext = await decryptBytes(dataKey, recordAad(r.patient_code, r.category), r.resource_ciphertext);
  } catch {
    tampered(table, key, 'does not decrypt (its ciphertext, patient code or category changed)', 'resource_ciphertext');
  }
  if (sha256Hex(plaintext) !== r.hash) tampered(table, key, 'differs from the hash of its plaintext', 'hash');
  if (plaintext.length !== r.size) tampered(table, key, 'differs from the size of its plaintext', 'size');
  // Authenticated and hashed above: the resource is what was stored, and declares the files.
  const declared = new Map(
    describeAttachments(validateResource(JSON.parse(new TextDecoder().decode(plaintext)))).map((d) => [
      d.index,
      { contentType: d.contentType, size: d.size, sha256: d.sha256 },
    ]),
  );
  if (r.state === 'pending') {
    if (r.record_id !== null) tampered(table, key, 'is pending but names a record', 'record_id');
    out.records.pending++;
  } else {
    matchesIndex(o.ledger, table, r);
    out.records.registered++;
  }
  return { state: r.state, hash: r.hash, dataKey, declared, stored: new Set() };
}

/** A registered or erased row must be what the ledger's index entry says, and be pointed at by it. */
function matchesIndex(ledger: StateReader, table: string, r: RecordRow): void {
  const key = r.object_id;
  if (r.record_id === null) tampered(table, key, 'is registered without a record id', 'record_id');
  const e = ledger.get('records', r.record_id) as RecordEntry | undefined;
  if (e === undefined) tampered(table, key, 'names a record the ledger’s index does not hold', 'record_id');
  if (e.storage !== 'vault' || e.pointer !== `vault:${r.custodian}/${r.object_id}`) {
    tampered(table, key, 'is not the object its index entry points at', 'custodian');
  }
  const pairs: [keyof RecordRow, unknown][] = [
    ['patient_code', e.patientCode],
    ['category', e.category],
    ['hash', e.hash],
    ['ciphertext_hash', e.ciphertextHash],
    ['size', e.size],
  ];
  for (const [column, want] of pairs) if (r[column] !== want) tampered(table, key, 'differs from the ledger’s index', column);
  if (r.state === 'erased') {
    if (e.state !== 'erased') tampered(table, key, 'is erased, but not in the ledger’s index', 'state');
    if (e.erasureTx !== r.erasure_tx) tampered(table, key, 'differs from the ledger’s erasure', 'erasure_tx');
    if (e.erasedAt !== r.erased_at) tampered(table, key, 'differs from the ledger’s erasure', 'erased_at');
  }
}
