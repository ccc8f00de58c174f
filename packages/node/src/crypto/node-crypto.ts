/**
 * `node:crypto` backends for core's hash and signature interfaces: several times faster than
 * the portable defaults. Public keys are parsed once and cached as KeyObjects (parsing on every
 * verify halves throughput, FACTS.md); async verification runs in batches on worker threads,
 * so it uses both cores and costs the main thread almost nothing.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { setHashBackend } from '@medledger/core/crypto/hash';
import { ed25519Pkcs8, ed25519Spki, setSignatureBackend, SPKI_PREFIX } from '@medledger/core/crypto/ed25519';
import { toBase64Url } from '@medledger/core/codec/bytes';
import { verifyPool } from './verify-pool.ts';

const MAX_CACHED_KEYS = 100_000;
const publicKeys = new Map<string, KeyObject | null>();

/** The KeyObject of a base64url public key, or null when it is not a valid Ed25519 key. */
export function publicKeyObject(publicKey: string): KeyObject | null {
  let k = publicKeys.get(publicKey);
  if (k === undefined) {
    try {
      k = createPublicKey({ key: Buffer.from(ed25519Spki(publicKey)), format: 'der', type: 'spki' });
    } catch {
      k = null;
    }
    if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.clear();
    publicKeys.set(publicKey, k);
  }
  return k;
}

export function verifySync(publicKey: string, message: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyObject(publicKey);
  if (key === null || signature.length !== 64) return false;
  return nodeVerify(null, message, key, signature);
}

/** Verifies off the main thread, batched on worker threads (see verify-pool.ts). */
export function verifyAsync(publicKey: string, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  return verifyPool().verify(publicKey, message, signature);
}

const privateKeys = new Map<string, KeyObject>();

function privateKeyObject(privateKey: string): KeyObject {
  let k = privateKeys.get(privateKey);
  if (k === undefined) {
    k = createPrivateKey({ key: Buffer.from(ed25519Pkcs8(privateKey)), format: 'der', type: 'pkcs8' });
    if (privateKeys.size >= 1024) privateKeys.clear();
    privateKeys.set(privateKey, k);
  }
  return k;
}

let installed = false;

/** Installs the node:crypto backends into core (idempotent). */
export function installNodeCrypto(): void {
  if (installed) return;
  installed = true;
  setHashBackend({
    sha256: (data) => createHash('sha256').update(data).digest(),
    hmacSha256: (key, data) => createHmac('sha256', key).update(data).digest(),
  });
  setSignatureBackend({
    sign: (privateKey, message) => Promise.resolve(new Uint8Array(nodeSign(null, message, privateKeyObject(privateKey)))),
    verify: verifyAsync,
    generate: () => {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const spki = publicKey.export({ format: 'der', type: 'spki' });
      const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
      return Promise.resolve({
        publicKey: toBase64Url(new Uint8Array(spki.subarray(SPKI_PREFIX.length))),
        privateKey: toBase64Url(new Uint8Array(pkcs8.subarray(16))),
      });
    },
  });
}
