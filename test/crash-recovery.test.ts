/**
 * A node process killed with SIGKILL at random instants under load restarts with every
 * acknowledged transaction present exactly once, and `medledger verify` passes on its data.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { LedgerStore } from '../packages/node/src/store/ledger-store.ts';
import { CLI, NodeProcess, enrolCast, freePort, http, makeNetwork, recordBody, type Cast, type TestNetwork } from './test-network.ts';

const TRIALS = 20;
let net: TestNetwork;
let node: NodeProcess;
let cast: Cast;
const acked = new Set<string>();

beforeAll(async () => {
  net = await makeNetwork({ maxTxPerBlock: 200, batchTimeoutMs: 5 });
  node = await NodeProcess.start(net.nodeDir('hosp-a'), await freePort());
  cast = await enrolCast(node.url, net, { 'hosp-a/doc': 'doctor', 'hosp-a/ops': 'operator' }, ['hosp-a', 'hosp-a', 'hosp-a']);
});

afterAll(async () => {
  await node.kill();
});

/** Submits registrations from `workers` loops until the node stops answering. */
async function load(base: string, workers: number, trial: number): Promise<void> {
  const doc = cast.staff.get('hosp-a/doc')!;
  let n = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (;;) {
        const seed = `t${trial}w${w}n${n++}`;
        const { tx, txId } = await doc.tx(net.network, 'records.register', recordBody(cast.patients[n % 3]!.code, 'Observation', seed));
        try {
          const res = await fetch(`${base}/api/tx`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(tx),
          });
          const body = (await res.json()) as { txId?: string; status?: string };
          if ((res.status === 202 || res.status === 200) && body.txId === txId) acked.add(txId);
        } catch {
          return; // the node is gone: what was not answered was not acknowledged
        }
      }
    }),
  );
}

async function waitCommitted(base: string, ids: Iterable<string>): Promise<string[]> {
  const missing: string[] = [];
  for (const id of ids) {
    let status = '';
    for (let i = 0; i < 200 && status !== 'committed'; i++) {
      status = String((await http('GET', `${base}/api/tx/${id}`)).body['status']);
      if (status !== 'committed') await new Promise((r) => setTimeout(r, 25));
    }
    if (status !== 'committed') missing.push(id);
  }
  return missing;
}

it(`keeps every acknowledged tx across ${TRIALS} SIGKILLs at random instants`, { timeout: 600_000 }, async () => {
  for (let trial = 0; trial < TRIALS; trial++) {
    const loading = load(node.url, 8, trial);
    await new Promise((r) => setTimeout(r, randomInt(50, 700)));
    await node.kill('SIGKILL');
    await loading;
    node = await NodeProcess.start(net.nodeDir('hosp-a'), await freePort());
    const missing = await waitCommitted(node.url, acked);
    expect(missing, `trial ${trial}: acknowledged but lost`).toEqual([]);
  }
  await node.kill('SIGTERM');

  const store = new LedgerStore(join(net.nodeDir('hosp-a'), 'chain.db'), { readonly: true });
  try {
    const rows = store.db.prepare("SELECT tx_id, code FROM txs WHERE type = 'records.register'").all() as { tx_id: string; code: string }[];
    const ids = new Set(rows.map((r) => r.tx_id));
    expect(ids.size).toBe(rows.length); // none twice
    for (const id of acked) expect(ids.has(id)).toBe(true);
    expect(rows.every((r) => r.code === 'OK')).toBe(true);
    const records = (store.db.prepare('SELECT COUNT(*) AS n FROM s_records').get() as { n: number }).n;
    expect(records).toBe(rows.length);
    expect(acked.size).toBeGreaterThan(TRIALS);
  } finally {
    store.close();
  }

  const verify = spawnSync(process.execPath, [CLI, 'verify', net.nodeDir('hosp-a')], { encoding: 'utf8' });
  expect(verify.status, verify.stderr).toBe(0);
  expect(verify.stdout).toContain('intact');
  node = await NodeProcess.start(net.nodeDir('hosp-a'), await freePort());
});
