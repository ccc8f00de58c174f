/**
 * `npm run bench:cluster`: final tx/s and submit→final latency of four validator processes (two
 * hospitals, a clinic, a laboratory) on a 3-server JetStream cluster (R3), with registrations
 * submitted over HTTP to all four nodes; next to, in the same run, the raw JetStream publish
 * rate at R3 and the machine's Ed25519 verify rate (the ceilings).
 *
 *   npm run bench:cluster -- [--txs 10000] [--runs 3] [--quick]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import type { Tx } from '@medledger/core/ledger/tx';
import { writeJson } from '../packages/node/src/config/data-dir.ts';
import { NatsCluster } from '../test/nats-cluster.ts';
import { NodeProcess, enrolCast, freePort, http, makeNetwork, recordBody } from '../test/test-network.ts';
import { percentile, progress, report, summarise } from './bench-report.ts';
import { verifyCeiling } from './machine-limits.ts';

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

/** Raw JetStream: 400-byte publishes acked at R3 with ~1,000 in flight. */
async function jetstreamCeiling(urls: string[], run: number): Promise<number> {
  const nc = await connect({ servers: urls });
  const jsm = await jetstreamManager(nc);
  const name = `RAW_${run}_${Date.now()}`;
  await jsm.streams.add({ name, subjects: [`${name}.x`], storage: StorageType.File, num_replicas: 3 });
  const js = jetstream(nc);
  const payload = new Uint8Array(400);
  const n = 10_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000)
    await Promise.all(Array.from({ length: Math.min(1000, n - i) }, () => js.publish(`${name}.x`, payload)));
  const rate = n / ((performance.now() - t0) / 1000);
  await jsm.streams.delete(name);
  await nc.close();
  return rate;
}

interface RunResult {
  tps: number;
  p50: number;
  p99: number;
  lone50: number;
  lone99: number;
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

    // Finality as hosp-a sees it, from its event stream.
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

    progress(`cluster run ${run}: submitting ${TXS} registrations to ${VALIDATORS.length} nodes`);
    const submittedAt = new Map<string, number>();
    let next = 0;
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
    while (finalAt.size < TXS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (finalAt.size < TXS) throw new Error(`only ${finalAt.size} of ${TXS} became final`);
    const last = Math.max(...finalAt.values());
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
    return {
      tps: TXS / ((last - t0) / 1000),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      lone50: percentile(lone, 50),
      lone99: percentile(lone, 99),
    };
  } finally {
    for (const n of nodes) await n.kill('SIGTERM');
  }
}

progress('cluster: starting 3 NATS servers');
const cluster = await NatsCluster.start(3);
const runs: RunResult[] = [];
const raw: number[] = [];
const ceilings: number[] = [];
try {
  for (let r = 1; r <= RUNS; r++) {
    progress(`cluster run ${r}/${RUNS}: machine limits`);
    raw.push(await jetstreamCeiling(cluster.urls, r));
    ceilings.push(await verifyCeiling());
    runs.push(await oneRun(cluster, r));
  }
} finally {
  await cluster.stop();
}
const ms = (name: string, pick: (r: RunResult) => number, target?: string) =>
  summarise(name, 'ms', runs.map(pick), target === undefined ? {} : { target });
report(
  'cluster',
  [
    summarise(
      'final tx/s (4 validators, 3 NATS, R3)',
      'tx/s',
      runs.map((r) => r.tps),
      { target: '≥ 2,500' },
    ),
    ms('submit→final p50', (r) => r.p50),
    ms('submit→final p99', (r) => r.p99, '≤ 1,000 ms'),
    ms('lone tx submit→final p50', (r) => r.lone50, '≤ 100 ms'),
    ms('lone tx submit→final p99', (r) => r.lone99),
    summarise('raw JetStream publish/s, R3, 400 B (ceiling)', 'msg/s', raw),
    summarise('Ed25519 verify/s, async, both cores (ceiling)', 'op/s', ceilings),
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
    batchTimeoutMs: 10,
    path: 'HTTP POST /api/tx to all four nodes; finality from hosp-a’s event stream',
  },
);
