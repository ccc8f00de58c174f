/** The transaction envelope: build, id, signature, and what `decodeTx` refuses. */
import { beforeAll, describe, expect, it } from 'vitest';
import { toBase64Url } from '../codec/bytes.ts';
import { canonicalBytes, canonicalJson, type JsonObject } from '../codec/canonical-json.ts';
import { generateSigningKey, keyId, type Ed25519KeyPair } from '../crypto/ed25519.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { MedledgerError } from '../errors.ts';
import { buildTx, decodeTx, txIdOf, txSigningMessage, verifyTxSignature, type Tx, type UnsignedTx } from './tx.ts';

const NETWORK = '0123456789abcdef0123456789abcdef';
const OTHER_NETWORK = 'fedcba9876543210fedcba9876543210';
const MAX = 256 * 1024;

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof MedledgerError) return e.code;
    throw e;
  }
  return undefined;
}

let signer: Ed25519KeyPair;
let other: Ed25519KeyPair;
let built: { tx: Tx; txId: string };

const body: JsonObject = { localId: 'dr-kim', role: 'doctor', nested: { list: [1, 'two', null], flag: true } };

beforeAll(async () => {
  signer = await generateSigningKey();
  other = await generateSigningKey();
  built = await buildTx({ network: NETWORK, type: 'identity.enrolStaff', body, signer, nonce: 'nonce-1', createdAt: 1_735_689_600_000 });
});

function without(o: Record<string, unknown>, key: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
}

/** A JSON copy of the built envelope, as it arrives over the wire. */
function wire(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(built.tx)) as Record<string, unknown>;
}

/** Each envelope field changed to another valid value. */
function alterations(tx: Tx): [string, Tx][] {
  return [
    ['network', { ...tx, network: OTHER_NETWORK }],
    ['type', { ...tx, type: 'identity.revokeStaff' }],
    ['body (value)', { ...tx, body: { ...tx.body, localId: 'dr-kin' } }],
    ['body (nested)', { ...tx, body: { ...tx.body, nested: { list: [1, 'two', null], flag: false } } }],
    ['body (added key)', { ...tx, body: { ...tx.body, extra: 1 } }],
    ['author', { ...tx, author: keyId(other.publicKey) }],
    ['nonce', { ...tx, nonce: 'nonce-2' }],
    ['createdAt', { ...tx, createdAt: tx.createdAt + 1 }],
  ];
}

