/**
 * `npm run soak -- [--minutes 10 | --seconds 60] [--seed N] [--keep]`: the fault soak (issue 9).
 *
 * A consortium of four validator processes (two hospitals, a clinic, a laboratory), each with its
 * own SQLite vault, ordering on a 3-server JetStream cluster (R3), runs a mixed load while a
 * driver injects faults at seeded random instants:
 *
 * - SIGKILL of a validator, restarted after a while;
 * - SIGKILL of a NATS server, restarted after a while;
 * - SIGSTOP / SIGCONT of a validator or a NATS server (a long GC pause, a frozen VM);
 * - a full disk: the laboratory's data directory is a small tmpfs, filled to the last byte for a
 *   while and then freed (skipped, and reported so, where tmpfs cannot be mounted).
 *
 * The load: patient registrations, record registrations in bursts, consents granted and revoked,
 * access requests the patient decides, and shares: hospital A stores a record in its vault,
 * registers it, hospital B's doctor asks, the patient approves, and B fetches and decrypts it from
 * A's vault (whose access log entry is itself a transaction).
 *
 * A process that exits by itself is restarted like a supervisor would (and counted). When the
 * time is up the faults stop, everything is brought back, and the run checks:
 *
 * 1. every validator reports the same height and state root, final, with status `ok`;
 * 2. every acknowledged transaction (HTTP 200/202 from a node, and every read a vault served) is
 *    in the chain exactly once, and no transaction is in it twice, on every validator;
 * 3. `medledger verify` is clean on every data directory.
 *
 * It prints a report (throughput under faults, stalls and what was happening during each) as a
 * table and as JSON, and exits non-zero if an invariant does not hold.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Identity } from '@medledger/core/client/identity';
import { VaultClient, type RecordIndex } from '@medledger/core/client/vault-client';
import { patientCodeOf } from '@medledger/core/contracts/identity';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import { txIdOf, type Tx } from '@medledger/core/ledger/tx';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { TxType } from '@medledger/core/ledger/tx-types';
import { NatsCluster } from './nats-cluster.ts';
import { seededRandom } from '@medledger/core/codec/seeded-random.test-fixture';
import { percentile } from '../bench/bench-report.ts';
import {
  CLI,
  NodeProcess,
  enrolCast,
  makeNetwork,
  observation,
  recordBody,
  keepTempDir,
  tempDir,
  writeNatsNodeConfigs,
  type Cast,
  type TestNetwork,
} from './test-network.ts';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    seed: { type: 'string' },
    'disk-mb': { type: 'string', default: '1024' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'npm run soak -- [--minutes 10 | --seconds 60] [--seed N] [--disk-mb 1024] [--keep]\n' +
      'Runs a 4-validator, 3-NATS consortium under mixed load with injected faults, then checks\n' +
      'that every acknowledged tx is committed exactly once, all validators agree, and verify is\n' +
      'clean. --keep leaves the data directories for inspection.\n',
  );
  process.exit(0);
}
const DURATION_MS = args.seconds !== undefined ? Number(args.seconds) * 1000 : Number(args.minutes ?? '10') * 60_000;
const SEED = args.seed !== undefined ? Number(args.seed) : Date.now() % 2 ** 31;
const DISK_MB = Number(args['disk-mb']);
if (!(DURATION_MS > 0) || !Number.isInteger(SEED) || !(DISK_MB >= 64)) {
  process.stderr.write('soak: --minutes/--seconds must be positive, --seed an integer, --disk-mb at least 64\n');
  process.exit(2);
}

/** the first fifth of the run (at most a minute) has the load without faults, as the baseline */
const BASELINE_MS = Math.min(60_000, Math.round(DURATION_MS / 5));
const VALIDATORS = ['hosp-a', 'hosp-b', 'clinic-c', 'lab-d'] as const;
const DISK_VICTIM = 'lab-d';
const REQUEST_TIMEOUT_MS = 4000;

