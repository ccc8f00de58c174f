/**
 * Verifies a node's stored ledger: every block row is re-hashed and linked, every transaction,
 * signature, Merkle root and state root is recomputed by re-executing the chain from genesis
 * (core's `verifyChain`), and the stored world state and transaction index must equal what the
 * chain produces; the finality tables must verify against the validator sets the chain puts in
 * force. `verifyDataDir` adds everything else a node keeps: the solo orderer's log, genesis,
 * configuration and key files, and the vault. The first damage is reported with a stable code
 * and its height, or its table and key, or its file — never with record contents.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Value } from '@sinclair/typebox/value';
import { fromBase64Url, toBase64Url } from '@medledger/core/codec/bytes';
import { canonicalJson } from '@medledger/core/codec/canonical-json';
import { StateTables, type Member } from '@medledger/core/contracts/state';
import { blockHash, type Block, type BlockHeader } from '@medledger/core/ledger/block';
import { verifyChain, type ChainVerification } from '@medledger/core/ledger/chain-verify';
import type { TxCode } from '@medledger/core/ledger/execute';
import { validatorsAt } from '@medledger/core/ledger/finality';
import { networkIdOf, type Genesis } from '@medledger/core/ledger/genesis';
import { MemoryState } from '@medledger/core/ledger/memory-state';
import type { Tx } from '@medledger/core/ledger/tx';
import { MedledgerError, isMedledgerError } from '@medledger/core/errors';
import { DataDirFiles, NodeConfigSchema, type NodeConfig } from '../config/data-dir.ts';
import { verifySoloLog } from '../ordering/solo-orderer.ts';
import { FINALITY_SCHEMA, verifyFinalityTables } from '../peer/finality-tracker.ts';
import { PgVaultScan } from '../vault/pg-vault-store.ts';
import { SqliteVaultScan } from '../vault/sqlite-vault-store.ts';
import { readVaultKeys, verifyVault, type VaultVerification } from '../vault/verify-vault.ts';
import type { VaultScan } from '../vault/vault-store.ts';
import { LedgerStore } from './ledger-store.ts';
import { QUERY_COLUMNS, SCHEMA_VERSION, schemaStatements } from './schema.ts';

export interface StoreVerification extends ChainVerification {
  stateEntries: number;
  finality: { validatorSets: number; votes: number; certificates: number };
}

function broken(height: number, what: string): never {
  throw new MedledgerError('CHAIN_BROKEN', { details: `At height ${height}: ${what}.`, payload: { table: 'blocks', height, what } });
}

/** The meta rows the store writes (ledger-store.ts, initialise); any other is not the node's. */
const META_KEYS = ['genesis', 'network', 'schemaVersion'];

/** Each schema object's definition, whitespace aside (a migration may respell it). */
function schemaOf(db: Database.Database): Map<string, string> {
  const rows = db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master').all() as Record<string, string | null>[];
  return new Map(rows.map((r) => [String(r['name']), `${r['type']} ${r['tbl_name']} ${(r['sql'] ?? '').replace(/\s+/g, '')}`]));
}

/** The first schema object of `db` that differs from the one `statements` create, or null. */
function schemaDifference(db: Database.Database, statements: readonly string[]): string | null {
  const fresh = new Database(':memory:');
  try {
    for (const st of statements) fresh.exec(st);
    const want = schemaOf(fresh);
    const have = schemaOf(db);
    for (const [name, def] of have) if (want.get(name) !== def) return name;
    for (const name of want.keys()) if (!have.has(name)) return name;
    return null;
  } finally {
    fresh.close();
  }
}

/** A SQLite error while reading a store (a damaged page, not a database) as a coded finding. */
function damagedFile(e: unknown, file: string, code: 'CHAIN_BROKEN' | 'VAULT_TAMPERED'): unknown {
  if (isMedledgerError(e) || !(e instanceof Error) || !('code' in e) || !String(e.code).startsWith('SQLITE_')) return e;
  return new MedledgerError(code, {
    details: `${file} is damaged (${String(e.code)}).`,
    payload: { file, what: String(e.code) },
    cause: e,
  });
}

