/**
 * `npm run bench -- limits`: this machine's ceilings, measured in the same run as the other
 * benchmarks so the suite can give each headline figure as a fraction of the limit that bounds
 * it. Ed25519 verification on one thread and on the thread pool (both cores), one-shot SHA-256 of
 * 256 B, rows committed to SQLite as the node commits them (WAL, synchronous=FULL, 1,000-row
 * transactions), and raw 400-byte JetStream publishes acked at R3 by a real 3-server cluster.
 *
 *   npm run bench:limits -- [--runs 3] [--quick]
 */
import { parseArgs } from 'node:util';
import { NatsCluster } from '../test/nats-cluster.ts';
import { progress, report, summarise } from './bench-report.ts';
import { jetstreamCeiling, sha256Ceiling, sqliteRowsCeiling, verifyCeiling, verifySyncCeiling } from './machine-limits.ts';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, quick: { type: 'boolean', default: false } },
});
const RUNS = args.quick ? 1 : Number(args.runs);

const sync: number[] = [];
const async: number[] = [];
const sha: number[] = [];
const rows: number[] = [];
const jet: number[] = [];
progress('limits: starting 3 NATS servers');
const cluster = await NatsCluster.start(3);
try {
  for (let r = 1; r <= RUNS; r++) {
    progress(`limits run ${r}/${RUNS}: Ed25519 verify, one thread`);
    sync.push(verifySyncCeiling());
    progress(`limits run ${r}/${RUNS}: Ed25519 verify, thread pool`);
    async.push(await verifyCeiling());
    progress(`limits run ${r}/${RUNS}: SHA-256`);
    sha.push(sha256Ceiling());
    progress(`limits run ${r}/${RUNS}: SQLite committed rows`);
    rows.push(sqliteRowsCeiling());
    progress(`limits run ${r}/${RUNS}: raw JetStream publishes at R3`);
    jet.push(await jetstreamCeiling(cluster.urls));
  }
} finally {
  await cluster.stop();
}
report(
  'limits',
  [
    summarise('Ed25519 verify/s, node:crypto, one thread', 'op/s', sync, { id: 'limits.ed25519_sync' }),
    summarise('Ed25519 verify/s, node:crypto, thread pool (both cores)', 'op/s', async, { id: 'limits.ed25519_async' }),
    summarise('SHA-256/s, 256 B, one thread', 'op/s', sha, { id: 'limits.sha256' }),
    summarise('SQLite committed rows/s (WAL, synchronous=FULL, 1,000-row tx, one index)', 'rows/s', rows, { id: 'limits.sqlite_rows' }),
    summarise('raw JetStream publish/s, 3 servers, R3, 400 B, 1,000 in flight', 'msg/s', jet, { id: 'limits.jetstream_r3' }),
  ],
  { runs: RUNS, cores: (await import('node:os')).availableParallelism() },
);
