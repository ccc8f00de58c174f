/**
 * Ed25519 verification in batches on worker threads, one per core.
 *
 * `crypto.verify` with a callback runs on libuv's thread pool, but each call still costs the
 * main thread ~15–25 µs to set up its job: a sixth of a verification (~118 µs), taken from the
 * thread that executes blocks (measured: docs/BENCHMARKS.md). Here a call only appends the key,
 * message and signature to a buffer; all calls of one event-loop turn go to the workers in one
 * message, which verify them synchronously and answer with one byte per signature.
 *
 * The workers are plain JavaScript evaluated from a string, so they run the same under tsx,
 * vitest and a compiled build without a loader; they use only `node:crypto`.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SPKI_PREFIX } from '@medledger/core/crypto/ed25519';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const prefix = Buffer.from(workerData.spkiPrefix);
const keys = new Map();
function keyOf(raw) {
  let k = keys.get(raw);
  if (k === undefined) {
    try {
      const bytes = Buffer.from(raw, 'base64url');
      k = bytes.length === 32 ? createPublicKey({ key: Buffer.concat([prefix, bytes]), format: 'der', type: 'spki' }) : null;
    } catch {
      k = null;
    }
    if (keys.size >= 100000) keys.clear();
    keys.set(raw, k);
  }
  return k;
}
parentPort.on('message', ({ id, keys: batchKeys, data }) => {
  const buf = Buffer.from(data);
  const out = new Uint8Array(batchKeys.length);
  let at = 0;
  for (let i = 0; i < batchKeys.length; i++) {
    const len = buf.readUInt16LE(at);
    const message = buf.subarray(at + 2, at + 2 + len);
    const signature = buf.subarray(at + 2 + len, at + 2 + len + 64);
    at += 2 + len + 64;
    const key = keyOf(batchKeys[i]);
    let ok = false;
    try {
      ok = key !== null && verify(null, message, key, signature);
    } catch {
      ok = false;
    }
    out[i] = ok ? 1 : 0;
  }
  parentPort.postMessage({ id, results: out.buffer }, [out.buffer]);
});
`;

interface Pending {
  keys: string[];
  messages: Uint8Array[];
  signatures: Uint8Array[];
  resolves: ((ok: boolean) => void)[];
  rejects: ((e: unknown) => void)[];
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Pending>;
}

function emptyPending(): Pending {
  return { keys: [], messages: [], signatures: [], resolves: [], rejects: [] };
}

export class VerifyPool {
  private readonly slots: (Slot | null)[];
  private pending = emptyPending();
  private scheduled = false;
  private nextId = 1;
  private turn = 0;

  constructor(readonly size = Math.max(1, Math.min(2, availableParallelism()))) {
    this.slots = Array.from({ length: size }, () => null);
  }

  /** Verifies one Ed25519 signature; resolves false for a malformed key or signature. */
  verify(publicKey: string, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (signature.length !== 64 || message.length > 0xffff) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      const p = this.pending;
      p.keys.push(publicKey);
      p.messages.push(message);
      p.signatures.push(signature);
      p.resolves.push(resolve);
      p.rejects.push(reject);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Stops the workers; pending verifications are refused. */
  async close(): Promise<void> {
    const slots = this.slots.filter((s): s is Slot => s !== null);
    this.slots.fill(null);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = emptyPending();
    const n = all.keys.length;
    if (n === 0) return;
    // A large batch is split so both cores work on it; a small one goes whole to the next worker.
    const parts = n >= 64 ? this.size : 1;
    const per = Math.ceil(n / parts);
    for (let from = 0; from < n; from += per) this.send(all, from, Math.min(n, from + per));
  }

  private send(all: Pending, from: number, to: number): void {
    const part: Pending = {
      keys: all.keys.slice(from, to),
      messages: all.messages.slice(from, to),
      signatures: all.signatures.slice(from, to),
      resolves: all.resolves.slice(from, to),
      rejects: all.rejects.slice(from, to),
    };
    let size = 0;
    for (const m of part.messages) size += 2 + m.length + 64;
    const data = new Uint8Array(size);
    const view = new DataView(data.buffer);
    let at = 0;
    for (let i = 0; i < part.keys.length; i++) {
      const m = part.messages[i]!;
      view.setUint16(at, m.length, true);
      data.set(m, at + 2);
      data.set(part.signatures[i]!, at + 2 + m.length);
      at += 2 + m.length + 64;
    }
    const slot = this.slot(this.turn++ % this.size);
    const id = this.nextId++;
    slot.inFlight.set(id, part);
    // Referenced only while it owes answers: an idle pool never keeps the process alive.
    if (slot.inFlight.size === 1) slot.worker.ref();
    slot.worker.postMessage({ id, keys: part.keys, data: data.buffer }, [data.buffer]);
  }

  private slot(i: number): Slot {
    const existing = this.slots[i];
    if (existing !== null && existing !== undefined) return existing;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { spkiPrefix: SPKI_PREFIX } });
    worker.unref();
    const slot: Slot = { worker, inFlight: new Map() };
    worker.on('message', ({ id, results }: { id: number; results: ArrayBuffer }) => {
      const part = slot.inFlight.get(id);
      if (part === undefined) return;
      slot.inFlight.delete(id);
      if (slot.inFlight.size === 0) worker.unref();
      const ok = new Uint8Array(results);
      part.resolves.forEach((resolve, k) => resolve(ok[k] === 1));
    });
    const fail = (e: unknown): void => {
      // A worker that died takes its batches with it: refuse them (the caller sees an error,
      // never a false "valid"), and start a fresh worker for the next batch.
      if (this.slots[i] === slot) this.slots[i] = null;
      for (const part of slot.inFlight.values()) part.rejects.forEach((reject) => reject(e));
      slot.inFlight.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`verification worker exited with code ${code}`)));
    this.slots[i] = slot;
    return slot;
  }
}

let shared: VerifyPool | null = null;

/** The process's verification pool (workers start on first use and never keep the process alive). */
export function verifyPool(): VerifyPool {
  shared ??= new VerifyPool();
  return shared;
}
