/**
 * Regression tests for defects a review found: each names what went wrong before the fix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Identity } from '@medledger/core/client/identity';
import { type MedledgerError } from '@medledger/core/errors';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { LedgerStore } from '../packages/node/src/store/ledger-store.ts';
import { verifyStore } from '../packages/node/src/store/verify-store.ts';
import { enrolCast, http, makeNetwork, recordBody, send, tempDir, type Cast, type TestNetwork } from './test-network.ts';

let net: TestNetwork;
let node: LedgerNode;
let cast: Cast;

/** Sets the padding bits of the last base64url character: same length, not canonical. */
function nonCanonical(b64: string): string {
  const last = b64[b64.length - 1]!;
  return b64.slice(0, -1) + (last === 'A' ? 'B' : last === 'Q' ? 'R' : 'x');
}

beforeAll(async () => {
  net = await makeNetwork();
  node = await LedgerNode.start({
    dataDir: net.nodeDir('hosp-a'),
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
  });
  cast = await enrolCast(
    node.url,
    net,
    { 'hosp-a/doc': 'doctor', 'hosp-a/ops': 'operator', 'hosp-b/doc': 'doctor', 'lab-d/ops': 'operator' },
    ['hosp-a', 'lab-d'],
  );
});
afterAll(() => node.stop());

describe('input that used to halt or crash the node', () => {
  it('a non-canonical key in a body is rejected with a code and the node keeps running', async () => {
    const p = await Identity.generate('p');
    const r = await send(node.url, net.network, cast.staff.get('hosp-a/ops')!, 'identity.registerPatient', {
      patientCode: 'ab'.repeat(32),
      signingKey: nonCanonical(p.signingKey),
      encryptionKey: p.encryptionKey,
      possession: await p.possessionProof(net.network, 'ab'.repeat(32), 'hosp-a'),
    });
    expect(r.code).toBe('TX_BODY_INVALID');
    expect((await http('GET', `${node.url}/api/health`)).body['status']).toBe('ok');
  });

  it('a non-canonical signature is refused at the door with TX_MALFORMED, not a 500', async () => {
    const { tx } = await cast.staff
      .get('hosp-a/doc')!
      .tx(net.network, 'records.register', recordBody(cast.patients[0]!.code, 'Condition', 'nc'));
    const r = await http('POST', `${node.url}/api/tx`, { ...tx, signature: nonCanonical(tx.signature) });
    expect([r.status, r.body['code']]).toEqual([400, 'TX_MALFORMED']);
  });

  it('a malformed URL gets a coded BAD_REQUEST', async () => {
    const r = await http('GET', `${node.url}/api/patients/%zz/consents`);
    expect([r.status, r.body['code']]).toEqual([400, 'BAD_REQUEST']);
  });
});

describe('policy gaps', () => {
  it('an amendment cannot change the category consented to; a retracted record cannot be served', async () => {
    const patient = cast.patients[0]!;
    const rec = await send(
      node.url,
      net.network,
      cast.staff.get('hosp-a/doc')!,
      'records.register',
      recordBody(patient.code, 'Observation', 'am'),
    );
    const fields = recordBody(patient.code, 'Condition', 'am2');
    delete fields['registrationRequestId'];
    delete fields['patientCode'];
    expect(
      (await send(node.url, net.network, cast.staff.get('hosp-a/doc')!, 'records.amend', { ...fields, recordId: rec.txId })).code,
    ).toBe('TX_BODY_INVALID');
    await send(node.url, net.network, patient.identity, 'consent.grant', {
      patientCode: patient.code,
      grantee: { kind: 'institution', institution: 'hosp-b' },
      scope: { kind: 'all' },
      purposes: ['TREAT'],
      period: { from: 0, to: null },
      deidentification: 'identified',
    });
    const served = () =>
      send(node.url, net.network, net.institutions.get('hosp-a')!, 'access.recordServed', {
        recordId: rec.txId,
        requester: 'hosp-b/doc',
        purpose: 'TREAT',
        deidentification: 'identified',
      });
    expect((await served()).code).toBe('OK');
    expect(
      (
        await send(node.url, net.network, cast.staff.get('hosp-a/doc')!, 'records.retract', {
          recordId: rec.txId,
          reason: 'entered in error',
        })
      ).code,
    ).toBe('OK');
    expect((await served()).code).toBe('RECORD_RETRACTED');
  });

  it('staff of a removed institution are not served', async () => {
    const patient = cast.patients[0]!;
    const rec = await send(
      node.url,
      net.network,
      cast.staff.get('hosp-a/doc')!,
      'records.register',
      recordBody(patient.code, 'Condition', 'rm'),
    );
    const proposal = await send(node.url, net.network, net.issuer, 'membership.propose', { action: 'remove', institutionId: 'hosp-b' });
    for (const voter of ['hosp-a', 'clinic-c', 'lab-d'])
      await send(node.url, net.network, net.institutions.get(voter)!, 'membership.vote', { proposalId: proposal.txId, approve: true });
    const r = await send(node.url, net.network, net.institutions.get('hosp-a')!, 'access.recordServed', {
      recordId: rec.txId,
      requester: 'hosp-b/doc',
      purpose: 'TREAT',
      deidentification: 'identified',
    });
    expect(r.code).toBe('NOT_A_MEMBER');
  });

  it('a research institute cannot enrol clinical staff', async () => {
    const d = await Identity.generate('res-e/doc');
    const r = await send(node.url, net.network, net.institutions.get('res-e')!, 'identity.enrolStaff', {
      localId: 'doc',
      role: 'doctor',
      signingKey: d.signingKey,
      encryptionKey: d.encryptionKey,
      displayName: 'x',
    });
    expect(r.code).toBe('ROLE_FORBIDDEN');
  });

  it('a possession proof made for one institution cannot register the patient at another', async () => {
    const p = await Identity.generate('p2');
    const code = 'cd'.repeat(32);
    const r = await send(node.url, net.network, cast.staff.get('lab-d/ops')!, 'identity.registerPatient', {
      patientCode: code,
      signingKey: p.signingKey,
      encryptionKey: p.encryptionKey,
      possession: await p.possessionProof(net.network, code, 'hosp-a'),
    });
    expect(r.code).toBe('KEY_POSSESSION_INVALID');
  });
});

