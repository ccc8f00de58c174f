/**
 * HTTP Message Signatures (RFC 9421) on medledger's signed vault requests, with Ed25519 keys
 * (RFC 9421 §3.3.6) and the `http-message-signatures` library for the signature base.
 *
 * Only the library's `httpbis` module is imported, by deep path, because its package index also
 * loads the draft-cavage module and node's `crypto`. That module reads the global `Buffer`
 * (`Buffer.from(base)` when signing and verifying): Node has it; a browser needs a `Buffer`
 * global installed before these functions run (the web app provides one; core does not polyfill).
 *
 * Profile: label `sig1`; covered components `@method`, `@path`, `@query` (when the URL has a
 * query), `@authority`, and `content-digest` when the request has a body; parameters `created`,
 * `expires` (created + 300 s), `nonce`, `keyid`, `alg="ed25519"`, `tag="medledger-vault"`.
 */
import { signMessage, verifyMessage } from 'http-message-signatures/lib/httpbis/index.js';
import type { Request as SignatureRequest, Signer } from 'http-message-signatures/lib/types/index.js';
import { isInnerList, parseDictionary, type Dictionary, type InnerList } from 'structured-headers';
import { toBase64Url } from '../codec/bytes.ts';
import { sign, verify } from '../crypto/ed25519.ts';
import { randomBytes } from '../crypto/random.ts';
import { MedledgerError } from '../errors.ts';
import { contentDigest } from './content-digest.ts';

export const SIGNATURE_LABEL = 'sig1';
export const SIGNATURE_TAG = 'medledger-vault';
export const SIGNATURE_ALG = 'ed25519';
/** Seconds from `created` to `expires` on the signatures this module makes. */
export const SIGNATURE_LIFETIME_SECONDS = 300;
const DEFAULT_MAX_SKEW_SECONDS = 60;

