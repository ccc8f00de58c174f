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

/** What `verifySoloLog` needs of the (verified) ledger. */
export interface SoloLogLedgerView {
  /** the height of the last committed block */
  top: number;
  /** the orderer position stored with block `height` (0 for genesis) */
  position(height: number): number;
  /** the tx envelopes of block `height` as JSON, in order */
  txTexts(height: number): string[];
  /** the height of the block holding `txId`, if any */
  heightOf(txId: string): number | undefined;
}

function logDamaged(file: string, what: string, at: { offset?: number; seq?: number } = {}): never {
  throw new MedledgerError('CHAIN_BROKEN', {
    details: `Orderer log ${file}${at.seq === undefined ? '' : ` entry ${at.seq}`}: ${what}.`,
    payload: { file, ...at, what },
  });
}

/**
 * `medledger verify` for the solo log, read-only: every frame must be whole (length, CRC-32, a
 * well-formed tx), the segments must not overlap, and every entry at or below the committed
 * position must be in the chain — in the block whose position range holds it, byte for byte, or
 * an earlier one when it repeated a committed tx — while every block the log still covers must
 * hold only entries of its range. Only a torn frame at the very end of the last segment is
 * accepted, and only above the committed position: a crash can leave one there, never
 * acknowledged. Start-up cuts such a tail (recover); it would cut a damaged frame in the last
 * segment the same way, with what follows it, so run verify before restarting a suspect node.
 */
export function verifySoloLog(dir: string, maxTxBytes: number, ledger: SoloLogLedgerView): { segments: number; entries: number } {
  const committed = ledger.position(ledger.top);
  const names = readdirSync(dir).sort();
  const entries = new Map<number, { txId: string; text: string; file: string }>();
  // A block's tx whose text is byte-equal to a log entry's has that entry's txId: no need to
  // canonicalise and hash it a second time.
  const idByText = new Map<string, string>();
  let cached: { height: number; texts: string[]; index: Map<string, number> } | null = null;
  const blockTxs = (height: number): { texts: string[]; index: Map<string, number> } => {
    if (cached?.height !== height) {
      const texts = ledger.txTexts(height);
      const index = new Map<string, number>();
      texts.forEach((t, i) => index.set(idByText.get(t) ?? decodeTx(JSON.parse(t), maxTxBytes).txId, i));
      cached = { height, texts, index };
    }
    return cached;
  };
  let nextFree = 0;
  let lastSeq = 0;
  names.forEach((name, i) => {
    const file = `orderer/${name}`;
    const m = SEGMENT_RE.exec(name);
    if (m === null) logDamaged(file, 'is not a segment of the log');
    const firstSeq = Number(m[1]);
    if (firstSeq < 1 || firstSeq < nextFree) logDamaged(file, 'overlaps the segment before it');
    const isLast = i === names.length - 1;
    const buf = readFileSync(join(dir, name));
    let off = 0;
    let seq = firstSeq;
    while (off < buf.length) {
      const len = off + 8 <= buf.length ? buf.readUInt32LE(off) : -1;
      const whole = len > 0 && off + 8 + len <= buf.length;
      if (!whole) {
        const zeros = buf.subarray(off).every((b) => b === 0);
        // A torn tail: cut short, or zero-filled by a crash before its fsync.
        if (isLast && (len < 0 || off + 8 + len > buf.length || zeros) && seq > committed) break;
        logDamaged(file, `is damaged at byte ${off}`, { offset: off, seq });
      }
      const payload = buf.subarray(off + 8, off + 8 + len);
      if (crc32(payload) !== buf.readUInt32LE(off + 4)) logDamaged(file, `fails its checksum at byte ${off}`, { offset: off, seq });
      let txId: string;
      try {
        txId = decodeTx(JSON.parse(payload.toString('utf8')), maxTxBytes).txId;
      } catch {
        logDamaged(file, `holds no well-formed tx at byte ${off}`, { offset: off, seq });
      }
      const text = payload.toString('utf8');
      entries.set(seq, { txId, text, file });
      idByText.set(text, txId);
      lastSeq = seq;
      off += 8 + len;
      seq++;
    }
    nextFree = seq;
  });

  // Each committed entry, against the block whose position range holds it.
  let h = 1;
  for (const [seq, e] of [...entries].sort((a, b) => a[0] - b[0])) {
    if (seq > committed) break;
    while (h <= ledger.top && ledger.position(h) < seq) h++;
    const at = ledger.heightOf(e.txId);
    if (at === undefined || at > h) logDamaged(e.file, 'was committed but is not in the chain', { seq });
    if (at === h) {
      const block = blockTxs(h);
      const i = block.index.get(e.txId);
      if (i === undefined || block.texts[i] !== e.text) logDamaged(e.file, `differs from the tx in block ${h}`, { seq });
    }
  }
  // Each block whose whole range the log still holds took its txs from that range only.
  for (let b = 1; b <= ledger.top; b++) {
    const from = ledger.position(b - 1) + 1;
    const to = ledger.position(b);
    if (to > lastSeq) break;
    let held = to >= from;
    for (let s = from; held && s <= to; s++) held = entries.has(s);
    if (!held) continue;
    const inRange = new Set<string>();
    for (let s = from; s <= to; s++) inRange.add(entries.get(s)!.txId);
    const missing = [...blockTxs(b).index.keys()].find((id) => !inRange.has(id));
    if (missing !== undefined) logDamaged(entries.get(from)!.file, `lacks a tx of block ${b} in its range`, { seq: from });
  }
  return { segments: names.length, entries: entries.size };
}
