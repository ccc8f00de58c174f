/** RFC 9421 signed vault requests: round trips, every refusal, and RFC 9421 Appendix B.2.6. */
import { sha512 } from '@noble/hashes/sha2.js';
import { signMessage, verifyMessage } from 'http-message-signatures/lib/httpbis/index.js';
import type { Signer } from 'http-message-signatures/lib/types/index.js';
import { describe, expect, it } from 'vitest';
import { bytesEqual, fromUtf8, toBase64Url, utf8 } from '../codec/bytes.ts';
import { SPKI_PREFIX, generateSigningKey, sign, verify } from '../crypto/ed25519.ts';
import { ContentDigester, contentDigest } from './content-digest.ts';
import { signRequest, verifyRequest, type VerifyRequestParameters } from './message-signatures.ts';

const T = 1_750_000_000_000; // ms
const KEY_ID = 'k0123456789abcdef';
const keys = await generateSigningKey();
const lookupKey = (id: string) => Promise.resolve(id === KEY_ID ? keys.publicKey : null);

function verifyAt(
  request: { method: string; url: string; headers: Record<string, string | string[] | undefined> },
  extra: Partial<VerifyRequestParameters> = {},
) {
  return verifyRequest({ ...request, now: T, lookupKey, ...extra });
}

const refusedWith = (code: string): unknown => expect.objectContaining({ name: 'MedledgerError', code });

async function signed(method: string, url: string, body?: Uint8Array, now = T) {
  const headers = await signRequest({ method, url, keyId: KEY_ID, privateKey: keys.privateKey, now, ...(body ? { body } : {}) });
  return { method, url, headers };
}

describe('signRequest', () => {
  it('signs medledger’s components and parameters under sig1', async () => {
    const body = utf8('{"hello": "world"}');
    const headers = await signRequest({
      method: 'POST',
      url: 'https://vault.example:8443/v1/records/r1/attachments?part=2',
      body,
      keyId: KEY_ID,
      privateKey: keys.privateKey,
      now: T + 999,
      nonce: 'n-1',
    });
    expect(Object.keys(headers).sort()).toEqual(['content-digest', 'signature', 'signature-input']);
    expect(headers['content-digest']).toBe(contentDigest(body));
    expect(headers['signature-input']).toBe(
      'sig1=("@method" "@path" "@query" "@authority" "content-digest");created=1750000000;expires=1750000300;nonce="n-1";keyid="k0123456789abcdef";alg="ed25519";tag="medledger-vault"',
    );
    expect(headers['signature']).toMatch(/^sig1=:[A-Za-z0-9+/]{86}==:$/);
  });

  it('omits @query and content-digest for a bare GET, and draws a fresh nonce', async () => {
    const a = await signRequest({
      method: 'GET',
      url: 'https://vault.example/v1/records/r1',
      keyId: KEY_ID,
      privateKey: keys.privateKey,
      now: T,
    });
    const b = await signRequest({
      method: 'GET',
      url: 'https://vault.example/v1/records/r1',
      keyId: KEY_ID,
      privateKey: keys.privateKey,
      now: T,
    });
    expect(a['content-digest']).toBeUndefined();
    expect(a['signature-input']).toMatch(
      /^sig1=\("@method" "@path" "@authority"\);created=1750000000;expires=1750000300;nonce="[A-Za-z0-9_-]{22}";/,
    );
    expect(a['signature-input']).not.toBe(b['signature-input']);
  });

  it('signs a precomputed digest for a streamed body', async () => {
    const digest = new ContentDigester().update(utf8('part one, ')).update(utf8('part two')).digest();
    const headers = await signRequest({
      method: 'PUT',
      url: 'https://vault.example/v1/blobs/b1',
      contentDigestHeader: digest,
      keyId: KEY_ID,
      privateKey: keys.privateKey,
      now: T,
    });
    expect(headers['content-digest']).toBe(contentDigest(utf8('part one, part two')));
    const result = await verifyAt({ method: 'PUT', url: 'https://vault.example/v1/blobs/b1', headers });
    expect(result.coversDigest).toBe(true);
  });

  it('refuses a digest that disagrees with the body, and a relative URL', async () => {
    const base = { method: 'POST', keyId: KEY_ID, privateKey: keys.privateKey, now: T };
    await expect(
      signRequest({ ...base, url: 'https://vault.example/x', body: utf8('a'), contentDigestHeader: contentDigest(utf8('b')) }),
    ).rejects.toThrow(TypeError);
    await expect(signRequest({ ...base, url: '/x', body: utf8('a') })).rejects.toEqual(refusedWith('BAD_REQUEST'));
  });
});

