/**
 * A consortium in separate processes: four validator nodes (`medledger start`, two hospitals, a
 * clinic, a laboratory) ordering on a real 3-server JetStream cluster. Under load every node
 * reaches the same heights and state roots and receipts carry certificates that core verifies;
 * a validator killed with SIGKILL mid-load comes back, catches up and agrees, while the others
 * keep finalising; no acknowledged tx is lost or committed twice.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { verifyCertificate, type FinalityCertificate, type Validator } from '@medledger/core/ledger/finality';
import { keyId } from '@medledger/core/crypto/ed25519';
import { verifyReceipt, type Receipt } from '@medledger/core/ledger/receipt';
import { NatsCluster } from './nats-cluster.ts';
import {
  NodeProcess,
  enrolCast,
  http,
  makeNetwork,
  recordBody,
  writeNatsNodeConfigs,
  type Cast,
  type TestNetwork,
} from './test-network.ts';

const VALIDATORS = ['hosp-a', 'hosp-b', 'clinic-c', 'lab-d'];
const TRIALS = 10;
let cluster: NatsCluster;
let net: TestNetwork;
const nodes = new Map<string, NodeProcess>();
const ports = new Map<string, number>();
let cast: Cast;

async function startNode(id: string): Promise<NodeProcess> {
  const n = await NodeProcess.start(net.nodeDir(id), ports.get(id)!);
  nodes.set(id, n);
  return n;
}

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  net = await makeNetwork({ maxTxPerBlock: 200, batchTimeoutMs: 20 });
  await writeNatsNodeConfigs(net, VALIDATORS, cluster.urls, { prefix: 'ML', replicas: 3, ports });
  await Promise.all(VALIDATORS.map(startNode));
  cast = await enrolCast(nodes.get('hosp-a')!.url, net, { 'hosp-a/doc': 'doctor', 'hosp-a/ops': 'operator' }, ['hosp-a']);
}, 180_000);

afterAll(async () => {
  for (const n of nodes.values()) await n.kill('SIGTERM');
  await cluster?.stop();
});

interface Health {
  height: number;
  stateRoot: string;
  finalHeight: number | null;
  status: string;
}

async function health(id: string): Promise<Health> {
  return (await http<Health>('GET', `${nodes.get(id)!.url}/api/health`)).body;
}

async function until(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits until node `id` reports every tx final. An acknowledged tx may still sit in the open batch
 * when the heads agree (the block closes after batchTimeout); a lost one never becomes final.
 */
async function untilFinal(id: string, txIds: Iterable<string>, timeoutMs = 30_000): Promise<void> {
  for (const txId of txIds) {
    let last: unknown;
    await until(async () => {
      last = (await http<{ status?: string }>('GET', `${nodes.get(id)!.url}/api/tx/${txId}`)).body.status;
      return last === 'final';
    }, timeoutMs).catch(async () => {
      const h = await health(id).catch(() => null);
      throw new Error(`${txId} is ${String(last)} on ${id}, never final (its head: ${JSON.stringify(h)})`);
    });
  }
}

it(`agrees under load and survives ${TRIALS} SIGKILLs of a validator at random instants`, { timeout: 600_000 }, async () => {
  const doctor = cast.staff.get('hosp-a/doc')!;
  const patient = cast.patients[0]!;
  const acked = new Set<string>();
  let n = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const victim = VALIDATORS[1 + (trial % 3)]!; // never hosp-a, which the load goes through
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const batch = await Promise.all(
          Array.from({ length: 20 }, () => doctor.tx(net.network, 'records.register', recordBody(patient.code, 'Observation', `c${n++}`))),
        );
        await Promise.all(
          batch.map(async (t) => {
            const r = await http('POST', `${nodes.get('hosp-a')!.url}/api/tx`, t.tx).catch(() => null);
            if (r !== null && (r.status === 202 || r.status === 200)) acked.add(t.txId);
          }),
        );
      }
    })();
    await new Promise((r) => setTimeout(r, randomInt(200, 1200)));
    await nodes.get(victim)!.kill('SIGKILL');
    // The other three (two thirds of four) keep finalising.
    const before = (await health('hosp-a')).finalHeight ?? 0;
    await until(async () => ((await health('hosp-a')).finalHeight ?? 0) > before + 2);
    stop = true;
    await load;
    await startNode(victim);
  }
  // Everyone catches up to the same head and state root, and finalises it.
  await untilFinal('clinic-c', acked);
  await until(async () => {
    const hs = await Promise.all(VALIDATORS.map(health));
    return hs.every((h) => h.height === hs[0]!.height && h.stateRoot === hs[0]!.stateRoot && h.finalHeight === h.height);
  });
  for (const id of VALIDATORS) expect((await health(id)).status).toBe('ok');

  // Every acknowledged tx is committed once, with a receipt and a certificate core verifies.
  const validators: Validator[] = VALIDATORS.map((id) => ({
    institution: id,
    keyId: keyId(net.institutions.get(id)!.signingKey),
    publicKey: net.institutions.get(id)!.signingKey,
  }));
  let checked = 0;
  for (const txId of acked) {
    const r = await http<{ status: string; code: string; receipt: Receipt; finality: FinalityCertificate }>(
      'GET',
      `${nodes.get('clinic-c')!.url}/api/tx/${txId}`,
    );
    expect(r.body.status, txId).toBe('final');
    expect(r.body.code).toBe('OK');
    if (checked++ < 50) {
      verifyReceipt(r.body.receipt);
      expect(r.body.finality.blockHash).toBe(r.body.receipt.blockHash);
      await verifyCertificate(r.body.finality, validators, 'two-thirds');
    }
  }
  expect(acked.size).toBeGreaterThan(50);
});

