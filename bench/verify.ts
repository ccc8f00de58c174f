/**
 * `npm run bench:verify`: how fast `medledger verify` re-checks a long chain. It runs the CLI's
 * own `verifyDataDir` in this process on the cached chain of bench/chain-fixture.ts (N
 * `records.register` transactions by 200 doctors for up to 10,000 patients, after their
 * enrolments and registrations): integrity check, every block hash and link, every txId and
 * signature, Merkle and results roots, re-execution of every contract and the state root, then
 * the stored transaction index and world state against the re-executed ones, the finality
 * tables, the solo orderer's log and the data directory's files. Reports tx/s (wall clock) and
 * tx/s per core — transactions ÷ this process's CPU seconds (user + system, every thread: the
 * thread pool's signature checks and the garbage collector included) — with the cores that
 * amounts to (CPU seconds ÷ wall seconds). Measured in the same run, as the yardstick: one core's
 * synchronous Ed25519 verifications per second (node:crypto, cached KeyObject), and the ratio
 * of the two, i.e. what one verified transaction costs in signature checks' worth.
 *
 *   npm run bench:verify -- [--txs 1000000] [--runs 3] [--quick] [--fresh] [--reuse] [--profile <file>]
 *
 * Verification keeps the whole re-executed state in memory (core's MemoryState): at a million
 * transactions it needs more than Node's default 4 GB heap, so give it more, e.g.
 * `NODE_OPTIONS=--max-old-space-size=12288 npm run bench:verify`; the heap limit is reported.
 *
 * `--quick`: 20,000 transactions, 1 run. `--profile <file>` writes a CPU profile of the first
 * run's verification to `<file>.cpuprofile` and prints its top functions by self time. `--fresh`
 * and `--reuse`: see bench/chain-fixture.ts.
 */
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { installNodeCrypto } from '../packages/node/src/crypto/node-crypto.ts';
import { verifyDataDir } from '../packages/node/src/store/verify-store.ts';
import { progress, report, summarise } from './bench-report.ts';
import { verifySyncCeiling } from './machine-limits.ts';
import { chainFixture, memoryOf, startProfile, stopProfile } from './chain-fixture.ts';

installNodeCrypto();

