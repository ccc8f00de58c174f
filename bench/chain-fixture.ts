/**
 * The long chain the scale benchmarks (bench/verify.ts, bench/query.ts) run on: a node data
 * directory (hosp-a, solo orderer, SQLite) holding N `records.register` transactions by 200
 * doctors at two hospitals for N ÷ 100 patients (at most 10,000), so that each patient has about
 * N ÷ patients records spread over the whole chain. It is built the way bench/embedded.ts loads
 * the node — in-process `LedgerNode`, enrol the doctors, register the patients, then sign and
 * submit through `peer.submit` — but streamed: at most WINDOW transactions are submitted and not
 * yet committed, so memory stays bounded at a million transactions (20 minutes, 857 tx/s, on a
 * busy two-core machine).
 *
 * The directory is cached under `os.tmpdir()/medledger-bench-chain-<N>-<key>`, where key hashes
 * the sources that decide what a stored chain looks like (the store, the solo orderer's log, the
 * ledger, the contracts, canonical JSON) and this fixture's workload: when they change, the chain
 * is rebuilt. It is built in a `.partial-<pid>` directory, renamed into place once complete, and
 * `fixture.json` (the completion marker) lists the patient codes for the query bench. A failed or
 * interrupted build removes its partial directory; a completed one removes the older chains of N
 * transactions, which other sources built.
 *
 *   npx tsx bench/chain-fixture.ts [--txs 1000000] [--fresh] [--reuse]
 *
 * `--fresh` rebuilds even when a cached chain exists; `--reuse` takes the newest complete chain of
 * N transactions even when the sources changed since it was built (while others edit the store,
 * say), and says so in the benches' context.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import { Identity } from '@medledger/core/client/identity';
import { patientCodeOf } from '@medledger/core/contracts/identity';
import type { Tx } from '@medledger/core/ledger/tx';
import { installNodeCrypto } from '../packages/node/src/crypto/node-crypto.ts';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import type { CommittedBlock, Peer } from '../packages/node/src/peer/peer.ts';
import { INSTITUTIONS, makeNetwork, recordBody, ROOT } from '../test/test-network.ts';
import { progress } from './bench-report.ts';

installNodeCrypto();

/** Bump when the workload below changes (doctors, patients, record bodies). */
const FIXTURE_VERSION = 1;
const DOCTORS = 200;
const MAX_PATIENTS = 10_000;
const RECORDS_PER_PATIENT = 100;
const MAX_TX_PER_BLOCK = 2000;
const BATCH_TIMEOUT_MS = 10;
/** submitted and not yet committed, at most */
const WINDOW = 20_000;
/** concurrent submitters (each signs, then awaits `peer.submit`) */
const SUBMITTERS = 2000;
const STALL_MS = 120_000;
const CATEGORIES = ['Observation', 'Condition', 'DiagnosticReport', 'MedicationRequest', 'Procedure'];
const MANIFEST = 'fixture.json';
/** Sources whose change may change what a stored chain looks like, relative to the repository. */
const KEY_SOURCES = [
  'packages/node/src/store',
  'packages/node/src/ordering/solo-orderer.ts',
  'packages/node/src/config/data-dir.ts',
  'packages/core/src/ledger',
  'packages/core/src/contracts',
  'packages/core/src/codec/canonical-json.ts',
];

/** What `fixture.json` holds; written last, so its presence marks a complete chain. */
export interface ChainManifest {
  version: number;
  key: string;
  /** records.register transactions */
  records: number;
  /** every transaction in the chain: enrolments, patient registrations and records */
  txs: number;
  /** the chain's height (blocks after genesis) */
  height: number;
  doctors: number;
  /** the patients' codes, in the order the records cycle through them */
  patients: string[];
  builtAt: string;
  node: string;
  /** seconds the whole build took, and the records' committed tx/s while streaming */
  buildSeconds: number;
  recordTxPerSecond: number;
  /** the data directory's size on disk after the build */
  bytes: number;
}

export interface ChainFixture extends ChainManifest {
  /** the cache directory */
  root: string;
  /** hosp-a's node data directory, which `medledger start` and `verify` take */
  dataDir: string;
  /** true when this process built it */
  built: boolean;
  /** true when `--reuse` took a chain built from other sources than the current ones */
  stale: boolean;
}

