/** What the API answers, as the app reads it (the ledger state types live in core). */
import type { FinalityCertificate } from '@medledger/core/ledger/finality';
import type { Receipt } from '@medledger/core/ledger/receipt';
import type { BlockHeader } from '@medledger/core/ledger/block';

export interface TxStatus {
  txId: string;
  status: 'accepted' | 'committed' | 'final' | 'unknown';
  height?: number;
  index?: number;
  code?: string;
  receipt?: Receipt;
  finality?: FinalityCertificate | null;
}

export interface BlockSummary {
  height: number;
  hash: string;
  header: BlockHeader;
  txCount: number;
}

export interface KeyOwnerAnswer {
  keyId: string;
  status: 'active' | 'revoked';
  owner:
    | { kind: 'issuer' }
    | { kind: 'institution'; institution: string }
    | { kind: 'staff'; staffId: string; institution: string }
    | { kind: 'patient'; patientCode: string };
  staff: { staffId: string; institution: string; role: string; displayName: string } | null;
  patient: { patientCode: string; home: string } | null;
}

export interface DemoIdentity {
  name: string;
  label: string;
  kind: 'staff' | 'patient';
  institution: string | null;
  role: string | null;
  displayName: string;
  patientCode: string | null;
}
