/**
 * The ordering interface (DESIGN §5): a replicated or local log that makes submissions durable,
 * orders them, and hands the peer batches that become blocks. `solo` and `nats` implement it.
 */
import type { Tx } from '@medledger/core/ledger/tx';

export interface OrderedTx {
  tx: Tx;
  txId: string;
}

export interface OrderedBatch {
  entries: OrderedTx[];
  /** block time, ms since the epoch, chosen by the orderer (never a peer's clock) */
  time: number;
  /** position of the batch's last entry; the peer stores it with the block */
  position: string;
}

/** Where the peer stands: the position and height of its last committed block. */
export interface OrdererStart {
  position: string;
  height: number;
}

export interface Orderer {
  readonly kind: 'solo' | 'nats';
  /**
   * Delivers, in order and one at a time, every batch after `from.position`; `deliver`
   * resolving means the peer has taken the batch. Each batch becomes block `from.height + n`.
   */
  start(from: OrdererStart, deliver: (batch: OrderedBatch) => Promise<void>): Promise<void>;
  /** Resolves once the entries are durable: this is what "accepted" means. */
  submit(entries: readonly OrderedTx[]): Promise<void>;
  /** The peer has committed up to `position`; the orderer may drop what lies before. */
  committed(position: string): void;
  stop(): Promise<void>;
}