it(
  'with too few validators for the quorum nothing new becomes final, and finality resumes when they return',
  { timeout: 300_000 },
  async () => {
    const doctor = cast.staff.get('hosp-a/doc')!;
    const patient = cast.patients[0]!;
    await nodes.get('clinic-c')!.kill('SIGKILL');
    await nodes.get('lab-d')!.kill('SIGKILL');
    const before = (await health('hosp-a')).finalHeight ?? 0;
    const txs = await Promise.all(
      Array.from({ length: 30 }, (_, i) => doctor.tx(net.network, 'records.register', recordBody(patient.code, 'Observation', `q${i}`))),
    );
    for (const t of txs) expect([202, 200]).toContain((await http('POST', `${nodes.get('hosp-a')!.url}/api/tx`, t.tx)).status);
    // Blocks still commit (ordering is up), but two of four validators are not two thirds.
    await until(async () => (await health('hosp-a')).height > before);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await health('hosp-a')).finalHeight).toBe(before);
    expect((await http<{ status: string }>('GET', `${nodes.get('hosp-a')!.url}/api/tx/${txs[0]!.txId}`)).body.status).toBe('committed');
    await Promise.all([startNode('clinic-c'), startNode('lab-d')]);
    await until(async () => {
      const h = await health('hosp-a');
      return h.finalHeight === h.height;
    });
    expect((await http<{ status: string }>('GET', `${nodes.get('hosp-a')!.url}/api/tx/${txs[0]!.txId}`)).body.status).toBe('final');
  },
);

it('SIGKILL of the stream leader mid-load: ordering resumes, nothing acknowledged is lost or doubled', { timeout: 300_000 }, async () => {
  const doctor = cast.staff.get('hosp-a/doc')!;
  const patient = cast.patients[0]!;
  const leader = await cluster.streamLeader(`ML_${net.network.slice(0, 16)}`);
  const acked = new Set<string>();
  let stop = false;
  let n = 0;
  let lastAck = Date.now();
  let longestStall = 0;
  const load = (async () => {
    while (!stop) {
      const t = await doctor.tx(net.network, 'records.register', recordBody(patient.code, 'Observation', `l${n++}`));
      const r = await http('POST', `${nodes.get('hosp-b')!.url}/api/tx`, t.tx).catch(() => null);
      if (r !== null && (r.status === 202 || r.status === 200)) {
        acked.add(t.txId);
        longestStall = Math.max(longestStall, Date.now() - lastAck);
        lastAck = Date.now();
      }
    }
  })();
  await new Promise((r) => setTimeout(r, randomInt(300, 1000)));
  await cluster.kill(leader);
  const killedAt = acked.size;
  await until(() => Promise.resolve(acked.size > killedAt + 20), 120_000);
  stop = true;
  await load;
  cluster.restart(leader);
  process.stdout.write(`stream leader n${leader + 1} killed: longest submission stall ${longestStall} ms\n`);
  // A validator whose stream reader sat on the killed server re-creates it; on a loaded CI
  // machine that has taken over 30 s once. Lost or doubled txs still fail the test.
  await untilFinal('lab-d', acked, 90_000);
  await until(async () => {
    const hs = await Promise.all(VALIDATORS.map(health));
    return hs.every((h) => h.height === hs[0]!.height && h.stateRoot === hs[0]!.stateRoot && h.finalHeight === h.height);
  }, 120_000);
});

it('a wiped validator catches up from the stream to the same state root', { timeout: 300_000 }, async () => {
  await nodes.get('lab-d')!.kill('SIGKILL');
  for (const f of ['chain.db', 'chain.db-wal', 'chain.db-shm']) rmSync(join(net.nodeDir('lab-d'), f), { force: true });
  await startNode('lab-d');
  await until(async () => {
    const [a, d] = await Promise.all([health('hosp-a'), health('lab-d')]);
    return d.height === a.height && d.stateRoot === a.stateRoot && d.finalHeight === d.height;
  }, 120_000);
  expect((await health('lab-d')).status).toBe('ok');
});
