/**
 * `npm run bench:cluster`: final tx/s and submit→final latency of four validator processes (two
 * hospitals, a clinic, a laboratory) on a 3-server JetStream cluster (R3), with registrations
 * submitted over HTTP to all four nodes; next to, in the same run, the raw JetStream publish
 * rate at R3 and the machine's Ed25519 verify rate (the ceilings).
 *
 *   npm run bench:cluster -- [--txs 10000] [--runs 3] [--quick]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Tx } from '@medledger/core/ledger/tx';
import { writeJson } from '../packages/node/src/config/data-dir.ts';
import { NatsCluster } from '../test/nats-cluster.ts';
import { NodeProcess, enrolCast, freePort, http, makeNetwork, recordBody } from '../test/test-network.ts';
import { percentile, progress, report, summarise } from './bench-report.ts';
import { jetstreamCeiling, verifyCeiling } from './machine-limits.ts';

const { values: args } = parseArgs({
  options: {
    txs: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
  },
});
const TXS = args.quick ? 2000 : Number(args.txs);
const RUNS = args.quick ? 1 : Number(args.runs);
const VALIDATORS = ['hosp-a', 'hosp-b', 'clinic-c', 'lab-d'];
const AUTHORS = 40;
const IN_FLIGHT = 512;
const LONE = 20;
const BATCH_TIMEOUT_MS = Number(process.env['BATCH_TIMEOUT_MS'] ?? 10);

interface RunResult {
  tps: number;
  p50: number;
  p99: number;
  lone50: number;
  lone99: number;
  /** CPU time of every process (validators, NATS servers, this load generator) per final tx. */
  cpuMsPerTx: number;
  /** A wiped validator rebuilding the whole chain from the stream: txs per second and seconds. */
  catchUpTps: number;
  catchUpSeconds: number;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU seconds of these processes (from /proc), plus this process's own. */
function cpuSeconds(pidList: number[]): number {
  let ticks = 0;
  for (const pid of pidList) {
    try {
      // The fields after the command name start at field 3 (state); utime is 14, stime 15.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process has gone: its time is missing and the figure reads low
    }
  }
  const self = process.cpuUsage();
  return ticks / CLOCK_TICKS + (self.user + self.system) / 1e6;
}

