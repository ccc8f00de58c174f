import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { SPKI_PREFIX } from '@medledger/core/crypto/ed25519';
import { VerifyPool } from './verify-pool.ts';

function keyPair(): { raw: string; sign: (m: Uint8Array) => Uint8Array } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'der', type: 'spki' }))
    .subarray(SPKI_PREFIX.length)
    .toString('base64url');
  return { raw, sign: (m) => new Uint8Array(sign(null, m, privateKey)) };
}

const pool = new VerifyPool(2);
afterAll(() => pool.close());

it('answers each signature of a mixed batch with its own result', async () => {
  const a = keyPair();
  const b = keyPair();
  const cases = Array.from({ length: 500 }, (_, i) => {
    const message = new Uint8Array(16 + (i % 40)).fill(i % 251);
    const signer = i % 2 === 0 ? a : b;
    const signature = signer.sign(message);
    const kind = i % 5;
    if (kind === 1) signature[i % 64]! ^= 1; // tampered signature
    if (kind === 2) message[0]! ^= 1; // tampered message
    const key = kind === 3 ? (signer === a ? b : a).raw : signer.raw; // someone else's key
    return { key, message, signature, valid: kind === 0 || kind === 4 };
  });
  const results = await Promise.all(cases.map((c) => pool.verify(c.key, c.message, c.signature)));
  expect(results).toEqual(cases.map((c) => c.valid));
});

it('refuses malformed keys and signatures instead of throwing', async () => {
  const a = keyPair();
  const m = new Uint8Array([1, 2, 3]);
  const s = a.sign(m);
  expect(await pool.verify('not-a-key', m, s)).toBe(false);
  expect(await pool.verify(a.raw.slice(0, 20), m, s)).toBe(false);
  expect(await pool.verify(a.raw, m, s.subarray(0, 63))).toBe(false);
  expect(await pool.verify(a.raw, m, s)).toBe(true);
});

it('starts fresh workers after close', async () => {
  const a = keyPair();
  const m = new Uint8Array([9]);
  await pool.close();
  expect(await pool.verify(a.raw, m, a.sign(m))).toBe(true);
});
