/**
 * Blocks (DESIGN §4): a header `{ network, height, prevHash, txRoot, resultsHash, stateRoot,
 * time, position }` and the transactions with their validity codes. `txRoot` is the RFC 6962
 * Merkle root of the txIds; `stateRoot_h = SHA-256(stateRoot_{h-1} || SHA-256(canonical write
 * set of block h))`; the block hash is SHA-256 of the canonical header.
 */
import { canonicalBytes } from '../codec/canonical-json.ts';
import { concatBytes, fromHex, toHex } from '../codec/bytes.ts';
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
  /** SHA-256 of the canonical array of validity codes, so a code cannot be altered unseen */
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

export function resultsHashOf(codes: readonly TxCode[]): string {
  return sha256Hex(canonicalBytes(codes));
}

/** SHA-256 of the canonical write set: `[[table, key, value|null], ...]` in table/key order. */
export function writeSetHash(writes: readonly StateWrite[]): Uint8Array {
  return sha256(canonicalBytes(writes.map((w) => [w.table, w.key, w.value])));
}

export function nextStateRoot(prevStateRoot: string, writes: readonly StateWrite[]): string {
  return toHex(sha256(concatBytes(fromHex(prevStateRoot), writeSetHash(writes))));
}

/** Orders writes by table, then key: the canonical order of a write set. */
export function sortWrites(writes: Iterable<StateWrite>): StateWrite[] {
  return [...writes].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
