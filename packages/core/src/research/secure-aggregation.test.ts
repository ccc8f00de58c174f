/** Secure aggregation with real X25519 keys: masks cancel, hide each vector, and survive a dropout. */
import { describe, expect, it } from 'vitest';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, toBase64Url, utf8 } from '../codec/bytes.ts';
import { generateEncryptionKey, x25519SharedSecret, type X25519KeyPair } from '../crypto/x25519.ts';
import { MedledgerError } from '../errors.ts';
import {
  decodeSeeds,
  decodeVector,
  encodeSeeds,
  encodeVector,
  expandMask,
  maskVector,
  pairSeed,
  toSigned,
  unmaskSum,
} from './secure-aggregation.ts';

const ROUND = 'a'.repeat(64);
const LENGTH = 12;

interface Custodian {
  id: string;
  keys: X25519KeyPair;
  vector: bigint[];
}

async function custodians(ids: string[], vectors: bigint[][]): Promise<Custodian[]> {
  return Promise.all(ids.map(async (id, i) => ({ id, keys: await generateEncryptionKey(), vector: vectors[i]! })));
}

function mask(c: Custodian, all: Custodian[], roundId = ROUND): Promise<bigint[]> {
  const peers = all.filter((p) => p.id !== c.id).map((p) => ({ id: p.id, publicKey: p.keys.publicKey }));
  return maskVector(c.vector, { ownId: c.id, ownPrivateKey: c.keys.privateKey, peers, roundId });
}

function plainSum(cs: Custodian[]): bigint[] {
  return Array.from({ length: LENGTH }, (_, i) => cs.reduce((a, c) => a + c.vector[i]!, 0n));
}

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    return e instanceof MedledgerError ? e.code : 'not a MedledgerError';
  }
  return undefined;
}

const zeros = new Array<bigint>(LENGTH).fill(0n);
const big = Array.from({ length: LENGTH }, (_, i) => 1_000_000_000_000n * BigInt(i + 1) - 7n);
const mixed = Array.from({ length: LENGTH }, (_, i) => (i % 2 === 0 ? BigInt(i) : -3_000_000_000_000n * BigInt(i)));
const small = Array.from({ length: LENGTH }, (_, i) => BigInt(i % 5));

describe('x25519SharedSecret', () => {
  it('gives both ends the same 32 bytes', async () => {
    const [a, b] = await Promise.all([generateEncryptionKey(), generateEncryptionKey()]);
    const ab = await x25519SharedSecret(a.privateKey, b.publicKey);
    expect(ab).toHaveLength(32);
    expect(await x25519SharedSecret(b.privateKey, a.publicKey)).toEqual(ab);
  });

  it('refuses a key of the wrong length and a low-order public key', async () => {
    const a = await generateEncryptionKey();
    await expect(x25519SharedSecret(a.privateKey, toBase64Url(new Uint8Array(31)))).rejects.toThrow();
    await expect(x25519SharedSecret(a.privateKey, toBase64Url(new Uint8Array(32)))).rejects.toThrow();
  });
});

describe('pairSeed', () => {
  it('is symmetric and bound to the round and the pair', async () => {
    const [a, b, c] = await custodians(['hosp-a', 'hosp-b', 'hosp-c'], [zeros, zeros, zeros]);
    const seed = (own: Custodian, peer: Custodian, roundId = ROUND) =>
      pairSeed({ ownId: own.id, ownPrivateKey: own.keys.privateKey, peerId: peer.id, peerPublicKey: peer.keys.publicKey, roundId });
    const ab = await seed(a!, b!);
    expect(ab).toHaveLength(32);
    expect(await seed(b!, a!)).toEqual(ab);
    expect(await seed(a!, b!, 'b'.repeat(64))).not.toEqual(ab);
    expect(await seed(a!, c!)).not.toEqual(ab);
    expect(await seed(c!, a!)).toEqual(await seed(a!, c!));
    // The ids are bound too: the same keys under other names give another seed.
    const renamed = await pairSeed({
      ownId: 'hosp-x',
      ownPrivateKey: a!.keys.privateKey,
      peerId: b!.id,
      peerPublicKey: b!.keys.publicKey,
      roundId: ROUND,
    });
    expect(renamed).not.toEqual(ab);
  });

  it('refuses a pair with itself and a bad peer key with BAD_REQUEST', async () => {
    const a = await generateEncryptionKey();
    const o = { ownId: 'hosp-a', ownPrivateKey: a.privateKey, peerPublicKey: a.publicKey, roundId: ROUND };
    expect(await codeOf(() => pairSeed({ ...o, peerId: 'hosp-a' }))).toBe('BAD_REQUEST');
    expect(await codeOf(() => pairSeed({ ...o, peerId: 'hosp-b', peerPublicKey: 'short' }))).toBe('BAD_REQUEST');
  });
});

