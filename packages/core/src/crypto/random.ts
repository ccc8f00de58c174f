/** The one source of secure randomness (WebCrypto `getRandomValues`, in browsers and Node). */
import { toHex } from '../codec/bytes.ts';

export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let off = 0; off < length; off += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(off, Math.min(length, off + 65536)));
  }
  return out;
}

/** A random 128-bit nonce in hex: unique per author with overwhelming probability. */
export function randomNonce(): string {
  return toHex(randomBytes(16));
}
