/** Checks a transaction's receipt here, with core alone: inclusion in its block, its code, its block hash. */
import { verifyReceipt } from '@medledger/core/ledger/receipt';
import { getJson, ordering } from './node-api.ts';
import type { TxStatus } from './ledger-types.ts';

export interface CheckedTx {
  status: TxStatus;
  /** the node orders alone, so a committed block is final */
  solo: boolean;
  verified: boolean;
  problem: string | null;
}

export async function checkTx(txId: string): Promise<CheckedTx> {
  const [status, solo] = await Promise.all([getJson<TxStatus>(`/api/tx/${txId}`), ordering().then((o) => o === 'solo')]);
  if (status.receipt === undefined) return { status, solo, verified: false, problem: 'Not in a block yet.' };
  try {
    verifyReceipt(status.receipt);
    return { status, solo, verified: true, problem: null };
  } catch (e) {
    return { status, solo, verified: false, problem: e instanceof Error ? e.message : 'The receipt does not verify.' };
  }
}

/** Finality in words: a consortium certifies blocks; a single (solo) node's commit is its final word. */
export function finalityOf(checked: CheckedTx): string {
  const s = checked.status;
  if (s.status === 'final') return `final: certified by ${s.finality?.votes.length ?? 'a quorum of'} validators`;
  if (s.status === 'committed') return checked.solo ? 'final: committed by this single node' : 'committed, not yet final';
  return s.status;
}
