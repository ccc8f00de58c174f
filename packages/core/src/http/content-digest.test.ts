/** Content-Digest (RFC 9530) with sha-256: known answers, streaming, parsing. */
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex, utf8 } from '../codec/bytes.ts';
import { randomBytes } from '../crypto/random.ts';
import { sha256 } from '../crypto/hash.ts';
import { ContentDigester, contentDigest, parseContentDigest } from './content-digest.ts';

describe('contentDigest', () => {
  it('matches the published digests of {"hello": "world"}', () => {
    // RFC 9530's examples send the body followed by LF (Content-Length: 19).
    expect(contentDigest(utf8('{"hello": "world"}\n'))).toBe('sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:');
    // The same object without LF (18 bytes), as in RFC 9421's test-request and early RFC 9530 drafts.
    expect(contentDigest(utf8('{"hello": "world"}'))).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  });

  it('digests the empty body', () => {
    expect(contentDigest(new Uint8Array(0))).toBe('sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
  });
});

describe('ContentDigester', () => {
  it('gives the same field as contentDigest, however the body is cut', () => {
    const body = randomBytes(200_000);
    const d = new ContentDigester();
    for (let off = 0, step = 1; off < body.length; off += step, step = step * 3 + 7) d.update(body.subarray(off, off + step));
    expect(d.digest()).toBe(contentDigest(body));
    expect(toHex(d.digestBytes())).toBe(toHex(sha256(body)));
  });

  it('finishes once: digest is stable and further updates are refused', () => {
    const d = new ContentDigester().update(utf8('{"hello": "world"}'));
    const first = d.digest();
    expect(d.digest()).toBe(first);
    expect(first).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
    expect(() => d.update(utf8('more'))).toThrow(TypeError);
  });

  it('digests an empty stream', () => {
    expect(new ContentDigester().digest()).toBe(contentDigest(new Uint8Array(0)));
  });
});

describe('parseContentDigest', () => {
  const body = utf8('{"hello": "world"}\n');

  it('round-trips contentDigest', () => {
    expect(parseContentDigest(contentDigest(body))).toEqual(sha256(body));
  });

  it('takes the sha-256 member and ignores other algorithms (RFC 9530 §2)', () => {
    const field =
      'sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:, sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:';
    expect(parseContentDigest(field)).toEqual(sha256(body));
  });

  it('refuses with BAD_REQUEST what it cannot use', () => {
    const bad = [
      '',
      'sha-256',
      'sha-256=RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=',
      'sha-256=:not base64!:',
      'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8Fa:', // truncated to 30 bytes
      'sha-256=(:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:)',
      'sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:',
      'md5=:UFIauregE76D7gDe0/n0JA==:',
    ];
    for (const field of bad) expect(() => parseContentDigest(field), field).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    expect(() => parseContentDigest(`sha-256=:${btoa(String.fromCharCode(...concatBytes(sha256(body), new Uint8Array([0]))))}:`)).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST' }),
    );
  });
});
