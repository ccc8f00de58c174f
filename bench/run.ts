/**
 * `npm run bench`: the whole benchmark suite, or the benchmarks named, one after another, each in
 * its own process (so one's memory and threads do not distort the next). The machine's limits
 * are always measured first, in the same run, and the seed stack (Solidity on a local EVM) is
 * measured beside medledger, so every comparison in the summary is a ratio of two figures from
 * this one run. Prints a summary table with each target beside its figure, writes the suite's
 * JSON and the same table in Markdown (for docs/BENCHMARKS.md) to bench/results/.
 *
 *   npm run bench                        # everything, full size (~25 minutes)
 *   npm run bench -- cluster baseline    # just these (the limits are always measured)
 *   npm run bench -- --quick             # everything, small (under 3 minutes; what CI runs)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { targetCell, type Figure } from './bench-report.ts';

const BENCHES = ['limits', 'embedded', 'cluster', 'share', 'verify', 'query', 'baseline'] as const;
type Bench = (typeof BENCHES)[number];

const USAGE = `usage: npm run bench -- [--quick] [--reuse-chain] [${BENCHES.filter((b) => b !== 'limits').join('|')} ...]`;

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    // Reuse the newest complete 1 M-tx chain even if the sources it was built with changed since
    // (verify would find a chain the code no longer agrees with); the reports say it was reused.
    'reuse-chain': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    `${USAGE}\n\nRuns the benchmarks named (default: all), always with the machine limits first.\n` +
      '  --quick        small sizes, one run each (under 3 minutes)\n' +
      '  --reuse-chain  verify/query: reuse the newest complete chain even if built by older sources\n',
  );
  process.exit(0);
}
const unknown = positionals.filter((p) => !(BENCHES as readonly string[]).includes(p));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark: ${unknown.join(', ')}\n${USAGE}\n`);
  process.exit(2);
}
const chosen: Bench[] = positionals.length === 0 ? [...BENCHES] : BENCHES.filter((b) => b === 'limits' || positionals.includes(b));

/** The arguments each benchmark takes in the quick form (the full form is each one's default). */
const QUICK_ARGS: Record<Bench, string[]> = {
  limits: ['--quick'],
  embedded: ['--quick', '--runs', '1'],
  cluster: ['--quick'],
  share: ['--quick'],
  verify: ['--quick'],
  query: ['--quick'],
  baseline: ['--quick'],
};

/**
 * Node options per benchmark: verify holds the re-executed world state of the whole chain in
 * memory (about 1.3 KB a transaction), more than Node's default heap limit at 1 M transactions.
 */
const NODE_FLAGS: Partial<Record<Bench, string[]>> = { verify: ['--max-old-space-size=8192'] };
const CHAIN_BENCHES: readonly Bench[] = ['verify', 'query'];

interface BenchOut {
  bench: string;
  context: Record<string, unknown>;
  figures: Figure[];
}

const outDir = join(tmpdir(), `medledger-bench-${process.pid}`);
mkdirSync(outDir, { recursive: true });
const results = new Map<Bench, BenchOut>();
const failed: string[] = [];
const startedAt = performance.now();
for (const [i, bench] of chosen.entries()) {
  const elapsed = Math.round((performance.now() - startedAt) / 1000);
  process.stderr.write(`\n== [${i + 1}/${chosen.length}] ${bench}${args.quick ? ' (quick)' : ''} — ${elapsed} s so far\n`);
  const out = join(outDir, `${bench}.json`);
  const run = spawnSync(
    process.execPath,
    [
      ...(NODE_FLAGS[bench] ?? []),
      '--import',
      'tsx',
      join(import.meta.dirname, `${bench}.ts`),
      ...(args.quick ? QUICK_ARGS[bench] : []),
      ...(args['reuse-chain'] && CHAIN_BENCHES.includes(bench) ? ['--reuse'] : []),
    ],
    {
      stdio: 'inherit',
      env: { ...process.env, BENCH_OUT: out },
    },
  );
  if (run.status !== 0) {
    failed.push(`${bench} (exit ${run.status ?? run.signal ?? '?'})`);
    continue;
  }
  try {
    results.set(bench, JSON.parse(readFileSync(out, 'utf8')) as BenchOut);
  } catch {
    failed.push(`${bench} (no results written)`);
  }
}
rmSync(outDir, { recursive: true, force: true });

const figures = new Map<string, Figure>();
for (const r of results.values()) for (const f of r.figures) if (f.id !== undefined) figures.set(f.id, f);
const median = (id: string): number | undefined => figures.get(id)?.median;

/** A ratio of two medians of this run, or undefined when either side was not measured. */
function ratio(a: string, b: string): number | undefined {
  const x = median(a);
  const y = median(b);
  return x === undefined || y === undefined || y === 0 ? undefined : x / y;
}

interface Row {
  figure: Figure;
  /** Fraction of the machine limit that bounds the figure, with the limit's name. */
  limit?: { of: string; value: number | undefined };
  /**
   * Against the seed stack: for a rate, medledger ÷ EVM (how many times the EVM's tx/s); for a
   * latency, EVM ÷ medledger (how many times faster than the EVM).
   */
  seed?: { value: number | undefined; kind: 'rate' | 'latency'; target?: number };
}

