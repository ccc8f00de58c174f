/**
 * Secure aggregation with pairwise masks (Bonawitz et al., "Practical Secure Aggregation for
 * Privacy-Preserving Machine Learning", CCS 2017, §4 without the double mask): each custodian adds
 * to its vector, modulo 2^64, one mask per peer derived from the X25519 secret of their long-term
 * encryption keys and the round id. For a pair u < v, u adds the mask and v subtracts it, so the
 * masks cancel in the sum of all vectors and the releaser learns the total, not any one vector.
 *
 * Dropouts: when a custodian never sends its vector, each survivor reveals its pair seed with it,
 * and the releaser removes the survivors' masks with it. A seed with a custodian whose vector the
 * releaser holds must never be revealed: that vector would then be unmasked (the double mask of
 * the paper is what guards against a late vector; here the caller's round protocol must: no vector
 * is taken after seeds may be revealed). How many survivors a total needs before it may be released
 * is the caller's policy (with one survivor the "total" is that custodian's own vector).
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromBase64Url, toBase64Url, utf8 } from '../codec/bytes.ts';
import { hmacSha256 } from '../crypto/hash.ts';
import { x25519SharedSecret } from '../crypto/x25519.ts';
import { MedledgerError } from '../errors.ts';

export const SEED_LENGTH = 32;
/** Vectors longer than this are refused (2^20 entries, 8 MiB). */
export const MAX_VECTOR_ENTRIES = 1 << 20;
const MODULUS = 1n << 64n;
const MIN_SIGNED = -(1n << 63n);
const SEED_SALT = utf8('medledger/secure-aggregation/v1/pair-seed');
const MASK_LABEL = utf8('medledger/secure-aggregation/v1/mask');

function invalid(details: string, payload?: Record<string, unknown>): never {
  throw new MedledgerError('BAD_REQUEST', payload === undefined ? { details } : { details, payload });
}

/** An entry modulo 2^64 read as a two's-complement signed 64-bit integer. */
export function toSigned(x: bigint): bigint {
  return BigInt.asIntN(64, x);
}

/** An entry in [-2^63, 2^64) taken modulo 2^64; anything else is refused rather than silently wrapped. */
function toRing(x: bigint): bigint {
  if (typeof x !== 'bigint' || x < MIN_SIGNED || x >= MODULUS) invalid('A vector entry is not a 64-bit integer.');
  return BigInt.asUintN(64, x);
}

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_VECTOR_ENTRIES) invalid('The vector length is out of range.');
}

function checkId(id: string, what: string): void {
  if (typeof id !== 'string' || id.length === 0) invalid(`${what} must be a non-empty string.`);
}

/** Length-prefixed (4 bytes, big-endian) UTF-8 strings: no two lists encode alike. */
function encodeList(parts: readonly string[]): Uint8Array {
  const encoded = parts.map(utf8);
  const out = new Uint8Array(encoded.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let off = 0;
  for (const p of encoded) {
    view.setUint32(off, p.length);
    out.set(p, off + 4);
    off += 4 + p.length;
  }
  return out;
}

export interface PairSeedParameters {
  ownId: string;
  /** raw X25519 private key, base64url */
  ownPrivateKey: string;
  peerId: string;
  /** raw X25519 public key, base64url */
  peerPublicKey: string;
  roundId: string;
}

/**
 * The 32-byte seed a pair of custodians shares for one round: HKDF-SHA256 (RFC 5869) of their
 * X25519 secret, with a versioned domain string as salt and the round id and both ids (the
 * smaller first) as info. Both ends derive the same seed; another round or pair gets another.
 */
export async function pairSeed(o: PairSeedParameters): Promise<Uint8Array> {
  checkId(o.ownId, 'ownId');
  checkId(o.peerId, 'peerId');
  checkId(o.roundId, 'roundId');
  if (o.ownId === o.peerId) invalid('A custodian has no pair seed with itself.');
  let secret: Uint8Array;
  try {
    secret = await x25519SharedSecret(o.ownPrivateKey, o.peerPublicKey);
  } catch (cause) {
    throw new MedledgerError('BAD_REQUEST', { details: `No X25519 secret with ${o.peerId}'s key.`, payload: { peerId: o.peerId }, cause });
  }
  const [low, high] = o.ownId < o.peerId ? [o.ownId, o.peerId] : [o.peerId, o.ownId];
  return hkdf(sha256, secret, SEED_SALT, encodeList([o.roundId, low, high]), SEED_LENGTH);
}

/**
 * Expands a seed into `length` entries uniform modulo 2^64: HMAC-SHA256(seed, label ‖ counter)
 * with a 32-bit big-endian block counter, each 32-byte block read as four little-endian words.
 */
export function expandMask(seed: Uint8Array, length: number): bigint[] {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) invalid('A pair seed is 32 bytes.');
  checkLength(length);
  const out = new Array<bigint>(length);
  const message = new Uint8Array(MASK_LABEL.length + 4);
  message.set(MASK_LABEL);
  const counter = new DataView(message.buffer, MASK_LABEL.length, 4);
  for (let block = 0; block * 4 < length; block++) {
    counter.setUint32(0, block);
    const bytes = hmacSha256(seed, message);
    const words = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let j = 0; j < 4 && block * 4 + j < length; j++) out[block * 4 + j] = words.getBigUint64(8 * j, true);
  }
  return out;
}

