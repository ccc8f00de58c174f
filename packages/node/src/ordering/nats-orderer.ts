/**
 * The `nats` orderer (DESIGN §5): a JetStream stream replicated over the NATS servers that the
 * member institutions run. Submissions are published with `Nats-Msg-Id = txId`, so a retry, or
 * the same tx sent to two nodes, is stored once within the duplicate window (and the peer drops
 * any later repeat). Every node cuts the same blocks from the same stream: a block closes at
 * `maxTxPerBlock` transactions, or at the first cut marker for its height, which any node
 * publishes after `batchTimeout` (deduplicated by its msg id). The block time is the stream's
 * timestamp of the message that closed the block, never a node's clock.
 *
 * Note (FACTS.md): nats-server 2.9 has no `sync_interval`; an ack means "stored on a quorum of
 * servers", not "fsynced".
 */
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { follow, openStream, type Follower } from './jetstream-stream.ts';
import { DiscardPolicy, StorageType, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { decodeTx } from '@medledger/core/ledger/tx';
import { MedledgerError } from '@medledger/core/errors';
import type { OrderedBatch, OrderedTx, Orderer, OrdererStart } from './orderer.ts';

export interface NatsOrdererOptions {
  servers: string[];
  /** stream name; one stream per network */
  stream: string;
  replicas: number;
  maxTxPerBlock: number;
  batchTimeoutMs: number;
  maxTxBytes: number;
  /** how long a submission keeps retrying while the stream has no leader */
  submitTimeoutMs?: number;
  /** called when applying a stream message failed: reading stopped, the node must halt */
  onFatal?: (e: unknown) => void;
}

const DUPLICATE_WINDOW_MS = 120_000;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class NatsOrderer implements Orderer {
  readonly kind = 'nats' as const;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private follower: Follower | null = null;
  private pending: OrderedTx[] = [];
  private nextHeight = 1;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: NatsOrdererOptions) {}

  private get txSubject(): string {
    return `${this.o.stream}.tx`;
  }

  private get cutSubject(): string {
    return `${this.o.stream}.cut`;
  }

  async start(from: OrdererStart, deliver: (batch: OrderedBatch) => Promise<void>): Promise<void> {
    const { nc, js } = await openStream(this.o.servers, 'medledger', {
      name: this.o.stream,
      subjects: [this.txSubject, this.cutSubject],
      storage: StorageType.File,
      num_replicas: this.o.replicas,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      discard: DiscardPolicy.Old,
      max_msg_size: this.o.maxTxBytes + 1024,
    });
    this.nc = nc;
    this.js = js;
    this.nextHeight = from.height + 1;
    const startSeq = (from.position === '' ? 0 : Number(from.position)) + 1;
    this.follower = await follow(
      js,
      this.o.stream,
      startSeq,
      (m) => this.onMessage(m, deliver),
      (e) => {
        const why = e instanceof Error ? e.message : String(e);
        process.stderr.write(`medledger: ordering: stream reader failed (${why}); re-reading from the next unapplied message\n`);
      },
      (e) => this.o.onFatal?.(e),
    );
  }

  /** The deterministic cutting rule: every node applies it to the same messages in the same order. */
  private async onMessage(m: JsMsg, deliver: (batch: OrderedBatch) => Promise<void>): Promise<void> {
    // Block time: the stream leader's timestamp, ms (nanoseconds in the JetStream reply).
    const time = Math.floor(m.info.timestampNanos / 1_000_000);
    if (m.subject === this.txSubject) {
      let entry: OrderedTx;
      try {
        const { tx, txId } = decodeTx(JSON.parse(decoder.decode(m.data)), this.o.maxTxBytes);
        entry = { tx, txId };
      } catch {
        return; // not a transaction: every node skips the same message
      }
      this.pending.push(entry);
      if (this.pending.length >= this.o.maxTxPerBlock) await this.cut(m.seq, time, deliver);
      else if (this.pending.length === 1) this.armTimer();
      return;
    }
    if (m.subject === this.cutSubject) {
      let height: unknown;
      try {
        height = (JSON.parse(decoder.decode(m.data)) as { height?: unknown }).height;
      } catch {
        return; // not a marker: every node ignores the same message
      }
      if (height === this.nextHeight && this.pending.length > 0) await this.cut(m.seq, time, deliver);
    }
  }

  private async cut(seq: number, time: number, deliver: (batch: OrderedBatch) => Promise<void>): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch: OrderedBatch = { entries: this.pending, time, position: String(seq) };
    this.pending = [];
    this.nextHeight++;
    await deliver(batch);
    if (this.pending.length > 0) this.armTimer();
  }

  /** After `batchTimeout`, ask every node to close the block at this height. */
  private armTimer(): void {
    if (this.timer !== null || this.stopped) return;
    const height = this.nextHeight;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped || this.js === null || height !== this.nextHeight) return;
      this.js
        .publish(this.cutSubject, encoder.encode(JSON.stringify({ height })), { msgID: `cut-${this.o.stream}-${height}` })
        .catch(() => {
          // The stream may be electing a leader: try again after another timeout.
          if (height === this.nextHeight) this.armTimer();
        });
    }, this.o.batchTimeoutMs);
  }

  async submit(entries: readonly OrderedTx[]): Promise<void> {
    if (this.js === null || this.stopped) throw new MedledgerError('NODE_UNAVAILABLE');
    const js = this.js;
    const deadline = Date.now() + (this.o.submitTimeoutMs ?? 60_000);
    await Promise.all(
      entries.map(async (e) => {
        const data = encoder.encode(JSON.stringify(e.tx));
        // Retried under the same msg id, so a retry after a lost ack is stored once.
        for (let attempt = 0; ; attempt++) {
          try {
            await js.publish(this.txSubject, data, { msgID: e.txId, timeout: 5000 });
            return;
          } catch (cause) {
            if (this.stopped || Date.now() > deadline) {
              throw new MedledgerError('NODE_UNAVAILABLE', { details: 'The ordering service did not acknowledge the transaction.', cause });
            }
            await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
          }
        }
      }),
    );
  }

  committed(): void {
    // The stream keeps every message: a new or wiped node catches up from it.
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.follower?.stop();
    await this.follower?.done.catch(() => undefined);
    await this.nc?.close();
  }
}
