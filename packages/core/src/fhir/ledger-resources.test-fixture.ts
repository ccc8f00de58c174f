/** Synthetic ledger values (no real person) for the FHIR mapping tests. */
import type { AccessLogEntry, RecordEntry } from '../contracts/state.ts';

export const hex = (c: string): string => c.repeat(64);

export function recordEntry(over: Partial<RecordEntry> = {}): RecordEntry {
  return {
    recordId: hex('1'),
    state: 'active',
    patientCode: hex('a'),
    groupKeyId: null,
    hashAlg: 'sha-256',
    hashLength: 32,
    hash: hex('2'),
    custodian: 'hosp-b',
    category: 'Observation',
    ciphertextHash: hex('3'),
    size: 1234,
    storage: 'vault',
    pointer: 'vault:hosp-b/0123',
    ciphertext: null,
    keyEnvelopes: { patient: 'cA', custodian: 'cA' },
    author: 'hosp-b/dr-park',
    registeredAt: Date.UTC(2026, 10, 1, 9, 30),
    height: 7,
    version: 1,
    lineage: hex('1'),
    supersedes: null,
    supersededBy: null,
    registrationRequestId: null,
    ...over,
  };
}

export function accessLogEntry(over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    entryId: hex('4'),
    patientCode: hex('a'),
    recordId: hex('1'),
    actor: 'hosp-a/dr-kim',
    actorRole: 'doctor',
    institution: 'hosp-a',
    custodian: 'hosp-b',
    purpose: 'TREAT',
    outcome: 'served',
    code: null,
    consentId: hex('5'),
    reason: 'referral',
    time: Date.UTC(2026, 10, 2, 10, 0),
    height: 9,
    ...over,
  };
}