function* storedBlocks(store: LedgerStore, to: number): Generator<Block> {
  for (let h = 0; h <= to; h++) {
    const row = store.rawBlock(h);
    if (row === undefined) broken(h, 'block is missing');
    let block: Block;
    try {
      block = { header: JSON.parse(row.header) as BlockHeader, txs: JSON.parse(row.txs) as Tx[], codes: JSON.parse(row.codes) as TxCode[] };
    } catch {
      broken(h, 'block row is not valid JSON');
    }
    if (typeof block.header !== 'object' || block.header === null) broken(h, 'header is not an object');
    let hash: string;
    try {
      hash = blockHash(block.header);
    } catch {
      broken(h, 'header cannot be hashed');
    }
    if (hash !== row.hash) broken(h, 'stored block hash differs from the hash of its header');
    if (!Array.isArray(block.txs) || !Array.isArray(block.codes)) broken(h, 'transactions or codes are not lists');
    // Stored exactly as written: an equivalent spelling (e.g. another JSON escape) is damage too.
    if (JSON.stringify(block.header) !== row.header || JSON.stringify(block.txs) !== row.txs || JSON.stringify(block.codes) !== row.codes) {
      broken(h, 'block row is not in the form the node writes');
    }
    yield block;
  }
}

export async function verifyStore(path: string, onBlock?: (height: number, of: number) => void): Promise<StoreVerification> {
  let store: LedgerStore | null = null;
  try {
    store = new LedgerStore(path, { readonly: true });
    return await verifyOpenStore(store, onBlock);
  } catch (e) {
    throw damagedFile(e, DataDirFiles.chain, 'CHAIN_BROKEN');
  } finally {
    store?.close();
  }
}

