/**
 * Talking to a custodian's vault (DESIGN §6), for staff and patients, in the browser or in Node:
 * every request is signed with HTTP Message Signatures (RFC 9421) by the caller's key; what comes
 * back is opened with the caller's own encryption key and checked against the ledger's index
 * before anyone sees it.
 */
import { fromBase64Url, toHex, utf8 } from '../codec/bytes.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { unwrapDataKey } from '../crypto/record-envelope.ts';
import { decryptBytes, decryptStream } from '../crypto/stream-aead.ts';
import { ContentDigester } from '../http/content-digest.ts';
import { signRequest } from '../http/message-signatures.ts';
import { MedledgerError, isErrorCode } from '../errors.ts';
import type { JsonObject } from '../codec/canonical-json.ts';
import type { Purpose } from '../policy/purposes.ts';
import type { Identity } from './identity.ts';
import { recordAad } from './seal-record.ts';

/** Associated data of a record's file: bound to the record (its plaintext hash) and position. */
export function attachmentAad(recordHash: string, index: number): Uint8Array {
  return utf8(`medledger/attachment/v1 ${recordHash} ${index}`);
}

/** Binds a record de-identified for a study to that record and study. */
export function deidentifiedAad(recordId: string, studyId: string): Uint8Array {
  return utf8(`medledger/deidentified/v1 ${recordId} ${studyId}`);
}

/** What the requester's own node says of the record (GET /api/records/:id). */
export interface RecordIndex {
  recordId: string;
  patientCode: string;
  category: string;
  hash: string;
  ciphertextHash: string;
}

export interface StoredRecord {
  objectId: string;
  index: JsonObject;
  attachments: { index: number; contentType: string; size: number; sha256: string }[];
}

export interface FetchedRecord {
  recordId: string;
  /** the ledger's served-access entry that let this happen */
  accessTx: string | null;
  resource: JsonObject;
  /** the record's data key, to open its files */
  dataKey: Uint8Array;
  attachments: { index: number; contentType: string; size: number; ciphertextHash: string | null; complete: boolean }[];
}

export interface DeidentifiedRecord {
  recordId: string;
  accessTx: string | null;
  level: string;
  study: string;
  resource: JsonObject;
}

export interface VaultClientOptions {
  fetch?: typeof fetch;
  /** clock for the signature's created time, ms */
  now?: () => number;
}

interface Blobish {
  size: number;
  stream(): ReadableStream<Uint8Array>;
}

async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

export class VaultClient {
  constructor(
    private readonly me: Identity,
    private readonly o: VaultClientOptions = {},
  ) {}