export interface ChainOptions {
  /** records.register transactions */
  records: number;
  fresh?: boolean;
  /** accept a complete chain of `records` built from other sources (see the file comment) */
  reuse?: boolean;
}

export function patientsFor(records: number): number {
  const n = Math.min(MAX_PATIENTS, Math.max(2, Math.round(records / RECORDS_PER_PATIENT)));
  return n - (n % 2);
}

function listSources(path: string): string[] {
  const st = lstatSync(path);
  if (st.isFile()) return /\.test(-fixture)?\.ts$/.test(path) || !path.endsWith('.ts') ? [] : [path];
  if (!st.isDirectory()) return [];
  return readdirSync(path)
    .sort()
    .flatMap((n) => listSources(join(path, n)));
}

/** The cache key: a hash of the sources that decide the stored format and of this workload. */
export function chainKey(records: number): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ FIXTURE_VERSION, records, DOCTORS, patients: patientsFor(records), MAX_TX_PER_BLOCK, BATCH_TIMEOUT_MS }));
  for (const file of KEY_SOURCES.flatMap((p) => listSources(join(ROOT, p)))) {
    h.update(`\n${relative(ROOT, file)}\n`);
    h.update(readFileSync(file));
  }
  return h.digest('hex').slice(0, 12);
}

function cacheRoot(records: number, key: string): string {
  return join(tmpdir(), `medledger-bench-chain-${records}-${key}`);
}

function readManifest(root: string): ChainManifest | null {
  const file = join(root, MANIFEST);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ChainManifest;
  } catch {
    return null;
  }
}

function dirBytes(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, n) => sum + dirBytes(join(path, n)), 0);
}

/** The newest complete cached chain of `records` transactions, whatever sources built it. */
function newestCached(records: number): string | null {
  const prefix = `medledger-bench-chain-${records}-`;
  const found = readdirSync(tmpdir())
    .filter((n) => n.startsWith(prefix) && !n.includes('.partial-'))
    .map((n) => join(tmpdir(), n))
    .filter((d) => readManifest(d) !== null)
    .sort((a, b) => statSync(join(b, MANIFEST)).mtimeMs - statSync(join(a, MANIFEST)).mtimeMs);
  return found[0] ?? null;
}

/**
 * Removes the complete cached chains of `records` transactions that are older than `keep`: built
 * from sources that have changed since (a million-transaction chain takes 2.7 GB). Partial
 * directories are left alone: another process may be building one.
 */
function pruneOlder(records: number, keep: string): void {
  const prefix = `medledger-bench-chain-${records}-`;
  const kept = statSync(join(keep, MANIFEST)).mtimeMs;
  for (const n of readdirSync(tmpdir())) {
    const dir = join(tmpdir(), n);
    if (!n.startsWith(prefix) || n.includes('.partial-') || dir === keep || readManifest(dir) === null) continue;
    if (statSync(join(dir, MANIFEST)).mtimeMs < kept) rmSync(dir, { recursive: true, force: true });
  }
}

/** The cached chain of `o.records` registrations, built first when there is none (or `fresh`). */
export async function chainFixture(o: ChainOptions): Promise<ChainFixture> {
  const key = chainKey(o.records);
  const root = cacheRoot(o.records, key);
  if (o.fresh === true) rmSync(root, { recursive: true, force: true });
  let at: string | null = readManifest(root) !== null ? root : null;
  if (at === null && o.reuse === true && o.fresh !== true) at = newestCached(o.records);
  if (at !== null) {
    const m = readManifest(at)!;
    progress(`chain: reusing ${at} (${m.txs.toLocaleString('en-US')} txs)\n`);
    return { ...m, root: at, dataDir: join(at, 'hosp-a'), built: false, stale: m.key !== key };
  }
  const m = await build(o.records, key, root);
  return { ...m, root, dataDir: join(root, 'hosp-a'), built: true, stale: false };
}

interface Signed {
  tx: Tx;
  txId: string;
}

/**
 * Signs (`make(i)`, just in time) and submits `count` transactions through `peer.submit`, with at
 * most WINDOW of them submitted and not yet committed; resolves when all are committed, each OK.
 */
