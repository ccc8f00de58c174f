/**
 * `npm run bench:embedded`: committed tx/s of record registrations by many distinct authors on
 * the embedded node (solo orderer, SQLite), and p50/p99 submit→commit latency, through the
 * node's own submission path (decode, signature check, durable log). The machine's Ed25519
 * verify rate is measured in the same run as the ceiling the node is compared against.
 *
 *   npm run bench:embedded -- [--txs 20000] [--runs 3] [--authors 200]
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import { Identity } from '@medledger/core/client/identity';
import { patientCodeOf } from '@medledger/core/contracts/identity';
import type { Tx } from '@medledger/core/ledger/tx';
import { installNodeCrypto } from '../packages/node/src/crypto/node-crypto.ts';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { makeNetwork, recordBody, INSTITUTIONS } from '../test/test-network.ts';
import { percentile, progress, report, summarise } from './bench-report.ts';
import { verifyCeiling } from './machine-limits.ts';
import { startProfile, stopProfile } from './chain-fixture.ts';

installNodeCrypto();

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string' },
    txs: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '3' },
    authors: { type: 'string', default: '200' },
    quick: { type: 'boolean', default: false },
  },
});
const TXS = args.quick ? 4000 : Number(args.txs);
const RUNS = Number(args.runs);
const AUTHORS = args.quick ? 40 : Number(args.authors);
const PATIENTS = 500;
const IN_FLIGHT = 4000;
const LONE = 50;

interface RunResult {
  /** CPU time of the node's process (main thread, verification workers, SQLite) per tx */
  cpuMsPerTx: number;
  tps: number;
  p50: number;
  p99: number;
  lone50: number;
  lone99: number;
}

async function oneRun(run: number): Promise<RunResult> {
  const net = await makeNetwork({ maxTxPerBlock: 2000, batchTimeoutMs: 10 }, INSTITUTIONS);
  const node = await LedgerNode.start({
    dataDir: net.nodeDir('hosp-a'),
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
  });
  const peer = node.peer;
  const submitAndCommit = async (txs: { tx: Tx; txId: string }[]): Promise<void> => {
    await Promise.all(txs.map((t) => peer.submit(t.tx)));
    for (const t of txs) {
      const s = await peer.waitForCommit(t.txId, 60_000);
      if (s.status !== 'committed' || s.code !== 'OK') throw new Error(`setup tx ${t.tx.type}: ${JSON.stringify(s)}`);
    }
  };
  // Many distinct authors: doctors at the two hospitals; patients registered at both.
  progress(`embedded run ${run}: enrolling ${AUTHORS} doctors and ${PATIENTS} patients`);
  const doctors: Identity[] = [];
  const enrol = [];
  for (let i = 0; i < AUTHORS; i++) {
    const inst = i % 2 === 0 ? 'hosp-a' : 'hosp-b';
    const d = await Identity.generate(`${inst}/d${i}`);
    doctors.push(d);
    enrol.push(
      await net.institutions.get(inst)!.tx(net.network, 'identity.enrolStaff', {
        localId: `d${i}`,
        role: 'doctor',
        signingKey: d.signingKey,
        encryptionKey: d.encryptionKey,
        displayName: `Doctor ${i}`,
      }),
    );
  }
  await submitAndCommit(enrol);
  const patients: string[] = [];
  const reg = [];
  for (let i = 0; i < PATIENTS; i++) {
    const p = await Identity.generate(`p${i}`);
    const code = patientCodeOf(fromBase64Url(net.patientCodeKey), `BENCH-${i}`);
    patients.push(code);
    // Each patient's home alternates with the doctors' hospitals, so every registration is allowed.
    reg.push(
      await doctors[i % 2]!.tx(net.network, 'identity.registerPatient', {
        patientCode: code,
        signingKey: p.signingKey,
        encryptionKey: p.encryptionKey,
        possession: await p.possessionProof(net.network, code, i % 2 === 0 ? 'hosp-a' : 'hosp-b'),
      }),
    );
  }
  await submitAndCommit(reg);

  progress(`embedded run ${run}: signing ${TXS} registrations`);
  const txs: { tx: Tx; txId: string }[] = [];
  for (let i = 0; i < TXS; i++) {
    const author = i % AUTHORS;
    const patient = patients[(author % 2) + 2 * (Math.floor(i / AUTHORS) % (PATIENTS / 2))]!;
    txs.push(await doctors[author]!.tx(net.network, 'records.register', recordBody(patient, 'Observation', `r${run}-${i}`)));
  }

  progress(`embedded run ${run}: submitting ${TXS} registrations`);
  const submittedAt = new Map<string, number>();
  const latencies: number[] = [];
  let committed = 0;
  let rejected = 0;
  let lastCommit = 0;
  const done = new Promise<void>((resolve) => {
    peer.on('block', (b) => {
      const now = performance.now();
      b.txIds.forEach((id, i) => {
        const t = submittedAt.get(id);
        if (t === undefined) return;
        latencies.push(now - t);
        committed++;
        if (b.codes[i] !== 'OK') rejected++;
      });
      lastCommit = now;
      if (committed >= TXS) resolve();
    });
  });
  const session = args.profile !== undefined ? await startProfile() : null;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < txs.length) {
        const t = txs[next++]!;
        submittedAt.set(t.txId, performance.now());
        await peer.submit(t.tx);
      }
    }),
  );
  await done;
  const cpu = process.cpuUsage(cpu0);
  const seconds = (lastCommit - t0) / 1000;
  if (session !== null) await stopProfile(session, `${args.profile!}.run${run}.cpuprofile`);

  // A lone tx on an idle node: submit→commit without queueing behind a load.
  progress(`embedded run ${run}: lone transactions`);
  const lone: number[] = [];
  for (let i = 0; i < LONE; i++) {
    const t = await doctors[i % AUTHORS]!.tx(net.network, 'records.register', recordBody(patients[i % 2]!, 'Condition', `lone${run}-${i}`));
    const start = performance.now();
    await peer.submit(t.tx);
    await peer.waitForCommit(t.txId, 10_000);
    lone.push(performance.now() - start);
  }
  await node.stop();
  rmSync(net.dir, { recursive: true, force: true });
  if (rejected > 0) throw new Error(`${rejected} registrations were rejected`);
  return {
    cpuMsPerTx: (cpu.user + cpu.system) / 1000 / TXS,
    tps: TXS / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    lone50: percentile(lone, 50),
    lone99: percentile(lone, 99),
  };
}