describe('expandMask', () => {
  const seed = new Uint8Array(32).map((_, i) => i);

  it('is HMAC-SHA256(seed, label ‖ block counter) read as little-endian 64-bit words', () => {
    const label = utf8('medledger/secure-aggregation/v1/mask');
    const block1 = hmac(sha256, seed, concatBytes(label, new Uint8Array([0, 0, 0, 1])));
    const view = new DataView(block1.buffer, block1.byteOffset, 32);
    const mask = expandMask(seed, 6);
    expect(mask).toHaveLength(6);
    expect(mask[4]).toBe(view.getBigUint64(0, true));
    expect(mask[5]).toBe(view.getBigUint64(8, true));
  });

  it('is deterministic, prefix-stable and in [0, 2^64)', () => {
    const long = expandMask(seed, 100);
    expect(expandMask(seed, 7)).toEqual(long.slice(0, 7));
    expect(long.every((x) => x >= 0n && x < 1n << 64n)).toBe(true);
    expect(new Set(long).size).toBe(100);
    expect(expandMask(seed, 0)).toEqual([]);
  });
});

describe('maskVector and unmaskSum, three custodians', () => {
  it('recovers the plain sum, negative entries included', async () => {
    const cs = await custodians(['hosp-a', 'hosp-b', 'hosp-c'], [zeros, big, mixed]);
    const masked = new Map(await Promise.all(cs.map(async (c) => [c.id, await mask(c, cs)] as const)));
    const total = unmaskSum({ participants: cs.map((c) => c.id), masked, revealed: new Map(), length: LENGTH });
    expect(total).toEqual(plainSum(cs));
    expect(total[1]! < 0n).toBe(true);
  });

  it('hides each vector: no entry stays plain, and another round masks every entry differently', async () => {
    const cs = await custodians(['hosp-a', 'hosp-b', 'hosp-c'], [zeros, big, small]);
    for (const c of cs) {
      const m = await mask(c, cs);
      const other = await mask(c, cs, 'c'.repeat(64));
      m.forEach((x, i) => {
        expect(x).not.toBe(c.vector[i]);
        expect(x).not.toBe(other[i]);
      });
    }
    // The all-zero vector's masked entries look uniform: about half have the top bit set.
    const long = await maskVector(new Array<bigint>(2048).fill(0n), {
      ownId: cs[0]!.id,
      ownPrivateKey: cs[0]!.keys.privateKey,
      peers: cs.slice(1).map((p) => ({ id: p.id, publicKey: p.keys.publicKey })),
      roundId: ROUND,
    });
    const high = long.filter((x) => x >= 1n << 63n).length / long.length;
    expect(high).toBeGreaterThan(0.4);
    expect(high).toBeLessThan(0.6);
  });

  it('refuses its own id among the peers, a peer twice, and entries outside 64 bits', async () => {
    const [a, b] = await custodians(['hosp-a', 'hosp-b'], [zeros, zeros]);
    const base = { ownId: a!.id, ownPrivateKey: a!.keys.privateKey, roundId: ROUND };
    const peerB = { id: b!.id, publicKey: b!.keys.publicKey };
    expect(await codeOf(() => maskVector(zeros, { ...base, peers: [{ id: a!.id, publicKey: a!.keys.publicKey }] }))).toBe('BAD_REQUEST');
    expect(await codeOf(() => maskVector(zeros, { ...base, peers: [peerB, peerB] }))).toBe('BAD_REQUEST');
    expect(await codeOf(() => maskVector([1n << 64n], { ...base, peers: [peerB] }))).toBe('BAD_REQUEST');
    expect(await codeOf(() => maskVector([-(1n << 63n) - 1n], { ...base, peers: [peerB] }))).toBe('BAD_REQUEST');
  });
});