async function stream(peer: Peer, label: string, count: number, make: (i: number) => Promise<Signed>): Promise<number> {
  let next = 0;
  let committed = 0;
  // An object: callbacks set it, which narrowing of a plain `let` would not see.
  const failed: { error: Error | null } = { error: null };
  let lastBlockAt = performance.now();
  let shownAt = 0;
  let waiters: (() => void)[] = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const t0 = performance.now();
  const show = (now: number): void => {
    const rate = committed / Math.max(1e-3, (now - t0) / 1000);
    const eta = rate > 0 ? Math.round((count - committed) / rate) : 0;
    progress(
      `chain: ${label} ${committed.toLocaleString('en-US')}/${count.toLocaleString('en-US')} committed, ` +
        `${Math.round(rate).toLocaleString('en-US')} tx/s, ~${eta} s left`,
    );
  };
  const onBlock = (b: CommittedBlock): void => {
    const bad = b.codes.findIndex((c) => c !== 'OK');
    if (bad >= 0) failed.error ??= new Error(`${label}: transaction ${b.txIds[bad]!} committed with ${b.codes[bad]!}`);
    committed += b.txIds.length;
    lastBlockAt = performance.now();
    if (lastBlockAt - shownAt > 500) {
      shownAt = lastBlockAt;
      show(lastBlockAt);
    }
    wake();
  };
  const waitForBlock = (): Promise<void> =>
    new Promise<void>((res) => {
      waiters.push(res);
    });
  peer.on('block', onBlock);
  const ticker = setInterval(() => {
    if (performance.now() - lastBlockAt > STALL_MS) failed.error ??= new Error(`${label}: no block for ${STALL_MS / 1000} s`);
    if (failed.error !== null) wake();
  }, 1000);
  try {
    await Promise.all(
      Array.from({ length: Math.min(SUBMITTERS, count) }, async () => {
        while (next < count) {
          if (failed.error !== null) throw failed.error;
          if (next - committed >= WINDOW) {
            await waitForBlock();
            continue;
          }
          const t = await make(next++);
          await peer.submit(t.tx);
        }
      }),
    );
    while (committed < count) {
      if (failed.error !== null) throw failed.error;
      await waitForBlock();
    }
    if (failed.error !== null) throw failed.error;
    show(performance.now());
    return committed / ((performance.now() - t0) / 1000);
  } finally {
    clearInterval(ticker);
    peer.off('block', onBlock);
  }
}

