/**
 * The node's ledger store on SQLite (better-sqlite3, WAL): blocks, the transaction index and the
 * world state. Each block, its state changes and the orderer position are committed in one
 * SQLite transaction with `synchronous=FULL`, so a node killed at any instant restarts at a block
 * boundary and resumes ordering from the stored position.
 */
import Database from 'better-sqlite3';
import { canonicalJson, type JsonValue } from '@medledger/core/codec/canonical-json';
import { StateTables, type StateReader, type StateTable, type StateWrite } from '@medledger/core/contracts/state';
import { blockHash, type Block, type BlockHeader } from '@medledger/core/ledger/block';
import type { ChainIndex, TxCode } from '@medledger/core/ledger/execute';
import { genesisBlock, networkIdOf, type Genesis } from '@medledger/core/ledger/genesis';
import type { Tx } from '@medledger/core/ledger/tx';
import { MedledgerError } from '@medledger/core/errors';
import { QUERY_COLUMNS, SCHEMA_VERSION, schemaStatements, stateTableName } from './schema.ts';

export interface Head {
  height: number;
  hash: string;
  stateRoot: string;
  time: number;
  position: string;
}

export interface TxLocation {
  txId: string;
  height: number;
  index: number;
  code: TxCode;
  type: string;
  author: string;
}

export interface StoredBlock {
  block: Block;
  hash: string;
}

type Row = Record<string, unknown>;

const HOT_TABLES: ReadonlySet<StateTable> = new Set(['keys', 'members', 'staff', 'patients', 'meta']);
const HOT_CACHE_ENTRIES = 200_000;

export class LedgerStore implements StateReader, ChainIndex {
  readonly db: Database.Database;
  private readonly getStmts = new Map<StateTable, Database.Statement<[string], string>>();
  private readonly putStmts = new Map<StateTable, Database.Statement>();
  private readonly delStmts = new Map<StateTable, Database.Statement<[string]>>();
  private readonly stmt: {
    nonce: Database.Statement<[string, string], Row>;
    hasTx: Database.Statement<[string], Row>;
    insertTx: Database.Statement<[string, number, number, string, string, string, string]>;
    insertBlock: Database.Statement<[number, string, string, string, string]>;
    setMeta: Database.Statement<[string, string]>;
    getMeta: Database.Statement<[string], { v: string }>;
    block: Database.Statement<[number], { height: number; hash: string; header: string; txs: string; codes: string }>;
    header: Database.Statement<[number], { hash: string; header: string }>;
    tx: Database.Statement<[string], { tx_id: string; height: number; idx: number; code: string; type: string; author: string }>;
  };
  private headCache: Head | null = null;
  private readonly queryStmts = new Map<string, Database.Statement<unknown[], string>>();
  /**
   * Write-through cache of the small, hot tables every transaction reads (author keys, members,
   * staff, patients): the store is their only writer, so the cache cannot go stale.
   */
  private readonly hot = new Map<string, string | null>();

  constructor(
    readonly path: string,
    options: { readonly?: boolean } = {},
  ) {
    this.db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      for (const s of schemaStatements()) this.db.exec(s);
    }
    this.db.pragma('cache_size = -65536');
    for (const t of StateTables) {
      const name = stateTableName(t);
      this.getStmts.set(t, this.db.prepare<[string], string>(`SELECT value FROM ${name} WHERE key = ?`).pluck());
      if (!options.readonly) {
        const cols = (QUERY_COLUMNS[t] ?? []).map(([c]) => c);
        this.putStmts.set(
          t,
          this.db.prepare(
            `INSERT INTO ${name}(key, value${cols.map((c) => `, ${c}`).join('')}) VALUES (?, ?${cols.map(() => ', ?').join('')}) ` +
              `ON CONFLICT(key) DO UPDATE SET value = excluded.value${cols.map((c) => `, ${c} = excluded.${c}`).join('')}`,
          ),
        );
        this.delStmts.set(t, this.db.prepare(`DELETE FROM ${name} WHERE key = ?`));
      }
    }
    const ro = options.readonly ?? false;
    this.stmt = {
      nonce: this.db.prepare<[string, string], Row>("SELECT 1 AS x FROM txs WHERE author = ? AND nonce = ? AND code = 'OK'").raw(),
      hasTx: this.db.prepare<[string], Row>('SELECT 1 AS x FROM txs WHERE tx_id = ?').raw(),
      insertTx: ro
        ? (null as never)
        : this.db.prepare('INSERT INTO txs(tx_id, height, idx, code, author, nonce, type) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      insertBlock: ro ? (null as never) : this.db.prepare('INSERT INTO blocks(height, hash, header, txs, codes) VALUES (?, ?, ?, ?, ?)'),
      setMeta: ro ? (null as never) : this.db.prepare('INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v'),
      getMeta: this.db.prepare('SELECT v FROM meta WHERE k = ?'),
      block: this.db.prepare('SELECT height, hash, header, txs, codes FROM blocks WHERE height = ?'),
      header: this.db.prepare('SELECT hash, header FROM blocks WHERE height = ?'),
      tx: this.db.prepare('SELECT tx_id, height, idx, code, type, author FROM txs WHERE tx_id = ?'),
    };
  }

