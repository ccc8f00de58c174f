/**
 * Ed25519 signatures (RFC 8032) behind one small interface. Keys travel as raw bytes
 * (32-byte public key, 32-byte private seed) encoded base64url; the default implementation is
 * WebCrypto, which browsers and Node both have. A Node process may install a faster
 * implementation on `node:crypto` (see packages/node) with `setSignatureBackend`.
 */
import { concatBytes, fromBase64Url, toBase64Url } from '../codec/bytes.ts';
import { sha256 } from './hash.ts';
import { toHex } from '../codec/bytes.ts';

export interface Ed25519KeyPair {
  /** base64url of the 32-byte public key */
  publicKey: string;
  /** base64url of the 32-byte private seed; never leaves its holder */
  privateKey: string;
}

export interface SignatureBackend {
  sign(privateKey: string, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: string, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  generate(): Promise<Ed25519KeyPair>;
}

// PKCS#8 and SPKI wrappers for an Ed25519 key (RFC 8410 §7 and §4).
const PKCS8_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
export const SPKI_PREFIX = new Uint8Array([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

export function ed25519Pkcs8(privateKey: string): Uint8Array {
  return concatBytes(PKCS8_PREFIX, decodeKey(privateKey));
}

export function ed25519Spki(publicKey: string): Uint8Array {
  return concatBytes(SPKI_PREFIX, decodeKey(publicKey));
}

/** Decodes a base64url 32-byte key, throwing TypeError on anything else. */
export function decodeKey(key: string): Uint8Array {
  const raw = fromBase64Url(key);
  if (raw.length !== 32) throw new TypeError('an Ed25519 or X25519 key is 32 bytes');
  return raw;
}

function asBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

const ALG = { name: 'Ed25519' } as const;

const webCryptoBackend: SignatureBackend = {
  async sign(privateKey, message) {
    const key = await globalThis.crypto.subtle.importKey('pkcs8', asBuffer(ed25519Pkcs8(privateKey)), ALG, false, ['sign']);
    return new Uint8Array(await globalThis.crypto.subtle.sign(ALG, key, asBuffer(message)));
  },
  async verify(publicKey, message, signature) {
    let raw: Uint8Array;
    try {
      raw = decodeKey(publicKey);
    } catch {
      return false;
    }
    if (signature.length !== 64) return false;
    const key = await globalThis.crypto.subtle.importKey('raw', asBuffer(raw), ALG, false, ['verify']);
    return globalThis.crypto.subtle.verify(ALG, key, asBuffer(signature), asBuffer(message));
  },
  async generate() {
    const pair = await globalThis.crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    // Typings differ between the DOM and Node libraries; an Ed25519 key is always a pair.
    if (!('privateKey' in pair)) throw new TypeError('Ed25519 generateKey did not return a key pair');
    const pkcs8 = new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', pair.privateKey));
    const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', pair.publicKey));
    return { publicKey: toBase64Url(raw), privateKey: toBase64Url(pkcs8.subarray(PKCS8_PREFIX.length)) };
  },
};

let backend: SignatureBackend = webCryptoBackend;

export function setSignatureBackend(next: SignatureBackend): void {
  backend = next;
}

export function sign(privateKey: string, message: Uint8Array): Promise<Uint8Array> {
  return backend.sign(privateKey, message);
}

export function verify(publicKey: string, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  return backend.verify(publicKey, message, signature);
}

export function generateSigningKey(): Promise<Ed25519KeyPair> {
  return backend.generate();
}

/**
 * A key id names a public key on the ledger: `k` + the first 20 bytes of SHA-256 of the raw
 * key, in hex. Short enough to read in logs, long enough (160 bits) never to collide.
 */
export function keyId(publicKey: string): string {
  return 'k' + toHex(sha256(decodeKey(publicKey)).subarray(0, 20));
}