/** The summary: each headline figure, its target, and its ratios to the limit and the seed stack. */
function rows(): Row[] {
  const out: Row[] = [];
  const add = (id: string, extra: Omit<Row, 'figure'> = {}): void => {
    const figure = figures.get(id);
    if (figure !== undefined) out.push({ figure, ...extra });
  };
  add('embedded.tps', {
    limit: { of: 'Ed25519 verify, both cores', value: ratio('embedded.tps', 'limits.ed25519_async') },
    seed: { value: ratio('embedded.tps', 'baseline.tps'), kind: 'rate', target: 20 },
  });
  add('embedded.lone_p50_ms', { seed: { value: ratio('baseline.lone_p50_ms', 'embedded.lone_p50_ms'), kind: 'latency' } });
  add('cluster.tps', {
    limit: { of: 'raw JetStream R3', value: ratio('cluster.tps', 'limits.jetstream_r3') },
    seed: { value: ratio('cluster.tps', 'baseline.tps'), kind: 'rate' },
  });
  add('cluster.p99_ms', { seed: { value: ratio('baseline.p99_ms', 'cluster.p99_ms'), kind: 'latency' } });
  add('cluster.lone_p50_ms', { seed: { value: ratio('baseline.lone_p50_ms', 'cluster.lone_p50_ms'), kind: 'latency' } });
  add('embedded.cpu_ms_per_tx');
  add('cluster.cpu_ms_per_tx');
  add('cluster.catchup_tps', { limit: { of: 'Ed25519 verify, one thread', value: ratio('cluster.catchup_tps', 'limits.ed25519_sync') } });
  add('share.p50_ms');
  add('verify.tps');
  add('verify.tps_per_core', { limit: { of: 'Ed25519 verify, one thread', value: ratio('verify.tps_per_core', 'limits.ed25519_sync') } });
  add('query.http_p50_ms');
  add('query.http_p99_ms');
  add('query.store_p99_ms');
  add('query.rss_mb');
  add('query.rss_peak_mb');
  add('verify.rss_peak_mb');
  add('query.chain_txs');
  for (const id of [
    'baseline.tps',
    'baseline.tps_first1k',
    'baseline.tps_last1k',
    'baseline.p50_ms',
    'baseline.p99_ms',
    'baseline.lone_p50_ms',
    'baseline.nudges',
  ])
    add(id);
  for (const id of ['limits.ed25519_sync', 'limits.ed25519_async', 'limits.sha256', 'limits.sqlite_rows', 'limits.jetstream_r3']) add(id);
  return out;
}

function fmt(n: number | undefined, unit = ''): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  const s = Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
  return unit === '' ? s : `${s} ${unit}`;
}

function cells(r: Row): string[] {
  const f = r.figure;
  let seed = '';
  if (r.seed !== undefined) {
    seed = r.seed.kind === 'rate' ? `${fmt(r.seed.value)}× the EVM’s tx/s` : `${fmt(r.seed.value)}× as fast as the EVM`;
    if (r.seed.target !== undefined) {
      const met = r.seed.value !== undefined && r.seed.value >= r.seed.target;
      seed += ` (target ≥ ${r.seed.target}× — ${met ? 'met' : 'not met'})`;
    }
  }
  return [
    f.name,
    fmt(f.median, f.unit),
    `${fmt(f.min)} – ${fmt(f.max)}`,
    targetCell(f),
    r.limit === undefined ? '' : `${fmt(r.limit.value)} of ${r.limit.of}`,
    seed,
  ];
}

const HEAD = ['figure', 'median', 'min – max', 'target', 'fraction of machine limit', 'vs seed stack (EVM)'];
const table = rows().map(cells);
const widths = HEAD.map((h, i) => Math.max(h.length, ...table.map((c) => c[i]!.length)));
const line = (c: string[]): string => c.map((x, i) => x.padEnd(widths[i]!)).join(' | ');
process.stdout.write(
  `\n== medledger benchmark suite${args.quick ? ' (quick)' : ''}\n${line(HEAD)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`,
);
process.stdout.write(`${table.map(line).join('\n')}\n`);

const at = new Date().toISOString();
const flags = [...(args.quick ? ['--quick'] : []), ...(args['reuse-chain'] ? ['--reuse-chain'] : []), ...positionals];
const command = `npm run bench${flags.length > 0 ? ` -- ${flags.join(' ')}` : ''}`;
const markdown = [
  `Command: \`${command}\` (${at}, Node ${process.version})`,
  '',
  `| ${HEAD.join(' | ')} |`,
  `| ${HEAD.map(() => '---').join(' | ')} |`,
  ...table.map((c) => `| ${c.join(' | ')} |`),
  '',
].join('\n');
const resultsDir = join(import.meta.dirname, 'results');
mkdirSync(resultsDir, { recursive: true });
const stamp = at.replace(/[:.]/g, '-');
writeFileSync(
  join(resultsDir, `suite-${stamp}.json`),
  JSON.stringify({ command, at, node: process.version, failed, results: Object.fromEntries(results) }, null, 2),
);
writeFileSync(join(resultsDir, `suite-${stamp}.md`), markdown);
process.stdout.write(
  `\n(JSON and Markdown written to bench/results/suite-${stamp}.{json,md}; total ${Math.round((performance.now() - startedAt) / 1000)} s)\n`,
);
if (failed.length > 0) {
  process.stderr.write(`benchmarks that failed: ${failed.join(', ')}\n`);
  process.exit(1);
}
