/**
 * Chunked authenticated encryption for large attachments: the STREAM construction (Hoang,
 * Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
 * Misuse-Resistance", CRYPTO 2015, §7; as used by Tink's streaming AEAD and age) on AES-256-GCM
 * via WebCrypto, so a 20 MiB file is sealed and opened a chunk at a time in bounded memory.
 *
 * Format: a 7-byte random nonce prefix, then the sealed chunks. Chunk i is
 * AES-256-GCM(dataKey, nonce = prefix || uint32be(i) || lastFlag, aad) of exactly
 * `STREAM_CHUNK` plaintext bytes, except the final chunk (lastFlag = 1), which holds 0 to
 * `STREAM_CHUNK` bytes; an empty plaintext is one empty final chunk. The counter stops
 * reordering, dropping or duplicating chunks; the last flag stops truncation at a chunk boundary
 * and extension past the end.
 */
import { MedledgerError } from '../errors.ts';
import { randomBytes } from './random.ts';

/** Plaintext bytes in every chunk but the last. */
export const STREAM_CHUNK = 65536;

const PREFIX_LENGTH = 7;
const TAG_LENGTH = 16;
const SEALED_CHUNK = STREAM_CHUNK + TAG_LENGTH;
/** The counter is a uint32; past it nonces would repeat. */
const MAX_CHUNKS = 2 ** 32;

/** The exact ciphertext length `encryptStream` produces for `plaintextSize` bytes. */
export function streamCiphertextSize(plaintextSize: number): number {
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0) throw new RangeError('plaintextSize must be a non-negative integer');
  const chunks = Math.max(1, Math.ceil(plaintextSize / STREAM_CHUNK));
  return PREFIX_LENGTH + plaintextSize + chunks * TAG_LENGTH;
}

/**
 * Seals `source` (pieces of any size) under `dataKey` (32 bytes) and `aad`. Yields the 7-byte
 * header first, then each sealed chunk. It holds one chunk plus one source piece: a chunk is
 * sealed as non-final only once a byte past it has arrived, so the final chunk is known.
 */
export async function* encryptStream(dataKey: Uint8Array, aad: Uint8Array, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const key = await importAesKey(dataKey, 'encrypt');
  const prefix = randomBytes(PREFIX_LENGTH);
  const additionalData = aad.slice();
  yield prefix.slice();

  const pending = new ByteQueue();
  let counter = 0;
  const seal = async (plaintext: Uint8Array<ArrayBuffer>, last: boolean): Promise<Uint8Array> => {
    if (counter >= MAX_CHUNKS) throw new RangeError('the stream is longer than 2^32 chunks');
    const iv = chunkNonce(prefix, counter++, last);
    return new Uint8Array(await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData }, key, plaintext));
  };

  for await (const piece of source) {
    pending.push(piece);
    // Strictly more than a chunk: the chunk at the front is not the final one.
    while (pending.length > STREAM_CHUNK) yield await seal(pending.take(STREAM_CHUNK), false);
  }
  yield await seal(pending.take(pending.length), true);
}

/**
 * Opens a stream made by `encryptStream`; `source` may be cut into pieces of any size. Yields
 * each chunk's plaintext once it authenticates. Any tampering, truncation, extension, reordering,
 * wrong key or wrong aad fails with RECORD_INTEGRITY — possibly after earlier chunks were
 * yielded, so a consumer must not act on the plaintext until the generator has finished.
 */
export async function* decryptStream(dataKey: Uint8Array, aad: Uint8Array, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const key = await importAesKey(dataKey, 'decrypt');
  const additionalData = aad.slice();
  const pending = new ByteQueue();
  let prefix: Uint8Array | undefined;
  let counter = 0;
  const open = async (sealed: Uint8Array<ArrayBuffer>, last: boolean, noncePrefix: Uint8Array): Promise<Uint8Array> => {
    if (counter >= MAX_CHUNKS) throw integrityError('The stream is longer than 2^32 chunks.');
    const index = counter++;
    try {
      const iv = chunkNonce(noncePrefix, index, last);
      return new Uint8Array(await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData }, key, sealed));
    } catch (cause) {
      throw integrityError(`Chunk ${index} does not authenticate.`, cause);
    }
  };

  for await (const piece of source) {
    pending.push(piece);
    if (prefix === undefined) {
      if (pending.length < PREFIX_LENGTH) continue;
      prefix = pending.take(PREFIX_LENGTH);
    }
    // Strictly more than a sealed chunk: the one at the front must be a non-final chunk.
    while (pending.length > SEALED_CHUNK) yield await open(pending.take(SEALED_CHUNK), false, prefix);
  }
  if (prefix === undefined) throw integrityError('The stream ends inside its header.');
  // What is left must be exactly the final chunk: at least its tag, at most a full sealed chunk.
  if (pending.length < TAG_LENGTH) throw integrityError('The stream ends without its final chunk.');
  yield await open(pending.take(pending.length), true, prefix);
}

/** Seals a whole buffer in the stream format. */
export async function encryptBytes(dataKey: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(streamCiphertextSize(plaintext.length));
  let offset = 0;
  for await (const part of encryptStream(dataKey, aad, single(plaintext))) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Opens a whole buffer in the stream format; fails with RECORD_INTEGRITY as `decryptStream` does. */
export async function decryptBytes(dataKey: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array> {
  // The plaintext is never longer than the ciphertext less its header and one tag.
  const out = new Uint8Array(Math.max(0, ciphertext.length - PREFIX_LENGTH - TAG_LENGTH));
  let offset = 0;
  for await (const part of decryptStream(dataKey, aad, single(ciphertext))) {
    out.set(part, offset);
    offset += part.length;
  }
  return out.slice(0, offset);
}

// eslint-disable-next-line @typescript-eslint/require-await -- an async iterable of one piece
async function* single(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** The 96-bit GCM nonce of chunk `index`: prefix(7) || uint32be(index) || last flag. */
function chunkNonce(prefix: Uint8Array, index: number, last: boolean): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(PREFIX_LENGTH + 5);
  nonce.set(prefix);
  new DataView(nonce.buffer).setUint32(PREFIX_LENGTH, index, false);
  nonce[PREFIX_LENGTH + 4] = last ? 1 : 0;
  return nonce;
}

// Return type inferred: CryptoKey is typed differently by the DOM and Node libraries.
function importAesKey(dataKey: Uint8Array, usage: 'encrypt' | 'decrypt') {
  if (dataKey.length !== 32) throw new TypeError('an AES-256 data key is 32 bytes');
  return globalThis.crypto.subtle.importKey('raw', dataKey.slice(), { name: 'AES-GCM' }, false, [usage]);
}

function integrityError(details: string, cause?: unknown): MedledgerError {
  return new MedledgerError('RECORD_INTEGRITY', cause === undefined ? { details } : { details, cause });
}

/** A FIFO of byte pieces from which exact-length runs are taken, copying only what is taken. */
class ByteQueue {
  private readonly pieces: Uint8Array[] = [];
  /** How many bytes of `pieces[0]` were already taken. */
  private head = 0;
  length = 0;

  push(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.length += piece.length;
  }

  take(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const first = this.pieces[0]!;
      const count = Math.min(n - filled, first.length - this.head);
      out.set(first.subarray(this.head, this.head + count), filled);
      filled += count;
      this.head += count;
      if (this.head === first.length) {
        this.pieces.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    return out;
  }
}