const { values: args } = parseArgs({
  options: {
    txs: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    fresh: { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const RECORDS = args.quick ? 20_000 : Number(args.txs);
const RUNS = args.quick ? 1 : Number(args.runs);
const PER_CORE_TARGET = 10_000;
const ED25519_SAMPLES = 20_000;

interface Phase {
  wall: number;
  cpu: number;
}

interface RunResult {
  txs: number;
  seconds: number;
  cpuSeconds: number;
  tps: number;
  perCore: number;
  cores: number;
  ed25519: number;
  /** integrity check and schema; re-executing the chain; the index, state, finality and files */
  phases: { open: Phase; chain: Phase; rest: Phase };
  peakMb: number;
}

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const fixture = await chainFixture({ records: RECORDS, fresh: args.fresh, reuse: args.reuse });
const runs: RunResult[] = [];
let profileTop: string[] = [];
for (let r = 1; r <= RUNS; r++) {
  progress(`verify run ${r}/${RUNS}: Ed25519 sync rate`);
  const ed25519 = verifySyncCeiling(ED25519_SAMPLES);
  const session = r === 1 && args.profile !== undefined ? await startProfile() : null;
  const marks: { wall: number; cpu: number }[] = [];
  let shownAt = 0;
  const c0 = cpuSeconds();
  const t0 = performance.now();
  const result = await verifyDataDir(fixture.dataDir, (h, of) => {
    const now = performance.now();
    if (h === 0 || h === of) marks.push({ wall: now, cpu: cpuSeconds() });
    if (now - shownAt > 500) {
      shownAt = now;
      progress(`verify run ${r}/${RUNS}: block ${h.toLocaleString('en-US')}/${of.toLocaleString('en-US')}`);
    }
  });
  const t1 = performance.now();
  const c1 = cpuSeconds();
  if (session !== null) profileTop = await stopProfile(session, `${args.profile!}.cpuprofile`);
  if (result.txCount !== fixture.txs || result.height !== fixture.height) {
    throw new Error(`verified ${result.txCount} txs to height ${result.height}; the fixture has ${fixture.txs} to ${fixture.height}`);
  }
  const first = marks[0] ?? { wall: t0, cpu: c0 };
  const last = marks[marks.length - 1] ?? first;
  const seconds = (t1 - t0) / 1000;
  const cpu = c1 - c0;
  runs.push({
    txs: result.txCount,
    seconds,
    cpuSeconds: cpu,
    tps: result.txCount / seconds,
    perCore: result.txCount / cpu,
    cores: cpu / seconds,
    ed25519,
    phases: {
      open: { wall: (first.wall - t0) / 1000, cpu: first.cpu - c0 },
      chain: { wall: (last.wall - first.wall) / 1000, cpu: last.cpu - first.cpu },
      rest: { wall: (t1 - last.wall) / 1000, cpu: c1 - last.cpu },
    },
    peakMb: memoryOf('self').peakMb,
  });
  progress(`verify run ${r}/${RUNS}: ${Math.round(result.txCount / seconds).toLocaleString('en-US')} tx/s\n`);
}

const median = (xs: number[]): number => summarise('', '', xs).median;
const phaseNote = (pick: (r: RunResult) => Phase): string =>
  `${median(runs.map((r) => pick(r).wall)).toFixed(1)} s wall, ${median(runs.map((r) => pick(r).cpu)).toFixed(1)} s CPU`;
const perCore = summarise(
  'verify tx/s per core (txs ÷ CPU s)',
  'tx/s',
  runs.map((r) => r.perCore),
  { id: 'verify.tps_per_core', target: `≥ ${PER_CORE_TARGET.toLocaleString('en-US')}` },
);
perCore.met = perCore.median >= PER_CORE_TARGET;
report(
  'verify',
  [
    summarise(
      `verify tx/s, wall clock (${fixture.txs.toLocaleString('en-US')} txs)`,
      'tx/s',
      runs.map((r) => r.tps),
      { id: 'verify.tps', note: `median run ${median(runs.map((r) => r.seconds)).toFixed(1)} s` },
    ),
    perCore,
    summarise(
      'cores used (CPU s ÷ wall s)',
      'cores',
      runs.map((r) => r.cores),
      { id: 'verify.cores_used', note: `${runs.length > 0 ? runs[0]!.cpuSeconds.toFixed(1) : '?'} CPU s in run 1` },
    ),
    summarise(
      'Ed25519 verify/s, sync, one thread',
      'op/s',
      runs.map((r) => r.ed25519),
      { id: 'verify.ed25519_sync' },
    ),
    summarise(
      'verify tx/s per core ÷ Ed25519 sync verify/s',
      'ratio',
      runs.map((r) => r.perCore / r.ed25519),
      { id: 'verify.per_core_ratio', note: '1.0 would be verification at the cost of its signature checks alone' },
    ),
    summarise(
      'peak RSS of the verifying process (VmHWM)',
      'MB',
      runs.map((r) => r.peakMb),
      { id: 'verify.rss_peak_mb', note: `heap limit ${Math.round(getHeapStatistics().heap_size_limit / 2 ** 20)} MB` },
    ),
  ],
  {
    records: fixture.records,
    txs: fixture.txs,
    height: fixture.height,
    patients: fixture.patients.length,
    doctors: fixture.doctors,
    runs: RUNS,
    chainDir: fixture.root,
    chainBytes: fixture.bytes,
    chainKey: fixture.key,
    chainStale: fixture.stale,
    chainBuilt: fixture.built ? `in this run, ${Math.round(fixture.buildSeconds)} s` : `before, ${Math.round(fixture.buildSeconds)} s`,
    chainBuildRecordTxPerSecond: Math.round(fixture.recordTxPerSecond),
    path: 'verifyDataDir in-process (what `medledger verify` runs)',
    phases: {
      open: `integrity_check and schema: ${phaseNote((r) => r.phases.open)}`,
      chain: `re-execution from genesis (verifyChain): ${phaseNote((r) => r.phases.chain)}`,
      rest: `tx index, world state, finality, orderer log, files: ${phaseNote((r) => r.phases.rest)}`,
    },
    heapLimitMb: Math.round(getHeapStatistics().heap_size_limit / 2 ** 20),
    perRun: runs.map((r) => ({
      seconds: +r.seconds.toFixed(2),
      cpuSeconds: +r.cpuSeconds.toFixed(2),
      phases: r.phases,
    })),
    ...(profileTop.length > 0 ? { profile: `${args.profile!}.cpuprofile`, profileTopSelf: profileTop } : {}),
  },
);
if (profileTop.length > 0) process.stdout.write(`\ntop self time (run 1):\n${profileTop.join('\n')}\n`);
