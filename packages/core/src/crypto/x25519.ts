/** X25519 encryption key pairs (RFC 7748): raw 32-byte keys in base64url, made by WebCrypto. */
import { fromBase64Url, toBase64Url } from '../codec/bytes.ts';

export interface X25519KeyPair {
  publicKey: string;
  /** base64url of the raw 32-byte private scalar; never leaves its holder */
  privateKey: string;
}

// PKCS#8 prefix of an X25519 private key (RFC 8410 §7).
const PKCS8_PREFIX_LENGTH = 16;
const PKCS8_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);

export async function generateEncryptionKey(): Promise<X25519KeyPair> {
  const pair = await globalThis.crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  if (!('privateKey' in pair)) throw new TypeError('X25519 generateKey did not return a key pair');
  const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', pair.publicKey));
  const pkcs8 = new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', pair.privateKey));
  return { publicKey: toBase64Url(raw), privateKey: toBase64Url(pkcs8.subarray(PKCS8_PREFIX_LENGTH)) };
}

/** The PKCS#8 form WebCrypto imports a raw X25519 private key (base64url) from. */
export function x25519Pkcs8(privateKeyB64url: string): Uint8Array<ArrayBuffer> {
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + 32);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(rawKey(privateKeyB64url), PKCS8_PREFIX.length);
  return pkcs8;
}

function rawKey(keyB64url: string): Uint8Array<ArrayBuffer> {
  const raw = fromBase64Url(keyB64url);
  if (raw.length !== 32) throw new TypeError('an X25519 key is 32 bytes');
  return new Uint8Array(raw);
}

/**
 * The raw X25519 shared secret (RFC 7748 §6.1) of a private key (raw, base64url) and a peer's
 * public key (raw, base64url). Both ends get the same 32 bytes. An all-zero result (a low-order
 * peer key) is refused, as §6.1 advises; feed the secret through a KDF before use.
 */
export async function x25519SharedSecret(privateKeyB64url: string, publicKeyB64url: string): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  const privateKey = await subtle.importKey('pkcs8', x25519Pkcs8(privateKeyB64url), { name: 'X25519' }, false, ['deriveBits']);
  const publicKey = await subtle.importKey('raw', rawKey(publicKeyB64url), { name: 'X25519' }, false, []);
  const secret = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: publicKey }, privateKey, 256));
  if (secret.every((b) => b === 0)) throw new TypeError('X25519 shared secret is all zero (low-order public key)');
  return secret;
}