async function verifyOpenStore(store: LedgerStore, onBlock?: (height: number, of: number) => void): Promise<StoreVerification> {
  // Pages and indexes first: an index that disagrees with its table answers queries wrongly
  // (the nonce index refuses replays), and nothing below reads through every index.
  const problems = (store.db.prepare('PRAGMA integrity_check').pluck().all() as string[]).filter((m) => m !== 'ok');
  if (problems.length > 0) {
    throw new MedledgerError('CHAIN_BROKEN', {
      details: `${DataDirFiles.chain} is damaged: ${problems[0]!.slice(0, 200)}.`,
      payload: { file: DataDirFiles.chain, what: 'integrity_check' },
    });
  }
  // The tables the node made, as it made them: a changed definition (a dropped constraint, a
  // column's type) changes what the store accepts and answers.
  const finalityTables = store.db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('votes', 'finality', 'validator_sets')").get();
  const changedSchema = schemaDifference(store.db, [...schemaStatements(), ...(finalityTables === undefined ? [] : FINALITY_SCHEMA)]);
  if (changedSchema !== null) {
    throw new MedledgerError('CHAIN_BROKEN', {
      details: `${DataDirFiles.chain}: the definition of ${changedSchema} differs from the node’s.`,
      payload: { file: DataDirFiles.chain, table: changedSchema, what: 'schema' },
    });
  }
  for (const k of store.db.prepare('SELECT k FROM meta ORDER BY k').pluck().all() as string[]) {
    if (!META_KEYS.includes(k)) {
      throw new MedledgerError('STATE_MISMATCH', {
        details: `Meta ${k} is not a row the node writes.`,
        payload: { table: 'meta', key: k },
      });
    }
  }
  let genesis: Genesis;
  try {
    genesis = store.genesis();
    if (canonicalJson(genesis) !== store.meta('genesis')) throw new MedledgerError('GENESIS_INVALID');
  } catch (cause) {
    throw new MedledgerError('CHAIN_BROKEN', {
      details: 'The stored genesis is unreadable.',
      payload: { table: 'meta', key: 'genesis', height: 0, what: 'genesis' },
      cause,
    });
  }
  if (store.meta('schemaVersion') !== String(SCHEMA_VERSION)) {
    throw new MedledgerError('STATE_MISMATCH', {
      details: `The store’s schema version is not ${SCHEMA_VERSION}.`,
      payload: { table: 'meta', key: 'schemaVersion' },
    });
  }
  if (store.meta('network') !== networkIdOf(genesis)) {
    // Two copies disagree; the blocks' headers, a third, say which one changed.
    let headers: unknown;
    try {
      headers = (JSON.parse(store.rawBlock(0)?.header ?? '{}') as { network?: unknown }).network;
    } catch {
      headers = undefined;
    }
    const key = headers === store.meta('network') ? 'genesis' : 'network';
    throw new MedledgerError('STATE_MISMATCH', {
      details: `The store’s ${key === 'genesis' ? 'genesis differs from its network id and blocks' : 'network id differs from its genesis'}.`,
      payload: { table: 'meta', key },
    });
  }
  const top = (store.db.prepare('SELECT MAX(height) AS h FROM blocks').get() as { h: number | null }).h ?? -1;
  const state = new MemoryState();
  // The validator set in force from each height on, as the finality tracker records it: kept
  // where it changes only (heights ascending), so a long chain costs a few entries.
  const setFrom: { height: number; text: string }[] = [];
  // The transaction index must be exactly what the blocks say: collected from the blocks as
  // they are verified (their txIds are computed there once).
  const expected = new Map<string, string>();
  const result = await verifyChain(genesis, storedBlocks(store, top), state, {
    onBlock: (h, b, txIds) => {
      const text = JSON.stringify(validatorsAt(state, h + 1));
      if (setFrom[setFrom.length - 1]?.text !== text) setFrom.push({ height: h + 1, text });
      b.txs.forEach((tx, i) => expected.set(txIds[i]!, JSON.stringify([h, i, b.codes[i], tx.author, tx.nonce, tx.type])));
      onBlock?.(h, top);
    },
  }).catch((e: unknown) => {
    // core names the height; the table is the node's.
    if (!isMedledgerError(e) || e.code !== 'CHAIN_BROKEN' || 'table' in e.payload) throw e;
    throw new MedledgerError(e.code, { details: e.details ?? '', payload: { table: 'blocks', ...e.payload }, cause: e });
  });

  for (const row of store.txRows()) {
    const want = expected.get(row.tx_id);
    if (want === undefined || want !== JSON.stringify([row.height, row.idx, row.code, row.author, row.nonce, row.type])) {
      throw new MedledgerError('STATE_MISMATCH', {
        details: `Transaction index row ${row.tx_id} differs from the chain.`,
        payload: { table: 'txs', key: row.tx_id },
      });
    }
    expected.delete(row.tx_id);
  }
  const missingTx = expected.keys().next();
  if (!missingTx.done)
    throw new MedledgerError('STATE_MISMATCH', {
      details: `Transaction index lacks ${missingTx.value}.`,
      payload: { table: 'txs', key: missingTx.value },
    });

  // The world state must be exactly what re-execution produced. Rows keyed by a patient code
  // are named in the payload only: patient codes stay out of messages, as out of logs.
  const shown = (table: string, key: string): string =>
    table === 'patients' || table === 'patientConsents' || state.get('patients', key) !== undefined ? '(a patient code)' : key;
  const want = new Map<string, string>();
  for (const [table, key, value] of state.entries()) want.set(`${table}\u0000${key}`, value);
  let entries = 0;
  for (const table of StateTables) {
    for (const row of store.stateRows(table)) {
      const k = `${table}\u0000${row.key}`;
      let stored: string;
      try {
        stored = canonicalJson(JSON.parse(row.value));
      } catch {
        stored = '';
      }
      if (want.get(k) !== stored || stored !== row.value) {
        throw new MedledgerError('STATE_MISMATCH', {
          details: `State ${table}/${shown(table, row.key)} differs from the chain.`,
          payload: { table, key: row.key },
        });
      }
      // The indexed copies the API searches by must equal the value's fields.
      const value = JSON.parse(stored) as Record<string, unknown>;
      (QUERY_COLUMNS[table] ?? []).forEach(([column, field], i) => {
        if (row.columns[i] !== (value[field] ?? null)) {
          throw new MedledgerError('STATE_MISMATCH', {
            details: `State ${table}/${shown(table, row.key)} column ${column} differs from its value.`,
            payload: { table, key: row.key, column },
          });
        }
      });
      want.delete(k);
      entries++;
    }
  }
  const missing = want.keys().next();
  if (!missing.done) {
    const [table, key] = missing.value.split('\u0000');
    throw new MedledgerError('STATE_MISMATCH', {
      details: `State ${String(table)}/${shown(String(table), String(key))} is missing.`,
      payload: { table, key },
    });
  }

  const setAt = (height: number): string => {
    let text = '[]';
    for (const s of setFrom) {
      if (s.height > height) break;
      text = s.text;
    }
    return text;
  };
  const finality = await verifyFinalityTables(store.db, {
    network: networkIdOf(genesis),
    quorum: genesis.config.quorum,
    top,
    validatorSet: setAt,
    setChanges: (from, to) => setFrom.filter((s) => s.height > from && s.height <= to).map((s) => s.height),
    block: (h) => {
      const b = store.rawBlock(h);
      return b === undefined ? undefined : { hash: b.hash, stateRoot: (JSON.parse(b.header) as BlockHeader).stateRoot };
    },
  });
  return { ...result, stateEntries: entries, finality };
}

