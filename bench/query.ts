/**
 * `npm run bench:query`: the record index at scale. On the cached chain of bench/chain-fixture.ts
 * (N `records.register` transactions for N ÷ 100 patients, at most 10,000, so each patient has
 * about 100 records spread over the whole chain) it starts a real node (`medledger start` as a
 * child process), warms it up, then asks for the records of random patients one query at a time:
 * `GET /api/records?patientCode=…` (no authentication: the index holds no plaintext; the route's
 * default limit of 100, newest first). p50/p99 over HTTP, and the same query at store level —
 * `LedgerStore.query`, the function the route calls, in this process on a read-only connection
 * to the same SQLite file (the node stays its only writer), interleaved with the HTTP queries
 * for other random patients — so HTTP cost and index cost are told apart. Also the node process's memory: VmRSS after start and after each run's queries,
 * and its peak (VmHWM), from /proc/<pid>/status.
 *
 *   npm run bench:query -- [--records 1000000] [--queries 2000] [--runs 3] [--quick] [--fresh] [--reuse] [--profile <file>]
 *
 * `--quick`: 20,000 records, 1 run, 300 queries. `--profile <file>` writes a CPU profile of a
 * further pass of store-level queries (this process, after the timed runs) to
 * `<file>.cpuprofile`; to profile the node process, set
 * MEDLEDGER_NODE_ARGS="--cpu-prof --cpu-prof-dir=<dir>". `--fresh` and `--reuse`: see
 * bench/chain-fixture.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { installNodeCrypto } from '../packages/node/src/crypto/node-crypto.ts';
import { DataDirFiles } from '../packages/node/src/config/data-dir.ts';
import { LedgerStore } from '../packages/node/src/store/ledger-store.ts';
import { freePort, NodeProcess } from '../test/test-network.ts';
import { percentile, progress, report, summarise } from './bench-report.ts';
import { chainFixture, memoryOf, startProfile, stopProfile } from './chain-fixture.ts';

installNodeCrypto();

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    queries: { type: 'string', default: '2000' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '200' },
    quick: { type: 'boolean', default: false },
    fresh: { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const RECORDS = args.quick ? 20_000 : Number(args.records);
const QUERIES = args.quick ? 300 : Number(args.queries);
const RUNS = args.quick ? 1 : Number(args.runs);
const WARMUP = Number(args.warmup);
/** the route's default page, which the store-level query uses too */
const LIMIT = 100;
const P99_TARGET_MS = 5;
const RSS_TARGET_MB = 400;

/** The store-level query the route runs (server.ts, GET /api/records) for one patient. */
function storeQuery(store: LedgerStore, patientCode: string): unknown[] {
  return store.query(
    'records',
    { patient_code: patientCode, category: undefined, custodian: undefined },
    { column: 'registered_at', from: undefined, to: undefined },
    { column: 'registered_at', desc: true },
    LIMIT,
  );
}