export interface Peer {
  id: string;
  /** raw X25519 public key, base64url */
  publicKey: string;
}

export interface MaskVectorParameters {
  ownId: string;
  ownPrivateKey: string;
  /** every other custodian of the round (not this one) */
  peers: readonly Peer[];
  roundId: string;
}

/**
 * Masks a vector (entries in [-2^63, 2^64), negatives in two's complement) for a round: adds the
 * pair mask of each peer whose id sorts after the own id and subtracts that of each peer before
 * it. Returns entries in [0, 2^64).
 */
export async function maskVector(vector: readonly bigint[], o: MaskVectorParameters): Promise<bigint[]> {
  checkLength(vector.length);
  const out = vector.map(toRing);
  const ids = new Set<string>();
  for (const peer of o.peers) {
    checkId(peer.id, 'A peer id');
    if (peer.id === o.ownId) invalid('The peers must not include the custodian itself.');
    if (ids.has(peer.id)) invalid('A peer is listed twice.', { peerId: peer.id });
    ids.add(peer.id);
  }
  const seeds = await Promise.all(
    o.peers.map((peer) =>
      pairSeed({ ownId: o.ownId, ownPrivateKey: o.ownPrivateKey, peerId: peer.id, peerPublicKey: peer.publicKey, roundId: o.roundId }),
    ),
  );
  o.peers.forEach((peer, p) => {
    const mask = expandMask(seeds[p]!, out.length);
    const add = peer.id > o.ownId;
    for (let i = 0; i < out.length; i++) out[i] = BigInt.asUintN(64, add ? out[i]! + mask[i]! : out[i]! - mask[i]!);
  });
  return out;
}

export interface UnmaskSumParameters {
  /** every custodian the round was opened for, whether or not it sent a vector */
  participants: readonly string[];
  /** custodian -> its masked vector; a participant without one has dropped out */
  masked: ReadonlyMap<string, readonly bigint[]>;
  /** surviving custodian -> (dropped custodian -> their pair seed) */
  revealed: ReadonlyMap<string, ReadonlyMap<string, Uint8Array>>;
  length: number;
}

/**
 * Sums the survivors' masked vectors and removes the masks they share with dropped custodians,
 * using the seed every survivor revealed for every dropped one. Returns the total of the
 * survivors' plain vectors, each entry as a signed 64-bit integer (correct while the true total
 * lies in [-2^63, 2^63)). Throws ROUND_INCOMPLETE, with the missing (survivor, dropped) pairs,
 * when a seed is missing; BAD_REQUEST on anything malformed, including a revealed seed with a
 * custodian that did send its vector.
 */
