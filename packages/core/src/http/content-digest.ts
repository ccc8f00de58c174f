/**
 * The `Content-Digest` field (RFC 9530 §2) with SHA-256, the one algorithm medledger sends and
 * accepts: whole bodies, streamed bodies, and parsing a received field. The field is a Structured
 * Fields Dictionary (RFC 8941 §3.2) whose members are Byte Sequences, e.g. `sha-256=:<base64>:`.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { isInnerList, parseDictionary, serializeDictionary } from 'structured-headers';
import { MedledgerError } from '../errors.ts';
import { sha256 } from '../crypto/hash.ts';

/** The Hash Algorithms for HTTP Digest Fields registry key of SHA-256 (RFC 9530 §5). */
const SHA_256 = 'sha-256';
const SHA_256_LENGTH = 32;

/** The `Content-Digest` value of a whole body: `sha-256=:<base64 of SHA-256(body)>:`. */
export function contentDigest(body: Uint8Array): string {
  return formatDigest(sha256(body));
}

/** Computes `Content-Digest` over a body that arrives in pieces, as a server streams it. */
export class ContentDigester {
  private readonly hash = nobleSha256.create();
  private result: Uint8Array | undefined;

  update(bytes: Uint8Array): this {
    if (this.result !== undefined) throw new TypeError('ContentDigester was already finished');
    this.hash.update(bytes);
    return this;
  }

  /** The raw 32-byte SHA-256; finishes the digester (later calls return the same bytes). */
  digestBytes(): Uint8Array {
    this.result ??= this.hash.digest();
    return this.result.slice();
  }

  /** The field value, `sha-256=:<base64>:`; finishes the digester like `digestBytes`. */
  digest(): string {
    return formatDigest(this.digestBytes());
  }
}

/**
 * The SHA-256 bytes of a received `Content-Digest` field. Members with other algorithms are
 * ignored, as RFC 9530 §2 allows a recipient to. A field that is not a well-formed dictionary,
 * has no `sha-256` member, or whose `sha-256` member is not a 32-byte Byte Sequence fails with
 * BAD_REQUEST: the request is malformed. DIGEST_MISMATCH is kept for a well-formed digest that
 * differs from the body, which only the caller, holding the body, can tell.
 */
export function parseContentDigest(header: string): Uint8Array {
  let members;
  try {
    members = parseDictionary(header);
  } catch (cause) {
    throw new MedledgerError('BAD_REQUEST', { details: 'Content-Digest is not a structured dictionary.', cause });
  }
  const member = members.get(SHA_256);
  if (member === undefined) throw new MedledgerError('BAD_REQUEST', { details: 'Content-Digest has no sha-256 digest.' });
  const value = isInnerList(member) ? undefined : member[0];
  if (!(value instanceof ArrayBuffer) || value.byteLength !== SHA_256_LENGTH) {
    throw new MedledgerError('BAD_REQUEST', { details: 'The sha-256 Content-Digest is not a 32-byte byte sequence.' });
  }
  return new Uint8Array(value);
}

function formatDigest(digest: Uint8Array): string {
  return serializeDictionary({ [SHA_256]: [digest.slice(), new Map()] });
}
