/** X25519 encryption key pairs (RFC 7748): raw 32-byte keys in base64url, made by WebCrypto. */
import { toBase64Url } from '../codec/bytes.ts';

export interface X25519KeyPair {
  publicKey: string;
  /** base64url of the raw 32-byte private scalar; never leaves its holder */
  privateKey: string;
}

// PKCS#8 prefix of an X25519 private key (RFC 8410 §7).
const PKCS8_PREFIX_LENGTH = 16;

export async function generateEncryptionKey(): Promise<X25519KeyPair> {
  const pair = await globalThis.crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  if (!('privateKey' in pair)) throw new TypeError('X25519 generateKey did not return a key pair');
  const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey('raw', pair.publicKey));
  const pkcs8 = new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', pair.privateKey));
  return { publicKey: toBase64Url(raw), privateKey: toBase64Url(pkcs8.subarray(PKCS8_PREFIX_LENGTH)) };
}