export function unmaskSum(o: UnmaskSumParameters): bigint[] {
  checkLength(o.length);
  const participants = new Set(o.participants);
  if (participants.size !== o.participants.length) invalid('A participant is listed twice.');
  for (const id of participants) checkId(id, 'A participant id');
  for (const id of o.masked.keys()) if (!participants.has(id)) invalid('A masked vector comes from outside the round.', { custodian: id });
  const survivors = o.participants.filter((id) => o.masked.has(id));
  const dropped = o.participants.filter((id) => !o.masked.has(id));
  if (survivors.length === 0) invalid('No custodian sent a vector.');

  const total = new Array<bigint>(o.length).fill(0n);
  for (const id of survivors) {
    const vector = o.masked.get(id)!;
    if (vector.length !== o.length) invalid('A masked vector has the wrong length.', { custodian: id });
    for (let i = 0; i < o.length; i++) total[i] = BigInt.asUintN(64, total[i]! + toRing(vector[i]!));
  }

  for (const [survivor, seeds] of o.revealed) {
    if (!o.masked.has(survivor)) invalid('Seeds are revealed by a custodian that sent no vector.', { custodian: survivor });
    for (const peer of seeds.keys()) {
      if (!dropped.includes(peer)) invalid('A seed is revealed for a custodian that did not drop out.', { custodian: survivor, peer });
    }
  }
  const missing: { survivor: string; dropped: string }[] = [];
  for (const d of dropped)
    for (const s of survivors) if (o.revealed.get(s)?.get(d) === undefined) missing.push({ survivor: s, dropped: d });
  if (missing.length > 0) {
    throw new MedledgerError('ROUND_INCOMPLETE', { details: `${missing.length} revealed seed(s) missing.`, payload: { missing } });
  }

  for (const d of dropped) {
    for (const s of survivors) {
      // The survivor added the mask when the dropped id sorts after its own: take it back out.
      const mask = expandMask(o.revealed.get(s)!.get(d)!, o.length);
      const added = d > s;
      for (let i = 0; i < o.length; i++) total[i] = BigInt.asUintN(64, added ? total[i]! - mask[i]! : total[i]! + mask[i]!);
    }
  }
  return total.map(toSigned);
}

/** base64url of 8 little-endian bytes per entry (entries in [-2^63, 2^64), taken modulo 2^64). */
export function encodeVector(vector: readonly bigint[]): string {
  checkLength(vector.length);
  const bytes = new Uint8Array(8 * vector.length);
  const view = new DataView(bytes.buffer);
  vector.forEach((x, i) => view.setBigUint64(8 * i, toRing(x), true));
  return toBase64Url(bytes);
}

/** Decodes `encodeVector`'s output of exactly `expectedLength` entries, each in [0, 2^64). */
export function decodeVector(text: string, expectedLength: number): bigint[] {
  checkLength(expectedLength);
  if (typeof text !== 'string' || text.length !== Math.ceil((8 * expectedLength * 4) / 3)) {
    invalid(`An encoded vector of ${expectedLength} entries has ${Math.ceil((8 * expectedLength * 4) / 3)} characters.`);
  }
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(text);
  } catch (cause) {
    throw new MedledgerError('BAD_REQUEST', { details: 'The encoded vector is not canonical base64url.', cause });
  }
  if (bytes.length !== 8 * expectedLength) invalid('The encoded vector has the wrong length.');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: expectedLength }, (_, i) => view.getBigUint64(8 * i, true));
}

/** Revealed seeds as a JSON object: dropped custodian id -> base64url seed, ids in sorted order. */
export function encodeSeeds(seeds: ReadonlyMap<string, Uint8Array>): Record<string, string> {
  const entries = [...seeds].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [id, seed] of entries) {
    checkId(id, 'A dropped custodian id');
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) invalid('A pair seed is 32 bytes.');
  }
  // fromEntries defines own properties, so even an id like "__proto__" stays data.
  return Object.fromEntries(entries.map(([id, seed]) => [id, toBase64Url(seed)]));
}

/** Parses `encodeSeeds`'s output (or the JSON of it), strictly: a plain object of 32-byte base64url seeds. */
export function decodeSeeds(value: unknown): Map<string, Uint8Array> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid('Revealed seeds are a JSON object.');
  const out = new Map<string, Uint8Array>();
  for (const [id, text] of Object.entries(value)) {
    checkId(id, 'A dropped custodian id');
    if (typeof text !== 'string' || text.length !== 43) invalid('A revealed seed is 32 bytes in base64url.', { dropped: id });
    let seed: Uint8Array;
    try {
      seed = fromBase64Url(text);
    } catch (cause) {
      throw new MedledgerError('BAD_REQUEST', { details: 'A revealed seed is not canonical base64url.', payload: { dropped: id }, cause });
    }
    out.set(id, seed);
  }
  return out;
}
