/**
 * Push (issue 7): the node follows committed blocks and turns each new record of a patient into a
 * notification for every active subscription whose consent still covers it — on the event stream
 * (`notification` events, for every subscriber) and, for the institutions this node delivers for,
 * as a webhook POST signed with the institution's key (RFC 9421, tag `medledger-webhook`), retried
 * with exponential backoff and dead-lettered after the last attempt. It also tells a patient, on
 * the event stream, when someone broke the glass on their records.
 *
 * Coverage is asked again before every attempt (`subscriptionCoverage` at the ledger's head time),
 * so a revoked, narrowed or ended consent — or a cancelled subscription — stops what is queued.
 * Bodies carry the pseudonymous patient code and the record id, nothing else about the patient.
 */
import { EventEmitter } from 'node:events';
import { sha256Hex } from '@medledger/core/crypto/hash';
import { patientConsents } from '@medledger/core/contracts/consent';
import { Draft } from '@medledger/core/contracts/context';
import type { KeyEntry, Member, RecordEntry, Review, Staff, Subscription } from '@medledger/core/contracts/state';
import type { Identity } from '@medledger/core/client/identity';
import { MedledgerError, isMedledgerError, type ErrorCode } from '@medledger/core/errors';
import { signRequest, verifyRequest } from '@medledger/core/http/message-signatures';
import { txIdOf } from '@medledger/core/ledger/tx';
import { toHex, utf8 } from '@medledger/core/codec/bytes';
import { parseContentDigest } from '@medledger/core/http/content-digest';
import { subscriptionCoverage } from '@medledger/core/policy/subscription-coverage';
import { can } from '@medledger/core/policy/roles';
import type { Peer } from '../peer/peer.ts';
import type { SignedRequest } from '../vault/vault-service.ts';
import { type PushStore, type Delivery } from './push-store.ts';

/** The RFC 9421 tag of webhook signatures, so a webhook signature is never taken for a vault request's. */
export const WEBHOOK_SIGNATURE_TAG = 'medledger-webhook';

export interface WebhookTarget {
  institution: string;
  url: string;
  /** the institution's identity: its signing key signs each delivery */
  identity: Identity;
}

export type Notification =
  | {
      kind: 'record';
      subscriptionId: string;
      subscriber: string;
      institution: string;
      patientCode: string;
      recordId: string;
      height: number;
      time: number;
    }
  | {
      kind: 'break-glass';
      patientCode: string;
      reviewId: string;
      doctor: string;
      institution: string;
      reason: string;
      expiresAt: number;
      height: number;
      time: number;
    };

export interface PushServiceOptions {
  peer: Peer;
  store: PushStore;
  webhooks: WebhookTarget[];
  /** the node's clock (tests inject one); block times come from the ledger */
  now?: () => number;
  /** attempts before a delivery is dead-lettered (default 5) */
  maxAttempts?: number;
  /** first retry delay; doubled after each failure (default 1 s, at most an hour) */
  retryBaseMs?: number;
  /** how long one attempt may take (default 10 s) */
  timeoutMs?: number;
}

const RECORD_TXS: ReadonlySet<string> = new Set(['records.register', 'records.amend']);
const MAX_RETRY_MS = 3_600_000;
const SIGNATURE_LIFETIME_MS = 300_000;

export class PushService extends EventEmitter<{ notification: [Notification] }> {
  private readonly webhooks = new Map<string, WebhookTarget>();
  private readonly now: () => number;
  private readonly ownAuthorities = new Set<string>();
  private following: Promise<void> = Promise.resolve();
  private pumping: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly onBlock = (): void => {
    this.following = this.following.then(() => this.follow()).catch((e: unknown) => this.report(e));
  };

  constructor(private readonly o: PushServiceOptions) {
    super();
    for (const w of o.webhooks) this.webhooks.set(w.institution, w);
    this.now = o.now ?? Date.now;
  }

  start(): void {
    // First start: follow from here on (the chain before holds no subscription this node made).
    if (this.o.store.cursor() === null) this.o.store.advance(this.o.peer.store.head().height, []);
    this.o.peer.on('block', this.onBlock);
    this.onBlock();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.o.peer.off('block', this.onBlock);
    if (this.timer !== null) clearTimeout(this.timer);
    await this.following.catch(() => undefined);
    await this.pumping?.catch(() => undefined);
    this.o.store.close();
  }

  /** Waits until the blocks seen so far are turned into deliveries and due ones attempted (tests). */
  async idle(): Promise<void> {
    await this.following;
    await this.pump();
  }

  private report(e: unknown): void {
    const what = isMedledgerError(e) ? e.code : e instanceof Error ? e.name : 'error';
    process.stderr.write(`medledger: push: ${what}\n`);
  }

  private get state(): Draft {
    return new Draft(this.o.peer.store);
  }

  // ---------------------------------------------------------------- following the ledger