async function oneRun(cluster: NatsCluster, run: number): Promise<RunResult> {
  const net = await makeNetwork({ maxTxPerBlock: 2000, batchTimeoutMs: BATCH_TIMEOUT_MS });
  const nodes: NodeProcess[] = [];
  for (const id of VALIDATORS) {
    const port = await freePort();
    writeJson(join(net.nodeDir(id), 'node.json'), {
      institution: id,
      ordering: { kind: 'nats', servers: cluster.urls, stream: `ML_${net.network.slice(0, 16)}`, replicas: 3 },
      api: { host: '127.0.0.1', port },
      rateLimitPerMinute: 100_000_000,
    });
    nodes.push(await NodeProcess.start(net.nodeDir(id), port));
  }
  try {
    // Finality as hosp-a sees it, from its event stream (from before the first tx, so the
    // count of final txs is the whole chain's).
    const finalAt = new Map<string, number>();
    const controller = new AbortController();
    const events = await fetch(`${nodes[0]!.url}/api/events`, { signal: controller.signal });
    const reader = events.body!.getReader();
    const reading = (async () => {
      let buf = '';
      const dec = new TextDecoder();
      for (;;) {
        let chunk: Uint8Array | undefined;
        try {
          const r = (await reader.read()) as { done: boolean; value?: Uint8Array };
          if (r.done) return;
          chunk = r.value;
        } catch {
          return; // aborted at the end of the run
        }
        buf += dec.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (!frame.startsWith('event: final')) continue;
          const data = JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as { txIds: string[] };
          const now = performance.now();
          for (const id of data.txIds) if (!finalAt.has(id)) finalAt.set(id, now);
        }
      }
    })();

    const pids = (): number[] =>
      [...nodes.map((n) => n.child.pid ?? 0), ...cluster.servers.map((x) => x.process?.pid ?? 0)].filter((p) => p > 0);
    progress(`cluster run ${run}: enrolling ${AUTHORS} doctors`);
    const roles: Record<string, 'doctor'> = {};
    for (let i = 0; i < AUTHORS; i++) roles[`hosp-a/d${i}`] = 'doctor';
    const cast = await enrolCast(nodes[0]!.url, net, { ...roles, 'hosp-a/ops': 'doctor' }, ['hosp-a', 'hosp-a']);
    const doctors = [...cast.staff.values()];
    progress(`cluster run ${run}: signing ${TXS} registrations`);
    const txs: { tx: Tx; txId: string }[] = [];
    for (let i = 0; i < TXS; i++)
      txs.push(
        await doctors[i % AUTHORS]!.tx(
          net.network,
          'records.register',
          recordBody(cast.patients[i % 2]!.code, 'Observation', `b${run}-${i}`),
        ),
      );

    progress(`cluster run ${run}: submitting ${TXS} registrations to ${VALIDATORS.length} nodes`);
    const submittedAt = new Map<string, number>();
    let next = 0;
    const cpu0 = cpuSeconds(pids());
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, w) => {
        while (next < txs.length) {
          const i = next++;
          const t = txs[i]!;
          submittedAt.set(t.txId, performance.now());
          const r = await http('POST', `${nodes[(w + i) % nodes.length]!.url}/api/tx`, t.tx);
          if (r.status !== 202 && r.status !== 200) throw new Error(`submit answered ${r.status}: ${JSON.stringify(r.body)}`);
        }
      }),
    );
    const deadline = Date.now() + 300_000;
    const unfinal = (): number => txs.reduce((n, t) => n + (finalAt.has(t.txId) ? 0 : 1), 0);
    while (unfinal() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (unfinal() > 0) throw new Error(`only ${TXS - unfinal()} of ${TXS} became final`);
    const cpu = cpuSeconds(pids()) - cpu0;
    const last = Math.max(...txs.map((t) => finalAt.get(t.txId)!));
    const latencies = txs.map((t) => finalAt.get(t.txId)! - submittedAt.get(t.txId)!);

    progress(`cluster run ${run}: lone transactions`);
    const lone: number[] = [];
    for (let i = 0; i < LONE; i++) {
      const t = await doctors[i % AUTHORS]!.tx(
        net.network,
        'records.register',
        recordBody(cast.patients[0]!.code, 'Condition', `lone${run}-${i}`),
      );
      const start = performance.now();
      await http('POST', `${nodes[i % nodes.length]!.url}/api/tx`, t.tx);
      while (!finalAt.has(t.txId)) await new Promise((r) => setTimeout(r, 1));
      lone.push(finalAt.get(t.txId)! - start);
    }
    controller.abort();
    await reading;
    const catchUp = await catchUpOfWipedValidator(net.nodeDir('lab-d'), nodes, run, finalAt.size);
    return {
      tps: TXS / ((last - t0) / 1000),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      lone50: percentile(lone, 50),
      lone99: percentile(lone, 99),
      cpuMsPerTx: (cpu * 1000) / TXS,
      catchUpTps: catchUp.txs / catchUp.seconds,
      catchUpSeconds: catchUp.seconds,
    };
  } finally {
    for (const n of nodes) await n.kill('SIGTERM');
  }
}

interface Health {
  height: number;
  finalHeight: number;
  stateRoot: string;
}

async function health(url: string): Promise<Health> {
  return (await http('GET', `${url}/api/health`)).body as unknown as Health;
}

/**
 * Catch-up speed of a new validator: the last node is stopped, its ledger database deleted (keys
 * and configuration kept), and restarted; timed from the restart until it has re-executed the
 * whole chain from the stream to the same head and state root as hosp-a.
 */