const random = seededRandom(SEED);
const between = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => void process.stderr.write(`[soak ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

// ---------------------------------------------------------------------------------------------
// The consortium and its supervisor

let t0 = Date.now();
let cluster: NatsCluster;
let net: TestNetwork;
let cast: Cast;
const ports = new Map<string, number>();
const nodes = new Map<string, NodeProcess | null>();
/** validators and NATS servers the fault driver holds down or paused: the supervisor leaves them */
const heldValidators = new Set<string>();
/** validators the supervisor is restarting: the fault driver leaves them */
const restarting = new Set<string>();
/** every validator process this run started, so that none outlives it */
const spawned: NodeProcess[] = [];
const heldNats = new Set<number>();
const unexpectedExits: { who: string; at: number; storage: boolean; output: string }[] = [];
let diskMount: string | null = null;
let diskNote = 'not run';
const diskEvents: string[] = [];
let stopLoad = false;
let stopAll = false;

/** what earlier processes of each validator printed */
const pastOutput = new Map<string, string>();
function outputOf(id: string): string {
  return (pastOutput.get(id) ?? '') + (nodes.get(id)?.output ?? '');
}

async function startValidator(id: string): Promise<void> {
  pastOutput.set(id, outputOf(id));
  nodes.set(id, null);
  for (let attempt = 0; ; attempt++) {
    try {
      const n = await NodeProcess.start(net.nodeDir(id), ports.get(id)!);
      spawned.push(n);
      nodes.set(id, n);
      return;
    } catch (e) {
      if (attempt >= 20) throw e;
      await sleep(1000);
    }
  }
}

function alive(id: string): boolean {
  const n = nodes.get(id);
  return n !== null && n !== undefined && n.child.exitCode === null && n.child.signalCode === null;
}

/** Restarts what died by itself, as systemd's Restart=on-failure would. */
async function supervise(stop: () => boolean): Promise<void> {
  while (!stop()) {
    for (const id of VALIDATORS) {
      if (heldValidators.has(id) || restarting.has(id) || alive(id)) continue;
      const n = nodes.get(id);
      unexpectedExits.push({
        who: id,
        at: Date.now() - t0,
        storage: n?.child.exitCode === 75,
        output: (n?.output ?? '').split('\n').slice(-3).join(' | '),
      });
      log(`${id} exited by itself (${n?.child.exitCode ?? n?.child.signalCode}); restarting`);
      restarting.add(id);
      await startValidator(id).catch((e: unknown) => log(`${id} did not restart yet: ${String(e).slice(0, 200)}`));
      restarting.delete(id);
    }
    for (const [i, s] of cluster.servers.entries()) {
      if (heldNats.has(i) || (s.process !== null && s.process.exitCode === null && s.process.signalCode === null)) continue;
      unexpectedExits.push({ who: s.name, at: Date.now() - t0, storage: false, output: '' });
      log(`${s.name} exited by itself; restarting`);
      cluster.restart(i);
    }
    await sleep(500);
  }
}

/** The laboratory's data directory on a tmpfs of its own, so that its disk can be filled. */
function mountDisk(dir: string): void {
  const saved = tempDir('soak-disk-copy');
  cpSync(dir, saved, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_MB}m,mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    diskNote = `not run: cannot mount a tmpfs here (${(r.stderr || r.error?.message || '').trim()})`;
    rmSync(saved, { recursive: true, force: true });
    return;
  }
  cpSync(saved, dir, { recursive: true });
  rmSync(saved, { recursive: true, force: true });
  diskMount = dir;
  diskNote = 'run';
}

/** Writes a filler file until the tmpfs answers ENOSPC; returns its path and size. */
function fillDisk(dir: string): { path: string; bytes: number } {
  const path = join(dir, 'soak-filler');
  const fd = openSync(path, 'w');
  let bytes = 0;
  try {
    for (const chunk of [16 << 20, 1 << 20, 64 << 10, 4 << 10, 512]) {
      const buf = Buffer.alloc(chunk);
      for (;;) {
        try {
          bytes += writeSync(fd, buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return { path, bytes };
}

// ---------------------------------------------------------------------------------------------
// Clients

interface Ack {
  txId: string;
  kind: string;
  at: number;
}
const acks: Ack[] = [];
const refusals = new Map<string, number>();
const ops = new Map<string, { ok: number; failed: Record<string, number> }>();
const submitLatencies: { at: number; ms: number }[] = [];
/** how each node answered submissions: `<node> answered | no answer | <5xx code>` */
const transport = new Map<string, number>();

async function request(method: string, url: string, body?: unknown): Promise<{ status: number; body: JsonObject } | null> {
  try {
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    return { status: res.status, body: (text.length > 0 ? JSON.parse(text) : {}) as JsonObject };
  } catch {
    return null; // down, paused, or timed out: a client tries another node
  }
}

const codeOf = (r: { status: number; body: JsonObject }): string =>
  typeof r.body['code'] === 'string' ? r.body['code'] : String(r.status);

const url = (id: string): string => `http://127.0.0.1:${ports.get(id)!}`;

/** Submits a signed tx to the validators in random order until one acknowledges it. */
async function submit(kind: string, tx: Tx, txId: string): Promise<boolean> {
  const started = Date.now();
  for (let round = 0; round < 3; round++) {
    for (const id of [...VALIDATORS].sort(() => random() - 0.5)) {
      const r = await request('POST', `${url(id)}/api/tx`, tx);
      const key = `${id} ${r === null ? 'no answer' : r.status >= 500 ? codeOf(r) : 'answered'}`;
      transport.set(key, (transport.get(key) ?? 0) + 1);
      if (r === null || r.status >= 500 || r.status === 429) continue;
      if (r.status === 200 || r.status === 202) {
        acks.push({ txId, kind, at: Date.now() - t0 });
        submitLatencies.push({ at: started - t0, ms: Date.now() - started });
        return true;
      }
      const code = codeOf(r);
      refusals.set(code, (refusals.get(code) ?? 0) + 1);
      return false;
    }
    await sleep(500);
  }
  return false;
}

/** Signs and submits; with `commit`, waits until some validator has it in a block, and answers its code. */
async function act(kind: TxType, who: Identity, body: JsonObject, commit = false): Promise<{ txId: string; code: string | null } | null> {
  const { tx, txId } = await who.tx(net.network, kind, body);
  if (!(await submit(kind, tx, txId))) return null;
  if (!commit) return { txId, code: null };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const r = await request('GET', `${url(pick(VALIDATORS))}/api/tx/${txId}`);
    const status = r?.body['status'];
    if (status === 'committed' || status === 'final') return { txId, code: codeOf(r!) };
    await sleep(200);
  }
  return { txId, code: null };
}

