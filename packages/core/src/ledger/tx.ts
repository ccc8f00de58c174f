/**
 * The transaction envelope (DESIGN §4): `{ v, network, type, body, author, nonce, createdAt,
 * signature }` in canonical JSON. `txId = SHA-256(canonical bytes without the signature)`; the
 * author signs a domain-separated message over the txId with Ed25519.
 */
import { canonicalBytes, type JsonObject } from '../codec/canonical-json.ts';
import { concatBytes, fromBase64Url, fromHex, toBase64Url, utf8 } from '../codec/bytes.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { keyId, sign, verify } from '../crypto/ed25519.ts';
import { randomNonce } from '../crypto/random.ts';
import { Type } from '@sinclair/typebox';
import { MedledgerError } from '../errors.ts';
import { isTxType, type TxType } from './tx-types.ts';

export interface UnsignedTx {
  v: 1;
  /** network id (from genesis): a tx signed for one network is void on another */
  network: string;
  type: TxType;
  body: JsonObject;
  /** key id of the author's signing key */
  author: string;
  /** unique per author; replay is refused by (author, nonce) */
  nonce: string;
  /** the author's clock, ms since the epoch; contracts use the block time, never this */
  createdAt: number;
}

export interface Tx extends UnsignedTx {
  /** base64url Ed25519 signature over `txSigningMessage(txId)` */
  signature: string;
}

/** The envelope as JSON Schema, for API descriptions; `decodeTx` is what enforces it. */
export const TxEnvelopeSchema = Type.Object(
  {
    v: Type.Literal(1),
    network: Type.String({ pattern: '^[0-9a-f]{32}$', description: 'network id (first 128 bits of the genesis hash)' }),
    type: Type.String({ description: 'transaction type, e.g. records.register' }),
    body: Type.Record(Type.String(), Type.Unknown(), { description: 'the type’s body' }),
    author: Type.String({ pattern: '^k[0-9a-f]{40}$', description: 'key id of the author' }),
    nonce: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
    createdAt: Type.Integer({ minimum: 0, description: 'author’s clock, ms; informative only' }),
    signature: Type.String({ pattern: '^[A-Za-z0-9_-]{85}[AQgw]$', description: 'Ed25519 over "medledger/tx/v1\\n" || txId' }),
  },
  { additionalProperties: false },
);

const ENVELOPE_KEYS = ['v', 'network', 'type', 'body', 'author', 'nonce', 'createdAt', 'signature'] as const;
const KEY_ID = /^k[0-9a-f]{40}$/;
const NONCE = /^[A-Za-z0-9_-]{1,64}$/;
const SIGNING_DOMAIN = utf8('medledger/tx/v1\n');
/** 64 bytes in canonical base64url (no stray padding bits), so every accepted text decodes. */
const SIGNATURE_RE = /^[A-Za-z0-9_-]{85}[AQgw]$/;

export function txIdOf(tx: UnsignedTx): string {
  return sha256Hex(unsignedBytes(tx));
}

function unsignedBytes(tx: UnsignedTx): Uint8Array {
  const { v, network, type, body, author, nonce, createdAt } = tx;
  return canonicalBytes({ v, network, type, body, author, nonce, createdAt });
}

/** Canonical size of a signed envelope: the unsigned part plus `,"signature":"…"`. */
const SIGNATURE_OVERHEAD = ',"signature":""'.length + 86;

export function txSigningMessage(txId: string): Uint8Array {
  return concatBytes(SIGNING_DOMAIN, fromHex(txId));
}

export interface Signer {
  publicKey: string;
  privateKey: string;
}

export interface BuildTxParameters {
  network: string;
  type: TxType;
  body: JsonObject;
  signer: Signer;
  nonce?: string;
  createdAt?: number;
}

/** Builds and signs a transaction. `createdAt` defaults to now; `nonce` to 128 random bits. */
export async function buildTx(p: BuildTxParameters): Promise<{ tx: Tx; txId: string }> {
  const unsigned: UnsignedTx = {
    v: 1,
    network: p.network,
    type: p.type,
    body: p.body,
    author: keyId(p.signer.publicKey),
    nonce: p.nonce ?? randomNonce(),
    createdAt: p.createdAt ?? Date.now(),
  };
  const txId = txIdOf(unsigned);
  const signature = toBase64Url(await sign(p.signer.privateKey, txSigningMessage(txId)));
  return { tx: { ...unsigned, signature }, txId };
}

export async function verifyTxSignature(tx: Tx, txId: string, publicKey: string): Promise<boolean> {
  let sig: Uint8Array;
  try {
    sig = fromBase64Url(tx.signature);
  } catch {
    return false;
  }
  return verify(publicKey, txSigningMessage(txId), sig);
}

/**
 * Checks that a parsed JSON value is a well-formed envelope and returns it typed, with its id
 * and canonical size. Refuses unknown envelope fields so a signature never covers less than
 * what is stored.
 */
export function decodeTx(value: unknown, maxBytes: number): { tx: Tx; txId: string; size: number } {
  const malformed = (details: string): MedledgerError => new MedledgerError('TX_MALFORMED', { details });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('A transaction is a JSON object.');
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(ENVELOPE_KEYS as readonly string[]).includes(k)) throw malformed(`Unknown envelope field "${k.slice(0, 40)}".`);
  }
  if (o['v'] !== 1) throw malformed('Envelope version must be 1.');
  if (typeof o['network'] !== 'string' || !/^[0-9a-f]{32}$/.test(o['network'])) throw malformed('network must be a network id.');
  if (typeof o['type'] !== 'string') throw malformed('type must be a string.');
  if (!isTxType(o['type'])) throw new MedledgerError('TX_UNKNOWN_TYPE', { payload: { type: o['type'].slice(0, 64) } });
  const body = o['body'];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw malformed('body must be a JSON object.');
  if (typeof o['author'] !== 'string' || !KEY_ID.test(o['author'])) throw malformed('author must be a key id.');
  if (typeof o['nonce'] !== 'string' || !NONCE.test(o['nonce'])) throw malformed('nonce must be 1–64 characters of [A-Za-z0-9_-].');
  if (typeof o['createdAt'] !== 'number' || !Number.isSafeInteger(o['createdAt']) || o['createdAt'] < 0) {
    throw malformed('createdAt must be a non-negative integer of milliseconds.');
  }
  if (typeof o['signature'] !== 'string' || !SIGNATURE_RE.test(o['signature'])) {
    throw malformed('signature must be a base64url Ed25519 signature.');
  }
  const tx = value as Tx;
  // One canonicalisation gives both the id and the size ("signature" sorts last of the keys).
  const unsigned = unsignedBytes(tx);
  const size = unsigned.length + SIGNATURE_OVERHEAD;
  if (size > maxBytes) throw new MedledgerError('TX_TOO_LARGE', { payload: { size, maxBytes } });
  return { tx, txId: sha256Hex(unsigned), size };
}