describe('verification gaps', () => {
  async function tampered(edit: (db: LedgerStore) => void): Promise<MedledgerError> {
    const dir = tempDir('rv');
    const path = join(dir, 'chain.db');
    node.peer.store.db.pragma('wal_checkpoint(TRUNCATE)');
    copyFileSync(join(net.nodeDir('hosp-a'), 'chain.db'), path);
    const db = new LedgerStore(path);
    edit(db);
    db.close();
    return (await verifyStore(path).then(
      () => null,
      (e: unknown) => e,
    )) as MedledgerError;
  }

  it('an indexed query column that no longer matches its value is named', async () => {
    const err = await tampered((db) => db.db.prepare("UPDATE s_records SET patient_code = patient_code || 'x'").run());
    expect(err.code).toBe('STATE_MISMATCH');
    expect(err.payload['column']).toBe('patient_code');
  });

  it('an equivalent JSON spelling in a stored block is damage', async () => {
    const err = await tampered((db) => {
      const row = db.rawBlock(1)!;
      db.db.prepare('UPDATE blocks SET txs = ? WHERE height = 1').run(row.txs.replace('"v":1', '"v":1.0'));
    });
    expect(err.code).toBe('CHAIN_BROKEN');
    expect(err.payload['height']).toBe(1);
  });

  it('a changed network id in meta is caught', async () => {
    // The first digit changed to another one (a random network id may already start with '0').
    const err = await tampered((db) =>
      db.db
        .prepare("UPDATE meta SET v = (CASE WHEN substr(v, 1, 1) = '0' THEN '1' ELSE '0' END) || substr(v, 2) WHERE k = 'network'")
        .run(),
    );
    expect(err.code).toBe('STATE_MISMATCH');
  });
});

describe('solo log recovery', () => {
  it('restarts over a zero-filled tail left by a crash', async () => {
    const n2 = await makeNetwork();
    let n = await LedgerNode.start({
      dataDir: n2.nodeDir('hosp-a'),
      genesis: n2.genesis,
      institution: 'hosp-a',
      host: '127.0.0.1',
      port: 0,
    });
    const doc = await Identity.generate('hosp-a/d');
    expect(
      (
        await send(n.url, n2.network, n2.institutions.get('hosp-a')!, 'identity.enrolStaff', {
          localId: 'd',
          role: 'doctor',
          signingKey: doc.signingKey,
          encryptionKey: doc.encryptionKey,
          displayName: 'd',
        })
      ).code,
    ).toBe('OK');
    await n.stop();
    const dir = join(n2.nodeDir('hosp-a'), 'orderer');
    appendFileSync(join(dir, readdirSync(dir).sort().pop()!), Buffer.alloc(16));
    n = await LedgerNode.start({ dataDir: n2.nodeDir('hosp-a'), genesis: n2.genesis, institution: 'hosp-a', host: '127.0.0.1', port: 0 });
    expect(n.peer.store.head().height).toBe(1);
    const nurse = await Identity.generate('hosp-a/n');
    const after = await send(n.url, n2.network, n2.institutions.get('hosp-a')!, 'identity.enrolStaff', {
      localId: 'n',
      role: 'nurse',
      signingKey: nurse.signingKey,
      encryptionKey: nurse.encryptionKey,
      displayName: 'n',
    });
    expect(after.code).toBe('OK');
    await n.stop();
  });
});