  /** Turns every block after the cursor into notifications and deliveries, one block at a time. */
  private async follow(): Promise<void> {
    const store = this.o.peer.store;
    for (let h = (this.o.store.cursor() ?? 0) + 1; h <= store.head().height && !this.stopped; h++) {
      const stored = store.block(h);
      if (stored === undefined) break;
      const { header, txs, codes } = stored.block;
      const deliveries: Parameters<PushStore['advance']>[1][number][] = [];
      const notes: Notification[] = [];
      txs.forEach((tx, i) => {
        if (codes[i] !== 'OK') return;
        if (RECORD_TXS.has(tx.type)) {
          const type = tx.type === 'records.amend' ? 'record.amended' : 'record.registered';
          for (const n of this.recordNotifications(txIdOf(tx), h, header.time)) {
            notes.push(n);
            const hook = this.webhooks.get(n.institution);
            if (hook === undefined) continue;
            const deliveryId = sha256Hex(`medledger/delivery/v1 ${n.subscriptionId} ${n.recordId}`);
            const body = JSON.stringify({
              type,
              deliveryId,
              subscriptionId: n.subscriptionId,
              subscriber: n.subscriber,
              patientCode: n.patientCode,
              recordId: n.recordId,
              height: h,
              time: header.time,
            });
            deliveries.push({ ...n, deliveryId, url: hook.url, body, nextAttemptAt: this.now(), createdAt: this.now() });
          }
        } else if (tx.type === 'access.breakGlass') {
          const review = this.state.get<Review>('reviews', txIdOf(tx));
          if (review !== undefined)
            notes.push({
              kind: 'break-glass',
              patientCode: review.patientCode,
              reviewId: review.reviewId,
              doctor: review.doctor,
              institution: review.institution,
              reason: review.reason,
              expiresAt: review.expiresAt,
              height: h,
              time: header.time,
            });
        }
      });
      this.o.store.advance(h, deliveries);
      for (const n of notes) this.emit('notification', n);
    }
    await this.pump();
  }

  /** The subscriptions a new record reaches, each still covered by a consent at the block's time. */
  private recordNotifications(recordId: string, height: number, time: number): (Notification & { kind: 'record' })[] {
    const state = this.state;
    const record = state.get<RecordEntry>('records', recordId);
    if (record === undefined) return [];
    const subs = this.o.peer.store.query('subscriptions', { patient_code: record.patientCode }, null, null, 10_000);
    return (
      (subs as unknown as Subscription[])
        // Read after a restart, the state is newer than the block: a subscription made later does not reach back.
        .filter((s) => s.status === 'active' && s.createdAt <= time && (s.categories === null || s.categories.includes(record.category)))
        .filter((s) => this.covered(state, s, record, time) === null)
        .sort((a, b) => (a.subscriptionId < b.subscriptionId ? -1 : 1))
        .map((s) => ({
          kind: 'record',
          subscriptionId: s.subscriptionId,
          subscriber: s.subscriber,
          institution: s.institution,
          patientCode: record.patientCode,
          recordId,
          height,
          time,
        }))
    );
  }

  /** Null when the subscription still holds for this record at `time`; otherwise the reason. */
  private covered(state: Draft, s: Subscription, record: RecordEntry, time: number): ErrorCode | null {
    if (s.status !== 'active') return 'SUBSCRIPTION_CLOSED';
    const staff = state.get<Staff>('staff', s.subscriber);
    if (staff === undefined || staff.status !== 'active') return 'IDENTITY_REVOKED';
    if (state.get<Member>('members', staff.institution)?.status !== 'active') return 'NOT_A_MEMBER';
    const decision = subscriptionCoverage(
      {
        requester: { staffId: staff.staffId, institution: staff.institution, role: staff.role },
        patientCode: record.patientCode,
        categories: [record.category],
        purpose: s.purpose,
        time,
      },
      patientConsents(state, record.patientCode),
    );
    return decision.allowed ? null : decision.code;
  }

  // ---------------------------------------------------------------- delivering

