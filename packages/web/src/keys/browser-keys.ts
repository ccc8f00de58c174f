/**
 * Private keys held by this browser, as non-extractable WebCrypto keys: no script, the app's
 * included, can read them back as bytes. core's signing and key unwrapping take keys as strings;
 * here those strings are handles (`webcrypto:<keyId>`, `webcrypto-x25519:<public key>`) that the
 * backends installed below resolve to the CryptoKeys, so core's code runs unchanged.
 */
import { toBase64Url } from '@medledger/core/codec/bytes';
import { decodeKey, ed25519Pkcs8, keyId, setSignatureBackend, type Ed25519KeyPair } from '@medledger/core/crypto/ed25519';
import { x25519Pkcs8, type X25519KeyPair } from '@medledger/core/crypto/x25519';
import { setRecipientKeyResolver } from '@medledger/core/crypto/record-envelope';

const ED25519 = { name: 'Ed25519' } as const;
const X25519 = { name: 'X25519' } as const;
const signing = new Map<string, CryptoKey>();
const decryption = new Map<string, CryptoKeyPair>();

function buf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

async function rawPublic(key: CryptoKey): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.exportKey('raw', key)));
}

/** Makes a signing key known under its handle (after loading it from IndexedDB). */
export function holdSigningKey(publicKey: string, key: CryptoKey): Ed25519KeyPair {
  const handle = `webcrypto:${keyId(publicKey)}`;
  signing.set(handle, key);
  return { publicKey, privateKey: handle };
}

/** Makes an encryption key pair known under its handle. */
export function holdEncryptionKey(publicKey: string, keys: CryptoKeyPair): X25519KeyPair {
  const handle = `webcrypto-x25519:${publicKey}`;
  decryption.set(handle, keys);
  return { publicKey, privateKey: handle };
}

export function signingKeyOf(handle: string): CryptoKey | undefined {
  return signing.get(handle);
}

export function encryptionKeysOf(handle: string): CryptoKeyPair | undefined {
  return decryption.get(handle);
}

/** Imports a raw Ed25519 seed (from a key file) as a non-extractable key; the seed is not kept. */
export async function importSigningSeed(publicKey: string, seed: string): Promise<{ pair: Ed25519KeyPair; key: CryptoKey }> {
  const key = await crypto.subtle.importKey('pkcs8', buf(ed25519Pkcs8(seed)), ED25519, false, ['sign']);
  // The file's public key must be the seed's: sign and verify once before trusting it.
  const probe = new Uint8Array([1, 2, 3]);
  const signature = new Uint8Array(await crypto.subtle.sign(ED25519, key, buf(probe)));
  const pub = await crypto.subtle.importKey('raw', buf(decodeKey(publicKey)), ED25519, false, ['verify']);
  if (!(await crypto.subtle.verify(ED25519, pub, buf(signature), buf(probe))))
    throw new TypeError('the key file’s signing keys do not match');
  return { pair: holdSigningKey(publicKey, key), key };
}

/** Imports a raw X25519 private key (from a key file) as a non-extractable key; the bytes are not kept. */
export async function importEncryptionKey(publicKey: string, privateKey: string): Promise<{ pair: X25519KeyPair; keys: CryptoKeyPair }> {
  const keys: CryptoKeyPair = {
    privateKey: await crypto.subtle.importKey('pkcs8', x25519Pkcs8(privateKey), X25519, false, ['deriveBits']),
    publicKey: await crypto.subtle.importKey('raw', buf(decodeKey(publicKey)), X25519, true, []),
  };
  // The file's public key must be the private key's: both sides of one exchange must agree.
  const other = await crypto.subtle.generateKey(X25519, false, ['deriveBits']);
  const mine = await crypto.subtle.deriveBits({ name: 'X25519', public: other.publicKey }, keys.privateKey, 256);
  const theirs = await crypto.subtle.deriveBits({ name: 'X25519', public: keys.publicKey }, other.privateKey, 256);
  if (toBase64Url(new Uint8Array(mine)) !== toBase64Url(new Uint8Array(theirs)))
    throw new TypeError('the key file’s encryption keys do not match');
  return { pair: holdEncryptionKey(publicKey, keys), keys };
}

/** A new encryption key pair, non-extractable from birth. */
export async function generateEncryptionKey(): Promise<{ pair: X25519KeyPair; keys: CryptoKeyPair }> {
  const keys = await crypto.subtle.generateKey(X25519, false, ['deriveBits']);
  const publicKey = await rawPublic(keys.publicKey);
  return { pair: holdEncryptionKey(publicKey, keys), keys };
}

/** Installs the backends core signs and unwraps keys with in this browser. */
export function installBrowserKeys(): void {
  setRecipientKeyResolver((handle) => decryption.get(handle));
  setSignatureBackend({
    async sign(privateKey, message) {
      const key = signing.get(privateKey);
      if (key === undefined) throw new TypeError('this browser holds no signing key under that handle');
      return new Uint8Array(await crypto.subtle.sign(ED25519, key, buf(message)));
    },
    async verify(publicKey, message, signature) {
      let raw: Uint8Array;
      try {
        raw = decodeKey(publicKey);
      } catch {
        return false;
      }
      if (signature.length !== 64) return false;
      const key = await crypto.subtle.importKey('raw', buf(raw), ED25519, false, ['verify']);
      return crypto.subtle.verify(ED25519, key, buf(signature), buf(message));
    },
    async generate() {
      // Non-extractable from birth: the private key never exists as bytes a script can read.
      const pair = await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify']);
      return holdSigningKey(await rawPublic(pair.publicKey), pair.privateKey);
    },
  });
}

/** Checks that a base64url string is a 32-byte key. */
export function isKey(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  try {
    decodeKey(text);
    return true;
  } catch {
    return false;
  }
}
