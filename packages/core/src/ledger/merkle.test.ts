/**
 * RFC 6962 Merkle Tree Hash and audit paths: the reference vectors of the certificate
 * transparency code (transparency-dev/merkle `proof/verify_test.go`, same in trillian and
 * certificate-transparency-go), an independent transcription of RFC 6962 §2.1 as an oracle,
 * and RFC 9162 §2.1.3.2 verification.
 */
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from '../codec/bytes.ts';
import { sha256 } from '../crypto/hash.ts';
import { inclusionProof, leafHash, merkleRoot, nodeHash, verifyInclusion } from './merkle.ts';

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);

/** Roots of the trees of the first 1..8 leaves. */
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** Audit paths of the reference vectors (leaf index 0-based here; the Go source counts from 1). */
const PATHS: readonly { index: number; size: number; path: string[] }[] = [
  { index: 0, size: 1, path: [] },
  {
    index: 0,
    size: 8,
    path: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    path: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, path: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    path: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

// RFC 6962 §2.1, transcribed literally (recursive split at the largest power of two < n).
function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}
function mth(d: readonly Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha256(new Uint8Array());
  if (d.length === 1) return sha256(concatBytes(new Uint8Array([0]), d[0]!));
  const s = k(d.length);
  return sha256(concatBytes(new Uint8Array([1]), mth(d.slice(0, s)), mth(d.slice(s))));
}
function path(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}

function leavesOf(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => utf8(`leaf ${i}`));
}

function flip(bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[0]! ^= 8;
  return out;
}