describe('unmaskSum with a dropout', () => {
  async function setup() {
    const cs = await custodians(['hosp-a', 'hosp-b', 'hosp-c', 'hosp-d'], [big, mixed, small, big]);
    const masked = new Map(await Promise.all(cs.map(async (c) => [c.id, await mask(c, cs)] as const)));
    const dropped = cs[2]!; // hosp-c masks but never sends: with peers on both sides of it
    masked.delete(dropped.id);
    const survivors = cs.filter((c) => c !== dropped);
    const reveal = async (s: Custodian, roundId = ROUND) =>
      [
        s.id,
        new Map([
          [
            dropped.id,
            await pairSeed({
              ownId: s.id,
              ownPrivateKey: s.keys.privateKey,
              peerId: dropped.id,
              peerPublicKey: dropped.keys.publicKey,
              roundId,
            }),
          ],
        ]),
      ] as const;
    return { cs, masked, dropped, survivors, reveal };
  }

  it('recovers the survivors’ sum from their revealed seeds', async () => {
    const { cs, masked, survivors, reveal } = await setup();
    const revealed = new Map(await Promise.all(survivors.map((s) => reveal(s))));
    const total = unmaskSum({ participants: cs.map((c) => c.id), masked, revealed, length: LENGTH });
    expect(total).toEqual(plainSum(survivors));
    expect(total).not.toEqual(plainSum(cs));
  });

  it('throws ROUND_INCOMPLETE naming the missing seed, and gets a wrong sum from a wrong seed', async () => {
    const { cs, masked, survivors, reveal } = await setup();
    const participants = cs.map((c) => c.id);
    const partial = new Map(await Promise.all(survivors.filter((s) => s.id !== 'hosp-b').map((s) => reveal(s))));
    let error: unknown;
    try {
      unmaskSum({ participants, masked, revealed: partial, length: LENGTH });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MedledgerError);
    expect((error as MedledgerError).code).toBe('ROUND_INCOMPLETE');
    expect((error as MedledgerError).payload).toEqual({ missing: [{ survivor: 'hosp-b', dropped: 'hosp-c' }] });
    expect(await codeOf(() => unmaskSum({ participants, masked, revealed: new Map(), length: LENGTH }))).toBe('ROUND_INCOMPLETE');

    const wrong = new Map(await Promise.all(survivors.map((s) => reveal(s, s.id === 'hosp-d' ? 'e'.repeat(64) : ROUND))));
    expect(unmaskSum({ participants, masked, revealed: wrong, length: LENGTH })).not.toEqual(plainSum(survivors));
  });

  it('refuses a seed revealed for a custodian that did send, or by one that did not', async () => {
    const { cs, masked, survivors, reveal, dropped } = await setup();
    const participants = cs.map((c) => c.id);
    const revealed = new Map(await Promise.all(survivors.map((s) => reveal(s))));
    const [a, b] = survivors;
    const exposing = new Map([...revealed, [a!.id, new Map([...revealed.get(a!.id)!, [b!.id, new Uint8Array(32)]])]]);
    expect(await codeOf(() => unmaskSum({ participants, masked, revealed: exposing, length: LENGTH }))).toBe('BAD_REQUEST');
    const fromDropped = new Map([...revealed, [dropped.id, new Map([[a!.id, new Uint8Array(32)]])]]);
    expect(await codeOf(() => unmaskSum({ participants, masked, revealed: fromDropped, length: LENGTH }))).toBe('BAD_REQUEST');
    expect(await codeOf(() => unmaskSum({ participants, masked, revealed, length: LENGTH + 1 }))).toBe('BAD_REQUEST');
    expect(await codeOf(() => unmaskSum({ participants: [...participants, 'hosp-a'], masked, revealed, length: LENGTH }))).toBe(
      'BAD_REQUEST',
    );
  });
});

describe('encodings', () => {
  it('toSigned reads two’s complement', () => {
    expect(toSigned((1n << 64n) - 1n)).toBe(-1n);
    expect(toSigned(1n << 63n)).toBe(-(1n << 63n));
    expect(toSigned((1n << 63n) - 1n)).toBe((1n << 63n) - 1n);
    expect(toSigned(5n)).toBe(5n);
  });

  it('encodes vectors as 8 little-endian bytes per entry and decodes them strictly', () => {
    expect(encodeVector([1n])).toBe('AQAAAAAAAAA');
    expect(encodeVector([-1n])).toBe('__________8');
    expect(encodeVector([0x0102030405060708n, 0n])).toBe('CAcGBQQDAgEAAAAAAAAAAA');
    const v = [0n, 1n, (1n << 64n) - 1n, 1n << 63n, 123_456_789n];
    expect(decodeVector(encodeVector(v), v.length)).toEqual(v);
    expect(decodeVector(encodeVector([-2n]), 1)).toEqual([(1n << 64n) - 2n]);
    expect(decodeVector('', 0)).toEqual([]);
  });

  it('refuses a wrong length, a non-canonical or foreign character, and out-of-range entries', async () => {
    const text = encodeVector([1n, 2n]);
    expect(await codeOf(() => decodeVector(text, 1))).toBe('BAD_REQUEST');
    expect(await codeOf(() => decodeVector(text + 'A', 2))).toBe('BAD_REQUEST');
    expect(await codeOf(() => decodeVector('AQAAAAAAAAB', 1))).toBe('BAD_REQUEST');
    expect(await codeOf(() => decodeVector('AQAAAAAAAA=', 1))).toBe('BAD_REQUEST');
    expect(await codeOf(() => encodeVector([1n << 64n]))).toBe('BAD_REQUEST');
  });

  it('round-trips revealed seeds through JSON, strictly', async () => {
    const seeds = new Map([
      ['hosp-d', new Uint8Array(32).fill(7)],
      ['hosp-b', new Uint8Array(32).fill(255)],
    ]);
    const json = encodeSeeds(seeds);
    expect(Object.keys(json)).toEqual(['hosp-b', 'hosp-d']);
    expect(decodeSeeds(JSON.parse(JSON.stringify(json)))).toEqual(new Map([...seeds].reverse()));
    expect(await codeOf(() => encodeSeeds(new Map([['hosp-b', new Uint8Array(31)]])))).toBe('BAD_REQUEST');
    for (const bad of [null, [], 'x', { 'hosp-b': 5 }, { 'hosp-b': toBase64Url(new Uint8Array(31)) }, { 'hosp-b': 'A'.repeat(42) + 'B' }]) {
      expect(await codeOf(() => decodeSeeds(bad)), JSON.stringify(bad)).toBe('BAD_REQUEST');
    }
  });
});
