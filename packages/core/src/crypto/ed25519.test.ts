/** Ed25519 (RFC 8032 §7.1 TEST 1 and TEST 2), key generation and key ids. */
import { describe, expect, it } from 'vitest';
import { fromHex, toBase64Url, toHex } from '../codec/bytes.ts';
import { generateSigningKey, keyId, sign, verify } from './ed25519.ts';
import { sha256Hex } from './hash.ts';

interface Vector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}

const RFC8032: readonly Vector[] = [
  {
    name: 'TEST 1',
    secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secretKey: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

const b64 = (hex: string): string => toBase64Url(fromHex(hex));

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

describe.each(RFC8032)('RFC 8032 §7.1 $name', (v) => {
  const privateKey = b64(v.secretKey);
  const publicKey = b64(v.publicKey);
  const message = fromHex(v.message);
  const signature = fromHex(v.signature);

  it('sign reproduces the signature from the private seed', async () => {
    expect(toHex(await sign(privateKey, message))).toBe(v.signature);
  });

  it('verify accepts the signature', async () => {
    expect(await verify(publicKey, message, signature)).toBe(true);
  });

  it('verify rejects a signature with any one of several bits flipped', async () => {
    for (const bit of [0, 7, 100, 255, 256, 300, 511]) {
      expect(await verify(publicKey, message, flipBit(signature, bit))).toBe(false);
    }
  });

  it('verify rejects a changed message', async () => {
    const changed = message.length === 0 ? new Uint8Array([0]) : flipBit(message, 0);
    expect(await verify(publicKey, changed, signature)).toBe(false);
  });

  it('verify rejects the signature under the other vector’s key', async () => {
    const other = RFC8032.find((o) => o !== v)!;
    expect(await verify(b64(other.publicKey), message, signature)).toBe(false);
  });

  it('verify rejects a signature of the wrong length', async () => {
    expect(await verify(publicKey, message, signature.subarray(0, 63))).toBe(false);
    expect(await verify(publicKey, message, new Uint8Array([...signature, 0]))).toBe(false);
    expect(await verify(publicKey, message, new Uint8Array())).toBe(false);
  });

  it('verify rejects a public key that is not 32 bytes of base64url', async () => {
    expect(await verify(publicKey.slice(0, 42), message, signature)).toBe(false);
    expect(await verify(b64(v.publicKey + '00'), message, signature)).toBe(false);
    expect(await verify('not a key!', message, signature)).toBe(false);
  });

  it('keyId is "k" + the first 20 bytes of SHA-256 of the raw key', () => {
    expect(keyId(publicKey)).toBe('k' + sha256Hex(fromHex(v.publicKey)).slice(0, 40));
  });
});

describe('generateSigningKey', () => {
  it('gives 32-byte base64url keys that sign and verify', async () => {
    const pair = await generateSigningKey();
    expect(pair.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(pair.privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const message = new TextEncoder().encode('medledger');
    const signature = await sign(pair.privateKey, message);
    expect(signature.length).toBe(64);
    expect(await verify(pair.publicKey, message, signature)).toBe(true);
    expect(await verify(pair.publicKey, new TextEncoder().encode('medledgeR'), signature)).toBe(false);
  });

  it('signs deterministically (RFC 8032 signatures have no randomness)', async () => {
    const pair = await generateSigningKey();
    const m = new Uint8Array([1, 2, 3]);
    expect(await sign(pair.privateKey, m)).toEqual(await sign(pair.privateKey, m));
  });

  it('gives a different key each time', async () => {
    const a = await generateSigningKey();
    const b = await generateSigningKey();
    expect(a.publicKey).not.toBe(b.publicKey);
    expect(a.privateKey).not.toBe(b.privateKey);
    const m = new Uint8Array([9]);
    expect(await verify(b.publicKey, m, await sign(a.privateKey, m))).toBe(false);
  });
});

describe('keyId', () => {
  it('is "k" and 40 hex digits, and stable', async () => {
    const { publicKey } = await generateSigningKey();
    const id = keyId(publicKey);
    expect(id).toMatch(/^k[0-9a-f]{40}$/);
    expect(keyId(publicKey)).toBe(id);
  });

  it('differs between keys', async () => {
    const a = await generateSigningKey();
    const b = await generateSigningKey();
    expect(keyId(a.publicKey)).not.toBe(keyId(b.publicKey));
    expect(keyId(b64(RFC8032[0]!.publicKey))).not.toBe(keyId(b64(RFC8032[1]!.publicKey)));
  });

  it('refuses something that is not a 32-byte key', () => {
    expect(() => keyId('abc')).toThrow(TypeError);
    expect(() => keyId(b64('00'.repeat(31)))).toThrow(TypeError);
    expect(() => keyId(b64('00'.repeat(33)))).toThrow(TypeError);
  });
});