describe('Merkle Tree Hash (RFC 6962 §2.1)', () => {
  it('the empty tree hashes to SHA-256 of the empty string', () => {
    expect(toHex(merkleRoot([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it.each(ROOTS.map((root, i) => [i + 1, root] as const))('the reference tree of %i leaves has root %s', (size, root) => {
    expect(toHex(merkleRoot(LEAVES.slice(0, size)))).toBe(root);
  });

  it('hashes leaves with 0x00 and nodes with 0x01 (domain separation)', () => {
    const a = utf8('a');
    const b = utf8('b');
    expect(toHex(leafHash(a))).toBe(toHex(sha256(concatBytes(new Uint8Array([0]), a))));
    expect(toHex(nodeHash(a, b))).toBe(toHex(sha256(concatBytes(new Uint8Array([1]), a, b))));
    // A one-leaf tree is its leaf hash, never the raw data's hash.
    expect(toHex(merkleRoot([a]))).toBe(toHex(leafHash(a)));
    expect(toHex(merkleRoot([a]))).not.toBe(toHex(sha256(a)));
    // An interior node cannot pass for a leaf: the tree of [a, b] differs from the tree of [H(a)||H(b)].
    expect(toHex(merkleRoot([a, b]))).not.toBe(toHex(merkleRoot([concatBytes(leafHash(a), leafHash(b))])));
  });

  it('agrees with the recursive definition for every size from 0 to 70', () => {
    const all = leavesOf(70);
    for (let n = 0; n <= 70; n++) expect(toHex(merkleRoot(all.slice(0, n))), `size ${n}`).toBe(toHex(mth(all.slice(0, n))));
  });

  it('depends on the order of the leaves', () => {
    expect(toHex(merkleRoot(LEAVES.slice(0, 2)))).not.toBe(toHex(merkleRoot([LEAVES[1]!, LEAVES[0]!])));
  });
});

describe('audit paths (RFC 6962 §2.1.1)', () => {
  it.each(PATHS)('the reference path of leaf $index in a tree of $size', ({ index, size, path: expected }) => {
    const leaves = LEAVES.slice(0, size);
    expect(inclusionProof(leaves, index).map(toHex)).toEqual(expected);
    expect(verifyInclusion(leaves[index]!, index, size, expected.map(fromHex), fromHex(ROOTS[size - 1]!))).toBe(true);
  });

  it('agrees with the recursive definition for every leaf of every tree up to 40', () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = leavesOf(n);
      for (let m = 0; m < n; m++) expect(inclusionProof(leaves, m).map(toHex), `leaf ${m} of ${n}`).toEqual(path(m, leaves).map(toHex));
    }
  });

  it.each([-1, 3, 1.5, NaN])('refuses the leaf index %s in a tree of 3', (index) => {
    expect(() => inclusionProof(LEAVES.slice(0, 3), index)).toThrow(RangeError);
  });

  it('refuses any index in the empty tree', () => {
    expect(() => inclusionProof([], 0)).toThrow(RangeError);
  });
});

describe('verifyInclusion (RFC 9162 §2.1.3.2)', () => {
  const MAX = 40;
  const all = leavesOf(MAX);
  const roots = Array.from({ length: MAX + 1 }, (_, n) => merkleRoot(all.slice(0, n)));

  it('accepts every proof inclusionProof makes, for every leaf of trees of 1..40', () => {
    for (let n = 1; n <= MAX; n++) {
      const leaves = all.slice(0, n);
      for (let m = 0; m < n; m++) {
        expect(verifyInclusion(leaves[m]!, m, n, inclusionProof(leaves, m), roots[n]!), `leaf ${m} of ${n}`).toBe(true);
      }
    }
  });

  it('rejects a wrong leaf, index, size, proof or root', () => {
    const someHash = fromHex('abacaba000000000000000000000000000000000000000000060061e00123456');
    for (let n = 1; n <= MAX; n++) {
      const leaves = all.slice(0, n);
      const root = roots[n]!;
      for (let m = 0; m < n; m++) {
        const leaf = leaves[m]!;
        const proof = inclusionProof(leaves, m);
        const at = `leaf ${m} of ${n}`;
        // wrong leaf data
        expect(verifyInclusion(utf8('WrongLeaf'), m, n, proof, root), at).toBe(false);
        expect(verifyInclusion(leafHash(leaf), m, n, proof, root), at).toBe(false);
        // wrong index
        for (const w of [m - 1, m + 1, m ^ 2, n, -1])
          if (w !== m) expect(verifyInclusion(leaf, w, n, proof, root), `${at} as ${w}`).toBe(false);
        // wrong size, as in the reference tests: twice and half the size
        expect(verifyInclusion(leaf, m, n * 2, proof, root), `${at} size ${n * 2}`).toBe(false);
        expect(verifyInclusion(leaf, m, Math.floor(n / 2), proof, root), `${at} size ${Math.floor(n / 2)}`).toBe(false);
        // wrong size, each with the true root of that size
        for (let s = m + 1; s <= MAX; s++) {
          if (s !== n) expect(verifyInclusion(leaf, m, s, proof, roots[s]!), `${at} as size ${s}`).toBe(false);
        }
        // wrong root
        expect(verifyInclusion(leaf, m, n, proof, flip(root)), at).toBe(false);
        expect(verifyInclusion(leaf, m, n, proof, roots[0]!), at).toBe(false);
        expect(verifyInclusion(leaf, m, n, proof, someHash), at).toBe(false);
        // altered proof: each element with one bit flipped, one removed, one added, garbage
        proof.forEach((_, i) => {
          const altered = proof.map((p, j) => (j === i ? flip(p) : p));
          expect(verifyInclusion(leaf, m, n, altered, root), `${at} proof[${i}]`).toBe(false);
        });
        if (proof.length > 0) expect(verifyInclusion(leaf, m, n, proof.slice(0, -1), root), `${at} truncated`).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(leaf, m, n, proof.slice(1), root), `${at} first removed`).toBe(false);
        if (proof.length > 1)
          expect(verifyInclusion(leaf, m, n, [proof[0]!, someHash, ...proof.slice(1)], root), `${at} inserted`).toBe(false);
        expect(verifyInclusion(leaf, m, n, [...proof, root], root), `${at} trailing root`).toBe(false);
        expect(verifyInclusion(leaf, m, n, [...proof, new Uint8Array()], root), `${at} trailing garbage`).toBe(false);
        expect(verifyInclusion(leaf, m, n, [new Uint8Array(), ...proof], root), `${at} preceding garbage`).toBe(false);
        expect(verifyInclusion(leaf, m, n, [root, ...proof], root), `${at} preceding root`).toBe(false);
      }
    }
  });

  it('rejects any proof for the empty tree or an index past the end', () => {
    expect(verifyInclusion(utf8('x'), 0, 0, [], merkleRoot([]))).toBe(false);
    expect(verifyInclusion(LEAVES[0]!, 1, 1, [], fromHex(ROOTS[0]!))).toBe(false);
    expect(verifyInclusion(LEAVES[0]!, 0.5, 1, [], fromHex(ROOTS[0]!))).toBe(false);
  });

  it('accepts a single-leaf tree only with the empty proof and its own leaf hash as root', () => {
    const data = utf8('data');
    expect(verifyInclusion(data, 0, 1, [], leafHash(data))).toBe(true);
    expect(verifyInclusion(data, 0, 1, [], new Uint8Array())).toBe(false);
    expect(verifyInclusion(data, 0, 1, [leafHash(data)], leafHash(data))).toBe(false);
  });
});