const timedFetch: typeof fetch = (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(8000) });

interface Patient {
  identity: Identity;
  code: string;
}
const patients: Patient[] = [];
const consents: { patient: Patient; consentId: string }[] = [];
const requests: { patient: Patient; requestId: string }[] = [];
let seq = 0;

/** An operation answers `true`, or why it did not complete (counted in the report). */
const OPS: { name: string; weight: number; run: () => Promise<true | string> }[] = [
  {
    name: 'register patient',
    weight: 1,
    run: async () => {
      const identity = await Identity.generate(`soak-patient-${seq}`);
      const code = patientCodeOf(fromBase64Url(net.patientCodeKey), `SOAK-${SEED}-${seq++}`);
      const r = await act(
        'identity.registerPatient',
        cast.staff.get('hosp-a/doc')!,
        {
          patientCode: code,
          signingKey: identity.signingKey,
          encryptionKey: identity.encryptionKey,
          possession: await identity.possessionProof(net.network, code, 'hosp-a'),
        },
        true,
      );
      // A client acts for the patient once the registration is in a block.
      if (r?.code === 'OK') patients.push({ identity, code });
      return r !== null || 'not acknowledged';
    },
  },
  {
    name: 'register records (burst of 20)',
    weight: 3,
    run: async () => {
      const p = pick(patients);
      const doctor = cast.staff.get(pick(['hosp-a/doc', 'hosp-b/doc']))!;
      const done = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const { tx, txId } = await doctor.tx(net.network, 'records.register', recordBody(p.code, 'Observation', `s${SEED}-${seq++}`));
          return submit('records.register', tx, txId);
        }),
      );
      return done.some((x) => x) || 'none acknowledged';
    },
  },
  {
    name: 'grant consent',
    weight: 2,
    run: async () => {
      const p = pick(patients);
      const now = Date.now();
      const r = await act('consent.grant', p.identity, {
        patientCode: p.code,
        grantee: { kind: 'role', role: 'doctor', institution: pick(['hosp-b', 'clinic-c']) },
        scope: { kind: 'categories', categories: ['Observation'] },
        purposes: ['TREAT'],
        period: { from: now - 1000, to: now + 3_600_000 },
        deidentification: 'identified',
      });
      if (r !== null) consents.push({ patient: p, consentId: r.txId });
      return r !== null || 'not acknowledged';
    },
  },
  {
    name: 'revoke consent',
    weight: 1,
    run: async () => {
      const c = consents.shift();
      if (c === undefined) return true;
      return (await act('consent.revoke', c.patient.identity, { consentId: c.consentId })) !== null || 'not acknowledged';
    },
  },
  {
    name: 'request access',
    weight: 2,
    run: async () => {
      const p = pick(patients);
      const r = await act('access.request', cast.staff.get('hosp-b/doc')!, {
        patientCode: p.code,
        scope: { kind: 'categories', categories: ['Observation'] },
        purpose: 'TREAT',
        deidentification: 'identified',
        reason: 'follow-up',
      });
      if (r !== null) requests.push({ patient: p, requestId: r.txId });
      return r !== null || 'not acknowledged';
    },
  },
  {
    name: 'decide access',
    weight: 2,
    run: async () => {
      const q = requests.shift();
      if (q === undefined) return true;
      const r = await act('access.decide', q.patient.identity, { requestId: q.requestId, approve: random() < 0.7, durationMs: null });
      return r !== null || 'not acknowledged';
    },
  },
  {
    name: 'share a record across hospitals',
    weight: 2,
    run: async () => {
      const p = pick(patients.slice(0, cast.patients.length));
      const docA = cast.staff.get('hosp-a/doc')!;
      const docB = cast.staff.get('hosp-b/doc')!;
      let stored;
      try {
        stored = await new VaultClient(docA, { fetch: timedFetch }).store(url('hosp-a'), 'hosp-a', {
          patientCode: p.code,
          resource: observation(`soak ${seq++}`),
        });
      } catch (e) {
        // hospital A is down or paused: nothing was acknowledged
        return `vault store: ${(e as { code?: string }).code ?? (e as Error).name}`;
      }
      const reg = await act('records.register', docA, { patientCode: p.code, registrationRequestId: null, ...stored.index }, true);
      if (reg?.code !== 'OK') return `register: ${reg?.code ?? 'not acknowledged'}`;
      const ask = await act(
        'access.request',
        docB,
        {
          patientCode: p.code,
          scope: { kind: 'records', recordIds: [reg.txId] },
          purpose: 'TREAT',
          deidentification: 'identified',
          reason: 'referral',
        },
        true,
      );
      if (ask?.code !== 'OK') return `request: ${ask?.code ?? 'not acknowledged'}`;
      const ok = await act('access.decide', p.identity, { requestId: ask.txId, approve: true, durationMs: null }, true);
      if (ok?.code !== 'OK') return `decide: ${ok?.code ?? 'not acknowledged'}`;
      const index: RecordIndex = { ...(stored.index as unknown as RecordIndex), patientCode: p.code, recordId: reg.txId };
      let why = 'fetch failed';
      for (let attempt = 0; attempt < 10; attempt++) {
        try {
          const fetched = await new VaultClient(docB, { fetch: timedFetch }).fetchRecord(url('hosp-a'), index, 'TREAT');
          // The vault logged the read on the ledger before it answered: that is an acknowledgement too.
          if (fetched.accessTx !== null) acks.push({ txId: fetched.accessTx, kind: 'access.recordServed', at: Date.now() - t0 });
          return true;
        } catch (e) {
          why = `fetch: ${(e as { code?: string }).code ?? 'no answer'}`;
          await sleep(500); // A's node may not have applied the approval yet, or is down
        }
      }
      return why;
    },
  },
];
const TOTAL_WEIGHT = OPS.reduce((s, o) => s + o.weight, 0);