async function httpQuery(base: string, patientCode: string): Promise<unknown[]> {
  const res = await fetch(`${base}/api/records?patientCode=${patientCode}`);
  const body = await res.json();
  if (res.status !== 200 || !Array.isArray(body)) throw new Error(`GET /api/records: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  return body as unknown[];
}

/** The memory of a process's children (the node's helpers, e.g. esbuild for tsx), MB. */
function childrenRssMb(pid: number): number {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.reduce((s, k) => s + memoryOf(k).rssMb + childrenRssMb(k), 0);
  } catch {
    return 0;
  }
}

interface RunResult {
  http50: number;
  http99: number;
  store50: number;
  store99: number;
  /** mean records per answer, HTTP and store */
  recordsHttp: number;
  recordsStore: number;
  rssMb: number;
  peakMb: number;
}

const fixture = await chainFixture({ records: RECORDS, fresh: args.fresh, reuse: args.reuse });
const patients = fixture.patients;
const pick = (): string => patients[Math.floor(Math.random() * patients.length)]!;

interface Measured {
  runs: RunResult[];
  started: { rssMb: number; peakMb: number };
  startSeconds: number;
  helpersMb: number;
  healthP50: number;
  indexRows: number;
  profileTop: string[];
}

/** Starts the node, runs the queries, and stops the node whatever happens. */
async function measure(): Promise<Measured> {
  const runs: RunResult[] = [];
  let profileTop: string[] = [];
  let node: NodeProcess | null = null;
  let store: LedgerStore | null = null;
  try {
    progress(`query: starting the node on ${fixture.dataDir}`);
    const t0 = performance.now();
    node = await NodeProcess.start(fixture.dataDir, await freePort());
    const startSeconds = (performance.now() - t0) / 1000;
    const pid = node.child.pid!;
    const started = memoryOf(pid);
    const health = (await (await fetch(`${node.url}/api/health`)).json()) as { height?: number };
    if (health.height !== fixture.height) throw new Error(`the node is at height ${String(health.height)}, the chain at ${fixture.height}`);
    // Opened after the node: it has made the WAL files a read-only connection needs.
    store = new LedgerStore(join(fixture.dataDir, DataDirFiles.chain), { readonly: true });
    const indexRows = (store.db.prepare('SELECT COUNT(*) AS n FROM s_records').get() as { n: number }).n;

    progress(`query: warming up (${WARMUP} queries each way)`);
    for (let i = 0; i < WARMUP; i++) {
      await httpQuery(node.url, pick());
      storeQuery(store, pick());
    }
    // The framework's own floor: a route that reads no index.
    const floor: number[] = [];
    for (let i = 0; i < 200; i++) {
      const s = performance.now();
      await (await fetch(`${node.url}/api/health`)).json();
      floor.push(performance.now() - s);
    }

    // One HTTP query, then one store-level query for another random patient, and so on: both
    // meet the same state of the page caches (a patient's ~100 records lie on ~100 pages).
    for (let r = 1; r <= RUNS; r++) {
      const http: number[] = [];
      const local: number[] = [];
      let httpRecords = 0;
      let storeRecords = 0;
      for (let i = 0; i < QUERIES; i++) {
        let s = performance.now();
        httpRecords += (await httpQuery(node.url, pick())).length;
        http.push(performance.now() - s);
        s = performance.now();
        storeRecords += storeQuery(store, pick()).length;
        local.push(performance.now() - s);
        if (i % 100 === 0) progress(`query run ${r}/${RUNS}: ${i}/${QUERIES} queries`);
      }
      const mem = memoryOf(pid);
      runs.push({
        http50: percentile(http, 50),
        http99: percentile(http, 99),
        store50: percentile(local, 50),
        store99: percentile(local, 99),
        recordsHttp: httpRecords / QUERIES,
        recordsStore: storeRecords / QUERIES,
        rssMb: mem.rssMb,
        peakMb: mem.peakMb,
      });
      progress(
        `query run ${r}/${RUNS}: HTTP p99 ${percentile(http, 99).toFixed(2)} ms, store p99 ${percentile(local, 99).toFixed(2)} ms\n`,
      );
    }
    if (args.profile !== undefined) {
      // Profiled apart from the timed runs: store-level queries only, for fresh random patients.
      progress(`query: profiling ${QUERIES} store-level queries`);
      const session = await startProfile();
      for (let i = 0; i < QUERIES; i++) storeQuery(store, pick());
      profileTop = await stopProfile(session, `${args.profile}.cpuprofile`);
    }
    return {
      runs,
      started,
      startSeconds,
      helpersMb: childrenRssMb(pid),
      healthP50: percentile(floor, 50),
      indexRows,
      profileTop,
    };
  } finally {
    store?.close();
    if (node !== null) {
      // A clean stop (SIGTERM: the node closes its store), or SIGKILL after 10 s.
      const n = node;
      await Promise.race([n.kill('SIGTERM'), new Promise((res) => setTimeout(res, 10_000).unref())]);
      await n.kill('SIGKILL');
    }
  }
}

const { runs, started, startSeconds, helpersMb, healthP50, indexRows, profileTop } = await measure();
const records = runs.map((r) => r.recordsHttp);
if (runs.some((r) => r.recordsHttp !== r.recordsStore)) throw new Error('HTTP and store-level queries returned different counts');
const ms = (name: string, id: string, of: (r: RunResult) => number, extra: { target?: string; note?: string } = {}) => {
  const f = summarise(name, 'ms', runs.map(of), { id, ...extra });
  if (extra.target !== undefined) f.met = f.median <= P99_TARGET_MS;
  return f;
};
const storeP99 = summarise(
  '',
  '',
  runs.map((r) => r.store99),
).median;
const mb = (name: string, id: string, of: (r: RunResult) => number, note: string) => {
  const f = summarise(name, 'MB', runs.map(of), { id, target: `≤ ${RSS_TARGET_MB} MB`, note });
  f.met = f.median <= RSS_TARGET_MB;
  return f;
};
report(
  'query',
  [
    ms('index query by patient over HTTP, p50', 'query.http_p50_ms', (r) => r.http50, {
      note: `GET /api/health p50 ${healthP50.toFixed(2)} ms (HTTP floor)`,
    }),
    ms('index query by patient over HTTP, p99', 'query.http_p99_ms', (r) => r.http99, {
      target: `≤ ${P99_TARGET_MS} ms`,
      note: `store-level p99 ${storeP99.toFixed(2)} ms`,
    }),
    ms('index query by patient, store level (LedgerStore.query), p50', 'query.store_p50_ms', (r) => r.store50),
    ms('index query by patient, store level (LedgerStore.query), p99', 'query.store_p99_ms', (r) => r.store99),
    summarise('records returned per query', 'records', records, { id: 'query.records_per_query', note: `limit ${LIMIT}` }),
    mb('node RSS after the queries', 'query.rss_mb', (r) => r.rssMb, `${Math.round(started.rssMb)} MB after start`),
    mb('node peak RSS (VmHWM)', 'query.rss_peak_mb', (r) => r.peakMb, `${Math.round(started.peakMb)} MB after start`),
    summarise('transactions in the chain', 'txs', [fixture.txs], {
      id: 'query.chain_txs',
      note: `${indexRows.toLocaleString('en-US')} records in the index`,
    }),
  ],
  {
    records: fixture.records,
    txs: fixture.txs,
    height: fixture.height,
    indexRows,
    patients: patients.length,
    queriesPerRun: QUERIES,
    warmup: WARMUP,
    runs: RUNS,
    limit: LIMIT,
    route: 'GET /api/records?patientCode=<code> (no authentication)',
    storeLevel: 'LedgerStore.query in the bench process, read-only connection to the node’s chain.db',
    nodeStartSeconds: +startSeconds.toFixed(2),
    rssAfterStartMb: Math.round(started.rssMb),
    nodeHelpersRssMb: Math.round(helpersMb),
    chainDir: fixture.root,
    chainBytes: fixture.bytes,
    chainKey: fixture.key,
    chainStale: fixture.stale,
    chainBuilt: fixture.built ? `in this run, ${Math.round(fixture.buildSeconds)} s` : `before, ${Math.round(fixture.buildSeconds)} s`,
    ...(profileTop.length > 0 ? { profile: `${args.profile!}.cpuprofile`, profileTopSelf: profileTop } : {}),
  },
);
if (profileTop.length > 0) process.stdout.write(`\ntop self time, store-level queries (after the runs):\n${profileTop.join('\n')}\n`);