const runs: RunResult[] = [];
const ceilings: number[] = [];
for (let r = 1; r <= RUNS; r++) {
  progress(`embedded run ${r}/${RUNS}: Ed25519 ceiling`);
  ceilings.push(await verifyCeiling());
  runs.push(await oneRun(r));
}
const tps = summarise(
  'committed tx/s (records.register)',
  'tx/s',
  runs.map((r) => r.tps),
  { id: 'embedded.tps', target: '≥ 8,000' },
);
tps.met = tps.median >= 8000;
const ceiling = summarise('Ed25519 verify/s, async, both cores (ceiling)', 'op/s', ceilings, { id: 'embedded.ed25519_async' });
const ms = (id: string, name: string, pick: (r: RunResult) => number, target?: string) =>
  summarise(name, 'ms', runs.map(pick), target === undefined ? { id } : { id, target });
report(
  'embedded',
  [
    tps,
    ms('embedded.p50_ms', `submit→commit p50 under load (${IN_FLIGHT} in flight)`, (r) => r.p50),
    ms('embedded.p99_ms', `submit→commit p99 under load (${IN_FLIGHT} in flight)`, (r) => r.p99),
    ms('embedded.lone_p50_ms', 'lone tx submit→commit p50', (r) => r.lone50),
    ms('embedded.lone_p99_ms', 'lone tx submit→commit p99', (r) => r.lone99),
    summarise(
      'CPU per committed tx, all threads of the node',
      'ms',
      runs.map((r) => r.cpuMsPerTx),
      { id: 'embedded.cpu_ms_per_tx', note: 'includes the benchmark’s own submission loop' },
    ),
    ceiling,
    summarise(
      'committed tx/s ÷ verify ceiling',
      'ratio',
      runs.map((r, i) => r.tps / ceilings[i]!),
    ),
  ],
  {
    txsPerRun: TXS,
    runs: RUNS,
    authors: AUTHORS,
    patients: PATIENTS,
    inFlight: IN_FLIGHT,
    maxTxPerBlock: 2000,
    batchTimeoutMs: 10,
    path: 'in-process submit (decode, verify, durable log)',
  },
);