  close(): void {
    this.db.close();
  }

  meta(key: string): string | undefined {
    return this.stmt.getMeta.get(key)?.v;
  }

  /** Writes genesis (block 0) into an empty store, or checks that the store is of this network. */
  initialise(genesis: Genesis): void {
    const network = networkIdOf(genesis);
    const existing = this.meta('network');
    if (existing !== undefined) {
      if (existing !== network) throw new MedledgerError('GENESIS_INVALID', { details: 'The data directory belongs to another network.' });
      return;
    }
    const { block, writes } = genesisBlock(genesis);
    this.db.transaction(() => {
      this.stmt.setMeta.run('schemaVersion', String(SCHEMA_VERSION));
      this.stmt.setMeta.run('genesis', canonicalJson(genesis));
      this.stmt.setMeta.run('network', network);
      this.writeBlock(block, [], writes);
    })();
  }

  genesis(): Genesis {
    const g = this.meta('genesis');
    if (g === undefined) throw new MedledgerError('GENESIS_INVALID', { details: 'The store has no genesis.' });
    return JSON.parse(g) as Genesis;
  }

  get(table: StateTable, key: string): JsonValue | undefined {
    let text: string | null | undefined;
    if (HOT_TABLES.has(table)) {
      const k = table + '\u0000' + key;
      text = this.hot.get(k);
      if (text === undefined) {
        text = this.getStmts.get(table)!.get(key) ?? null;
        if (this.hot.size >= HOT_CACHE_ENTRIES) this.hot.clear();
        this.hot.set(k, text);
      }
    } else {
      text = this.getStmts.get(table)!.get(key);
    }
    return text === undefined || text === null ? undefined : (JSON.parse(text) as JsonValue);
  }

  nonceUsed(author: string, nonce: string): boolean {
    return this.stmt.nonce.get(author, nonce) !== undefined;
  }

  hasTx(txId: string): boolean {
    return this.stmt.hasTx.get(txId) !== undefined;
  }

  head(): Head {
    if (this.headCache === null) {
      const row = this.db.prepare('SELECT header, hash FROM blocks ORDER BY height DESC LIMIT 1').get() as
        { header: string; hash: string } | undefined;
      if (row === undefined) throw new MedledgerError('GENESIS_INVALID', { details: 'The store is empty.' });
      const h = JSON.parse(row.header) as BlockHeader;
      this.headCache = { height: h.height, hash: row.hash, stateRoot: h.stateRoot, time: h.time, position: h.position };
    }
    return this.headCache;
  }

  /**
   * Commits a block, its transactions' index rows and its write set in one transaction.
   * `values` are the writes' canonical texts when the caller has them already.
   */
  commitBlock(block: Block, txIds: readonly string[], writes: readonly StateWrite[], values?: readonly (string | null)[]): void {
    try {
      this.db.transaction(() => this.writeBlock(block, txIds, writes, values))();
    } catch (e) {
      // The transaction rolled back: forget cached values it may have written.
      this.hot.clear();
      this.headCache = null;
      throw e;
    }
  }

  private writeBlock(block: Block, txIds: readonly string[], writes: readonly StateWrite[], values?: readonly (string | null)[]): void {
    const h = block.header;
    const hash = blockHash(h);
    this.stmt.insertBlock.run(h.height, hash, JSON.stringify(h), JSON.stringify(block.txs), JSON.stringify(block.codes));
    block.txs.forEach((tx, i) => {
      this.stmt.insertTx.run(txIds[i]!, h.height, i, block.codes[i]!, tx.author, tx.nonce, tx.type);
    });
    writes.forEach((w, i) => {
      const text = w.value === null ? null : (values?.[i] ?? canonicalJson(w.value));
      if (text === null) this.delStmts.get(w.table)!.run(w.key);
      else {
        const fields = QUERY_COLUMNS[w.table];
        const v = w.value as Record<string, unknown>;
        this.putStmts.get(w.table)!.run(w.key, text, ...(fields === undefined ? [] : fields.map(([, field]) => v[field] ?? null)));
      }
      if (HOT_TABLES.has(w.table)) this.hot.set(w.table + '\u0000' + w.key, text);
    });
    this.headCache = { height: h.height, hash, stateRoot: h.stateRoot, time: h.time, position: h.position };
  }

  block(height: number): StoredBlock | undefined {
    const row = this.stmt.block.get(height);
    if (row === undefined) return undefined;
    return {
      hash: row.hash,
      block: { header: JSON.parse(row.header) as BlockHeader, txs: JSON.parse(row.txs) as Tx[], codes: JSON.parse(row.codes) as TxCode[] },
    };
  }

  /** A block's hash and header without its transactions (a block's txs can be megabytes). */
  blockHeader(height: number): { hash: string; header: BlockHeader } | undefined {
    const row = this.stmt.header.get(height);
    return row === undefined ? undefined : { hash: row.hash, header: JSON.parse(row.header) as BlockHeader };
  }

