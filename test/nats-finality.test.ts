/**
 * Finality on a real 3-server JetStream cluster with four validators (two hospitals, a clinic,
 * a laboratory): every block gets a certificate of at least two thirds of the validators, which
 * core checks offline; a validator signing a wrong state root is named by the others.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { Identity } from '@medledger/core/client/identity';
import { verifyCertificate } from '@medledger/core/ledger/finality';
import { LedgerStore } from '../packages/node/src/store/ledger-store.ts';
import { NatsOrderer } from '../packages/node/src/ordering/nats-orderer.ts';
import { Peer } from '../packages/node/src/peer/peer.ts';
import { FinalityTracker } from '../packages/node/src/peer/finality-tracker.ts';
import { NatsCluster } from './nats-cluster.ts';
import { makeNetwork, recordBody, type TestNetwork } from './test-network.ts';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import { patientCodeOf } from '@medledger/core/contracts/identity';

const VALIDATORS = ['hosp-a', 'hosp-b', 'clinic-c', 'lab-d'];
let cluster: NatsCluster;
let net: TestNetwork;
const nodes: { peer: Peer; finality: FinalityTracker }[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  net = await makeNetwork({ maxTxPerBlock: 100, batchTimeoutMs: 20 });
  const stream = `ML_${net.network.slice(0, 16)}`;
  for (const id of VALIDATORS) {
    const store = new LedgerStore(join(net.nodeDir(id), 'chain.db'));
    const orderer = new NatsOrderer({
      servers: cluster.urls,
      stream,
      replicas: 3,
      maxTxPerBlock: 100,
      batchTimeoutMs: 20,
      maxTxBytes: 256 * 1024,
    });
    const peer = new Peer(store, orderer, net.genesis);
    const finality = new FinalityTracker(peer, {
      servers: cluster.urls,
      stream: `${stream}_VOTES`,
      replicas: 3,
      quorum: 'two-thirds',
      signer: net.institutions.get(id)!.file.signing,
    });
    await finality.start();
    await peer.start();
    nodes.push({ peer, finality });
  }
}, 120_000);

afterAll(async () => {
  for (const n of nodes) {
    await n.finality.stop();
    await n.peer.stop();
    n.peer.store.close();
  }
  await cluster?.stop();
});

async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('certifies every block with a quorum that core verifies, and names a validator that signs a wrong state root', async () => {
  const [a] = nodes as [(typeof nodes)[0]];
  const doctor = await Identity.generate('hosp-a/doc');
  const enrol = await net.institutions.get('hosp-a')!.tx(net.network, 'identity.enrolStaff', {
    localId: 'doc',
    role: 'doctor',
    signingKey: doctor.signingKey,
    encryptionKey: doctor.encryptionKey,
    displayName: 'Doc',
  });
  await a.peer.submit(enrol.tx);
  await a.peer.waitForCommit(enrol.txId, 30_000);
  const patient = await Identity.generate('p');
  const code = patientCodeOf(fromBase64Url(net.patientCodeKey), 'FIN-1');
  const reg = await doctor.tx(net.network, 'identity.registerPatient', {
    patientCode: code,
    signingKey: patient.signingKey,
    encryptionKey: patient.encryptionKey,
    possession: await patient.possessionProof(net.network, code, 'hosp-a'),
  });
  await a.peer.submit(reg.tx);
  await a.peer.waitForCommit(reg.txId, 30_000);

  // lab-d turns faulty: its votes carry a corrupted state root.
  nodes[3]!.finality.corruptVotes = true;
  const txs = await Promise.all(
    Array.from({ length: 200 }, (_, i) => doctor.tx(net.network, 'records.register', recordBody(code, 'Observation', `f${i}`))),
  );
  await Promise.all(txs.map((t, i) => nodes[i % 4]!.peer.submit(t.tx)));
  for (const t of txs) for (const n of nodes) await n.peer.waitForCommit(t.txId, 30_000);
  const top = a.peer.store.head().height;
  await until(() => nodes.every((n) => n.finality.status.finalHeight >= top));

  for (let h = 1; h <= top; h++) {
    const cert = a.finality.certificate(h)!;
    expect(cert.blockHash).toBe(a.peer.store.block(h)!.hash);
    await verifyCertificate(cert, a.finality.validatorsAt(h), 'two-thirds');
    for (const n of nodes) expect(n.peer.store.block(h)!.hash).toBe(cert.blockHash);
  }
  // The three honest validators name lab-d; no one diverges (3 of 4 is the two-thirds quorum).
  await until(() => nodes.slice(0, 3).every((n) => n.finality.status.dissents.some((d) => d.institution === 'lab-d')));
  for (const n of nodes) expect(n.finality.status.divergence).toBeNull();
  expect(nodes.every((n) => n.peer.haltedBy === null)).toBe(true);
}, 120_000);

it('an admitted validator joins the validator set from the height after its admission', async () => {
  const [a] = nodes as [(typeof nodes)[0]];
  nodes[3]!.finality.corruptVotes = false;
  const newcomer = await Identity.generate('hosp-f');
  const propose = await net.issuer.tx(net.network, 'membership.propose', {
    action: 'admit',
    institution: {
      id: 'hosp-f',
      name: 'Hospital F',
      kind: 'hospital',
      signingKey: newcomer.signingKey,
      encryptionKey: newcomer.encryptionKey,
      validator: true,
    },
  });
  await a.peer.submit(propose.tx);
  await a.peer.waitForCommit(propose.txId, 30_000);
  let admittedAt = 0;
  for (const voter of ['hosp-a', 'hosp-b', 'clinic-c']) {
    const v = await net.institutions.get(voter)!.tx(net.network, 'membership.vote', { proposalId: propose.txId, approve: true });
    await a.peer.submit(v.tx);
    const s = await a.peer.waitForCommit(v.txId, 30_000);
    if (s.status === 'committed') admittedAt = s.height;
  }
  const at = a.finality.validatorsAt(admittedAt).map((v) => v.institution);
  const after = a.finality.validatorsAt(admittedAt + 1).map((v) => v.institution);
  expect(at).not.toContain('hosp-f');
  expect(after).toContain('hosp-f');
  expect(after).toHaveLength(5);
  // Four of five honest validators are still two thirds: later blocks become final.
  const t = await net.institutions.get('hosp-a')!.tx(net.network, 'membership.propose', { action: 'remove', institutionId: 'res-e' });
  await a.peer.submit(t.tx);
  const s = await a.peer.waitForCommit(t.txId, 30_000);
  expect(s.status).toBe('committed');
  const height = s.status === 'committed' ? s.height : 0;
  await until(() => a.finality.status.finalHeight >= height);
  expect(a.finality.certificate(height)!.votes.length).toBeGreaterThanOrEqual(4);
}, 120_000);
