/** SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 4231) known answers. */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../codec/bytes.ts';
import { hmacSha256, sha256, sha256Hex } from './hash.ts';

describe('SHA-256 (FIPS 180-4 examples)', () => {
  it('hashes the empty string', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(sha256(new Uint8Array()))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('hashes "abc" (one block)', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes the 448-bit message (two blocks)', () => {
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('hashes a string as its UTF-8 bytes', () => {
    expect(sha256Hex('€')).toBe(sha256Hex(utf8('€')));
    expect(sha256Hex('abc')).not.toBe(sha256Hex('abd'));
  });

  it('returns 32 bytes', () => {
    expect(sha256('x').length).toBe(32);
  });
});

describe('HMAC-SHA-256 (RFC 4231)', () => {
  it('test case 1', () => {
    const key = new Uint8Array(20).fill(0x0b);
    expect(toHex(hmacSha256(key, 'Hi There'))).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
  });

  it('test case 2', () => {
    expect(toHex(hmacSha256(utf8('Jefe'), 'what do ya want for nothing?'))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('test case 3 (key and data of 0xaa and 0xdd bytes)', () => {
    const key = new Uint8Array(20).fill(0xaa);
    const data = new Uint8Array(50).fill(0xdd);
    expect(toHex(hmacSha256(key, data))).toBe('773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe');
  });

  it('accepts a string or its bytes as data', () => {
    const key = fromHex('0102');
    expect(hmacSha256(key, 'data')).toEqual(hmacSha256(key, utf8('data')));
  });
});