  /** Raw rows of a block, for verification that must see exactly what is stored. */
  rawBlock(height: number): { height: number; hash: string; header: string; txs: string; codes: string } | undefined {
    return this.stmt.block.get(height);
  }

  txLocation(txId: string): TxLocation | undefined {
    const row = this.stmt.tx.get(txId);
    if (row === undefined) return undefined;
    return { txId: row.tx_id, height: row.height, index: row.idx, code: row.code as TxCode, type: row.type, author: row.author };
  }

  recentBlocks(limit: number): { height: number; hash: string; header: BlockHeader; txCount: number }[] {
    const rows = this.db
      .prepare('SELECT height, hash, header, json_array_length(codes) AS n FROM blocks ORDER BY height DESC LIMIT ?')
      .all(limit) as { height: number; hash: string; header: string; n: number }[];
    return rows.map((r) => ({ height: r.height, hash: r.hash, header: JSON.parse(r.header) as BlockHeader, txCount: r.n }));
  }

  /** Rows of a state table matching equality filters on its generated columns. */
  query(
    table: StateTable,
    where: Record<string, string | number | undefined>,
    range: { column: string; from?: number | undefined; to?: number | undefined } | null,
    order: { column: string; desc: boolean } | null,
    limit: number,
  ): JsonValue[] {
    return this.queryTexts(table, where, range, order, limit).map((text) => JSON.parse(text) as JsonValue);
  }

  /**
   * The same rows as stored: canonical JSON texts, for answers that pass them through without
   * parsing and re-serialising them.
   */
  queryTexts(
    table: StateTable,
    where: Record<string, string | number | undefined>,
    range: { column: string; from?: number | undefined; to?: number | undefined } | null,
    order: { column: string; desc: boolean } | null,
    limit: number,
    offset = 0,
  ): string[] {
    const { clauses, params } = whereOf(where, range);
    const sql =
      `SELECT value FROM ${stateTableName(table)}` +
      (clauses.length > 0 ? ` WHERE ${clauses.join(' AND ')}` : '') +
      (order !== null ? ` ORDER BY ${order.column} ${order.desc ? 'DESC' : 'ASC'}, key` : '') +
      (offset > 0 ? ' LIMIT ? OFFSET ?' : ' LIMIT ?');
    return this.prepared(sql).all(...params, limit, ...(offset > 0 ? [offset] : []));
  }

  /** How many rows `queryTexts` would find without a limit (for search totals). */
  count(
    table: StateTable,
    where: Record<string, string | number | undefined>,
    range: { column: string; from?: number | undefined; to?: number | undefined } | null,
  ): number {
    const { clauses, params } = whereOf(where, range);
    const sql = `SELECT COUNT(*) FROM ${stateTableName(table)}` + (clauses.length > 0 ? ` WHERE ${clauses.join(' AND ')}` : '');
    return Number(this.prepared(sql).get(...params));
  }

  private prepared(sql: string): Database.Statement<unknown[], string> {
    let stmt = this.queryStmts.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare<unknown[], string>(sql).pluck();
      // The SQL is built from a closed set of tables and columns: a few dozen shapes at most.
      if (this.queryStmts.size < 256) this.queryStmts.set(sql, stmt);
    }
    return stmt;
  }

  /** Every row of a state table in key order, as stored. */
  *stateRows(table: StateTable): Generator<{ key: string; value: string; columns: unknown[] }> {
    const cols = (QUERY_COLUMNS[table] ?? []).map(([c]) => c);
    const sql = `SELECT key, value${cols.map((c) => `, ${c}`).join('')} FROM ${stateTableName(table)} ORDER BY key`;
    for (const r of this.db.prepare(sql).iterate() as Iterable<Record<string, unknown>>) {
      yield { key: r['key'] as string, value: r['value'] as string, columns: cols.map((c) => r[c]) };
    }
  }

  *txRows(): Generator<{ tx_id: string; height: number; idx: number; code: string; author: string; nonce: string; type: string }> {
    yield* this.db.prepare('SELECT tx_id, height, idx, code, author, nonce, type FROM txs ORDER BY tx_id').iterate() as Iterable<{
      tx_id: string;
      height: number;
      idx: number;
      code: string;
      author: string;
      nonce: string;
      type: string;
    }>;
  }
}

/** Equality filters on generated columns and a half-open range, as SQL clauses and their parameters. */
function whereOf(
  where: Record<string, string | number | undefined>,
  range: { column: string; from?: number | undefined; to?: number | undefined } | null,
): { clauses: string[]; params: (string | number)[] } {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  for (const [col, v] of Object.entries(where)) {
    if (v === undefined) continue;
    if (!/^[a-z_]+$/.test(col)) throw new Error('bad column');
    clauses.push(`${col} = ?`);
    params.push(v);
  }
  if (range !== null) {
    if (range.from !== undefined) {
      clauses.push(`${range.column} >= ?`);
      params.push(range.from);
    }
    if (range.to !== undefined) {
      clauses.push(`${range.column} < ?`);
      params.push(range.to);
    }
  }
  return { clauses, params };
}
