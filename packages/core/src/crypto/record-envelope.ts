/**
 * Record encryption (DESIGN §6): each record gets a fresh 256-bit data key and is sealed with
 * AES-256-GCM; the data key is wrapped with HPKE (RFC 9180 base mode, DHKEM(X25519,
 * HKDF-SHA256), HKDF-SHA256, AES-256-GCM; the `@hpke/core` library) to each recipient's X25519
 * key. Ciphertext layout: 12-byte IV || GCM output. Envelope layout: 32-byte enc || wrapped key.
 */
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { concatBytes, fromBase64Url, toBase64Url, utf8 } from '../codec/bytes.ts';
import { MedledgerError } from '../errors.ts';
import { randomBytes } from './random.ts';
import { decodeKey } from './ed25519.ts';

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
/** HPKE `info`: binds a wrapped key to its use, so it cannot be replayed as anything else. */
const WRAP_INFO = utf8('medledger/data-key/v1');
const ENC_LENGTH = 32;

function buf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

// Return type inferred: CryptoKey is typed differently by the DOM and Node libraries.
function aesKey(dataKey: Uint8Array, usage: 'encrypt' | 'decrypt') {
  return globalThis.crypto.subtle.importKey('raw', buf(dataKey), { name: 'AES-GCM' }, false, [usage]);
}

export function newDataKey(): Uint8Array {
  return randomBytes(32);
}

/** AES-256-GCM with a random 96-bit IV; `aad` binds the ciphertext to its context. */
export async function encryptWithDataKey(dataKey: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const iv = randomBytes(12);
  const ct = await globalThis.crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: buf(iv), additionalData: buf(aad) },
    await aesKey(dataKey, 'encrypt'),
    buf(plaintext),
  );
  return concatBytes(iv, new Uint8Array(ct));
}

/** Opens a ciphertext; a tampered one fails with RECORD_INTEGRITY. */
export async function decryptWithDataKey(dataKey: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  if (ciphertext.length < 28) throw new MedledgerError('RECORD_INTEGRITY', { details: 'Ciphertext too short.' });
  try {
    const pt = await globalThis.crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: buf(ciphertext.subarray(0, 12)), additionalData: buf(aad) },
      await aesKey(dataKey, 'decrypt'),
      buf(ciphertext.subarray(12)),
    );
    return new Uint8Array(pt);
  } catch (cause) {
    throw new MedledgerError('RECORD_INTEGRITY', { cause });
  }
}

/** Wraps a data key to a recipient's X25519 public key (base64url). */
export async function wrapDataKey(dataKey: Uint8Array, recipientPublicKey: string): Promise<string> {
  const pk = await suite.kem.importKey('raw', buf(decodeKey(recipientPublicKey)), true);
  const { ct, enc } = await suite.seal({ recipientPublicKey: pk, info: buf(WRAP_INFO) }, buf(dataKey));
  return toBase64Url(concatBytes(new Uint8Array(enc), new Uint8Array(ct)));
}

/** A recipient's key pair as HPKE takes it (typed by @hpke/core, which the DOM and Node libraries agree on). */
export type RecipientKeyPair = Extract<Parameters<typeof suite.open>[0]['recipientKey'], { privateKey: unknown }>;

/**
 * Where a private key that must not exist as bytes is found: a browser keeps its X25519 key as a
 * non-extractable WebCrypto key and passes a handle in place of the raw key; this resolves the
 * handle to the key pair. By default nothing resolves and keys are raw base64url.
 */
let recipientKeyResolver: (privateKey: string) => RecipientKeyPair | undefined = () => undefined;

export function setRecipientKeyResolver(resolve: (privateKey: string) => RecipientKeyPair | undefined): void {
  recipientKeyResolver = resolve;
}

async function recipientKey(privateKey: string): Promise<Parameters<typeof suite.open>[0]['recipientKey']> {
  return recipientKeyResolver(privateKey) ?? (await suite.kem.importKey('raw', buf(fromBase64Url(privateKey)), false));
}

/** Unwraps a data key with the recipient's X25519 private key (raw, base64url, or a resolvable handle). */
export async function unwrapDataKey(envelope: string, recipientPrivateKey: string): Promise<Uint8Array> {
  try {
    const bytes = fromBase64Url(envelope);
    const sk = await recipientKey(recipientPrivateKey);
    const pt = await suite.open(
      { recipientKey: sk, enc: buf(bytes.subarray(0, ENC_LENGTH)), info: buf(WRAP_INFO) },
      buf(bytes.subarray(ENC_LENGTH)),
    );
    return new Uint8Array(pt);
  } catch (cause) {
    throw new MedledgerError('RECORD_INTEGRITY', { details: 'The key envelope does not open with this key.', cause });
  }
}

/**
 * Seals a short message (a masked share, revealed seeds, a study key) to one recipient with HPKE;
 * `info` names its use so it cannot be opened as anything else.
 */
export async function sealTo(plaintext: Uint8Array, recipientPublicKey: string, info: string): Promise<string> {
  const pk = await suite.kem.importKey('raw', buf(decodeKey(recipientPublicKey)), true);
  const { ct, enc } = await suite.seal({ recipientPublicKey: pk, info: buf(utf8(info)) }, buf(plaintext));
  return toBase64Url(concatBytes(new Uint8Array(enc), new Uint8Array(ct)));
}

/** Opens what `sealTo` sealed with the same `info`; anything else fails with RECORD_INTEGRITY. */
export async function openSealed(envelope: string, recipientPrivateKey: string, info: string): Promise<Uint8Array> {
  try {
    const bytes = fromBase64Url(envelope);
    const sk = await recipientKey(recipientPrivateKey);
    const pt = await suite.open(
      { recipientKey: sk, enc: buf(bytes.subarray(0, ENC_LENGTH)), info: buf(utf8(info)) },
      buf(bytes.subarray(ENC_LENGTH)),
    );
    return new Uint8Array(pt);
  } catch (cause) {
    throw new MedledgerError('RECORD_INTEGRITY', { details: 'The sealed message does not open with this key.', cause });
  }
}