function pickOp(): (typeof OPS)[number] {
  let x = random() * TOTAL_WEIGHT;
  for (const o of OPS) if ((x -= o.weight) < 0) return o;
  return OPS[0]!;
}

const doing: string[] = [];
async function worker(stop: () => boolean, w = doing.push('') - 1): Promise<void> {
  while (!stop()) {
    const op = pickOp();
    doing[w] = `${op.name} since ${((Date.now() - t0) / 1000).toFixed(0)}`;
    const outcome = await op.run().catch((e: unknown) => `threw ${(e as { code?: string }).code ?? String(e).slice(0, 80)}`);
    const s = ops.get(op.name) ?? { ok: 0, failed: {} };
    if (outcome === true) s.ok++;
    else s.failed[outcome] = (s.failed[outcome] ?? 0) + 1;
    ops.set(op.name, s);
  }
}

// ---------------------------------------------------------------------------------------------
// Faults

interface Fault {
  kind: string;
  target: string;
  from: number;
  to: number;
  note?: string;
}
const faults: Fault[] = [];

/** Deals fault kinds from a shuffled bag, so that every kind comes up in every round. */
const validatorKinds: string[] = [];
const natsKinds: string[] = [];
function nextKind(bag: string[], kinds: string[]): string {
  if (bag.length === 0) bag.push(...[...kinds].sort(() => random() - 0.5));
  return bag.shift()!;
}

