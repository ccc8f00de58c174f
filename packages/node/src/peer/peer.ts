/**
 * The peer loop (DESIGN §3): ordered batch → verify signatures (in parallel, on the thread
 * pool) → execute the contracts → commit block, state and orderer position in one SQLite
 * transaction → publish events. Signatures of batch n+1 are checked while batch n executes.
 */
import { EventEmitter } from 'node:events';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import type { LedgerEvent } from '@medledger/core/contracts/context';
import type { KeyEntry, StateWrite } from '@medledger/core/contracts/state';
import { blockHash, chainStateRoot, encodeWrites, resultsHashOf, txRootOf, type Block } from '@medledger/core/ledger/block';
import { executeBlock, type TxCode } from '@medledger/core/ledger/execute';
import { networkIdOf, type Genesis } from '@medledger/core/ledger/genesis';
import { decodeTx, txSigningMessage } from '@medledger/core/ledger/tx';
import { MedledgerError } from '@medledger/core/errors';
import type { OrderedBatch, OrderedTx, Orderer } from '../ordering/orderer.ts';
import { verifyAsync, verifySync } from '../crypto/node-crypto.ts';
import type { LedgerStore } from '../store/ledger-store.ts';

export interface CommittedBlock {
  height: number;
  hash: string;
  time: number;
  txIds: string[];
  codes: TxCode[];
  events: { txId: string; event: LedgerEvent }[];
}

export type TxStatus =
  { status: 'unknown' } | { status: 'accepted' } | { status: 'committed'; height: number; index: number; code: TxCode };

interface Built {
  block: Block;
  txIds: string[];
  writes: StateWrite[];
  values: (string | null)[];
  events: CommittedBlock['events'];
}

interface Prepared {
  batch: OrderedBatch;
  entries: OrderedTx[];
  /** txId → the public key its signature verified against (absent: not checked ahead) */
  verified: Map<string, string | null>;
}

export interface PeerEvents {
  block: [CommittedBlock];
  error: [unknown];
}

export class Peer extends EventEmitter<PeerEvents> {
  readonly network: string;
  /** durable, not yet committed txs */
  private readonly accepted = new Set<string>();
  /** txs whose signature this process checked at its door → the key it verified against */
  private readonly ingressKeys = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private halted: unknown = null;
  /** txId → callbacks of waitForCommit; one lookup per committed tx, however many clients wait */
  private readonly commitWaiters = new Map<string, Set<() => void>>();

  constructor(
    readonly store: LedgerStore,
    readonly orderer: Orderer,
    readonly genesis: Genesis,
  ) {
    super();
    this.network = networkIdOf(genesis);
  }

  async start(): Promise<void> {
    this.store.initialise(this.genesis);
    const head = this.store.head();
    await this.orderer.start({ position: head.position, height: head.height }, (batch) => this.onBatch(batch));
  }

  async stop(): Promise<void> {
    await this.orderer.stop();
    await this.chain.catch(() => undefined);
  }

  /** Tells listeners why the peer halted; never throws into the ordering path (`haltedBy` keeps it). */
  private report(reason: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', reason);
  }

  get haltedBy(): unknown {
    return this.halted;
  }

  /** Stops committing (e.g. on divergence from a certified block): safety before liveness. */
  halt(reason: unknown): void {
    if (this.halted !== null) return;
    this.halted = reason;
    this.report(reason);
  }

  /**
   * Checks a submission the way execution will (shape, network, known author, signature, replay)
   * so that bad input is refused with its code and never reaches the log; then makes it durable.
   */
  async submit(raw: unknown): Promise<{ txId: string; status: TxStatus }> {
    if (this.halted !== null) throw new MedledgerError('NODE_UNAVAILABLE', { details: 'The node has halted.' });
    const { tx, txId } = decodeTx(raw, this.genesis.config.maxTxBytes);
    if (tx.network !== this.network) throw new MedledgerError('TX_WRONG_NETWORK');
    const known = this.status(txId);
    if (known.status !== 'unknown') return { txId, status: known };
    const key = this.store.get('keys', tx.author) as KeyEntry | undefined;
    if (key === undefined) throw new MedledgerError('TX_UNKNOWN_AUTHOR');
    if (!(await verifyAsync(key.publicKey, txSigningMessage(txId), fromBase64Url(tx.signature)))) {
      throw new MedledgerError('TX_BAD_SIGNATURE');
    }
    if (this.store.nonceUsed(tx.author, tx.nonce)) throw new MedledgerError('TX_REPLAY');
    this.ingressKeys.set(`${txId} ${tx.signature}`, key.publicKey);
    try {
      await this.orderer.submit([{ tx, txId }]);
    } catch (e) {
      this.ingressKeys.delete(`${txId} ${tx.signature}`);
      throw e;
    }
    if (this.store.hasTx(txId)) this.ingressKeys.delete(`${txId} ${tx.signature}`);
    else this.accepted.add(txId);
    return { txId, status: { status: 'accepted' } };
  }

  status(txId: string): TxStatus {
    const loc = this.store.txLocation(txId);
    if (loc !== undefined) return { status: 'committed', height: loc.height, index: loc.index, code: loc.code };
    if (this.accepted.has(txId)) return { status: 'accepted' };
    return { status: 'unknown' };
  }

