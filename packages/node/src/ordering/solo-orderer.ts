/**
 * The `solo` orderer: an append-only log on local disk, for one machine. Submissions are
 * group-committed — one write and one fdatasync per batch of submissions, never one per tx —
 * and acknowledged only after it. Frames are `[u32 length][u32 crc32][tx JSON]`; a torn frame
 * at the tail (a crash mid-write, never acknowledged) is cut off at start. Segments wholly
 * below the committed position are deleted.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeTx, type Tx } from '@medledger/core/ledger/tx';
import { MedledgerError } from '@medledger/core/errors';
import type { OrderedBatch, OrderedTx, Orderer, OrdererStart } from './orderer.ts';

export interface SoloOrdererOptions {
  dir: string;
  maxTxPerBlock: number;
  batchTimeoutMs: number;
  maxTxBytes: number;
  segmentBytes?: number;
  /** the clock, injectable for tests; block time never goes backwards */
  now?: () => number;
}

interface Segment {
  firstSeq: number;
  path: string;
  count: number;
}

interface Waiter {
  frames: Buffer[];
  entries: OrderedTx[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

const SEGMENT_RE = /^(\d{16})\.log$/;

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  fdatasyncSync(fd);
  closeSync(fd);
}

export class SoloOrderer implements Orderer {
  readonly kind = 'solo' as const;
  private segments: Segment[] = [];
  private fd = -1;
  private fileSize = 0;
  private nextSeq = 1;
  private readonly pending: (OrderedTx & { seq: number })[] = [];
  private readonly pendingIds = new Set<string>();
  private queue: Waiter[] = [];
  private flushing = false;
  private deliver: ((batch: OrderedBatch) => Promise<void>) | null = null;
  private delivering = false;
  private cutTimer: NodeJS.Timeout | null = null;
  private firstPendingAt = 0;
  private lastTime = 0;
  private stopped = false;
  private failure: MedledgerError | null = null;
  private readonly segmentBytes: number;
  private readonly now: () => number;

  constructor(private readonly o: SoloOrdererOptions) {
    this.segmentBytes = o.segmentBytes ?? 64 * 1024 * 1024;
    this.now = o.now ?? Date.now;
  }

  async start(start: OrdererStart, deliver: (batch: OrderedBatch) => Promise<void>): Promise<void> {
    if (!existsSync(this.o.dir)) {
      mkdirSync(this.o.dir, { recursive: true });
      syncDir(dirname(this.o.dir));
    }
    const from = start.position === '' ? 0 : Number(start.position);
    this.recover(from);
    this.deliver = deliver;
    this.lastTime = 0;
    this.firstPendingAt = this.now();
    this.scheduleCut();
    await Promise.resolve();
  }

  /** Reads every segment, cuts a torn tail, and queues the entries after `from`. */
  private recover(from: number): void {
    const names = readdirSync(this.o.dir)
      .filter((n) => SEGMENT_RE.test(n))
      .sort();
    this.segments = names.map((n) => ({ firstSeq: Number(SEGMENT_RE.exec(n)![1]), path: join(this.o.dir, n), count: 0 }));
    for (const [i, seg] of this.segments.entries()) {
      const isLast = i === this.segments.length - 1;
      const buf = readFileSync(seg.path);
      let off = 0;
      let seq = seg.firstSeq;
      while (off < buf.length) {
        const len = off + 8 <= buf.length ? buf.readUInt32LE(off) : 0;
        const payload = len > 0 && off + 8 + len <= buf.length ? buf.subarray(off + 8, off + 8 + len) : null;
        // A zero length is never written: zero-filled space after a crash is a torn tail.
        let entry: { tx: Tx; txId: string } | null = null;
        if (payload !== null && crc32(payload) === buf.readUInt32LE(off + 4)) {
          try {
            entry = decodeTx(JSON.parse(payload.toString('utf8')), this.o.maxTxBytes);
          } catch {
            entry = null;
          }
        }
        if (entry === null) {
          // Only the tail of the last segment can be torn by a crash; it was never acked.
          if (!isLast) throw new MedledgerError('CHAIN_BROKEN', { details: `Orderer log ${seg.path} is damaged at byte ${off}.` });
          const fd = openSync(seg.path, 'r+');
          ftruncateSync(fd, off);
          fdatasyncSync(fd);
          closeSync(fd);
          break;
        }
        if (seq > from) {
          this.pending.push({ ...entry, seq });
          this.pendingIds.add(entry.txId);
        }
        off += 8 + len;
        seq++;
      }
      seg.count = seq - seg.firstSeq;
      this.nextSeq = seq;
      if (isLast) this.fileSize = off;
    }
    if (this.segments.length === 0) this.openSegment(Math.max(1, from + 1));
    else this.fd = openSync(this.segments[this.segments.length - 1]!.path, 'a');
    if (this.nextSeq <= from) {
      // Everything logged is committed and the log was trimmed past it: continue after `from`.
      this.openSegment(from + 1);
    }
  }