async function catchUpOfWipedValidator(
  dir: string,
  nodes: NodeProcess[],
  run: number,
  txs: number,
): Promise<{ txs: number; seconds: number }> {
  const last = nodes[nodes.length - 1]!;
  await last.kill('SIGTERM');
  for (const f of ['chain.db', 'chain.db-wal', 'chain.db-shm']) rmSync(join(dir, f), { force: true });
  const head = await health(nodes[0]!.url);
  progress(`cluster run ${run}: a wiped validator catches up ${head.height} blocks, ${txs} txs`);
  const t0 = performance.now();
  const restarted = await NodeProcess.start(dir, Number(new URL(last.url).port));
  nodes[nodes.length - 1] = restarted;
  const deadline = Date.now() + 600_000;
  for (;;) {
    const h = await health(restarted.url).catch(() => null);
    if (h !== null && h.height >= head.height && h.stateRoot === head.stateRoot) break;
    if (Date.now() > deadline) throw new Error(`the wiped validator did not catch up within 10 minutes`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { txs, seconds: (performance.now() - t0) / 1000 };
}

progress('cluster: starting 3 NATS servers');
const cluster = await NatsCluster.start(3);
const runs: RunResult[] = [];
const raw: number[] = [];
const ceilings: number[] = [];
try {
  for (let r = 1; r <= RUNS; r++) {
    progress(`cluster run ${r}/${RUNS}: machine limits`);
    raw.push(await jetstreamCeiling(cluster.urls));
    ceilings.push(await verifyCeiling());
    runs.push(await oneRun(cluster, r));
  }
} finally {
  await cluster.stop();
}
const med = (pick: (r: RunResult) => number): number => summarise('', '', runs.map(pick)).median;
const ms = (id: string, name: string, pick: (r: RunResult) => number, target?: { text: string; max: number }) =>
  summarise(name, 'ms', runs.map(pick), target === undefined ? { id } : { id, target: target.text, met: med(pick) <= target.max });
report(
  'cluster',
  [
    summarise(
      'final tx/s (4 validators, 3 NATS, R3)',
      'tx/s',
      runs.map((r) => r.tps),
      { id: 'cluster.tps', target: '≥ 2,500', met: med((r) => r.tps) >= 2500 },
    ),
    ms('cluster.p50_ms', 'submit→final p50', (r) => r.p50),
    ms('cluster.p99_ms', 'submit→final p99', (r) => r.p99, { text: '≤ 1,000 ms', max: 1000 }),
    ms('cluster.lone_p50_ms', 'lone tx submit→final p50', (r) => r.lone50, { text: '≤ 100 ms', max: 100 }),
    ms('cluster.lone_p99_ms', 'lone tx submit→final p99', (r) => r.lone99),
    summarise(
      'CPU per final tx, all processes (4 validators, 3 NATS, load generator)',
      'ms',
      runs.map((r) => r.cpuMsPerTx),
      { id: 'cluster.cpu_ms_per_tx', note: '2 cores ÷ this = the rate the machine could sustain' },
    ),
    summarise(
      'catch-up of a wiped validator',
      'tx/s',
      runs.map((r) => r.catchUpTps),
      { id: 'cluster.catchup_tps' },
    ),
    summarise(
      'catch-up of a wiped validator, whole chain',
      's',
      runs.map((r) => r.catchUpSeconds),
      { id: 'cluster.catchup_s' },
    ),
    summarise('raw JetStream publish/s, R3, 400 B (ceiling)', 'msg/s', raw, { id: 'cluster.jetstream_r3' }),
    summarise('Ed25519 verify/s, async, both cores (ceiling)', 'op/s', ceilings, { id: 'cluster.ed25519_async' }),
    summarise(
      'final tx/s ÷ raw JetStream',
      'ratio',
      runs.map((r, i) => r.tps / raw[i]!),
    ),
    summarise(
      'final tx/s ÷ verify ceiling',
      'ratio',
      runs.map((r, i) => r.tps / ceilings[i]!),
    ),
  ],
  {
    txsPerRun: TXS,
    runs: RUNS,
    validators: VALIDATORS,
    authors: AUTHORS,
    inFlight: IN_FLIGHT,
    maxTxPerBlock: 2000,
    batchTimeoutMs: BATCH_TIMEOUT_MS,
    path: 'HTTP POST /api/tx to all four nodes; finality from hosp-a’s event stream',
  },
);