  /** Attempts every due delivery; one pump at a time, re-armed for the next due one. */
  private pump(): Promise<void> {
    this.pumping ??= this.drain().finally(() => {
      this.pumping = null;
      this.arm();
    });
    return this.pumping;
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const due = this.o.store.due(this.now(), 16);
      if (due.length === 0) return;
      await Promise.all(due.map((d) => this.attempt(d).catch((e: unknown) => this.report(e))));
    }
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const next = this.o.store.nextDue();
    if (next === null) return;
    this.timer = setTimeout(() => void this.pump(), Math.max(0, Math.min(next - this.now(), 2_147_000_000)));
    this.timer.unref();
  }

  private async attempt(d: Delivery): Promise<void> {
    const state = this.state;
    const s = state.get<Subscription>('subscriptions', d.subscriptionId);
    const record = state.get<RecordEntry>('records', d.recordId);
    // Asked again now: a consent revoked or ended since, or a cancelled subscription, stops it.
    const why =
      s === undefined || record === undefined ? 'SUBSCRIPTION_NOT_FOUND' : this.covered(state, s, record, this.o.peer.store.head().time);
    if (why !== null) {
      this.o.store.settle(
        d.deliveryId,
        { status: 'dropped', attempts: d.attempts, nextAttemptAt: d.nextAttemptAt, lastError: why },
        this.now(),
      );
      return;
    }
    const hook = this.webhooks.get(d.institution);
    let failure: string | null = 'NO_WEBHOOK';
    if (hook !== undefined) failure = await this.post(hook, d);
    const attempts = d.attempts + 1;
    if (failure === null) {
      this.o.store.settle(d.deliveryId, { status: 'delivered', attempts, nextAttemptAt: d.nextAttemptAt, lastError: null }, this.now());
      return;
    }
    const maxAttempts = this.o.maxAttempts ?? 5;
    const delay = Math.min((this.o.retryBaseMs ?? 1000) * 2 ** (attempts - 1), MAX_RETRY_MS);
    this.o.store.settle(
      d.deliveryId,
      { status: attempts >= maxAttempts ? 'dead' : 'pending', attempts, nextAttemptAt: this.now() + delay, lastError: failure },
      this.now(),
    );
  }

  /** One signed POST; null when the receiver answered 2xx, else what went wrong (a status or an error name). */
  private async post(hook: WebhookTarget, d: Delivery): Promise<string | null> {
    const body = utf8(d.body);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'medledger-delivery': d.deliveryId };
    const signed = await signRequest({
      method: 'POST',
      url: d.url,
      headers,
      body,
      keyId: hook.identity.keyId,
      privateKey: hook.identity.file.signing.privateKey,
      now: this.now(),
      tag: WEBHOOK_SIGNATURE_TAG,
    });
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: { ...headers, ...signed },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
    } catch (e) {
      return e instanceof Error ? e.name : 'error';
    }
  }

  // ---------------------------------------------------------------- the authenticated API

  allowAuthority(authority: string): void {
    this.ownAuthorities.add(authority.toLowerCase());
  }

  /**
   * Checks a request signed (RFC 9421, the vault profile) by the institution's key or one of its
   * staff allowed `push.manage`; answers who it is.
   */
  async authorize(req: SignedRequest, institution: string): Promise<string> {
    const host = req.headers['host'];
    if (typeof host !== 'string' || !this.ownAuthorities.has(host.toLowerCase()))
      throw new MedledgerError('SIGNATURE_INVALID', { details: 'The request names another authority than this node’s.' });
    // As the vault does: the URL verified is the target as received, never a normalised one that
    // could differ from the route that runs (dot segments, encodings).
    const url = new URL(req.target, `${req.protocol}://${host}`);
    if (!req.target.startsWith('/') || url.pathname + url.search !== req.target) throw new MedledgerError('SIGNATURE_INVALID');
    const state = this.state;
    const verified = await verifyRequest({
      method: req.method,
      url: url.toString(),
      headers: req.headers,
      now: this.now(),
      lookupKey: (kid) => {
        const key = state.get<KeyEntry>('keys', kid);
        return Promise.resolve(key !== undefined && key.status === 'active' ? key.publicKey : null);
      },
    });
    const keepUntil = Math.min(verified.expires * 1000, verified.created * 1000 + SIGNATURE_LIFETIME_MS) + 120_000;
    if (!this.o.store.claimNonce(verified.keyId, verified.nonce, keepUntil, this.now())) throw new MedledgerError('REQUEST_REPLAYED');
    if (req.body !== undefined) {
      const digest = req.headers['content-digest'];
      if (typeof digest !== 'string') throw new MedledgerError('SIGNATURE_INVALID', { details: 'A body carries a signed Content-Digest.' });
      if (toHex(parseContentDigest(digest)) !== sha256Hex(req.body)) throw new MedledgerError('DIGEST_MISMATCH');
    }
    const owner = state.get<KeyEntry>('keys', verified.keyId)!.owner;
    if (owner.kind === 'institution' && owner.institution === institution) return institution;
    if (owner.kind === 'staff' && owner.institution === institution) {
      const staff = state.get<Staff>('staff', owner.staffId);
      if (staff?.status === 'active' && can({ role: staff.role }, 'push.manage')) return staff.staffId;
    }
    throw new MedledgerError('ROLE_FORBIDDEN', { details: 'The institution’s key or its operators manage its deliveries.' });
  }

  deadLetters(institution: string, limit: number): Delivery[] {
    return this.o.store.list(institution, 'dead', limit);
  }

  deliveries(institution: string, status: Delivery['status'], limit: number): Delivery[] {
    return this.o.store.list(institution, status, limit);
  }

  /** Puts a dead letter back in the queue and attempts it at once. */
  async redrive(institution: string, deliveryId: string): Promise<Delivery> {
    if (!this.o.store.redrive(institution, deliveryId, this.now())) throw new MedledgerError('DELIVERY_NOT_FOUND');
    await this.pump();
    return this.o.store.get(deliveryId)!;
  }
}
