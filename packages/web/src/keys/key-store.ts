/**
 * The identities this browser holds, kept in IndexedDB: the signing key and the encryption key
 * pair as non-extractable CryptoKeys (IndexedDB stores them by structured clone, never as bytes
 * a script could read). Nothing here is ever sent to a server.
 */
import { Identity } from '@medledger/core/client/identity';
import { encryptionKeysOf, holdEncryptionKey, holdSigningKey, signingKeyOf } from './browser-keys.ts';

export interface StoredIdentity {
  keyId: string;
  label: string;
  signingPublicKey: string;
  signingKey: CryptoKey;
  encryption: { publicKey: string; keys: CryptoKeyPair };
  /** the patient code a patient identity acts for (null for staff) */
  patientCode: string | null;
  /** a demo identity: synthetic keys that the demo node also has */
  synthetic: boolean;
  savedAt: number;
}

const DB = 'medledger';
const STORE = 'identities';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'keyId' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB did not open'));
  });
}

async function run<T>(mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = op(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    });
  } finally {
    db.close();
  }
}

export function saveIdentity(s: StoredIdentity): Promise<IDBValidKey> {
  return run('readwrite', (store) => store.put(s));
}

export async function listIdentities(): Promise<StoredIdentity[]> {
  const all = await run('readonly', (store) => store.getAll() as IDBRequest<StoredIdentity[]>);
  return all.sort((a, b) => b.savedAt - a.savedAt);
}

export function forgetIdentity(keyId: string): Promise<undefined> {
  return run('readwrite', (store) => store.delete(keyId));
}

/** The core Identity that signs with the stored (non-extractable) key. */
export function identityOf(s: StoredIdentity): Identity {
  const signing = holdSigningKey(s.signingPublicKey, s.signingKey);
  const encryption = holdEncryptionKey(s.encryption.publicKey, s.encryption.keys);
  return new Identity({ label: s.label, signing, encryption });
}

/** What to store of a core Identity whose keys this browser holds under handles. */
export function storedFrom(identity: Identity, o: { patientCode: string | null; synthetic: boolean }): StoredIdentity {
  const key = signingKeyOf(identity.file.signing.privateKey);
  const keys = encryptionKeysOf(identity.file.encryption.privateKey);
  if (key === undefined || keys === undefined) throw new TypeError('the identity’s keys are not held by this browser');
  return {
    keyId: identity.keyId,
    label: identity.label,
    signingPublicKey: identity.signingKey,
    signingKey: key,
    encryption: { publicKey: identity.encryptionKey, keys },
    patientCode: o.patientCode,
    synthetic: o.synthetic,
    savedAt: Date.now(),
  };
}
