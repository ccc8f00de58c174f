/**
 * End to end through the HTTP API of a real node (SQLite file, solo orderer on disk): the
 * admission vote, consent before registration, grant / revoke / expiry, access requests, and
 * bad input refused with its code while nothing changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Identity } from '@medledger/core/client/identity';
import { verifyReceipt, type Receipt } from '@medledger/core/ledger/receipt';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { StateTables } from '@medledger/core/contracts/state';
import { enrolCast, http, makeNetwork, recordBody, send, type Cast, type TestNetwork } from './test-network.ts';

let net: TestNetwork;
let node: LedgerNode;
let base: string;
let cast: Cast;

function stateDump(): string {
  const store = node.peer.store;
  return JSON.stringify(StateTables.map((t) => [...store.stateRows(t)]));
}

beforeAll(async () => {
  net = await makeNetwork({ maxTxBytes: 64 * 1024 });
  node = await LedgerNode.start({
    dataDir: net.nodeDir('hosp-a'),
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
  });
  base = node.url;
  cast = await enrolCast(
    base,
    net,
    {
      'hosp-a/doc': 'doctor',
      'hosp-a/ops': 'operator',
      'hosp-b/doc': 'doctor',
      'hosp-b/nurse': 'nurse',
      'clinic-c/doc': 'doctor',
      'res-e/res': 'researcher',
    },
    ['hosp-a', 'hosp-a', 'hosp-b'],
  );
});

afterAll(async () => {
  await node.stop();
});

const staff = (id: string): Identity => cast.staff.get(id)!;
const inst = (id: string): Identity => net.institutions.get(id)!;

describe('membership', () => {
  it('admits an institution only once more than half of the members approve', async () => {
    const newcomer = await Identity.generate('hosp-f');
    const proposal = await send(base, net.network, net.issuer, 'membership.propose', {
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
    expect(proposal.code).toBe('OK');
    // Five members: three approvals are needed.
    for (const voter of ['hosp-a', 'hosp-b']) {
      expect((await send(base, net.network, inst(voter), 'membership.vote', { proposalId: proposal.txId, approve: true })).code).toBe('OK');
    }
    let members = (await http<{ id: string }[]>('GET', `${base}/api/members`)).body.map((m) => m.id);
    expect(members).not.toContain('hosp-f');
    expect((await send(base, net.network, inst('hosp-a'), 'membership.vote', { proposalId: proposal.txId, approve: true })).code).toBe(
      'ALREADY_VOTED',
    );
    expect((await send(base, net.network, staff('hosp-a/doc'), 'membership.vote', { proposalId: proposal.txId, approve: true })).code).toBe(
      'ROLE_FORBIDDEN',
    );
    // Before admission the newcomer cannot act.
    expect(
      (
        await send(base, net.network, newcomer, 'identity.enrolStaff', {
          localId: 'x',
          role: 'doctor',
          signingKey: newcomer.signingKey,
          encryptionKey: null,
          displayName: 'x',
        })
      ).code,
    ).toBe('TX_UNKNOWN_AUTHOR');
    expect((await send(base, net.network, inst('clinic-c'), 'membership.vote', { proposalId: proposal.txId, approve: true })).code).toBe(
      'OK',
    );
    members = (await http<{ id: string }[]>('GET', `${base}/api/members`)).body.map((m) => m.id);
    expect(members).toContain('hosp-f');
    const proposals = (await http<{ id: string; status: string }[]>('GET', `${base}/api/proposals`)).body;
    expect(proposals.find((p) => p.id === proposal.txId)?.status).toBe('accepted');
    const doctor = await Identity.generate('hosp-f/doc');
    expect(
      (
        await send(base, net.network, newcomer, 'identity.enrolStaff', {
          localId: 'doc',
          role: 'doctor',
          signingKey: doctor.signingKey,
          encryptionKey: doctor.encryptionKey,
          displayName: 'Dr F',
        })
      ).code,
    ).toBe('OK');
  });

  it('rejects a removal once enough members vote no', async () => {
    const proposal = await send(base, net.network, inst('hosp-b'), 'membership.propose', { action: 'remove', institutionId: 'lab-d' });
    expect(proposal.code).toBe('OK');
    for (const voter of ['hosp-a', 'hosp-b', 'clinic-c']) {
      expect((await send(base, net.network, inst(voter), 'membership.vote', { proposalId: proposal.txId, approve: false })).code).toBe(
        'OK',
      );
    }
    const proposals = (await http<{ id: string; status: string }[]>('GET', `${base}/api/proposals`)).body;
    expect(proposals.find((p) => p.id === proposal.txId)?.status).toBe('rejected');
    expect((await send(base, net.network, inst('lab-d'), 'membership.vote', { proposalId: proposal.txId, approve: true })).code).toBe(
      'PROPOSAL_CLOSED',
    );
  });
});

describe('consent before registration', () => {
  it('registers after the patient accepts and refuses after the patient refuses', async () => {
    const patient = cast.patients[0]!;
    const ask = async (): Promise<string> => {
      const r = await send(base, net.network, staff('clinic-c/doc'), 'consent.requestRegistration', {
        patientCode: patient.code,
        category: 'Observation',
        purpose: 'TREAT',
        note: 'follow-up',
      });
      expect(r.code).toBe('OK');
      return r.txId;
    };
    // Without a request the clinic may not register for another institution's patient.
    expect(
      (await send(base, net.network, staff('clinic-c/doc'), 'records.register', recordBody(patient.code, 'Observation', 'c0'))).code,
    ).toBe('CONSENT_REQUIRED');
    const accepted = await ask();
    expect(
      (
        await send(
          base,
          net.network,
          staff('clinic-c/doc'),
          'records.register',
          recordBody(patient.code, 'Observation', 'c1', { registrationRequestId: accepted }),
        )
      ).code,
    ).toBe('CONSENT_PENDING');
    expect(
      (await send(base, net.network, patient.identity, 'consent.answerRegistration', { requestId: accepted, accept: true })).code,
    ).toBe('OK');
    const ok = await send(
      base,
      net.network,
      staff('clinic-c/doc'),
      'records.register',
      recordBody(patient.code, 'Observation', 'c2', { registrationRequestId: accepted }),
    );
    expect(ok.code).toBe('OK');
    const refused = await ask();
    expect(
      (await send(base, net.network, cast.patients[1]!.identity, 'consent.answerRegistration', { requestId: refused, accept: false })).code,
    ).toBe('ROLE_FORBIDDEN');
    expect(
      (await send(base, net.network, patient.identity, 'consent.answerRegistration', { requestId: refused, accept: false })).code,
    ).toBe('OK');
    expect(
      (
        await send(
          base,
          net.network,
          staff('clinic-c/doc'),
          'records.register',
          recordBody(patient.code, 'Observation', 'c3', { registrationRequestId: refused }),
        )
      ).code,
    ).toBe('CONSENT_REFUSED');

    const requests = (
      await http<{ requestId: string; status: string }[]>('GET', `${base}/api/patients/${patient.code}/registration-requests`)
    ).body;
    expect(requests.find((r) => r.requestId === accepted)?.status).toBe('used');
    expect(requests.find((r) => r.requestId === refused)?.status).toBe('refused');
    const records = (
      await http<{ recordId: string; custodian: string }[]>('GET', `${base}/api/records?patientCode=${patient.code}&custodian=clinic-c`)
    ).body;
    expect(records.map((r) => r.recordId)).toEqual([ok.txId]);
  });
});

describe('consent grant, revoke and expiry', () => {
  it('lets a custodian serve a covered access, and refuses after revocation and after expiry', async () => {
    const patient = cast.patients[1]!;
    const rec = await send(base, net.network, staff('hosp-a/doc'), 'records.register', recordBody(patient.code, 'Condition', 'g1'));
    expect(rec.code).toBe('OK');
    const served = (purpose = 'TREAT') =>
      send(base, net.network, inst('hosp-a'), 'access.recordServed', {
        recordId: rec.txId,
        requester: 'hosp-b/doc',
        purpose,
        deidentification: 'identified',
      });
    expect((await served()).code).toBe('CONSENT_REQUIRED');
    const now = Date.now();
    const grant = await send(base, net.network, patient.identity, 'consent.grant', {
      patientCode: patient.code,
      grantee: { kind: 'role', role: 'doctor', institution: 'hosp-b' },
      scope: { kind: 'categories', categories: ['Condition'] },
      purposes: ['TREAT'],
      period: { from: now - 1000, to: now + 3_600_000 },
      deidentification: 'identified',
    });
    expect(grant.code).toBe('OK');
    const ok = await served();
    expect(ok.code).toBe('OK');
    expect((await served('HRESCH')).code).toBe('CONSENT_PURPOSE_MISMATCH');
    // The nurse at hosp-b is not a doctor: the role grant does not cover her.
    expect(
      (
        await send(base, net.network, inst('hosp-a'), 'access.recordServed', {
          recordId: rec.txId,
          requester: 'hosp-b/nurse',
          purpose: 'TREAT',
          deidentification: 'identified',
        })
      ).code,
    ).toBe('CONSENT_REQUIRED');

    const consents = (await http<{ consentId: string; status: string }[]>('GET', `${base}/api/patients/${patient.code}/consents`)).body;
    expect(consents.find((c) => c.consentId === grant.txId)?.status).toBe('active');
    expect((await send(base, net.network, patient.identity, 'consent.revoke', { consentId: grant.txId })).code).toBe('OK');
    expect((await served()).code).toBe('CONSENT_REVOKED');

    // Expiry is judged at block time.
    const short = await send(base, net.network, patient.identity, 'consent.grant', {
      patientCode: patient.code,
      grantee: { kind: 'person', staffId: 'hosp-b/doc' },
      scope: { kind: 'records', recordIds: [rec.txId] },
      purposes: ['TREAT'],
      period: { from: Date.now() - 1000, to: Date.now() + 1500 },
      deidentification: 'identified',
    });
    expect(short.code).toBe('OK');
    await new Promise((r) => setTimeout(r, 2000));
    expect((await served()).code).toBe('CONSENT_EXPIRED');

    const log = (
      await http<
        { entryId: string; actor: string; institution: string; outcome: string; purpose: string; recordId: string; time: number }[]
      >('GET', `${base}/api/patients/${patient.code}/access-log`)
    ).body;
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({
      entryId: ok.txId,
      actor: 'hosp-b/doc',
      institution: 'hosp-b',
      outcome: 'served',
      purpose: 'TREAT',
      recordId: rec.txId,
    });
  });
});

describe('access requests', () => {
  it('an approved request lets the custodian serve; a denied one does not', async () => {
    const patient = cast.patients[2]!; // home hosp-b
    const rec = await send(base, net.network, staff('hosp-b/doc'), 'records.register', recordBody(patient.code, 'Observation', 'r1'));
    expect(rec.code).toBe('OK');
    const request = async (): Promise<string> => {
      const r = await send(base, net.network, staff('hosp-a/doc'), 'access.request', {
        patientCode: patient.code,
        scope: { kind: 'records', recordIds: [rec.txId] },
        purpose: 'TREAT',
        deidentification: 'identified',
        reason: 'referral',
      });
      expect(r.code).toBe('OK');
      return r.txId;
    };
    const served = () =>
      send(base, net.network, inst('hosp-b'), 'access.recordServed', {
        recordId: rec.txId,
        requester: 'hosp-a/doc',
        purpose: 'TREAT',
        deidentification: 'identified',
      });
    const denied = await request();
    expect(
      (await send(base, net.network, patient.identity, 'access.decide', { requestId: denied, approve: false, durationMs: null })).code,
    ).toBe('OK');
    expect((await served()).code).toBe('CONSENT_REQUIRED');
    const approved = await request();
    expect(
      (await send(base, net.network, patient.identity, 'access.decide', { requestId: approved, approve: true, durationMs: 86_400_000 }))
        .code,
    ).toBe('OK');
    expect(
      (await send(base, net.network, patient.identity, 'access.decide', { requestId: approved, approve: true, durationMs: null })).code,
    ).toBe('REQUEST_CLOSED');
    expect((await served()).code).toBe('OK');
    const requests = (await http<{ requestId: string; status: string }[]>('GET', `${base}/api/patients/${patient.code}/access-requests`))
      .body;
    expect(requests.find((r) => r.requestId === approved)?.status).toBe('approved');
    expect(requests.find((r) => r.requestId === denied)?.status).toBe('denied');
    // A researcher cannot even ask for identified data.
    expect(
      (
        await send(base, net.network, staff('res-e/res'), 'access.request', {
          patientCode: patient.code,
          scope: { kind: 'all' },
          purpose: 'HRESCH',
          deidentification: 'identified',
          reason: 'study',
        })
      ).code,
    ).toBe('DEIDENTIFICATION_REQUIRED');
  });
});

describe('receipts', () => {
  it('GET /api/tx/:id returns a receipt that core verifies offline', async () => {
    const r = await send(base, net.network, staff('hosp-a/doc'), 'records.register', recordBody(cast.patients[0]!.code, 'Condition', 'rc'));
    const answer = await http<{ status: string; code: string; receipt: Receipt }>('GET', `${base}/api/tx/${r.txId}`);
    expect(answer.body.status).toBe('committed');
    expect(answer.body.code).toBe('OK');
    expect(() => verifyReceipt(answer.body.receipt)).not.toThrow();
    expect(() => verifyReceipt({ ...answer.body.receipt, code: 'ROLE_FORBIDDEN' })).toThrow();
  });
});

describe('bad input is refused with its code and changes nothing', () => {
  it('refuses at the door: malformed JSON, bad signature, replay, unknown type, oversize', async () => {
    const before = { head: node.peer.store.head(), state: stateDump() };
    const doc = staff('hosp-a/doc');
    const patient = cast.patients[0]!;

    const malformed = await http('POST', `${base}/api/tx`, undefined, '{"v":1,');
    expect([malformed.status, malformed.body['code']]).toEqual([400, 'INVALID_JSON']);

    const { tx } = await doc.tx(net.network, 'records.register', recordBody(patient.code, 'Condition', 'bad1'));
    const forged = {
      ...tx,
      signature: (await doc.tx(net.network, 'records.register', recordBody(patient.code, 'Condition', 'bad2'))).tx.signature,
    };
    const badSig = await http('POST', `${base}/api/tx`, forged);
    expect([badSig.status, badSig.body['code']]).toEqual([400, 'TX_BAD_SIGNATURE']);

    const unknown = await http('POST', `${base}/api/tx`, { ...tx, type: 'records.destroy' });
    expect([unknown.status, unknown.body['code']]).toEqual([400, 'TX_UNKNOWN_TYPE']);

    const stranger = await Identity.generate('stranger');
    const notMember = await http(
      'POST',
      `${base}/api/tx`,
      (await stranger.tx(net.network, 'records.register', recordBody(patient.code, 'Condition', 'bad3'))).tx,
    );
    expect([notMember.status, notMember.body['code']]).toEqual([400, 'TX_UNKNOWN_AUTHOR']);

    const extraField = await http('POST', `${base}/api/tx`, { ...tx, extra: 1 });
    expect([extraField.status, extraField.body['code']]).toEqual([400, 'TX_MALFORMED']);

    const huge = await doc.tx(
      net.network,
      'records.register',
      recordBody(patient.code, 'Condition', 'big', { pointer: 'x'.repeat(200_000) }),
    );
    const oversize = await http('POST', `${base}/api/tx`, huge.tx);
    expect([oversize.status, oversize.body['code']]).toEqual([413, 'BODY_TOO_LARGE']);

    expect(node.peer.store.head()).toEqual(before.head);
    expect(stateDump()).toEqual(before.state);

    // Replay: once a nonce is spent, the same author and nonce are refused.
    const first = await doc.tx(net.network, 'records.register', recordBody(patient.code, 'Condition', 'n1'), { nonce: 'fixed-nonce-1' });
    expect((await http('POST', `${base}/api/tx?wait=commit`, first.tx)).body['code']).toBe('OK');
    const afterFirst = stateDump();
    const again = await http('POST', `${base}/api/tx`, first.tx);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ txId: first.txId, status: 'committed' });
    const replay = await doc.tx(net.network, 'records.register', recordBody(patient.code, 'Condition', 'n2'), { nonce: 'fixed-nonce-1' });
    const replayed = await http('POST', `${base}/api/tx`, replay.tx);
    expect([replayed.status, replayed.body['code']]).toEqual([409, 'TX_REPLAY']);
    expect(stateDump()).toEqual(afterFirst);
  });

  it('records a wrong-role transaction in its block with its code, and changes no state', async () => {
    const before = stateDump();
    const nurse = staff('hosp-b/nurse');
    const r = await send(base, net.network, nurse, 'access.breakGlass', {
      patientCode: cast.patients[0]!.code,
      reason: 'ETREAT',
      justification: 'unconscious patient in ED',
      durationMs: 3_600_000,
    });
    expect([r.status, r.code]).toEqual([200, 'ROLE_FORBIDDEN']);
    const research = await send(
      base,
      net.network,
      staff('res-e/res'),
      'records.register',
      recordBody(cast.patients[0]!.code, 'Condition', 'res'),
    );
    expect(research.code).toBe('ROLE_FORBIDDEN');
    expect(stateDump()).toEqual(before);
    const block = await http<{ txs: { txId: string; code: string }[] }>('GET', `${base}/api/blocks/${String(r.answer.body['height'])}`);
    expect(block.body.txs.find((t) => t.txId === r.txId)?.code).toBe('ROLE_FORBIDDEN');
  });

  it('refuses unknown routes and bad parameters with codes', async () => {
    expect((await http('GET', `${base}/api/nope`)).body['code']).toBe('NOT_FOUND');
    expect((await http('GET', `${base}/api/records?patientCode=xyz`)).body['code']).toBe('BAD_REQUEST');
    expect((await http('GET', `${base}/api/records`)).body['code']).toBe('BAD_REQUEST');
    expect((await http('GET', `${base}/api/blocks/999999`)).body['code']).toBe('NOT_FOUND');
  });
});

describe('verification of the data directory', () => {
  it('the node’s store verifies intact', async () => {
    const { verifyStore } = await import('../packages/node/src/store/verify-store.ts');
    const result = await verifyStore(join(net.nodeDir('hosp-a'), 'chain.db'));
    expect(result.height).toBe(node.peer.store.head().height);
    expect(result.stateRoot).toBe(node.peer.store.head().stateRoot);
  });
});

describe('request limits', () => {
  it('answers RATE_LIMITED past the per-client rate', async () => {
    const limited = await makeNetwork();
    const small = await LedgerNode.start({
      dataDir: limited.nodeDir('hosp-a'),
      genesis: limited.genesis,
      institution: 'hosp-a',
      host: '127.0.0.1',
      port: 0,
      rateLimitPerMinute: 5,
    });
    try {
      const statuses: number[] = [];
      let last: Record<string, unknown> = {};
      for (let i = 0; i < 7; i++) {
        const r = await http('GET', `${small.url}/api/health`);
        statuses.push(r.status);
        last = r.body;
      }
      expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
      expect(statuses[6]).toBe(429);
      expect(last['code']).toBe('RATE_LIMITED');
    } finally {
      await small.stop();
    }
  });
});