describe('buildTx', () => {
  it('fills the envelope: v 1, the author key id, the given nonce and time', () => {
    const { tx } = built;
    expect(tx.v).toBe(1);
    expect(tx.network).toBe(NETWORK);
    expect(tx.type).toBe('identity.enrolStaff');
    expect(tx.body).toEqual(body);
    expect(tx.author).toBe(keyId(signer.publicKey));
    expect(tx.nonce).toBe('nonce-1');
    expect(tx.createdAt).toBe(1_735_689_600_000);
    expect(tx.signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
  });

  it('makes the txId the SHA-256 of the canonical envelope without the signature', () => {
    expect(built.txId).toBe(sha256Hex(canonicalBytes(without({ ...built.tx }, 'signature'))));
    expect(built.txId).toBe(txIdOf(built.tx));
    expect(built.txId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives a random 128-bit nonce when none is given, so two builds differ', async () => {
    const a = await buildTx({ network: NETWORK, type: 'identity.enrolStaff', body, signer, createdAt: 1 });
    const b = await buildTx({ network: NETWORK, type: 'identity.enrolStaff', body, signer, createdAt: 1 });
    expect(a.tx.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(a.txId).not.toBe(b.txId);
  });

  it('is deterministic for a fixed nonce and time', async () => {
    const again = await buildTx({
      network: NETWORK,
      type: 'identity.enrolStaff',
      body,
      signer,
      nonce: 'nonce-1',
      createdAt: 1_735_689_600_000,
    });
    expect(again).toEqual(built);
  });

  it('builds, then decodes to the same transaction and id', () => {
    const decoded = decodeTx(wire(), MAX);
    expect(decoded.tx).toEqual(built.tx);
    expect(decoded.txId).toBe(built.txId);
    expect(decoded.size).toBe(canonicalJson(built.tx).length);
  });
});

describe('txIdOf', () => {
  it('does not depend on key order or on the signature', () => {
    const reordered = JSON.parse(canonicalJson(built.tx)) as Tx;
    expect(txIdOf(reordered)).toBe(built.txId);
    expect(txIdOf({ ...built.tx, signature: 'A'.repeat(86) } as Tx)).toBe(built.txId);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7])('changes when field #%i changes', (i) => {
    const [name, altered] = alterations(built.tx)[i]!;
    expect(txIdOf(altered), name).not.toBe(built.txId);
  });

  it('changes with the envelope version', () => {
    expect(txIdOf({ ...built.tx, v: 2 } as unknown as UnsignedTx)).not.toBe(built.txId);
  });
});

describe('verifyTxSignature', () => {
  it('accepts the signed transaction under the author key', async () => {
    expect(await verifyTxSignature(built.tx, built.txId, signer.publicKey)).toBe(true);
  });

  it('signs the domain-separated txId', () => {
    const message = txSigningMessage(built.txId);
    expect(new TextDecoder().decode(message.subarray(0, 16))).toBe('medledger/tx/v1\n');
    expect(message.length).toBe(16 + 32);
  });

  it('rejects the transaction under another key', async () => {
    expect(await verifyTxSignature(built.tx, built.txId, other.publicKey)).toBe(false);
  });

  it('rejects a transaction with any envelope field altered', async () => {
    for (const [name, altered] of alterations(built.tx)) {
      expect(await verifyTxSignature(altered, txIdOf(altered), signer.publicKey), name).toBe(false);
    }
  });

  it('rejects an altered, truncated or non-base64url signature', async () => {
    const sig = built.tx.signature;
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    expect(await verifyTxSignature({ ...built.tx, signature: flipped }, built.txId, signer.publicKey)).toBe(false);
    expect(await verifyTxSignature({ ...built.tx, signature: sig.slice(0, 84) }, built.txId, signer.publicKey)).toBe(false);
    expect(await verifyTxSignature({ ...built.tx, signature: '!'.repeat(86) }, built.txId, signer.publicKey)).toBe(false);
    expect(await verifyTxSignature({ ...built.tx, signature: '' }, built.txId, signer.publicKey)).toBe(false);
  });

  it('rejects a signature over another txId', async () => {
    const { txId } = await buildTx({ network: NETWORK, type: 'identity.enrolStaff', body, signer, nonce: 'nonce-9', createdAt: 1 });
    expect(await verifyTxSignature(built.tx, txId, signer.publicKey)).toBe(false);
  });
});

describe('decodeTx refuses', () => {
  const malformed: readonly [string, (o: Record<string, unknown>) => unknown][] = [
    ['an array', (o) => [o]],
    ['null', () => null],
    ['a string', () => 'tx'],
    ['a number', () => 1],
    ['an unknown envelope field', (o) => ({ ...o, extra: 1 })],
    ['a "__proto__" envelope field', (o) => JSON.parse(JSON.stringify(o).replace('{', '{"__proto__":{},')) as unknown],
    ['v missing', (o) => without(o, 'v')],
    ['v 2', (o) => ({ ...o, v: 2 })],
    ['v "1"', (o) => ({ ...o, v: '1' })],
    ['network missing', (o) => without(o, 'network')],
    ['a short network id', (o) => ({ ...o, network: NETWORK.slice(1) })],
    ['an upper-case network id', (o) => ({ ...o, network: NETWORK.toUpperCase() })],
    ['a numeric network', (o) => ({ ...o, network: 1 })],
    ['type not a string', (o) => ({ ...o, type: 7 })],
    ['body missing', (o) => without(o, 'body')],
    ['body an array', (o) => ({ ...o, body: [] })],
    ['body null', (o) => ({ ...o, body: null })],
    ['body a string', (o) => ({ ...o, body: '{}' })],
    ['author missing', (o) => without(o, 'author')],
    ['author not a key id', (o) => ({ ...o, author: 'hosp-a' })],
    ['author in upper case', (o) => ({ ...o, author: String(o['author']).toUpperCase() })],
    ['author one digit short', (o) => ({ ...o, author: String(o['author']).slice(0, 40) })],
    ['nonce missing', (o) => without(o, 'nonce')],
    ['an empty nonce', (o) => ({ ...o, nonce: '' })],
    ['a nonce of 65 characters', (o) => ({ ...o, nonce: 'a'.repeat(65) })],
    ['a nonce with a space', (o) => ({ ...o, nonce: 'a b' })],
    ['a numeric nonce', (o) => ({ ...o, nonce: 5 })],
    ['createdAt missing', (o) => without(o, 'createdAt')],
    ['a negative createdAt', (o) => ({ ...o, createdAt: -1 })],
    ['a fractional createdAt', (o) => ({ ...o, createdAt: 1.5 })],
    ['an unsafe createdAt', (o) => ({ ...o, createdAt: 2 ** 53 })],
    ['a string createdAt', (o) => ({ ...o, createdAt: '1' })],
    ['signature missing', (o) => without(o, 'signature')],
    ['a signature of 85 characters', (o) => ({ ...o, signature: String(o['signature']).slice(1) })],
    ['a signature of 87 characters', (o) => ({ ...o, signature: String(o['signature']) + 'A' })],
    ['a signature in base64 (not url)', (o) => ({ ...o, signature: '+' + String(o['signature']).slice(1) })],
    ['a padded signature', (o) => ({ ...o, signature: String(o['signature']).slice(2) + '==' })],
    ['a numeric signature', (o) => ({ ...o, signature: 0 })],
  ];

  it.each(malformed)('%s with TX_MALFORMED', (_name, mutate) => {
    expect(thrownCode(() => decodeTx(mutate(wire()), MAX))).toBe('TX_MALFORMED');
  });

  it('an unknown type with TX_UNKNOWN_TYPE, naming it', () => {
    try {
      decodeTx({ ...wire(), type: 'records.delete' }, MAX);
      expect.unreachable();
    } catch (e) {
      expect((e as MedledgerError).code).toBe('TX_UNKNOWN_TYPE');
      expect((e as MedledgerError).payload).toEqual({ type: 'records.delete' });
    }
    expect(thrownCode(() => decodeTx({ ...wire(), type: '__proto__' }, MAX))).toBe('TX_UNKNOWN_TYPE');
    expect(thrownCode(() => decodeTx({ ...wire(), type: 'toString' }, MAX))).toBe('TX_UNKNOWN_TYPE');
  });

  it('a transaction larger than the limit with TX_TOO_LARGE, giving the sizes', () => {
    const size = canonicalBytes(built.tx).length;
    expect(decodeTx(wire(), size).size).toBe(size);
    try {
      decodeTx(wire(), size - 1);
      expect.unreachable();
    } catch (e) {
      expect((e as MedledgerError).code).toBe('TX_TOO_LARGE');
      expect((e as MedledgerError).payload).toEqual({ size, maxBytes: size - 1 });
    }
    const big = { ...wire(), body: { note: 'x'.repeat(MAX) } };
    expect(thrownCode(() => decodeTx(big, MAX))).toBe('TX_TOO_LARGE');
  });

  it('counts the size in UTF-8 bytes, not UTF-16 code units', () => {
    const text = '€'.repeat(100); // 3 bytes each in UTF-8, 1 code unit each in JavaScript
    const tx = { ...wire(), body: { note: text } };
    const size = new TextEncoder().encode(canonicalJson(tx)).length;
    expect(decodeTx(tx, size).size).toBe(size);
    expect(thrownCode(() => decodeTx(tx, size - 1))).toBe('TX_TOO_LARGE');
  });

  it('does not check the signature (that is execution’s job) but keeps the signed id', () => {
    const forged = { ...wire(), signature: toBase64Url(new Uint8Array(64)) };
    expect(decodeTx(forged, MAX).txId).toBe(built.txId);
  });
});