describe('verifyRequest', () => {
  it('accepts what signRequest made and reports who signed it', async () => {
    const body = utf8('{"resourceType":"Observation"}');
    const request = await signed('POST', 'https://vault.example/v1/records?patient=p1', body);
    const result = await verifyAt(request);
    expect(result).toEqual({
      keyId: KEY_ID,
      nonce: expect.any(String) as string,
      created: T / 1000,
      expires: T / 1000 + 300,
      coversDigest: true,
    });
    expect(request.headers['signature-input']).toContain(`nonce="${result.nonce}"`);
    // The caller checks the body against the signed digest.
    expect(request.headers['content-digest']).toBe(contentDigest(body));
  });

  it('accepts any header-name case and repeated fields given as arrays', async () => {
    const request = await signed('GET', 'https://vault.example/v1/records/r1');
    const headers = {
      'Signature-Input': [request.headers['signature-input']!],
      SIGNATURE: request.headers['signature'],
      'x-other': undefined,
    };
    const result = await verifyAt({ ...request, headers });
    expect(result.coversDigest).toBe(false);
  });

  it('refuses a tampered method, path, query or authority with SIGNATURE_INVALID', async () => {
    const request = await signed('GET', 'https://vault.example/v1/records/r1?view=full');
    await expect(verifyAt(request)).resolves.toBeDefined();
    for (const change of [
      { method: 'DELETE' },
      { url: 'https://vault.example/v1/records/r2?view=full' },
      { url: 'https://vault.example/v1/records/r1?view=summary' },
      { url: 'https://vault.example/v1/records/r1' },
      { url: 'https://vault.example/v1/records/r1?view=full&x=1' },
      { url: 'https://other.example/v1/records/r1?view=full' },
      { url: 'https://vault.example:8443/v1/records/r1?view=full' },
    ]) {
      await expect(verifyAt({ ...request, ...change }), JSON.stringify(change)).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
    }
  });

  it('refuses a request signed for /a replayed on /b', async () => {
    const a = await signed('GET', 'https://vault.example/a');
    await expect(verifyAt({ ...a, url: 'https://vault.example/b' })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
  });

  it('refuses a query added to a request signed without one', async () => {
    const request = await signed('GET', 'https://vault.example/v1/records');
    await expect(verifyAt({ ...request, url: 'https://vault.example/v1/records?all=1' })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
  });

  it('refuses a tampered, dropped or smuggled content-digest', async () => {
    const request = await signed('POST', 'https://vault.example/v1/records', utf8('body one'));
    const swapped = { ...request.headers, 'content-digest': contentDigest(utf8('body two')) };
    await expect(verifyAt({ ...request, headers: swapped })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
    const withoutDigest = { ...request.headers, 'content-digest': undefined };
    await expect(verifyAt({ ...request, headers: withoutDigest })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
    // A GET signed without a body, given a body digest afterwards, does not cover it.
    const get = await signed('GET', 'https://vault.example/v1/records');
    const smuggled = { ...get.headers, 'content-digest': contentDigest(utf8('x')) };
    await expect(verifyAt({ ...get, headers: smuggled })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
  });

  it('requires a covered content-digest on POST and PUT', async () => {
    const post = await signed('POST', 'https://vault.example/v1/records');
    expect(post.headers['signature-input']).not.toContain('content-digest');
    await expect(verifyAt(post)).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
    const emptyBody = await signed('POST', 'https://vault.example/v1/records', new Uint8Array(0));
    await expect(verifyAt(emptyBody)).resolves.toMatchObject({ coversDigest: true });
  });

  it('refuses times outside the window with SIGNATURE_EXPIRED', async () => {
    const old = await signed('GET', 'https://vault.example/v1/records', undefined, T - 10 * 60_000);
    await expect(verifyAt(old)).rejects.toEqual(refusedWith('SIGNATURE_EXPIRED'));
    const future = await signed('GET', 'https://vault.example/v1/records', undefined, T + 61_000);
    await expect(verifyAt(future)).rejects.toEqual(refusedWith('SIGNATURE_EXPIRED'));
    const skewed = await signed('GET', 'https://vault.example/v1/records', undefined, T + 59_000);
    await expect(verifyAt(skewed)).resolves.toBeDefined();
    // Within a wide skew, but past expires (created + 300 s).
    const lapsed = await signed('GET', 'https://vault.example/v1/records', undefined, T - 301_000);
    await expect(verifyAt(lapsed, { maxSkewSeconds: 3600 })).rejects.toEqual(refusedWith('SIGNATURE_EXPIRED'));
  });

  it('refuses a request without signature headers with SIGNATURE_MISSING', async () => {
    const request = await signed('GET', 'https://vault.example/v1/records');
    await expect(verifyAt({ ...request, headers: {} })).rejects.toEqual(refusedWith('SIGNATURE_MISSING'));
    await expect(verifyAt({ ...request, headers: { signature: undefined, 'signature-input': undefined } })).rejects.toEqual(
      refusedWith('SIGNATURE_MISSING'),
    );
    await expect(verifyAt({ ...request, headers: { 'signature-input': request.headers['signature-input'] } })).rejects.toEqual(
      refusedWith('SIGNATURE_MISSING'),
    );
  });

  it('refuses an unknown key, another key and a forged signature with SIGNATURE_INVALID', async () => {
    const request = await signed('GET', 'https://vault.example/v1/records');
    await expect(verifyAt(request, { lookupKey: () => Promise.resolve(null) })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
    const other = await generateSigningKey();
    await expect(verifyAt(request, { lookupKey: () => Promise.resolve(other.publicKey) })).rejects.toEqual(
      refusedWith('SIGNATURE_INVALID'),
    );
    const forged = { ...request.headers, signature: `sig1=:${btoa('x'.repeat(64))}:` };
    await expect(verifyAt({ ...request, headers: forged })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
  });

  it('refuses two signatures, malformed fields, and another alg or tag with SIGNATURE_INVALID', async () => {
    const request = await signed('GET', 'https://vault.example/v1/records');
    const input = request.headers['signature-input']!;
    const signature = request.headers['signature']!;
    const cases: Record<string, string>[] = [
      {
        'signature-input': `${input}, ${input.replace('sig1=', 'sig2=')}`,
        signature: `${signature}, ${signature.replace('sig1=', 'sig2=')}`,
      },
      { 'signature-input': input, signature: signature.replace('sig1=', 'sig2=') },
      { 'signature-input': 'sig1=("@method"', signature },
      { 'signature-input': 'sig1="@method"', signature },
      { 'signature-input': input.replace('"@path"', '"@path";req'), signature },
      { 'signature-input': input.replace('"@path"', '"@path" "@path"'), signature },
    ];
    for (const headers of cases)
      await expect(verifyAt({ ...request, headers }), headers['signature-input']).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));

    // Validly signed by the key, but not with medledger's tag and alg.
    for (const paramValues of [
      { tag: 'other-app', alg: 'ed25519' },
      { tag: 'medledger-vault', alg: 'eddsa' },
    ]) {
      const foreign = await signMessage(
        {
          key: { id: KEY_ID, sign: (data: Uint8Array) => sign(keys.privateKey, data) as ReturnType<Signer> },
          name: 'sig1',
          fields: ['@method', '@path', '@authority'],
          params: ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'],
          paramValues: { ...paramValues, created: new Date(T), expires: new Date(T + 300_000), nonce: 'n', keyid: KEY_ID },
        },
        { method: 'GET', url: 'https://vault.example/v1/records', headers: {} },
      );
      await expect(verifyAt({ ...request, headers: foreign.headers })).rejects.toEqual(refusedWith('SIGNATURE_INVALID'));
    }
  });
});

describe('RFC 9421 Appendix B.2.6 (ed25519) with the library', () => {
  // B.1.4 test-key-ed25519, public half only (SubjectPublicKeyInfo, base64).
  const spki = Uint8Array.from(atob('MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs='), (c) => c.charCodeAt(0));
  const publicKey = toBase64Url(spki.subarray(SPKI_PREFIX.length));

  // B.2's test-request, with B.2.6's Signature-Input and Signature (RFC 8792 line folding undone).
  const request = {
    method: 'POST',
    url: 'https://example.com/foo?param=Value&Pet=dog',
    headers: {
      Host: 'example.com',
      Date: 'Tue, 20 Apr 2021 02:07:55 GMT',
      'Content-Type': 'application/json',
      'Content-Digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
      'Content-Length': '18',
      'Signature-Input':
        'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
      Signature: 'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:',
    },
  };

  // B.2.6's signature base.
  const expectedBase = [
    '"date": Tue, 20 Apr 2021 02:07:55 GMT',
    '"@method": POST',
    '"@path": /foo',
    '"@authority": example.com',
    '"content-type": application/json',
    '"content-length": 18',
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
  ].join('\n');

  it('has the B.1.4 key and the test-request body digest', () => {
    expect(bytesEqual(spki.subarray(0, SPKI_PREFIX.length), SPKI_PREFIX)).toBe(true);
    expect(publicKey).toBe('JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs');
    const digest = btoa(String.fromCharCode(...sha512(utf8('{"hello": "world"}'))));
    expect(request.headers['Content-Digest']).toBe(`sha-512=:${digest}:`);
  });

  it('rebuilds the published signature base and verifies the published signature', async () => {
    const bases: string[] = [];
    const check = (key: string) =>
      verifyMessage(
        {
          keyLookup: (params) =>
            Promise.resolve(
              params.keyid === 'test-key-ed25519'
                ? {
                    id: 'test-key-ed25519',
                    algs: ['ed25519'],
                    verify: (data: Uint8Array, signature: Uint8Array) => {
                      bases.push(fromUtf8(data));
                      return verify(key, data, signature);
                    },
                  }
                : null,
            ),
        },
        request,
      );
    expect(await check(publicKey)).toBe(true);
    expect(bases[0]).toBe(expectedBase);
    // And the same signature does not verify under another key, or for another path.
    expect(await check((await generateSigningKey()).publicKey)).toBe(false);
    expect(await verify(publicKey, utf8(expectedBase.replace('/foo', '/bar')), fromSignature(request.headers.Signature))).toBe(false);
  });

  it('is refused by verifyRequest, which requires medledger’s profile', async () => {
    await expect(verifyRequest({ ...request, now: 1618884473_000, lookupKey: () => Promise.resolve(publicKey) })).rejects.toEqual(
      refusedWith('SIGNATURE_INVALID'),
    );
  });
});

function fromSignature(field: string): Uint8Array {
  const b64 = /^[^=]+=:([^:]+):$/.exec(field)![1]!;
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
