/**
 * The `nats` orderer on a real 3-server JetStream cluster (R3): two peers with their own stores
 * cut byte-identical blocks from the same stream, and the same tx submitted to both nodes is
 * committed once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { Identity } from '@medledger/core/client/identity';
import { LedgerStore } from '../packages/node/src/store/ledger-store.ts';
import { NatsOrderer } from '../packages/node/src/ordering/nats-orderer.ts';
import { Peer } from '../packages/node/src/peer/peer.ts';
import { NatsCluster } from './nats-cluster.ts';
import { makeNetwork, recordBody, type TestNetwork } from './test-network.ts';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import { patientCodeOf } from '@medledger/core/contracts/identity';

let cluster: NatsCluster;
let net: TestNetwork;
const peers: Peer[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  net = await makeNetwork({ maxTxPerBlock: 50, batchTimeoutMs: 20 });
  for (const id of ['hosp-a', 'hosp-b']) {
    const store = new LedgerStore(join(net.nodeDir(id), 'chain.db'));
    const orderer = new NatsOrderer({
      servers: cluster.urls,
      stream: `ML_${net.network.slice(0, 16)}`,
      replicas: 3,
      maxTxPerBlock: 50,
      batchTimeoutMs: 20,
      maxTxBytes: 256 * 1024,
    });
    const peer = new Peer(store, orderer, net.genesis);
    await peer.start();
    peers.push(peer);
  }
}, 120_000);

afterAll(async () => {
  for (const p of peers) {
    await p.stop();
    p.store.close();
  }
  await cluster?.stop();
});

async function commitOn(peer: Peer, txId: string): Promise<void> {
  const s = await peer.waitForCommit(txId, 30_000);
  expect(s.status).toBe('committed');
}

it('two peers derive identical blocks, and a tx sent to both is committed once', async () => {
  const [a, b] = peers as [Peer, Peer];
  const hospA = net.institutions.get('hosp-a')!;
  const doctor = await Identity.generate('hosp-a/doc');
  const enrol = await hospA.tx(net.network, 'identity.enrolStaff', {
    localId: 'doc',
    role: 'doctor',
    signingKey: doctor.signingKey,
    encryptionKey: doctor.encryptionKey,
    displayName: 'Doc',
  });
  await a.submit(enrol.tx);
  await commitOn(a, enrol.txId);
  await commitOn(b, enrol.txId);
  const patient = await Identity.generate('p');
  const code = patientCodeOf(fromBase64Url(net.patientCodeKey), 'NATS-1');
  const reg = await doctor.tx(net.network, 'identity.registerPatient', {
    patientCode: code,
    signingKey: patient.signingKey,
    encryptionKey: patient.encryptionKey,
    possession: await patient.possessionProof(net.network, code, 'hosp-a'),
  });
  await b.submit(reg.tx);
  await commitOn(a, reg.txId);

  // 300 registrations, spread over both nodes; one tx sent to both.
  const txs = await Promise.all(
    Array.from({ length: 300 }, (_, i) => doctor.tx(net.network, 'records.register', recordBody(code, 'Observation', `n${i}`))),
  );
  const twice = txs[0]!;
  await Promise.all([...txs.map((t, i) => (i % 2 === 0 ? a : b).submit(t.tx)), b.submit(twice.tx)]);
  for (const t of txs) {
    await commitOn(a, t.txId);
    await commitOn(b, t.txId);
  }
  const top = Math.min(a.store.head().height, b.store.head().height);
  expect(top).toBeGreaterThan(6);
  for (let h = 0; h <= top; h++) expect(a.store.block(h)!.hash, `block ${h}`).toBe(b.store.block(h)!.hash);
  expect(a.store.head().stateRoot).toBe(b.store.head().stateRoot);
  const count = (s: LedgerStore): number =>
    (s.db.prepare('SELECT COUNT(*) AS n FROM txs WHERE tx_id = ?').get(twice.txId) as { n: number }).n;
  expect([count(a.store), count(b.store)]).toEqual([1, 1]);
  const codes = a.store.db.prepare("SELECT COUNT(*) AS n FROM txs WHERE type = 'records.register' AND code = 'OK'").get() as { n: number };
  expect(codes.n).toBe(300);
}, 120_000);
