/**
 * SHA-256 and HMAC-SHA-256, synchronous, in the browser and in Node. The default backend is
 * `@noble/hashes`; a Node process installs `node:crypto` with `setHashBackend` because it is
 * several times faster. Both compute the same function, so the choice never changes a result.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { toHex, utf8 } from '../codec/bytes.ts';

export interface HashBackend {
  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
}

const nobleBackend: HashBackend = {
  sha256: (data) => nobleSha256(data),
  hmacSha256: (key, data) => nobleHmac(nobleSha256, key, data),
};

let backend: HashBackend = nobleBackend;

export function setHashBackend(next: HashBackend): void {
  backend = next;
}

export function sha256(data: Uint8Array | string): Uint8Array {
  return backend.sha256(typeof data === 'string' ? utf8(data) : data);
}

export function sha256Hex(data: Uint8Array | string): string {
  return toHex(sha256(data));
}

export function hmacSha256(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return backend.hmacSha256(key, typeof data === 'string' ? utf8(data) : data);
}
