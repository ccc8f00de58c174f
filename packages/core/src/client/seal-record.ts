/**
 * Prepares a record for the index: hashes the canonical plaintext (TMSMD: SHA-256 of the data
 * for integrity), encrypts it under a fresh data key and wraps that key to the patient and the
 * custodian. The caller stores the ciphertext (vault or chain) and registers the index fields.
 */
import { canonicalBytes } from '../codec/canonical-json.ts';
import { utf8 } from '../codec/bytes.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { decryptWithDataKey, encryptWithDataKey, newDataKey, unwrapDataKey, wrapDataKey } from '../crypto/record-envelope.ts';
import { MedledgerError } from '../errors.ts';

export interface SealedRecord {
  hash: string;
  ciphertext: Uint8Array;
  ciphertextHash: string;
  size: number;
  keyEnvelopes: { patient: string; custodian: string };
}

/** Associated data: a ciphertext opens only as this patient's record of this category. */
export function recordAad(patientCode: string, category: string): Uint8Array {
  return utf8(`medledger/record/v1 ${patientCode} ${category}`);
}

export async function sealRecord(p: {
  resource: unknown;
  patientCode: string;
  category: string;
  patientEncryptionKey: string;
  custodianEncryptionKey: string;
}): Promise<SealedRecord> {
  const plaintext = canonicalBytes(p.resource);
  const dataKey = newDataKey();
  const ciphertext = await encryptWithDataKey(dataKey, plaintext, recordAad(p.patientCode, p.category));
  return {
    hash: sha256Hex(plaintext),
    ciphertext,
    ciphertextHash: sha256Hex(ciphertext),
    size: plaintext.length,
    keyEnvelopes: {
      patient: await wrapDataKey(dataKey, p.patientEncryptionKey),
      custodian: await wrapDataKey(dataKey, p.custodianEncryptionKey),
    },
  };
}

/** Opens a record with a recipient's key and checks it against the index hashes. */
export async function openRecord(p: {
  ciphertext: Uint8Array;
  envelope: string;
  recipientPrivateKey: string;
  index: { patientCode: string; category: string; hash: string; ciphertextHash: string };
}): Promise<unknown> {
  if (sha256Hex(p.ciphertext) !== p.index.ciphertextHash)
    throw new MedledgerError('RECORD_INTEGRITY', { details: 'Ciphertext hash differs from the index.' });
  const dataKey = await unwrapDataKey(p.envelope, p.recipientPrivateKey);
  const plaintext = await decryptWithDataKey(dataKey, p.ciphertext, recordAad(p.index.patientCode, p.index.category));
  if (sha256Hex(plaintext) !== p.index.hash)
    throw new MedledgerError('RECORD_INTEGRITY', { details: 'Plaintext hash differs from the index.' });
  return JSON.parse(new TextDecoder().decode(plaintext)) as unknown;
}