  private openSegment(firstSeq: number): void {
    if (this.fd >= 0) closeSync(this.fd);
    const path = join(this.o.dir, `${String(firstSeq).padStart(16, '0')}.log`);
    this.fd = openSync(path, 'a');
    this.fileSize = existsSync(path) ? statSync(path).size : 0;
    this.segments.push({ firstSeq, path, count: 0 });
    this.nextSeq = firstSeq;
    // The new file's directory entry must be durable before any frame in it is acknowledged.
    syncDir(this.o.dir);
  }

  submit(entries: readonly OrderedTx[]): Promise<void> {
    if (this.stopped) return Promise.reject(new MedledgerError('NODE_UNAVAILABLE'));
    if (this.failure !== null) return Promise.reject(this.failure);
    const fresh = entries.filter((e) => !this.pendingIds.has(e.txId));
    if (fresh.length === 0) return Promise.resolve();
    for (const e of fresh) this.pendingIds.add(e.txId);
    const frames = fresh.map((e) => {
      // The log needs the envelope, not its canonical form: txIds are recomputed on recovery.
      const payload = Buffer.from(JSON.stringify(e.tx), 'utf8');
      const head = Buffer.allocUnsafe(8);
      head.writeUInt32LE(payload.length, 0);
      head.writeUInt32LE(crc32(payload), 4);
      return Buffer.concat([head, payload]);
    });
    return new Promise((resolve, reject) => {
      this.queue.push({ frames, entries: fresh, resolve, reject });
      if (!this.flushing) setImmediate(() => this.flush());
    });
  }

  /** Group commit: everything queued goes out in one write and one fdatasync. */
  private flush(): void {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = true;
    const batch = this.queue;
    this.queue = [];
    try {
      if (this.fileSize >= this.segmentBytes) this.openSegment(this.nextSeq);
      const buf = Buffer.concat(batch.flatMap((w) => w.frames));
      let written = 0;
      while (written < buf.length) written += writeSync(this.fd, buf, written);
      fdatasyncSync(this.fd);
      this.fileSize += buf.length;
      const seg = this.segments[this.segments.length - 1]!;
      for (const w of batch) {
        for (const e of w.entries) {
          if (this.pending.length === 0) this.firstPendingAt = this.now();
          this.pending.push({ ...e, seq: this.nextSeq++ });
          seg.count++;
        }
        w.resolve();
      }
    } catch (e) {
      // A failed write (disk full, I/O error) acknowledges nothing; the log is left as it was.
      this.failure = new MedledgerError('NODE_UNAVAILABLE', { details: 'The orderer log cannot be written.', cause: e });
      for (const w of batch) {
        for (const e of w.entries) this.pendingIds.delete(e.txId);
        w.reject(this.failure);
      }
      try {
        ftruncateSync(this.fd, this.fileSize);
        fdatasyncSync(this.fd);
        this.failure = null;
      } catch {
        // keep refusing: the log's tail state is unknown
      }
    } finally {
      this.flushing = false;
    }
    this.scheduleCut();
    if (this.queue.length > 0) setImmediate(() => this.flush());
  }

  private scheduleCut(): void {
    if (this.deliver === null || this.delivering || this.stopped || this.pending.length === 0) return;
    if (this.pending.length >= this.o.maxTxPerBlock) {
      void this.cut();
      return;
    }
    if (this.cutTimer !== null) return;
    const wait = Math.max(0, this.firstPendingAt + this.o.batchTimeoutMs - this.now());
    this.cutTimer = setTimeout(() => {
      this.cutTimer = null;
      void this.cut();
    }, wait);
  }

  private async cut(): Promise<void> {
    if (this.deliver === null || this.delivering || this.pending.length === 0 || this.stopped) return;
    if (this.cutTimer !== null) {
      clearTimeout(this.cutTimer);
      this.cutTimer = null;
    }
    this.delivering = true;
    const taken = this.pending.splice(0, this.o.maxTxPerBlock);
    this.lastTime = Math.max(this.lastTime, this.now());
    const batch: OrderedBatch = {
      entries: taken.map(({ tx, txId }) => ({ tx, txId })),
      time: this.lastTime,
      position: String(taken[taken.length - 1]!.seq),
    };
    try {
      await this.deliver(batch);
      for (const e of taken) this.pendingIds.delete(e.txId);
    } finally {
      this.delivering = false;
      this.firstPendingAt = this.now();
    }
    this.scheduleCut();
  }

  committed(position: string): void {
    const pos = Number(position);
    // Drop whole segments that lie below the committed position, never the one being written.
    while (this.segments.length > 1) {
      const seg = this.segments[0]!;
      if (seg.firstSeq + seg.count - 1 > pos) break;
      unlinkSync(seg.path);
      this.segments.shift();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.cutTimer !== null) clearTimeout(this.cutTimer);
    while (this.flushing || this.delivering) await new Promise((r) => setTimeout(r, 5));
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
