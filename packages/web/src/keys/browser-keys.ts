/**
 * Private keys held by this browser. Ed25519 signing keys live as non-extractable WebCrypto
 * keys: core's signing calls name them by a handle (`webcrypto:<keyId>`) in place of the seed,
 * and this backend signs with the CryptoKey the handle names, so no script can read the seed
 * back. X25519 decryption keys stay raw bytes: core opens HPKE envelopes from raw keys.
 */
import { fromBase64Url, toBase64Url } from '@medledger/core/codec/bytes';
import { ed25519Pkcs8, keyId, setSignatureBackend, decodeKey, type Ed25519KeyPair } from '@medledger/core/crypto/ed25519';

const ALG = { name: 'Ed25519' } as const;
const HANDLE = 'webcrypto:';
const held = new Map<string, CryptoKey>();

function buf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

export function handleOf(publicKey: string): string {
  return `${HANDLE}${keyId(publicKey)}`;
}

/** Makes a signing key known under its handle (after loading it from IndexedDB). */
export function holdSigningKey(publicKey: string, key: CryptoKey): Ed25519KeyPair {
  const handle = handleOf(publicKey);
  held.set(handle, key);
  return { publicKey, privateKey: handle };
}

export function signingKeyOf(handle: string): CryptoKey | undefined {
  return held.get(handle);
}

/** Imports a raw Ed25519 seed (from a key file) as a non-extractable key; the seed is not kept. */
export async function importSigningSeed(publicKey: string, seed: string): Promise<{ pair: Ed25519KeyPair; key: CryptoKey }> {
  const key = await crypto.subtle.importKey('pkcs8', buf(ed25519Pkcs8(seed)), ALG, false, ['sign']);
  // The file's public key must be the seed's: sign and verify once before trusting it.
  const probe = new Uint8Array([1, 2, 3]);
  const signature = new Uint8Array(await crypto.subtle.sign(ALG, key, buf(probe)));
  const pub = await crypto.subtle.importKey('raw', buf(decodeKey(publicKey)), ALG, false, ['verify']);
  if (!(await crypto.subtle.verify(ALG, pub, buf(signature), buf(probe)))) throw new TypeError('the key file’s signing keys do not match');
  return { pair: holdSigningKey(publicKey, key), key };
}

/** Installs the backend core signs with in this browser. */
export function installBrowserSigning(): void {
  setSignatureBackend({
    async sign(privateKey, message) {
      const key = held.get(privateKey);
      if (key === undefined) throw new TypeError('this browser holds no signing key under that handle');
      return new Uint8Array(await crypto.subtle.sign(ALG, key, buf(message)));
    },
    async verify(publicKey, message, signature) {
      let raw: Uint8Array;
      try {
        raw = decodeKey(publicKey);
      } catch {
        return false;
      }
      if (signature.length !== 64) return false;
      const key = await crypto.subtle.importKey('raw', buf(raw), ALG, false, ['verify']);
      return crypto.subtle.verify(ALG, key, buf(signature), buf(message));
    },
    async generate() {
      // Non-extractable from birth: the private key never exists as bytes a script can read.
      const pair = await crypto.subtle.generateKey(ALG, false, ['sign', 'verify']);
      const publicKey = toBase64Url(new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)));
      return holdSigningKey(publicKey, pair.privateKey);
    },
  });
}

/** Checks that a base64url string is a 32-byte key. */
export function isKey(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  try {
    return fromBase64Url(text).length === 32;
  } catch {
    return false;
  }
}
