/**
 * The vault as the browser uses it: core's VaultClient signs each request here (RFC 9421) and
 * opens what comes back with this browser's encryption key; records kept on the chain (TMSMD's
 * mode) are opened from the index itself.
 */
import { VaultClient, type FetchedRecord } from '@medledger/core/client/vault-client';
import { openRecord } from '@medledger/core/client/seal-record';
import type { Identity } from '@medledger/core/client/identity';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { Member, RecordEntry } from '@medledger/core/contracts/state';
import { fromBase64Url, toHex } from '@medledger/core/codec/bytes';
import { signRequest } from '@medledger/core/http/message-signatures';
import { MedledgerError, isErrorCode } from '@medledger/core/errors';
import type { Purpose } from '@medledger/core/policy/purposes';
import { getJson } from './node-api.ts';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Where a custodian's vault answers. A vault on this very node is reached on the page's own
 * origin (its address may be published as localhost while the page was opened as 127.0.0.1).
 */
export async function vaultUrlOf(custodian: string): Promise<string> {
  const members = await getJson<Member[]>('/api/members');
  const published = members.find((m) => m.id === custodian)?.vaultUrl ?? null;
  if (published === null) return location.origin;
  const u = new URL(published);
  if (u.port === location.port && LOOPBACK.has(u.hostname) && LOOPBACK.has(location.hostname)) return location.origin;
  return u.origin;
}

export interface OpenedRecord {
  resource: JsonObject;
  /** the served-access transaction the custodian wrote before answering (null for the patient) */
  accessTx: string | null;
  fetched: FetchedRecord | null;
}

/** Fetches a record for `purpose` and opens it here, checked against the index hashes. */
export async function openRecordHere(me: Identity, entry: RecordEntry, purpose: Purpose, asPatient: boolean): Promise<OpenedRecord> {
  if (entry.state === 'erased' || entry.keyEnvelopes === null) throw new MedledgerError('RECORD_ERASED');
  if (entry.storage === 'chain' && entry.ciphertext !== null && asPatient) {
    const resource = (await openRecord({
      ciphertext: fromBase64Url(entry.ciphertext),
      envelope: entry.keyEnvelopes.patient,
      recipientPrivateKey: me.file.encryption.privateKey,
      index: entry,
    })) as JsonObject;
    return { resource, accessTx: null, fetched: null };
  }
  const fetched = await new VaultClient(me).fetchRecord(await vaultUrlOf(entry.custodian), entry, purpose);
  return { resource: fetched.resource, accessTx: fetched.accessTx, fetched };
}

/** Downloads and decrypts one of a record's files into a Blob (checked against its SHA-256). */
export async function fileOf(
  me: Identity,
  entry: RecordEntry,
  fetched: FetchedRecord,
  index: number,
  sha256: string,
  type: string,
): Promise<Blob> {
  const parts: BlobPart[] = [];
  const client = new VaultClient(me);
  for await (const piece of client.fetchAttachment(await vaultUrlOf(entry.custodian), fetched, entry.hash, index, sha256)) {
    parts.push(new Uint8Array(piece));
  }
  return new Blob(parts, { type });
}

export async function sha256Of(file: Blob): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer())));
}

/**
 * Uploads one evidence file, signed here. The whole file is the body: browsers stream request
 * bodies only over HTTP/2, and a file is at most 20 MiB.
 */
export async function uploadFile(
  me: Identity,
  vaultUrl: string,
  institution: string,
  objectId: string,
  index: number,
  file: Blob,
): Promise<void> {
  const body = new Uint8Array(await file.arrayBuffer());
  const url = `${vaultUrl}/vault/${institution}/objects/${objectId}/attachments/${index}`;
  const headers = { 'content-type': 'application/octet-stream' };
  const signed = await signRequest({
    method: 'PUT',
    url,
    headers,
    body,
    keyId: me.keyId,
    privateKey: me.file.signing.privateKey,
  });
  const res = await fetch(url, { method: 'PUT', headers: { ...headers, ...signed }, body });
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
    const code = e.code ?? 'INTERNAL';
    throw new MedledgerError(isErrorCode(code) ? code : 'INTERNAL', { details: e.message ?? `HTTP ${res.status}` });
  }
}

export { VaultClient };
