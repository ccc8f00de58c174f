/**
 * Blocks (DESIGN §4): a header `{ network, height, prevHash, txRoot, resultsHash, stateRoot,
 * time, position }` and the transactions with their validity codes. `txRoot` is the RFC 6962
 * Merkle root of the txIds; `stateRoot_h = SHA-256(stateRoot_{h-1} || SHA-256(canonical write
 * set of block h))`; the block hash is SHA-256 of the canonical header.
 */
import { canonicalBytes, canonicalJson } from '../codec/canonical-json.ts';
import { concatBytes, fromHex, toHex, utf8 } from '../codec/bytes.ts';
import { sha256, sha256Hex } from '../crypto/hash.ts';
import type { StateWrite } from '../contracts/state.ts';
import type { TxCode } from './execute.ts';
import { merkleRoot } from './merkle.ts';
import type { Tx } from './tx.ts';

export interface BlockHeader {
  network: string;
  height: number;
  prevHash: string;
  txRoot: string;
  /**
   * SHA-256 of the canonical `[[signature, code], ...]` of the block's txs: commits to each
   * validity code and to every signature, including those of txs rejected before their
   * signature was checked (txIds do not cover signatures).
   */
  resultsHash: string;
  stateRoot: string;
  /** block time, ms since the epoch, given by the orderer */
  time: number;
  /** the orderer's position of the block's last entry (solo: log sequence; nats: stream sequence) */
  position: string;
}

export interface Block {
  header: BlockHeader;
  txs: Tx[];
  codes: TxCode[];
}

export const ZERO_HASH = '0'.repeat(64);

export function blockHash(header: BlockHeader): string {
  return sha256Hex(canonicalBytes(header));
}

export function txRootOf(txIds: readonly string[]): string {
  return toHex(merkleRoot(txIds.map(fromHex)));
}

export function resultsHashOf(txs: readonly { signature: string }[], codes: readonly TxCode[]): string {
  return sha256Hex(canonicalBytes(txs.map((t, i) => [t.signature, codes[i] ?? null])));
}

/**
 * The canonical write set `[[table, key, value|null], ...]` (in table/key order) and each
 * value's canonical text, computed once: the text hashed into the state root is the text stored.
 */
export function encodeWrites(writes: readonly StateWrite[]): { hash: Uint8Array; values: (string | null)[] } {
  const values = writes.map((w) => (w.value === null ? null : canonicalJson(w.value)));
  const parts = writes.map((w, i) => `[${JSON.stringify(w.table)},${canonicalJson(w.key)},${values[i] ?? 'null'}]`);
  return { hash: sha256(utf8(`[${parts.join(',')}]`)), values };
}

/** SHA-256 of the canonical write set. */
export function writeSetHash(writes: readonly StateWrite[]): Uint8Array {
  return encodeWrites(writes).hash;
}

export function chainStateRoot(prevStateRoot: string, writeSetDigest: Uint8Array): string {
  return toHex(sha256(concatBytes(fromHex(prevStateRoot), writeSetDigest)));
}

export function nextStateRoot(prevStateRoot: string, writes: readonly StateWrite[]): string {
  return chainStateRoot(prevStateRoot, writeSetHash(writes));
}

/** Orders writes by table, then key: the canonical order of a write set. */
export function sortWrites(writes: Iterable<StateWrite>): StateWrite[] {
  return [...writes].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
