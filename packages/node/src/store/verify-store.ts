/**
 * Verifies a node's stored ledger: every block row is re-hashed and linked, every transaction,
 * signature, Merkle root and state root is recomputed by re-executing the chain from genesis
 * (core's `verifyChain`), and the stored world state and transaction index must equal what the
 * chain produces. The first damage is reported with its height, or its table and key.
 */
import { canonicalJson } from '@medledger/core/codec/canonical-json';
import { StateTables } from '@medledger/core/contracts/state';
import { blockHash, type Block, type BlockHeader } from '@medledger/core/ledger/block';
import { verifyChain, type ChainVerification } from '@medledger/core/ledger/chain-verify';
import type { TxCode } from '@medledger/core/ledger/execute';
import { networkIdOf, type Genesis } from '@medledger/core/ledger/genesis';
import { MemoryState } from '@medledger/core/ledger/memory-state';
import { txIdOf, type Tx } from '@medledger/core/ledger/tx';
import { MedledgerError } from '@medledger/core/errors';
import { LedgerStore } from './ledger-store.ts';
import { QUERY_COLUMNS, SCHEMA_VERSION } from './schema.ts';

export interface StoreVerification extends ChainVerification {
  stateEntries: number;
}

function broken(height: number, what: string): never {
  throw new MedledgerError('CHAIN_BROKEN', { details: `At height ${height}: ${what}.`, payload: { height, what } });
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
  const store = new LedgerStore(path, { readonly: true });
  try {
    let genesis: Genesis;
    try {
      genesis = store.genesis();
    } catch (cause) {
      throw new MedledgerError('CHAIN_BROKEN', {
        details: 'The stored genesis is unreadable.',
        payload: { height: 0, what: 'genesis' },
        cause,
      });
    }
    if (store.meta('network') !== networkIdOf(genesis) || store.meta('schemaVersion') !== String(SCHEMA_VERSION)) {
      throw new MedledgerError('STATE_MISMATCH', {
        details: 'The store’s network id or schema version differs from its genesis.',
        payload: { table: 'meta', key: 'network' },
      });
    }
    const top = (store.db.prepare('SELECT MAX(height) AS h FROM blocks').get() as { h: number | null }).h ?? -1;
    const state = new MemoryState();
    const result = await verifyChain(genesis, storedBlocks(store, top), state, { onBlock: (h) => onBlock?.(h, top) });

    // The transaction index must be exactly what the blocks say.
    const expected = new Map<string, string>();
    for (let h = 1; h <= top; h++) {
      const b = store.block(h)!.block;
      b.txs.forEach((tx, i) => expected.set(txIdOf(tx), JSON.stringify([h, i, b.codes[i], tx.author, tx.nonce, tx.type])));
    }
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

    // The world state must be exactly what re-execution produced.
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
            details: `State ${table}/${row.key} differs from the chain.`,
            payload: { table, key: row.key },
          });
        }
        // The indexed copies the API searches by must equal the value's fields.
        const value = JSON.parse(stored) as Record<string, unknown>;
        (QUERY_COLUMNS[table] ?? []).forEach(([column, field], i) => {
          if (row.columns[i] !== (value[field] ?? null)) {
            throw new MedledgerError('STATE_MISMATCH', {
              details: `State ${table}/${row.key} column ${column} differs from its value.`,
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
      throw new MedledgerError('STATE_MISMATCH', { details: `State ${String(table)}/${String(key)} is missing.`, payload: { table, key } });
    }
    return { ...result, stateEntries: entries };
  } finally {
    store.close();
  }
}