async function validatorFault(): Promise<void> {
  const kind = nextKind(validatorKinds, diskMount !== null ? ['kill', 'pause', 'disk-full'] : ['kill', 'pause']);
  const free = VALIDATORS.filter((v) => !restarting.has(v) && alive(v));
  if (free.length === 0 || (kind === 'disk-full' && !free.includes(DISK_VICTIM))) return;
  const id = kind === 'disk-full' ? DISK_VICTIM : pick(free);
  const from = Date.now() - t0;
  heldValidators.add(id);
  let note: string | undefined;
  try {
    if (kind === 'kill') {
      await nodes.get(id)?.kill('SIGKILL');
      await sleep(between(500, 4000));
      await startValidator(id);
    } else if (kind === 'pause') {
      nodes.get(id)?.child.kill('SIGSTOP');
      await sleep(between(1000, 6000));
      nodes.get(id)?.child.kill('SIGCONT');
    } else {
      heldValidators.delete(id); // a node that gives up on a full disk is restarted by the supervisor
      const filler = fillDisk(diskMount!);
      // What the node does while its disk is full: keeps committing in the WAL's free space,
      // halts, or exits to be restarted.
      const seen: string[] = [];
      const until = Date.now() + between(8000, 15_000);
      while (Date.now() < until) {
        const n = nodes.get(id);
        const h = alive(id) ? await health(id) : null;
        const what =
          n === null || n === undefined
            ? 'restarting'
            : !alive(id)
              ? `exited ${n.child.exitCode ?? n.child.signalCode}`
              : (h?.status ?? 'no answer');
        if (seen[seen.length - 1] !== what) seen.push(what);
        await sleep(500);
      }
      rmSync(filler.path, { force: true });
      note = `filled ${(filler.bytes / 2 ** 20).toFixed(0)} MiB; node: ${seen.join(' → ')}`;
      diskEvents.push(note);
    }
  } finally {
    heldValidators.delete(id);
  }
  faults.push({ kind: `validator ${kind}`, target: id, from, to: Date.now() - t0, ...(note !== undefined ? { note } : {}) });
}

async function natsFault(): Promise<void> {
  const i = between(0, cluster.servers.length - 1);
  const kind = nextKind(natsKinds, ['kill', 'pause']);
  const from = Date.now() - t0;
  heldNats.add(i);
  try {
    if (kind === 'kill') {
      await cluster.kill(i, 'SIGKILL');
      await sleep(between(1000, 5000));
      cluster.restart(i);
    } else {
      cluster.servers[i]!.process?.kill('SIGSTOP');
      await sleep(between(1000, 6000));
      cluster.servers[i]!.process?.kill('SIGCONT');
    }
    // The next NATS fault waits until this server is back in the cluster: one at a time, as
    // R3 tolerates, while validator faults overlap freely.
    await cluster.waitReady().catch(() => log(`${cluster.servers[i]!.name} is not back yet`));
  } finally {
    heldNats.delete(i);
  }
  faults.push({ kind: `nats ${kind}`, target: cluster.servers[i]!.name, from, to: Date.now() - t0 });
}

async function faultLane(stop: () => boolean, inject: () => Promise<void>, gapMs: [number, number]): Promise<void> {
  while (!stop()) {
    await sleep(between(...gapMs));
    if (stop()) break;
    await inject();
  }
}

// ---------------------------------------------------------------------------------------------
// Observation and the final checks

interface Health {
  height: number;
  stateRoot: string;
  finalHeight: number | null;
  status: string;
}
const finalSamples: { at: number; final: number }[] = [];

async function health(id: string): Promise<Health | null> {
  const r = await request('GET', `${url(id)}/api/health`);
  return r?.status === 200 ? (r.body as unknown as Health) : null;
}

async function sample(stop: () => boolean): Promise<void> {
  while (!stop()) {
    const hs = await Promise.all(VALIDATORS.map(health));
    const final = Math.max(0, ...hs.map((h) => h?.finalHeight ?? 0));
    finalSamples.push({ at: Date.now() - t0, final });
    await sleep(250);
  }
}

