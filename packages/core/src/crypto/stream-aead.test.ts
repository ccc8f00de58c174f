/** STREAM on AES-256-GCM: round trips, the wire format, every tamper class, bounded memory. */
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, utf8 } from '../codec/bytes.ts';
import { randomBytes } from './random.ts';
import { STREAM_CHUNK, decryptBytes, decryptStream, encryptBytes, encryptStream, streamCiphertextSize } from './stream-aead.ts';
import { seededRandom } from '../codec/seeded-random.test-fixture.ts';

const SEALED = STREAM_CHUNK + 16;
const HEADER = 7;
const aad = utf8('medledger/attachment/v1|rec-1');

/** Cuts `bytes` into pieces of random sizes (0 to 3 chunks, empty pieces included). */
// eslint-disable-next-line @typescript-eslint/require-await
async function* pieces(bytes: Uint8Array, seed: number): AsyncGenerator<Uint8Array> {
  const next = seededRandom(seed);
  let off = 0;
  while (off < bytes.length) {
    const r = next();
    const size = r < 0.1 ? 0 : r < 0.5 ? Math.floor(next() * 100) + 1 : Math.floor(next() * 3 * STREAM_CHUNK) + 1;
    yield bytes.subarray(off, off + size);
    off += size;
  }
  if (next() < 0.5) yield new Uint8Array(0);
}

/** Cheaper than toEqual on large arrays, which compares element by element with diffs. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(bytesEqual(actual, expected)).toBe(true);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p);
  return concatBytes(...parts);
}

function refused(ciphertext: Uint8Array, key: Uint8Array, withAad = aad): Promise<unknown> {
  return expect(collect(decryptStream(key, withAad, pieces(ciphertext, 7)))).rejects.toMatchObject({
    name: 'MedledgerError',
    code: 'RECORD_INTEGRITY',
  });
}

/** Byte ranges of the sealed chunks of a ciphertext made by encryptStream. */
function chunks(ciphertext: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = HEADER; off < ciphertext.length; off += SEALED)
    out.push(ciphertext.subarray(off, Math.min(off + SEALED, ciphertext.length)));
  return out;
}

describe('streamCiphertextSize', () => {
  it('counts the header, the plaintext and one tag per chunk', () => {
    expect(streamCiphertextSize(0)).toBe(7 + 16);
    expect(streamCiphertextSize(1)).toBe(7 + 1 + 16);
    expect(streamCiphertextSize(STREAM_CHUNK)).toBe(7 + STREAM_CHUNK + 16);
    expect(streamCiphertextSize(STREAM_CHUNK + 1)).toBe(7 + STREAM_CHUNK + 1 + 32);
    expect(streamCiphertextSize(20 * 1024 * 1024)).toBe(7 + 20 * 1024 * 1024 + 320 * 16);
  });

  it('refuses sizes that are not byte counts', () => {
    expect(() => streamCiphertextSize(-1)).toThrow(RangeError);
    expect(() => streamCiphertextSize(1.5)).toThrow(RangeError);
  });
});

describe('encryptStream / decryptStream round trips', () => {
  const key = randomBytes(32);
  for (const size of [0, 1, 65535, 65536, 65537, 3 * 65536 + 5]) {
    it(`round-trips ${size} bytes cut into random pieces`, async () => {
      const plaintext = randomBytes(size);
      for (const seed of [1, 2, 3]) {
        const ciphertext = await collect(encryptStream(key, aad, pieces(plaintext, seed)));
        expect(ciphertext.length).toBe(streamCiphertextSize(size));
        const opened = await collect(decryptStream(key, aad, pieces(ciphertext, seed + 100)));
        expectSameBytes(opened, plaintext);
      }
    });
  }

  it('encryptBytes and decryptBytes use the same format as the streams', async () => {
    const plaintext = randomBytes(2 * STREAM_CHUNK + 17);
    const sealed = await encryptBytes(key, aad, plaintext);
    expect(sealed.length).toBe(streamCiphertextSize(plaintext.length));
    expectSameBytes(await collect(decryptStream(key, aad, pieces(sealed, 9))), plaintext);
    const streamed = await collect(encryptStream(key, aad, pieces(plaintext, 10)));
    expectSameBytes(await decryptBytes(key, aad, streamed), plaintext);
    expect(await decryptBytes(key, aad, await encryptBytes(key, aad, new Uint8Array(0)))).toEqual(new Uint8Array(0));
  });

  it('uses a fresh nonce prefix for every stream', async () => {
    const a = await encryptBytes(key, aad, utf8('same'));
    const b = await encryptBytes(key, aad, utf8('same'));
    expect(a.subarray(0, HEADER)).not.toEqual(b.subarray(0, HEADER));
    expect(a).not.toEqual(b);
  });

  it('refuses a data key that is not 32 bytes', async () => {
    await expect(encryptBytes(randomBytes(16), aad, utf8('x'))).rejects.toThrow(TypeError);
  });
});