  private async send(
    method: string,
    url: string,
    init: { body?: Uint8Array | Blobish; json?: unknown; digest?: string } = {},
  ): Promise<Response> {
    const body = init.json !== undefined ? utf8(JSON.stringify(init.json)) : init.body;
    const headers: Record<string, string> = {};
    if (init.json !== undefined) headers['content-type'] = 'application/json';
    else if (body !== undefined) headers['content-type'] = 'application/octet-stream';
    const signed = await signRequest({
      method,
      url,
      headers,
      body: body instanceof Uint8Array ? body : null,
      ...(init.digest !== undefined ? { contentDigestHeader: init.digest } : {}),
      keyId: this.me.keyId,
      privateKey: this.me.file.signing.privateKey,
      now: (this.o.now ?? Date.now)(),
    });
    const res = await (this.o.fetch ?? fetch)(url, {
      method,
      headers: { ...headers, ...signed },
      ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : body.stream(), duplex: 'half' }),
    } as RequestInit);
    if (!res.ok) {
      let code = 'INTERNAL';
      let message = `HTTP ${res.status}`;
      try {
        const e = (await res.json()) as { code?: string; message?: string };
        code = e.code ?? code;
        message = e.message ?? message;
      } catch {
        // not JSON: keep the status
      }
      throw new MedledgerError(isErrorCode(code) ? code : 'INTERNAL', { details: message, payload: { status: res.status } });
    }
    return res;
  }

  /** Sends a FHIR resource to the caller's own institution's vault; answers the index fields. */
  async store(vaultUrl: string, institution: string, p: { patientCode: string; resource: unknown }): Promise<StoredRecord> {
    const res = await this.send('POST', `${vaultUrl}/vault/${institution}/records`, {
      json: { patientCode: p.patientCode, resource: p.resource },
    });
    return (await res.json()) as StoredRecord;
  }

  /** Uploads one of a DocumentReference's files (a Blob: a browser File, or Node's `fs.openAsBlob`), streamed. */
  async uploadAttachment(
    vaultUrl: string,
    institution: string,
    objectId: string,
    index: number,
    file: Blobish,
  ): Promise<{ ciphertextHash: string; size: number }> {
    const digester = new ContentDigester();
    for await (const piece of chunksOf(file.stream())) digester.update(piece);
    const url = `${vaultUrl}/vault/${institution}/objects/${objectId}/attachments/${index}`;
    const res = await this.send('PUT', url, { body: file, digest: digester.digest() });
    return (await res.json()) as { ciphertextHash: string; size: number };
  }

  /**
   * Fetches a record from its custodian for `purpose`, opens it and checks it against the index:
   * the ciphertext's hash, then authenticated decryption, then the plaintext's hash.
   */
  async fetchRecord(vaultUrl: string, index: RecordIndex, purpose: Purpose): Promise<FetchedRecord> {
    const res = await this.send('GET', `${vaultUrl}/vault/records/${index.recordId}?purpose=${purpose}`);
    const answer = (await res.json()) as {
      recordId: string;
      accessTx: string | null;
      keyEnvelope: string;
      ciphertext: string;
      attachments: FetchedRecord['attachments'];
    };
    const ciphertext = fromBase64Url(answer.ciphertext);
    if (sha256Hex(ciphertext) !== index.ciphertextHash)
      throw new MedledgerError('RECORD_INTEGRITY', { details: 'Ciphertext hash differs from the index.' });
    const dataKey = await unwrapDataKey(answer.keyEnvelope, this.me.file.encryption.privateKey);
    const plaintext = await decryptBytes(dataKey, recordAad(index.patientCode, index.category), ciphertext);
    if (sha256Hex(plaintext) !== index.hash)
      throw new MedledgerError('RECORD_INTEGRITY', { details: 'Plaintext hash differs from the index.' });
    const resource = JSON.parse(new TextDecoder().decode(plaintext)) as JsonObject;
    return { recordId: answer.recordId, accessTx: answer.accessTx, resource, dataKey, attachments: answer.attachments };
  }

  /**
   * Fetches a record de-identified for a study (a researcher's only way to a record): the vault
   * removes identifiers before it encrypts to the requester, so the index hashes no longer apply;
   * the answer's own hash is checked instead.
   */
  async fetchDeidentified(vaultUrl: string, recordId: string, study: string, purpose: Purpose): Promise<DeidentifiedRecord> {
    const res = await this.send('GET', `${vaultUrl}/vault/records/${recordId}?purpose=${purpose}&study=${encodeURIComponent(study)}`);
    const answer = (await res.json()) as {
      recordId: string;
      accessTx: string | null;
      keyEnvelope: string;
      ciphertext: string;
      deidentified?: { level: string; study: string; hash: string };
    };
    if (answer.deidentified?.study !== study || answer.recordId !== recordId)
      throw new MedledgerError('RECORD_INTEGRITY', { details: 'The answer is not a de-identified record of this study.' });
    const dataKey = await unwrapDataKey(answer.keyEnvelope, this.me.file.encryption.privateKey);
    const plaintext = await decryptBytes(dataKey, deidentifiedAad(recordId, study), fromBase64Url(answer.ciphertext));
    if (sha256Hex(plaintext) !== answer.deidentified.hash) throw new MedledgerError('RECORD_INTEGRITY');
    const resource = JSON.parse(new TextDecoder().decode(plaintext)) as JsonObject;
    return { recordId, accessTx: answer.accessTx, level: answer.deidentified.level, study, resource };
  }

  /**
   * Streams one of the record's files, decrypting chunk by chunk; the last step checks the
   * plaintext against the SHA-256 the (already verified) resource declares, so a file that was
   * swapped or cut short never ends cleanly.
   */
  async *fetchAttachment(
    vaultUrl: string,
    fetched: FetchedRecord,
    recordHash: string,
    index: number,
    sha256: string,
  ): AsyncGenerator<Uint8Array> {
    const access = fetched.accessTx === null ? '' : `?access=${fetched.accessTx}`;
    const res = await this.send('GET', `${vaultUrl}/vault/records/${fetched.recordId}/attachments/${index}${access}`);
    if (res.body === null) throw new MedledgerError('RECORD_INTEGRITY', { details: 'Empty answer.' });
    const hasher = new ContentDigester();
    for await (const plain of decryptStream(fetched.dataKey, attachmentAad(recordHash, index), chunksOf(res.body))) {
      hasher.update(plain);
      yield plain;
    }
    if (toHex(hasher.digestBytes()) !== sha256)
      throw new MedledgerError('RECORD_INTEGRITY', { details: 'The file differs from its hash.' });
  }

  /** The vault's audit trail, for an auditor of its institution. */
  /** A signed GET of any vault URL, answered as JSON (for tools); a refusal throws its coded error. */
  async get(url: string): Promise<JsonObject> {
    return (await (await this.send('GET', url)).json()) as JsonObject;
  }

  /** A signed POST of a JSON body to any node URL (its Content-Digest signed), answered as JSON. */
  async post(url: string, json: unknown): Promise<JsonObject> {
    return (await (await this.send('POST', url, { json })).json()) as JsonObject;
  }

  async audit(vaultUrl: string, institution: string, after = 0, limit = 100): Promise<JsonObject[]> {
    const res = await this.send('GET', `${vaultUrl}/vault/${institution}/audit?after=${after}&limit=${limit}`);
    return ((await res.json()) as { entries: JsonObject[] }).entries;
  }
}