/** Longest stretches without progress, each with the faults that overlapped it. */
function stalls(times: number[], from: number, to: number): { from: number; ms: number; during: string[] }[] {
  const points = [from, ...times.filter((t) => t >= from && t <= to), to].sort((a, b) => a - b);
  const gaps: { from: number; ms: number; during: string[] }[] = [];
  for (let i = 1; i < points.length; i++) {
    const ms = points[i]! - points[i - 1]!;
    if (ms < 1000) continue;
    const during = faults.filter((f) => f.from <= points[i]! && f.to >= points[i - 1]! - 2000).map((f) => `${f.kind} ${f.target}`);
    gaps.push({ from: points[i - 1]!, ms, during });
  }
  return gaps.sort((a, b) => b.ms - a.ms);
}

function chainTxIds(dir: string): { counts: Map<string, number>; blocks: { time: number; txs: number }[] } {
  const db = new Database(join(dir, 'chain.db'), { readonly: true });
  const counts = new Map<string, number>();
  const blocks: { time: number; txs: number }[] = [];
  try {
    for (const row of db.prepare('SELECT header, txs FROM blocks ORDER BY height').iterate() as Iterable<{ header: string; txs: string }>) {
      const txs = JSON.parse(row.txs) as Tx[];
      blocks.push({ time: (JSON.parse(row.header) as { time: number }).time, txs: txs.length });
      for (const tx of txs) {
        const id = txIdOf(tx);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
  } finally {
    db.close();
  }
  return { counts, blocks };
}

async function main(): Promise<void> {
  log(`seed ${SEED}, ${DURATION_MS / 1000} s of load and faults`);
  cluster = await NatsCluster.start(3);
  net = await makeNetwork({ maxTxPerBlock: 200, batchTimeoutMs: 20 });
  await writeNatsNodeConfigs(net, VALIDATORS, cluster.urls, {
    prefix: 'ML',
    replicas: 3,
    ports,
    extra: (id) => ({ vault: { store: { kind: 'sqlite' }, institutions: [id] } }),
  });
  mkdirSync(net.nodeDir(DISK_VICTIM), { recursive: true });
  mountDisk(net.nodeDir(DISK_VICTIM));
  log(`disk-full fault: ${diskNote}`);
  await Promise.all(VALIDATORS.map(startValidator));
  cast = await enrolCast(
    url('hosp-a'),
    net,
    { 'hosp-a/doc': 'doctor', 'hosp-b/doc': 'doctor', 'clinic-c/doc': 'doctor' },
    Array.from({ length: 8 }, () => 'hosp-a'),
  );
  patients.push(...cast.patients.map((p) => ({ identity: p.identity, code: p.code })));

  t0 = Date.now();
  const background = [supervise(() => stopAll), sample(() => stopAll)];
  const load = Array.from({ length: 6 }, () => worker(() => stopLoad));
  // The baseline: the same load without faults, measured in the same run.
  await sleep(BASELINE_MS);
  const baselineEnd = Date.now() - t0;
  log(`baseline done: ${acks.length} acknowledged without faults; injecting faults`);
  const lanes = [faultLane(() => stopLoad, validatorFault, [2000, 6000]), faultLane(() => stopLoad, natsFault, [4000, 10_000])];
  const ticker = setInterval(
    () =>
      log(
        `${acks.length} acknowledged, ${faults.length} faults, ${JSON.stringify(Object.fromEntries(transport))} ${JSON.stringify(doing)}`,
      ),
    15_000,
  );
  await sleep(DURATION_MS - BASELINE_MS);
  stopLoad = true;
  await Promise.all(lanes);
  await Promise.all(load);
  clearInterval(ticker);
  const loadEnd = Date.now() - t0;
  log(`load stopped: ${acks.length} acknowledged; waiting for the validators to agree`);

  const failures: string[] = [];
  let agreed: Health[] = [];
  const deadline = Date.now() + 180_000;
  for (;;) {
    const hs = await Promise.all(VALIDATORS.map(health));
    if (
      hs.every(
        (h) =>
          h !== null && h.status === 'ok' && h.height === hs[0]!.height && h.stateRoot === hs[0]!.stateRoot && h.finalHeight === h.height,
      )
    ) {
      agreed = hs as Health[];
      break;
    }
    if (Date.now() > deadline) {
      failures.push(`validators did not agree within 180 s: ${JSON.stringify(hs)}`);
      break;
    }
    await sleep(500);
  }
  stopAll = true;
  await Promise.all(background);
  // Stop every validator process (SIGKILL after 20 s) before reading their stores.
  await Promise.all(
    spawned.map(async (n) => {
      const hard = setTimeout(() => n.child.kill('SIGKILL'), 20_000);
      await n.kill('SIGTERM');
      clearTimeout(hard);
    }),
  );

  // Every acknowledged tx exactly once, on every validator; nothing twice.
  const acked = new Set(acks.map((a) => a.txId));
  let chainTxs = 0;
  let finalBaseline = 0;
  let finalFaults = 0;
  for (const id of VALIDATORS) {
    const { counts, blocks } = chainTxIds(net.nodeDir(id));
    const missing = [...acked].filter((t) => counts.get(t) !== 1);
    if (missing.length > 0)
      failures.push(`${id}: ${missing.length} acknowledged txs not in the chain exactly once, e.g. ${missing.slice(0, 3).join(', ')}`);
    const twice = [...counts].filter(([, n]) => n > 1);
    if (twice.length > 0) failures.push(`${id}: ${twice.length} txs in the chain more than once`);
    if (id === VALIDATORS[0]) {
      chainTxs = [...counts.values()].reduce((s, n) => s + n, 0);
      const within = (from: number, to: number): number =>
        blocks.filter((b) => b.time >= t0 + from && b.time < t0 + to).reduce((s, b) => s + b.txs, 0);
      finalBaseline = within(0, baselineEnd);
      finalFaults = within(baselineEnd, loadEnd);
    }
  }

  // A node may exit by itself only for a full disk (75, STORAGE_FAILED): anything else is a crash.
  for (const e of unexpectedExits) if (!e.storage) failures.push(`${e.who} crashed at ${(e.at / 1000).toFixed(0)} s: ${e.output}`);

  // `medledger verify` on every data directory.
  for (const id of VALIDATORS) {
    const r = spawnSync(process.execPath, [CLI, 'verify', net.nodeDir(id)], { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) failures.push(`verify ${id}: exit ${r.status} ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  }

  // The report: the fault phase next to the baseline phase of the same run.
  const baseS = baselineEnd / 1000;
  const faultS = (loadEnd - baselineEnd) / 1000;
  const finalAdvances = finalSamples.filter((x, i, all) => i > 0 && x.final > all[i - 1]!.final).map((x) => x.at);
  const finalityStalls = stalls(finalAdvances, baselineEnd, loadEnd);
  const baselineFinalityStall = stalls(finalAdvances, 0, baselineEnd)[0]?.ms ?? 0;
  const ackTimes = acks.map((a) => a.at);
  const ackStalls = stalls(ackTimes, baselineEnd, loadEnd);
  const ackedIn = (from: number, to: number): number => acks.filter((a) => a.at >= from && a.at < to).length;
  const latencies = (from: number, to: number): { p50: number; p99: number; max: number } => {
    const xs = submitLatencies.filter((l) => l.at >= from && l.at < to).map((l) => l.ms);
    return { p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.length === 0 ? NaN : Math.max(...xs) };
  };
  const faultCounts = Object.fromEntries(
    [...new Set(faults.map((f) => f.kind))].map((k) => [k, faults.filter((f) => f.kind === k).length]),
  );
  const result = {
    soak: 'fault soak',
    at: new Date().toISOString(),
    seed: SEED,
    topology: '4 validators (SQLite vaults) on 3 NATS servers, stream R3, two-thirds finality',
    diskFull: diskNote,
    diskEvents,
    baseline: {
      seconds: baseS,
      acknowledgedPerSecond: ackedIn(0, baselineEnd) / baseS,
      finalTxPerSecond: finalBaseline / baseS,
      submitLatencyMs: latencies(0, baselineEnd),
      longestFinalityStallMs: baselineFinalityStall,
    },
    underFaults: {
      seconds: faultS,
      faults: faultCounts,
      acknowledgedPerSecond: ackedIn(baselineEnd, loadEnd) / faultS,
      finalTxPerSecond: finalFaults / faultS,
      submitLatencyMs: latencies(baselineEnd, loadEnd),
      longestSubmissionStallMs: ackStalls[0]?.ms ?? 0,
      longestFinalityStallMs: finalityStalls[0]?.ms ?? 0,
      finalityStallsOver1s: finalityStalls.length,
      worstFinalityStalls: finalityStalls.slice(0, 5),
    },
    acknowledged: acked.size,
    chainTxs,
    height: agreed[0]?.height ?? null,
    unexpectedExits,
    streamReadersRecreated: Object.fromEntries(VALIDATORS.map((id) => [id, outputOf(id).split('stream reader failed').length - 1])),
    refusals: Object.fromEntries(refusals),
    submissions: Object.fromEntries(transport),
    operations: Object.fromEntries(ops),
    failures,
  };
  const b = result.baseline;
  const f = result.underFaults;
  const ratio = (x: number, y: number): string => (y > 0 ? `${((100 * x) / y).toFixed(0)} %` : '-');
  const ms = (l: { p50: number; p99: number; max: number }): string => `${l.p50} / ${l.p99} / ${l.max} ms`;
  const rows: string[][] = [
    ['', 'baseline (no faults)', 'under faults', 'faults / baseline'],
    ['duration', `${baseS.toFixed(0)} s`, `${faultS.toFixed(0)} s`, ''],
    [
      'acknowledged tx/s',
      b.acknowledgedPerSecond.toFixed(1),
      f.acknowledgedPerSecond.toFixed(1),
      ratio(f.acknowledgedPerSecond, b.acknowledgedPerSecond),
    ],
    ['final tx/s', b.finalTxPerSecond.toFixed(1), f.finalTxPerSecond.toFixed(1), ratio(f.finalTxPerSecond, b.finalTxPerSecond)],
    ['submit latency p50 / p99 / max', ms(b.submitLatencyMs), ms(f.submitLatencyMs), ''],
    ['longest finality stall', `${b.longestFinalityStallMs} ms`, `${f.longestFinalityStallMs} ms`, ''],
    ['longest submission stall', '', `${f.longestSubmissionStallMs} ms`, ''],
    ['finality stalls > 1 s', '', String(f.finalityStallsOver1s), ''],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')).join('\n');
  const facts = [
    `seed ${SEED}; faults: ${
      Object.entries(faultCounts)
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ') || 'none'
    }; disk-full: ${diskNote}`,
    ...diskEvents.map((e) => `disk full: ${e}`),
    `worst stall: ${f.longestFinalityStallMs} ms during ${finalityStalls[0]?.during.join(', ') || '-'}`,
    `${acked.size} acknowledged txs, ${chainTxs} txs in ${result.height ?? '?'} blocks; ${unexpectedExits.length} processes exited by themselves`,
    `invariants: ${failures.length === 0 ? 'hold (every acknowledged tx once on every validator, same height and state root, verify clean)' : `BROKEN (${failures.length})`}`,
  ];
  process.stdout.write(`\nfault soak\n${table}\n${facts.join('\n')}\n\n${JSON.stringify(result)}\n`);
  for (const x of failures) process.stderr.write(`soak: INVARIANT BROKEN: ${x}\n`);
  process.exitCode = failures.length === 0 ? 0 : 1;
}

/** Ends every process this run started and unmounts its disk, whatever state the run is in. */
async function cleanUp(): Promise<void> {
  stopLoad = true;
  stopAll = true;
  const step = async (what: string, f: () => unknown): Promise<void> => {
    try {
      await f();
    } catch (e) {
      log(`clean-up: ${what}: ${String(e)}`);
    }
  };
  for (const n of spawned) {
    await step('validator', () => {
      n.child.kill('SIGCONT');
      n.child.kill('SIGKILL');
    });
  }
  for (const s of cluster?.servers ?? []) await step('nats', () => s.process?.kill('SIGCONT'));
  await step('nats', () => cluster?.stop());
  const keep = args.keep || process.exitCode !== 0;
  if (net !== undefined) {
    await step('logs', () => {
      mkdirSync(join(net.dir, 'logs'), { recursive: true });
      for (const id of VALIDATORS) writeFileSync(join(net.dir, 'logs', `${id}.log`), outputOf(id));
    });
  }
  if (diskMount !== null) {
    const mount = diskMount;
    // What is kept must outlive the tmpfs: copy it out before unmounting.
    if (keep) await step('keep disk', () => cpSync(mount, `${mount}.kept`, { recursive: true }));
    for (let i = 0; i < 10 && spawnSync('umount', [mount]).status !== 0; i++) await sleep(500);
  }
  // A failed run keeps its data directories and the validators' logs for inspection.
  if (!keep && net !== undefined) await step('remove', () => rmSync(net.dir, { recursive: true, force: true }));
  else if (net !== undefined) {
    keepTempDir(net.dir);
    log(`data directories and logs kept in ${net.dir}`);
  }
}

// Interrupted (Ctrl-C, a CI timeout): still end every process and unmount.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.exitCode = 130;
    void cleanUp().finally(() => process.exit(130));
  });
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