export interface SignedRequestParts {
  method: string;
  /** The absolute URL of the request, as the server sees it (scheme, authority, path, query). */
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

export interface SignRequestParameters {
  method: string;
  /** Absolute URL; its authority, path and query are signed. */
  url: string;
  /** The request's other headers; only a `content-digest` among them is used (and signed). */
  headers?: Record<string, string>;
  /** The whole body; its Content-Digest is computed and signed. */
  body?: Uint8Array | null;
  /** A precomputed Content-Digest value, for a body that is streamed rather than held. */
  contentDigestHeader?: string;
  keyId: string;
  /** Ed25519 private seed, raw 32 bytes in base64url. */
  privateKey: string;
  /** Signing time in milliseconds; defaults to `Date.now()`. */
  now?: number;
  /** Defaults to 16 random bytes in base64url. */
  nonce?: string;
  /** The application tag; default `medledger-vault` (webhooks use `medledger-webhook`). */
  tag?: string;
}

export interface VerifyRequestParameters {
  method: string;
  /** The absolute URL the server received, built from the authority it serves. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** The verifier's clock in milliseconds. */
  now: number;
  /** How far `created` may be from `now`, either way; default 60. */
  maxSkewSeconds?: number;
  /** The Ed25519 public key (raw, base64url) registered under `keyId`, or null. */
  lookupKey: (keyId: string) => Promise<string | null>;
  /** The tag the signature must carry; default `medledger-vault`. */
  tag?: string;
}

export interface VerifiedRequest {
  keyId: string;
  nonce: string;
  /** Seconds since the epoch. */
  created: number;
  /** Seconds since the epoch. */
  expires: number;
  /** Whether `content-digest` is covered; the caller still checks the digest against the body. */
  coversDigest: boolean;
}

/**
 * Signs a request. Returns the headers to add to it: `signature-input`, `signature` and, when the
 * request has a body (or a precomputed digest), `content-digest`.
 */
export async function signRequest(p: SignRequestParameters): Promise<Record<string, string>> {
  const url = absoluteUrl(p.url);
  const digest = digestToSign(p);
  const created = Math.floor((p.now ?? Date.now()) / 1000);
  const headers: Record<string, string> = digest === undefined ? {} : { 'content-digest': digest };
  const signed = await signMessage(
    {
      key: {
        id: p.keyId,
        alg: SIGNATURE_ALG,
        // The library types its signer with Node's Buffer; it only reads the result's bytes.
        sign: (data: Uint8Array) => sign(p.privateKey, data) as ReturnType<Signer>,
      },
      name: SIGNATURE_LABEL,
      fields: coveredComponents(url, digest !== undefined),
      params: ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'],
      paramValues: {
        created: new Date(created * 1000),
        expires: new Date((created + SIGNATURE_LIFETIME_SECONDS) * 1000),
        nonce: p.nonce ?? toBase64Url(randomBytes(16)),
        keyid: p.keyId,
        alg: SIGNATURE_ALG,
        tag: p.tag ?? SIGNATURE_TAG,
      },
    },
    { method: p.method, url: url.href, headers } satisfies SignatureRequest,
  );
  const out: Record<string, string> = { ...headers };
  for (const [name, value] of Object.entries(signed.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'signature' || lower === 'signature-input') out[lower] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/**
 * Verifies a signed vault request against medledger's profile and the key registered under its
 * `keyid`. Refuses with SIGNATURE_MISSING (no signature), SIGNATURE_EXPIRED (`created` outside
 * ±maxSkew of `now`, or `expires` past) or SIGNATURE_INVALID (anything else: more than one
 * signature, wrong alg or tag, a required component or parameter missing, unknown key, bad
 * signature). It does not hash the body: when `coversDigest` is true the caller must check the
 * body against `content-digest` (the server streams it), and must reject a replayed `nonce`.
 */
export async function verifyRequest(p: VerifyRequestParameters): Promise<VerifiedRequest> {
  const headers = normalizeHeaders(p.headers);
  const signatureField = headers['signature'];
  const inputField = headers['signature-input'];
  if (signatureField === undefined || inputField === undefined) {
    throw new MedledgerError('SIGNATURE_MISSING', { details: 'Both Signature and Signature-Input are required.' });
  }

  const [label, input] = singleInput(inputField);
  const signatures = parseField(signatureField, 'Signature');
  if (signatures.size !== 1 || !signatures.has(label)) invalid('Signature must hold exactly the one signature Signature-Input describes.');

  const [items, params] = input;
  const components = items.map(([name, itemParams]) => {
    if (typeof name !== 'string' || itemParams.size > 0) invalid('Covered components must be plain names without parameters.');
    return name;
  });
  if (new Set(components).size !== components.length) invalid('A covered component is listed twice.');

  if (params.get('alg') !== SIGNATURE_ALG) invalid(`The signature alg must be "${SIGNATURE_ALG}".`);
  const tag = p.tag ?? SIGNATURE_TAG;
  if (params.get('tag') !== tag) invalid(`The signature tag must be "${tag}".`);
  const keyId = nonEmptyString(params.get('keyid'), 'keyid');
  const nonce = nonEmptyString(params.get('nonce'), 'nonce');
  const created = integer(params.get('created'), 'created');
  const expires = integer(params.get('expires'), 'expires');

  const url = absoluteUrl(p.url);
  const method = p.method.toUpperCase();
  const needsDigest = headers['content-digest'] !== undefined || method === 'POST' || method === 'PUT';
  const required = coveredComponents(url, needsDigest);
  const missing = required.filter((c) => !components.includes(c));
  if (missing.length > 0) invalid(`The signature does not cover ${missing.join(', ')}.`);

  // Time is checked here against the caller's clock; the library would read Date.now().
  const now = Math.floor(p.now / 1000);
  const maxSkew = p.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS;
  if (Math.abs(created - now) > maxSkew) {
    throw new MedledgerError('SIGNATURE_EXPIRED', { details: `created is more than ${maxSkew} s from now.`, payload: { created, now } });
  }
  if (expires < now) throw new MedledgerError('SIGNATURE_EXPIRED', { details: 'expires has passed.', payload: { expires, now } });

  const publicKey = await p.lookupKey(keyId);
  if (publicKey === null) invalid('No key is registered under this keyid.', { keyId });

  let valid: boolean | null;
  try {
    valid = await verifyMessage(
      {
        keyLookup: () =>
          Promise.resolve({
            id: keyId,
            algs: [SIGNATURE_ALG],
            verify: (data: Uint8Array, signature: Uint8Array) => verify(publicKey, data, signature),
          }),
        requiredFields: required,
        requiredParams: ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'],
        // Disables the library's own clock checks (it would read Date.now()); done above.
        tolerance: Number.POSITIVE_INFINITY,
      },
      { method: p.method, url: url.href, headers: definedHeaders(headers) } satisfies SignatureRequest,
    );
  } catch (cause) {
    invalid('The signature base cannot be built from this request.', { keyId }, cause);
  }
  if (valid !== true) invalid('The signature does not verify.', { keyId });

  return { keyId, nonce, created, expires, coversDigest: components.includes('content-digest') };
}

/** The components medledger signs and requires, in signing order. */
function coveredComponents(url: URL, withDigest: boolean): string[] {
  return ['@method', '@path', ...(url.search === '' ? [] : ['@query']), '@authority', ...(withDigest ? ['content-digest'] : [])];
}

function digestToSign(p: SignRequestParameters): string | undefined {
  const given = Object.entries(p.headers ?? {}).find(([name]) => name.toLowerCase() === 'content-digest')?.[1];
  const sources = [p.body == null ? undefined : contentDigest(p.body), p.contentDigestHeader, given].filter((d) => d !== undefined);
  if (new Set(sources).size > 1) throw new TypeError('body, contentDigestHeader and a content-digest header disagree');
  return sources[0];
}

function absoluteUrl(url: string): URL {
  try {
    return new URL(url);
  } catch (cause) {
    throw new MedledgerError('BAD_REQUEST', { details: 'The request URL is not absolute.', cause });
  }
}

/** Lower-cased names; repeated fields joined with ", " (RFC 9110 §5.3); absent ones dropped. */
function normalizeHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (typeof headers !== 'object' || (headers as unknown) === null) throw new MedledgerError('SIGNATURE_MISSING');
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    // Headers are strings (or lists of strings, repeated); anything else is not a request we signed.
    if (typeof value !== 'string' && !(Array.isArray(value) && value.every((v) => typeof v === 'string')))
      throw new MedledgerError('SIGNATURE_INVALID', { details: 'A header value is not text.' });
    const lower = name.toLowerCase();
    const joined = Array.isArray(value) ? value.join(', ') : value;
    out[lower] = out[lower] === undefined ? joined : `${out[lower]}, ${joined}`;
  }
  return out;
}

function definedHeaders(headers: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = value;
  return out;
}

function parseField(value: string, name: string): Dictionary {
  try {
    return parseDictionary(value);
  } catch (cause) {
    invalid(`${name} is not a structured dictionary.`, {}, cause);
  }
}

function singleInput(field: string): [string, InnerList] {
  const inputs = parseField(field, 'Signature-Input');
  const [first, ...rest] = inputs;
  if (first === undefined || rest.length > 0) invalid('Signature-Input must describe exactly one signature.');
  const [label, input] = first;
  if (!isInnerList(input)) invalid('Signature-Input is not an inner list of components.');
  return [label, input];
}

function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') invalid(`The signature has no ${name}.`);
  return value;
}

function integer(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) invalid(`The signature has no integer ${name}.`);
  return value;
}

function invalid(details: string, payload: Record<string, unknown> = {}, cause?: unknown): never {
  throw new MedledgerError('SIGNATURE_INVALID', cause === undefined ? { details, payload } : { details, payload, cause });
}