describe('wire format', () => {
  it('seals chunk i under prefix || uint32be(i) || last flag, with the caller aad', async () => {
    const key = randomBytes(32);
    const plaintext = randomBytes(STREAM_CHUNK + 10);
    const sealed = await encryptBytes(key, aad, plaintext);
    const prefix = sealed.subarray(0, HEADER);
    const aesKey = await globalThis.crypto.subtle.importKey('raw', key.slice(), { name: 'AES-GCM' }, false, ['decrypt']);
    const open = async (sealedChunk: Uint8Array, index: number, last: number) => {
      const iv = new Uint8Array(12);
      iv.set(prefix);
      new DataView(iv.buffer).setUint32(7, index, false);
      iv[11] = last;
      const pt = await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: aad.slice() }, aesKey, sealedChunk.slice());
      return new Uint8Array(pt);
    };
    const [first, second] = chunks(sealed);
    expect(first!.length).toBe(SEALED);
    expect(second!.length).toBe(10 + 16);
    expect(await open(first!, 0, 0)).toEqual(plaintext.subarray(0, STREAM_CHUNK));
    expect(await open(second!, 1, 1)).toEqual(plaintext.subarray(STREAM_CHUNK));
  });
});

describe('tampering is refused with RECORD_INTEGRITY', () => {
  const key = randomBytes(32);
  const plaintext = randomBytes(3 * STREAM_CHUNK + 5);
  const sealedPromise = encryptBytes(key, aad, plaintext);

  it('a flipped bit in the header, a chunk body or a tag', async () => {
    const sealed = await sealedPromise;
    for (const at of [0, 6, HEADER, HEADER + 1000, HEADER + SEALED - 1, HEADER + SEALED, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[at]! ^= 0x01;
      await refused(bad, key);
    }
  });

  it('truncation: the final chunk dropped, a cut inside a chunk, a bare header, nothing', async () => {
    const sealed = await sealedPromise;
    await refused(sealed.subarray(0, HEADER + 3 * SEALED), key); // ends on a non-final chunk
    await refused(sealed.subarray(0, HEADER + SEALED), key);
    await refused(sealed.subarray(0, sealed.length - 1), key);
    await refused(sealed.subarray(0, HEADER + 2 * SEALED + 100), key);
    await refused(sealed.subarray(0, HEADER + 10), key);
    await refused(sealed.subarray(0, HEADER), key);
    await refused(sealed.subarray(0, 3), key);
    await refused(new Uint8Array(0), key);
  });

  it('extension: bytes or a whole chunk after the final chunk', async () => {
    const sealed = await sealedPromise;
    const parts = chunks(sealed);
    await refused(concatBytes(sealed, new Uint8Array([0])), key);
    await refused(concatBytes(sealed, randomBytes(SEALED)), key);
    await refused(concatBytes(sealed, parts[3]!), key);
    // A stream whose final chunk is full, extended by one byte.
    const full = await encryptBytes(key, aad, randomBytes(STREAM_CHUNK));
    await refused(concatBytes(full, new Uint8Array([1])), key);
  });

  it('reordering, duplicating or dropping a middle chunk', async () => {
    const sealed = await sealedPromise;
    const header = sealed.subarray(0, HEADER);
    const [c0, c1, c2, c3] = chunks(sealed);
    await refused(concatBytes(header, c1!, c0!, c2!, c3!), key);
    await refused(concatBytes(header, c0!, c0!, c2!, c3!), key);
    await refused(concatBytes(header, c0!, c2!, c3!), key);
  });

  it('splicing a chunk from another stream under the same key', async () => {
    const sealed = await sealedPromise;
    const other = await encryptBytes(key, aad, plaintext);
    const [c0, c1, c2, c3] = chunks(sealed);
    const [o0] = chunks(other);
    await refused(concatBytes(sealed.subarray(0, HEADER), o0!, c1!, c2!, c3!), key);
    await refused(concatBytes(other.subarray(0, HEADER), c0!, c1!, c2!, c3!), key);
  });

  it('the wrong key or the wrong aad', async () => {
    const sealed = await sealedPromise;
    await refused(sealed, randomBytes(32));
    await refused(sealed, key, utf8('medledger/attachment/v1|rec-2'));
    await refused(sealed, key, new Uint8Array(0));
    await expect(decryptBytes(key, utf8('other'), sealed)).rejects.toMatchObject({ code: 'RECORD_INTEGRITY' });
  });
});

describe('bounded memory', () => {
  it('streams 20 MiB through encrypt and decrypt holding only a few chunks', async () => {
    const total = 20 * 1024 * 1024;
    const pieceSize = 10_000; // not a divisor of the chunk size, so pieces straddle chunks
    const byteAt = (i: number) => (i * 31 + (i >>> 16)) & 0xff;
    let produced = 0;
    let consumed = 0;
    let maxInFlight = 0;

    // eslint-disable-next-line @typescript-eslint/require-await
    async function* source(): AsyncGenerator<Uint8Array> {
      while (produced < total) {
        const piece = new Uint8Array(Math.min(pieceSize, total - produced));
        for (let j = 0; j < piece.length; j++) piece[j] = byteAt(produced + j);
        produced += piece.length;
        yield piece;
      }
    }

    const key = randomBytes(32);
    let ciphertextBytes = 0;
    async function* countCiphertext(stream: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      for await (const part of stream) {
        ciphertextBytes += part.length;
        yield part;
      }
    }

    let mismatches = 0;
    for await (const chunk of decryptStream(key, aad, countCiphertext(encryptStream(key, aad, source())))) {
      for (let j = 0; j < chunk.length; j++) if (chunk[j] !== byteAt(consumed + j)) mismatches++;
      consumed += chunk.length;
      maxInFlight = Math.max(maxInFlight, produced - consumed);
    }

    expect(mismatches).toBe(0);
    expect(consumed).toBe(total);
    expect(ciphertextBytes).toBe(streamCiphertextSize(total));
    // One chunk of lookahead in each direction plus a source piece; never the whole file.
    expect(maxInFlight).toBeLessThanOrEqual(3 * STREAM_CHUNK);
  });
});
