/**
 * Merkle Tree Hash and inclusion proofs exactly as RFC 6962 §2.1: leaves are hashed with a
 * 0x00 prefix, interior nodes with 0x01, and a tree of n leaves splits at the largest power
 * of two below n. Verification follows RFC 9162 §2.1.3.2.
 */
import { bytesEqual, concatBytes } from '../codec/bytes.ts';
import { sha256 } from '../crypto/hash.ts';

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(concatBytes(LEAF, data));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes(NODE, left, right));
}

/** Largest power of two strictly less than n (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

/** MTH(D[n]) of RFC 6962 §2.1, given the leaf data (not yet leaf-hashed). */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  return rootOfHashes(leaves.map(leafHash));
}

/** Root over already leaf-hashed entries, computed bottom-up in O(n) without recursion. */
function rootOfHashes(hashes: Uint8Array[]): Uint8Array {
  // Pairing left to right and promoting a lone last node gives the same tree as the
  // recursive split at the largest power of two (RFC 6962 §2.1).
  let level = hashes;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/** PATH(m, D[n]) of RFC 6962 §2.1.1: the audit path for leaf m. */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError('leaf index out of range');
  return path(index, leaves.map(leafHash));
}

function path(m: number, hashes: Uint8Array[]): Uint8Array[] {
  if (hashes.length <= 1) return [];
  const k = splitPoint(hashes.length);
  if (m < k) return [...path(m, hashes.slice(0, k)), rootOfHashes(hashes.slice(k))];
  return [...path(m - k, hashes.slice(k)), rootOfHashes(hashes.slice(0, k))];
}

/** Checks an inclusion proof (RFC 9162 §2.1.3.2). */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= treeSize) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r = leafHash(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 && bytesEqual(r, root);
}