export interface DataDirVerification extends StoreVerification {
  /** the data directory's files checked (relative paths) */
  files: string[];
  /** the solo orderer's log, when the node orders solo */
  orderer: { segments: number; entries: number } | null;
  vault: VaultVerification | null;
}

function fileTampered(file: string, what: string): never {
  throw new MedledgerError('DATA_DIR_TAMPERED', { details: `${file}: ${what}.`, payload: { file, what } });
}

function readJsonFile(dir: string, file: string): { text: string; value: unknown } {
  const text = readFileSync(join(dir, file), 'utf8');
  try {
    return { text, value: JSON.parse(text) as unknown };
  } catch {
    fileTampered(file, 'is not valid JSON');
  }
}

/** A file the node writes itself (writeJson), which nobody edits: exactly as written, or damaged. */
function asWritten(file: string, f: { text: string; value: unknown }): void {
  if (f.text !== JSON.stringify(f.value, null, 2) + '\n') fileTampered(file, 'is not in the form the node writes');
}

function hasExactly(v: unknown, keys: readonly string[]): v is Record<string, unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length === keys.length &&
    keys.every((k) => typeof (v as Record<string, unknown>)[k] !== 'undefined')
  );
}

/** The base64url of a canonical 32-byte key, or null. */
function key32(v: unknown): Uint8Array | null {
  if (typeof v !== 'string') return null;
  try {
    const raw = fromBase64Url(v);
    return raw.length === 32 && toBase64Url(raw) === v ? raw : null;
  } catch {
    return null;
  }
}

// PKCS#8 prefixes of raw Ed25519 and X25519 private keys (RFC 8410 §7).
const PKCS8_PREFIX = {
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
} as const;

/** The public key of a raw private key, base64url: what an identity file's public part must be. */
function publicOf(kind: keyof typeof PKCS8_PREFIX, privateKey: Uint8Array): string {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[kind], privateKey]), format: 'der', type: 'pkcs8' });
  return String(createPublicKey(key).export({ format: 'jwk' }).x);
}

/** An identity file (keys/<label>.json): whole, as written, each public key that of its private key. */
function checkIdentityFile(dir: string, file: string): { label: string; signingKey: string; encryptionKey: string } {
  const f = readJsonFile(dir, file);
  const v = f.value;
  if (!hasExactly(v, ['label', 'signing', 'encryption']) || typeof v['label'] !== 'string') fileTampered(file, 'is not an identity file');
  asWritten(file, f);
  const pairs = { signing: 'ed25519', encryption: 'x25519' } as const;
  const publics: Record<string, string> = {};
  for (const [part, kind] of Object.entries(pairs)) {
    const pair = v[part];
    if (!hasExactly(pair, ['publicKey', 'privateKey'])) fileTampered(file, `has no ${part} key pair`);
    const priv = key32(pair['privateKey']);
    if (priv === null || key32(pair['publicKey']) === null) fileTampered(file, `its ${part} key is not a 32-byte key`);
    if (publicOf(kind, priv) !== pair['publicKey']) fileTampered(file, `its ${part} public key is not that of its private key`);
    publics[part] = pair['publicKey'];
  }
  return { label: v['label'], signingKey: publics['signing']!, encryptionKey: publics['encryption']! };
}

/**
 * Verifies everything a node keeps in its data directory (`medledger verify <data-dir>`): the
 * ledger store (verifyStore); `genesis.json`, which must be the genesis the store was built
 * from; `node.json`, which must be a node configuration naming members of this network (its
 * other values — addresses, ports, limits — are the operator's to edit and have no second copy);
 * `consortium.json`, which must hold a 32-byte key as written (the key itself has no second copy:
 * a changed key goes unseen); each identity file in `keys/`, whose public keys must be those of
 * its private keys and, for the institutions the node serves, the keys the ledger registers for
 * them; the solo orderer's log against the chain; the vault's key files and every vault table.
 * Files a data directory lacks are skipped: a copy of `chain.db` alone verifies as a ledger.
 */
