/**
 * Who is signed in: an identity this browser holds, and what the ledger says it is (staff of an
 * institution with a role, or a patient). Only the key id of the last session is remembered in
 * localStorage, to sign in again after a reload; the keys themselves are in IndexedDB.
 */
import { createContext, useContext } from 'react';
import type { Identity } from '@medledger/core/client/identity';
import { MedledgerError, isMedledgerError } from '@medledger/core/errors';
import { getJson } from './ledger/node-api.ts';
import type { KeyOwnerAnswer } from './ledger/ledger-types.ts';
import { identityOf, type StoredIdentity } from './keys/key-store.ts';

export interface Session {
  stored: StoredIdentity;
  identity: Identity;
  /** what the ledger says holds this key; null for a patient key not yet registered */
  owner: KeyOwnerAnswer | null;
  kind: 'staff' | 'patient' | 'other';
  patientCode: string | null;
}

const LAST = 'medledger.lastKeyId';

export async function openSession(stored: StoredIdentity): Promise<Session> {
  const identity = identityOf(stored);
  let owner: KeyOwnerAnswer | null = null;
  try {
    owner = await getJson<KeyOwnerAnswer>(`/api/keys/${identity.keyId}`);
  } catch (e) {
    if (!(isMedledgerError(e) && e.code === 'NOT_FOUND')) throw e;
  }
  if (owner?.status === 'revoked') throw new MedledgerError('IDENTITY_REVOKED');
  // A key the ledger does not know yet can only be a new patient's, waiting for registration.
  const kind = owner === null || owner.owner.kind === 'patient' ? 'patient' : owner.owner.kind === 'staff' ? 'staff' : 'other';
  const patientCode = owner?.patient?.patientCode ?? stored.patientCode;
  localStorage.setItem(LAST, stored.keyId);
  return { stored, identity, owner, kind, patientCode };
}

export function lastKeyId(): string | null {
  return localStorage.getItem(LAST);
}

export function forgetLastSession(): void {
  localStorage.removeItem(LAST);
}

export const SessionContext = createContext<{ session: Session | null; setSession: (s: Session | null) => void }>({
  session: null,
  setSession: () => undefined,
});

export function useSession(): Session | null {
  return useContext(SessionContext).session;
}