  /** Resolves when the tx is committed (or rejects after `timeoutMs`). */
  waitForCommit(txId: string, timeoutMs: number): Promise<TxStatus> {
    const now = this.status(txId);
    if (now.status === 'committed') return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiters = this.commitWaiters.get(txId) ?? new Set();
      this.commitWaiters.set(txId, waiters);
      const timer = setTimeout(() => done(), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.commitWaiters.get(txId) === waiters) this.commitWaiters.delete(txId);
        resolve(this.status(txId));
      };
      waiters.add(done);
    });
  }

  /** Takes a batch from the orderer: starts its signature checks now, executes it in turn. */
  private async onBatch(batch: OrderedBatch): Promise<void> {
    const prepared = this.prepare(batch);
    this.inFlight++;
    this.chain = this.chain.then(async () => {
      try {
        if (this.halted === null) this.apply(await prepared);
      } catch (e) {
        this.halted = e;
        this.report(e);
      } finally {
        this.inFlight--;
      }
    });
    // Back-pressure: let at most two batches wait behind the one executing.
    if (this.inFlight > 2) await this.chain;
  }

  private async prepare(batch: OrderedBatch): Promise<Prepared> {
    const verified = new Map<string, string | null>();
    await Promise.all(
      batch.entries.map(async ({ tx, txId }) => {
        // Checked at this node's door already: the same process need not check it twice.
        const atIngress = this.ingressKeys.get(`${txId} ${tx.signature}`);
        if (atIngress !== undefined) {
          verified.set(`${txId} ${tx.signature}`, atIngress);
          return;
        }
        const key = this.store.get('keys', tx.author) as KeyEntry | undefined;
        if (key === undefined) return;
        const ok = await verifyAsync(key.publicKey, txSigningMessage(txId), fromBase64Url(tx.signature));
        verified.set(`${txId} ${tx.signature}`, ok ? key.publicKey : null);
      }),
    );
    return { batch, entries: batch.entries, verified };
  }

  private apply({ batch, entries, verified }: Prepared): void {
    // A tx already in the chain, or twice in the batch, is ordered once (DESIGN §4).
    const seen = new Set<string>();
    const fresh = entries.filter((e) => {
      // A tx this process let in was not in the chain then, and the orderer holds it once.
      if (seen.has(e.txId) || (!this.ingressKeys.has(`${e.txId} ${e.tx.signature}`) && this.store.hasTx(e.txId))) return false;
      seen.add(e.txId);
      return true;
    });
    // A batch whose every tx was a repeat still makes a (empty) block: block heights must
    // equal the orderer's batch count on every node, which a restart resumes from.
    const head = this.store.head();
    this.commit(this.buildBlock(fresh, Math.max(batch.time, head.time), batch.position, verified));
  }

  /**
   * Applies a block made elsewhere (replay, catch-up): re-executes its transactions and commits
   * it only if that gives exactly the same header, so a node never stores a block it did not
   * compute itself.
   */
  applyBlock(block: Block): void {
    const head = this.store.head();
    if (block.header.height !== head.height + 1)
      throw new MedledgerError('CHAIN_BROKEN', {
        details: `Expected height ${head.height + 1}.`,
        payload: { height: block.header.height },
      });
    const entries = block.txs.map((raw) => {
      const { tx, txId } = decodeTx(raw, this.genesis.config.maxTxBytes);
      return { tx, txId };
    });
    const built = this.buildBlock(entries, block.header.time, block.header.position, new Map());
    if (blockHash(built.block.header) !== blockHash(block.header)) {
      throw new MedledgerError('CHAIN_BROKEN', {
        details: 'Re-execution gives a different block.',
        payload: { height: block.header.height },
      });
    }
    this.commit(built);
  }

  private buildBlock(fresh: readonly OrderedTx[], time: number, position: string, verified: Map<string, string | null>): Built {
    const head = this.store.head();
    const height = head.height + 1;
    const exec = executeBlock(this.store, this.store, fresh, {
      network: this.network,
      height,
      time,
      // Signatures checked ahead (at this node's door or while the previous block ran) hold
      // only for exactly that tx and key; anything else is checked now.
      // Keyed by tx and signature: txIds do not cover signatures, so two copies of one tx with
      // different signatures must not share an answer.
      checkedTxSignature: (txId, signature, publicKey) => (verified.get(`${txId} ${signature}`) === publicKey ? true : undefined),
      verifySignature: verifySync,
    });
    const txIds = fresh.map((e) => e.txId);
    const encoded = encodeWrites(exec.writes);
    const block: Block = {
      header: {
        network: this.network,
        height,
        prevHash: head.hash,
        txRoot: txRootOf(txIds),
        resultsHash: resultsHashOf(
          fresh.map((e) => e.tx),
          exec.codes,
        ),
        stateRoot: chainStateRoot(head.stateRoot, encoded.hash),
        time,
        position,
      },
      txs: fresh.map((e) => e.tx),
      codes: exec.codes,
    };
    return {
      block,
      txIds,
      writes: exec.writes,
      values: encoded.values,
      events: exec.events.map((e) => ({ txId: e.txId, event: e.event })),
    };
  }

  private commit({ block, txIds, writes, values, events }: Built): void {
    this.store.commitBlock(block, txIds, writes, values);
    block.txs.forEach((tx, i) => {
      this.accepted.delete(txIds[i]!);
      this.ingressKeys.delete(`${txIds[i]!} ${tx.signature}`);
    });
    this.orderer.committed(block.header.position);
    const committed = this.store.head();
    this.emit('block', { height: block.header.height, hash: committed.hash, time: block.header.time, txIds, codes: block.codes, events });
    if (this.commitWaiters.size > 0) {
      for (const txId of txIds) this.commitWaiters.get(txId)?.forEach((done) => done());
    }
  }
}