export async function verifyDataDir(
  dir: string,
  onBlock?: (height: number, of: number) => void,
  now: number = Date.now(),
): Promise<DataDirVerification> {
  const chain = await verifyStore(join(dir, DataDirFiles.chain), onBlock);
  const store = new LedgerStore(join(dir, DataDirFiles.chain), { readonly: true });
  const files: string[] = [];
  const present = (file: string): boolean => {
    const here = existsSync(join(dir, file));
    if (here) files.push(file);
    return here;
  };
  const member = (id: string): Member | undefined => store.get('members', id) as Member | undefined;
  try {
    const genesis = store.genesis();
    if (present(DataDirFiles.genesis)) {
      const f = readJsonFile(dir, DataDirFiles.genesis);
      if (canonicalJson(f.value) !== store.meta('genesis')) {
        fileTampered(DataDirFiles.genesis, 'differs from the genesis the ledger was built from');
      }
    }

    let config: NodeConfig | null = null;
    if (present(DataDirFiles.config)) {
      const v = readJsonFile(dir, DataDirFiles.config).value;
      if (!Value.Check(NodeConfigSchema, v)) fileTampered(DataDirFiles.config, 'is not a node configuration');
      config = v;
      for (const id of [config.institution, ...(config.vault?.institutions ?? [])]) {
        if (member(id) === undefined) fileTampered(DataDirFiles.config, `names ${id}, which is not a member of this network`);
      }
    }

    if (present(DataDirFiles.consortium)) {
      const f = readJsonFile(dir, DataDirFiles.consortium);
      if (!hasExactly(f.value, ['patientCodeKey']) || key32(f.value['patientCodeKey']) === null) {
        fileTampered(DataDirFiles.consortium, 'does not hold a 32-byte patient-code key');
      }
      asWritten(DataDirFiles.consortium, f);
    }

    if (present(DataDirFiles.keys)) {
      for (const name of readdirSync(join(dir, DataDirFiles.keys)).sort()) {
        if (!name.endsWith('.json')) continue;
        files.push(`${DataDirFiles.keys}/${name}`);
        checkIdentityFile(dir, `${DataDirFiles.keys}/${name}`);
      }
      // The node signs as its institution, and each vault opens with its institution's identity:
      // the ledger must register that file's keys — or, while a key rotation is under way
      // (data-dir.ts, writeNextIdentity), those of the new file beside it.
      const served = new Set(config === null ? [] : [config.institution, ...(config.vault?.institutions ?? [])]);
      for (const institution of served) {
        const file = `${DataDirFiles.keys}/${institution}.json`;
        const candidates = [file, `${file}.next`].filter((f) => existsSync(join(dir, f)));
        if (candidates.length === 0) fileTampered(DataDirFiles.config, `names ${institution}, whose identity file is not here`);
        const m = member(institution);
        const held = candidates.map((f) => checkIdentityFile(dir, f));
        if (held[0]!.label !== institution) fileTampered(candidates[0]!, `is labelled for another identity than ${institution}`);
        if (!held.some((id) => m?.signingKey === id.signingKey && m.encryptionKey === id.encryptionKey)) {
          fileTampered(candidates[0]!, `holds other keys than the ledger registers for ${institution}`);
        }
      }
    }

    let orderer: DataDirVerification['orderer'] = null;
    if ((config === null || config.ordering.kind === 'solo') && present(DataDirFiles.orderer)) {
      // The log is read in order: keep the last block looked at rather than parse it per entry.
      let last: { height: number; texts: string[] } | null = null;
      const textsAt = (h: number): string[] => {
        if (last?.height !== h) last = { height: h, texts: store.block(h)!.block.txs.map((tx) => JSON.stringify(tx)) };
        return last.texts;
      };
      const positions = new Map<number, number>();
      const positionAt = (h: number): number => {
        let p = positions.get(h);
        if (p === undefined) {
          p = Number(store.blockHeader(h)!.header.position || 0);
          positions.set(h, p);
        }
        return p;
      };
      orderer = verifySoloLog(join(dir, DataDirFiles.orderer), genesis.config.maxTxBytes, {
        top: chain.height,
        position: positionAt,
        txTexts: textsAt,
        heightOf: (txId) => store.txLocation(txId)?.height,
      });
    }

    let vault: VaultVerification | null = null;
    const sqlite = (config?.vault === undefined || config.vault.store.kind === 'sqlite') && existsSync(join(dir, DataDirFiles.vault));
    const pg = config?.vault?.store.kind === 'postgres' ? config.vault.store.connectionString : null;
    if (sqlite || pg !== null) {
      if (sqlite) files.push(DataDirFiles.vault);
      const masterKeys = await readVaultKeys(dir);
      let scan: VaultScan | null = null;
      try {
        scan = pg !== null ? new PgVaultScan(pg) : new SqliteVaultScan(join(dir, DataDirFiles.vault));
        vault = await verifyVault({ scan, ledger: store, masterKeys, now });
      } catch (e) {
        throw damagedFile(e, DataDirFiles.vault, 'VAULT_TAMPERED');
      } finally {
        await scan?.close();
      }
    }
    return { ...chain, files, orderer, vault };
  } finally {
    store.close();
  }
}