async function build(records: number, key: string, root: string): Promise<ChainManifest> {
  const started = performance.now();
  const patientCount = patientsFor(records);
  const net = await makeNetwork({ maxTxPerBlock: MAX_TX_PER_BLOCK, batchTimeoutMs: BATCH_TIMEOUT_MS }, INSTITUTIONS);
  const partial = `${root}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  renameSync(net.dir, partial);
  const removePartial = (): void => rmSync(partial, { recursive: true, force: true });
  const onSignal = (): void => {
    removePartial();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const dataDir = join(partial, 'hosp-a');
    const node = await LedgerNode.start({ dataDir, genesis: net.genesis, institution: 'hosp-a', host: '127.0.0.1', port: 0 });
    let running = true;
    const stopNode = async (): Promise<void> => {
      if (!running) return;
      running = false;
      await node.stop();
    };
    try {
      const peer = node.peer;
      // Doctors alternate between the two hospitals: doctor d works at hosp-a when d is even.
      progress(`chain: enrolling ${DOCTORS} doctors`);
      const doctors: Identity[] = [];
      for (let d = 0; d < DOCTORS; d++) doctors.push(await Identity.generate(`${d % 2 === 0 ? 'hosp-a' : 'hosp-b'}/d${d}`));
      await stream(peer, 'doctors', DOCTORS, (d) =>
        net.institutions.get(d % 2 === 0 ? 'hosp-a' : 'hosp-b')!.tx(net.network, 'identity.enrolStaff', {
          localId: `d${d}`,
          role: 'doctor',
          signingKey: doctors[d]!.signingKey,
          encryptionKey: doctors[d]!.encryptionKey,
          displayName: `Doctor ${d}`,
        }),
      );
      // Patient p's home is hosp-a when p is even, registered by a doctor there; each doctor
      // registers records of the patients of their own hospital, which needs no request.
      const key32 = fromBase64Url(net.patientCodeKey);
      const patients = Array.from({ length: patientCount }, (_, p) => patientCodeOf(key32, `BENCH-${p}`));
      await stream(peer, 'patients', patientCount, async (p) => {
        const id = await Identity.generate(`p${p}`);
        return doctors[p % 2]!.tx(net.network, 'identity.registerPatient', {
          patientCode: patients[p]!,
          signingKey: id.signingKey,
          encryptionKey: id.encryptionKey,
          possession: await id.possessionProof(net.network, patients[p]!, p % 2 === 0 ? 'hosp-a' : 'hosp-b'),
        });
      });
      const half = patientCount / 2;
      const recordTxPerSecond = await stream(peer, 'records', records, (i) => {
        const d = i % DOCTORS;
        // Round r of the doctors takes the next DOCTORS/2 patients of each hospital, cyclically.
        const slot = (Math.floor(i / DOCTORS) * (DOCTORS / 2) + Math.floor(d / 2)) % half;
        const patient = patients[(d % 2) + 2 * slot]!;
        return doctors[d]!.tx(net.network, 'records.register', recordBody(patient, CATEGORIES[i % CATEGORIES.length]!, `r${i}`));
      });
      const head = peer.store.head();
      const manifest: ChainManifest = {
        version: FIXTURE_VERSION,
        key,
        records,
        txs: DOCTORS + patientCount + records,
        height: head.height,
        doctors: DOCTORS,
        patients,
        builtAt: new Date().toISOString(),
        node: process.version,
        buildSeconds: 0,
        recordTxPerSecond,
        bytes: 0,
      };
      await stopNode();
      manifest.bytes = dirBytes(dataDir);
      manifest.buildSeconds = (performance.now() - started) / 1000;
      writeFileSync(join(partial, `${MANIFEST}.tmp`), JSON.stringify(manifest));
      renameSync(join(partial, `${MANIFEST}.tmp`), join(partial, MANIFEST));
      rmSync(root, { recursive: true, force: true });
      renameSync(partial, root);
      pruneOlder(records, root);
      progress(
        `chain: built ${records.toLocaleString('en-US')} records in ${Math.round(manifest.buildSeconds)} s ` +
          `(${Math.round(recordTxPerSecond).toLocaleString('en-US')} tx/s) at ${root}\n`,
      );
      return manifest;
    } finally {
      // A failure above must not leave the node running.
      await stopNode();
    }
  } catch (e) {
    removePartial();
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// ── Shared by the scale benches ────────────────────────────────────────────────────────────

/** VmRSS and VmHWM (peak) of a process, in MB, from /proc/<pid>/status. */
export function memoryOf(pid: number | 'self'): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Starts a CPU profile of this process (`--profile`), for flame graphs and the summary below. */
export async function startProfile(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return session;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Stops the profile, writes it to `file` and returns its top functions by self time. */
export async function stopProfile(session: Session, file: string, top = 15): Promise<string[]> {
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  writeFileSync(file, JSON.stringify(profile));
  const nodes = profile.nodes as ProfileNode[];
  const total = nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const self = new Map<string, number>();
  for (const n of nodes) {
    const f = n.callFrame;
    // tsx compiles each module onto one line: a line number says nothing there, the file does.
    const file = f.url.replace(/^.*\/(packages|node_modules|bench|test)\//, '$1/');
    const where = f.url === '' ? '' : ` ${file}${f.lineNumber > 0 ? `:${f.lineNumber + 1}` : ''}`;
    const name = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`;
    self.set(name, (self.get(name) ?? 0) + (n.hitCount ?? 0));
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, hits]) => `${((100 * hits) / Math.max(1, total)).toFixed(1).padStart(5)}%  ${name}`);
}

// `npx tsx bench/chain-fixture.ts --txs N`: build (or find) the chain only.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      txs: { type: 'string', default: '1000000' },
      fresh: { type: 'boolean', default: false },
      reuse: { type: 'boolean', default: false },
    },
  });
  const f = await chainFixture({ records: Number(values.txs), fresh: values.fresh, reuse: values.reuse });
  const { patients, ...shown } = f;
  process.stdout.write(`${JSON.stringify({ ...shown, patients: patients.length }, null, 2)}\n`);
}
