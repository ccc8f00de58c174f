/** Hex and base64url (RFC 4648) round trips, canonical decoding, constant-time comparison. */
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, fromBase64Url, fromHex, fromUtf8, toBase64Url, toHex, utf8 } from './bytes.ts';

// RFC 4648 §10 test vectors. base64url differs from base64 only in the last two letters of
// the alphabet, which these vectors do not use; medledger drops the padding (RFC 4648 §3.2).
const RFC4648: readonly [string, string, string][] = [
  // input, BASE64 without padding, BASE16
  ['', '', ''],
  ['f', 'Zg', '66'],
  ['fo', 'Zm8', '666F'],
  ['foo', 'Zm9v', '666F6F'],
  ['foob', 'Zm9vYg', '666F6F62'],
  ['fooba', 'Zm9vYmE', '666F6F6261'],
  ['foobar', 'Zm9vYmFy', '666F6F626172'],
];

describe('hex (RFC 4648 §10 BASE16)', () => {
  it.each(RFC4648)('%j ↔ %s', (text, _b64, base16) => {
    expect(toHex(utf8(text))).toBe(base16.toLowerCase());
    expect(fromUtf8(fromHex(base16))).toBe(text);
    expect(fromUtf8(fromHex(base16.toLowerCase()))).toBe(text);
  });

  it('round-trips every byte value', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const hex = toHex(all);
    expect(hex).toMatch(/^[0-9a-f]{512}$/);
    expect(hex.slice(0, 8)).toBe('00010203');
    expect(hex.slice(-4)).toBe('feff');
    expect(fromHex(hex)).toEqual(all);
  });

  it.each(['0', 'abc', 'zz', '0g', ' 00', '00 ', '0x00', '-1'])('refuses %j', (text) => {
    expect(() => fromHex(text)).toThrow(TypeError);
  });
});

describe('base64url without padding (RFC 4648 §5, §10 vectors)', () => {
  it.each(RFC4648)('%j ↔ %s', (text, b64) => {
    expect(toBase64Url(utf8(text))).toBe(b64);
    expect(fromUtf8(fromBase64Url(b64))).toBe(text);
  });

  it('uses "-" and "_" where base64 uses "+" and "/"', () => {
    const bytes = new Uint8Array([0xfb, 0xff, 0xbf]);
    expect(toBase64Url(bytes)).toBe('-_-_');
    expect(fromBase64Url('-_-_')).toEqual(bytes);
    expect(() => fromBase64Url('+/+/')).toThrow(TypeError);
  });

  it('round-trips every length from 0 to 70 bytes', () => {
    for (let n = 0; n <= 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 151 + n * 7) & 0xff);
      const text = toBase64Url(bytes);
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(text.length).toBe(Math.ceil((n * 4) / 3));
      expect(fromBase64Url(text)).toEqual(bytes);
    }
  });

  it.each([
    ['Zh', 'non-zero trailing bits after one byte'],
    ['Zm9', 'non-zero trailing bits after two bytes'],
    ['Zm9vYh', 'non-zero trailing bits after four bytes'],
    ['AB', 'non-zero trailing bits in a zero byte'],
  ])('refuses the non-canonical %j (%s)', (text) => {
    expect(() => fromBase64Url(text)).toThrow(TypeError);
  });

  it('accepts the canonical neighbours of those strings', () => {
    expect(fromUtf8(fromBase64Url('Zg'))).toBe('f');
    expect(fromUtf8(fromBase64Url('Zm8'))).toBe('fo');
    expect(fromBase64Url('AA')).toEqual(new Uint8Array([0]));
  });

  it.each([
    ['Zg==', 'padding'],
    ['Z', 'a length of 1 mod 4'],
    ['Zm9vY', 'a length of 1 mod 4'],
    ['Zm 9v', 'a space'],
    ['Zm9v\n', 'a newline'],
    ['Zm.v', 'a character outside the alphabet'],
  ])('refuses %j (%s)', (text) => {
    expect(() => fromBase64Url(text)).toThrow(TypeError);
  });
});

describe('bytesEqual', () => {
  it('is true for equal contents, also across different buffers and views', () => {
    expect(bytesEqual(new Uint8Array(), new Uint8Array())).toBe(true);
    expect(bytesEqual(utf8('abc'), utf8('abc'))).toBe(true);
    const big = utf8('xxabcxx');
    expect(bytesEqual(big.subarray(2, 5), utf8('abc'))).toBe(true);
  });

  it('is false when one byte or one bit differs, or the lengths differ', () => {
    expect(bytesEqual(utf8('abc'), utf8('abd'))).toBe(false);
    expect(bytesEqual(new Uint8Array([0x80]), new Uint8Array([0x00]))).toBe(false);
    expect(bytesEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2]))).toBe(false);
    expect(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
  });
});

describe('concatBytes and UTF-8', () => {
  it('concatenates in order', () => {
    expect(concatBytes(new Uint8Array([1]), new Uint8Array(), new Uint8Array([2, 3]))).toEqual(new Uint8Array([1, 2, 3]));
    expect(concatBytes()).toEqual(new Uint8Array());
  });

  it('encodes UTF-8 and refuses invalid UTF-8 when decoding', () => {
    expect(toHex(utf8('€'))).toBe('e282ac');
    expect(toHex(utf8('\ud83d\ude00'))).toBe('f09f9880');
    expect(() => fromUtf8(new Uint8Array([0xff]))).toThrow(TypeError);
    expect(() => fromUtf8(new Uint8Array([0xed, 0xa0, 0x80]))).toThrow(TypeError);
  });
});
