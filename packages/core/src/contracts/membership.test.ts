/**
 * Membership: a proposal passes once more than half of the current members approved it
 * (consortium paper §3) and fails once it no longer can.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../codec/canonical-json.ts';
import { Identity } from '../client/identity.ts';
import { recordBody, TestLedger, type Cast, createCast } from '../ledger/test-network.test-fixture.ts';
import type { KeyEntry, Member, Proposal } from './state.ts';

let ledger: TestLedger;
let newcomer: Identity;

beforeEach(async () => {
  ledger = await TestLedger.create();
  newcomer = await Identity.generate('hosp-f');
});

function admitBody(id = 'hosp-f', who: Identity = newcomer): JsonObject {
  return {
    action: 'admit',
    institution: {
      id,
      name: 'Hospital F',
      kind: 'hospital',
      signingKey: who.signingKey,
      encryptionKey: who.encryptionKey,
      validator: false,
    },
  };
}

async function propose(body: JsonObject = admitBody(), by = ledger.institution('hosp-a')): Promise<string> {
  return (await ledger.ok(ledger.tx(by, 'membership.propose', body))).txId;
}

function vote(member: string, proposalId: string, approve: boolean) {
  return ledger.code(ledger.tx(ledger.institution(member), 'membership.vote', { proposalId, approve }));
}

function enrolBy(author: Identity) {
  return ledger.tx(author, 'identity.enrolStaff', {
    localId: 'dr-new',
    role: 'doctor',
    signingKey: newcomer.signingKey,
    encryptionKey: null,
    displayName: 'x',
  });
}

describe('membership.propose', () => {
  it('opens a proposal named by its txId', async () => {
    const id = await propose();
    expect(ledger.get<Proposal>('proposals', id)).toEqual({
      id,
      action: 'admit',
      institution: admitBody()['institution'],
      institutionId: 'hosp-f',
      proposer: 'hosp-a',
      votes: {},
      status: 'open',
      createdAt: ledger.time,
    });
  });

  it('may come from the Issuer, but not from staff or patients', async () => {
    const id = await propose(admitBody(), ledger.net.issuer);
    expect(ledger.get<Proposal>('proposals', id)?.proposer).toBe('issuer');
    const doctor = await ledger.enrol('hosp-a', 'dr-kim', 'doctor');
    expect(await ledger.code(ledger.tx(doctor, 'membership.propose', admitBody('hosp-g')))).toBe('ROLE_FORBIDDEN');
  });

  it('refuses an id or signing key already in use with ALREADY_EXISTS', async () => {
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'membership.propose', admitBody('hosp-b')))).toBe('ALREADY_EXISTS');
    expect(
      await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'membership.propose', admitBody('hosp-g', ledger.institution('clinic-c')))),
    ).toBe('ALREADY_EXISTS');
  });

  it('refuses to propose removing a non-member with NOT_A_MEMBER', async () => {
    expect(
      await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'membership.propose', { action: 'remove', institutionId: 'hosp-z' })),
    ).toBe('NOT_A_MEMBER');
  });
});

describe('membership.vote with five members', () => {
  it('admits only once more than half approved: 2 yes → open, 3 yes → admitted', async () => {
    const id = await propose();
    expect(await ledger.code(enrolBy(newcomer))).toBe('TX_UNKNOWN_AUTHOR');
    expect(await vote('hosp-a', id, true)).toBe('OK');
    expect(await vote('hosp-b', id, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)).toMatchObject({ status: 'open', votes: { 'hosp-a': true, 'hosp-b': true } });
    expect(ledger.get('members', 'hosp-f')).toBeUndefined();
    expect(await ledger.code(enrolBy(newcomer))).toBe('TX_UNKNOWN_AUTHOR');

    expect(await vote('lab-d', id, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)).toMatchObject({ status: 'accepted', decidedAtHeight: ledger.height });
    expect(ledger.get<Member>('members', 'hosp-f')).toEqual({
      id: 'hosp-f',
      name: 'Hospital F',
      kind: 'hospital',
      signingKey: newcomer.signingKey,
      encryptionKey: newcomer.encryptionKey,
      validator: false,
      status: 'active',
      admittedAt: ledger.time,
      admittedAtHeight: ledger.height,
    });
    expect(ledger.get<KeyEntry>('keys', newcomer.keyId)?.owner).toEqual({ kind: 'institution', institution: 'hosp-f' });
    expect(ledger.get('meta', 'members')).toEqual(['hosp-a', 'hosp-b', 'clinic-c', 'lab-d', 'res-e', 'hosp-f']);
    // The new member acts on the ledger now.
    const staff = await Identity.generate('hosp-f/dr-new');
    const enrol = ledger.tx(newcomer, 'identity.enrolStaff', {
      localId: 'dr-new',
      role: 'doctor',
      signingKey: staff.signingKey,
      encryptionKey: null,
      displayName: 'x',
    });
    expect(await ledger.code(enrol)).toBe('OK');
  });

  it('refuses a second vote by the same member with ALREADY_VOTED', async () => {
    const id = await propose();
    expect(await vote('hosp-a', id, true)).toBe('OK');
    expect(await vote('hosp-a', id, true)).toBe('ALREADY_VOTED');
    expect(await vote('hosp-a', id, false)).toBe('ALREADY_VOTED');
    expect(ledger.get<Proposal>('proposals', id)?.votes).toEqual({ 'hosp-a': true });
  });

  it('rejects once enough members said no that it can no longer pass: 2 no → open, 3 no → rejected', async () => {
    const id = await propose();
    expect(await vote('hosp-a', id, false)).toBe('OK');
    expect(await vote('hosp-b', id, false)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('open');
    expect(await vote('clinic-c', id, false)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)).toMatchObject({ status: 'rejected', decidedAtHeight: ledger.height });
    expect(ledger.get('members', 'hosp-f')).toBeUndefined();
    expect(ledger.get('keys', newcomer.keyId)).toBeUndefined();
    expect(await vote('lab-d', id, true)).toBe('PROPOSAL_CLOSED');
  });

  it('counts yes and no together: 2 yes and 2 no → open, the fifth decides', async () => {
    const id = await propose();
    expect(await vote('hosp-a', id, true)).toBe('OK');
    expect(await vote('hosp-b', id, false)).toBe('OK');
    expect(await vote('clinic-c', id, true)).toBe('OK');
    expect(await vote('lab-d', id, false)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('open');
    expect(await vote('res-e', id, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('accepted');
  });

  it('refuses votes on a decided proposal with PROPOSAL_CLOSED, and on an unknown one with NOT_FOUND', async () => {
    const id = await propose();
    for (const m of ['hosp-a', 'hosp-b', 'clinic-c']) expect(await vote(m, id, true)).toBe('OK');
    expect(await vote('lab-d', id, true)).toBe('PROPOSAL_CLOSED');
    expect(await vote('lab-d', 'a'.repeat(64), true)).toBe('NOT_FOUND');
  });

  it('lets only institutions vote', async () => {
    const id = await propose();
    expect(await ledger.code(ledger.tx(ledger.net.issuer, 'membership.vote', { proposalId: id, approve: true }))).toBe('ROLE_FORBIDDEN');
    const doctor = await ledger.enrol('hosp-a', 'dr-kim', 'doctor');
    expect(await ledger.code(ledger.tx(doctor, 'membership.vote', { proposalId: id, approve: true }))).toBe('ROLE_FORBIDDEN');
    expect(ledger.get<Proposal>('proposals', id)?.votes).toEqual({});
  });

  it('needs 4 of 6 once a sixth member is in', async () => {
    const first = await propose();
    for (const m of ['hosp-a', 'hosp-b', 'clinic-c']) await vote(m, first, true);
    const seventh = await Identity.generate('clinic-g');
    const id = await propose(admitBody('clinic-g', seventh));
    for (const m of ['hosp-a', 'hosp-b', 'clinic-c']) expect(await vote(m, id, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('open');
    expect(await ledger.code(ledger.tx(newcomer, 'membership.vote', { proposalId: id, approve: true }))).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('accepted');
  });
});

describe('removing a member', () => {
  let cast: Cast;
  beforeEach(async () => {
    cast = await createCast();
    ledger = cast.ledger;
  });

  it('stops its key and its staff with NOT_A_MEMBER, and its later votes do not count', async () => {
    const id = await propose({ action: 'remove', institutionId: 'clinic-c' });
    const pending = await propose();
    expect(await vote('clinic-c', pending, true)).toBe('OK');
    for (const m of ['hosp-a', 'hosp-b', 'lab-d']) expect(await vote(m, id, true)).toBe('OK');
    expect(ledger.get<Member>('members', 'clinic-c')).toMatchObject({ status: 'removed', removedAtHeight: ledger.height });

    expect(await ledger.code(ledger.tx(cast.staff('clinic-c/dr-choi'), 'records.register', recordBody(cast.alice.patientCode)))).toBe(
      'NOT_A_MEMBER',
    );
    expect(await vote('clinic-c', pending, true)).toBe('NOT_A_MEMBER');
    // Four active members now: 3 are needed, and clinic-c's earlier yes no longer counts.
    expect(await vote('hosp-a', pending, true)).toBe('OK');
    expect(await vote('hosp-b', pending, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', pending)?.status).toBe('open');
    expect(await vote('lab-d', pending, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', pending)?.status).toBe('accepted');
  });
});

describe('admission keeps keys unique', () => {
  it('refuses the deciding vote of a second admission with a key a first admission took', async () => {
    // Two proposals are open at once for different ids with the same signing key: the proposal
    // check passes for both. Once the first is admitted, admitting the second would hand the
    // first member's key to the second. Admission re-checks the id at vote time; the key must
    // be re-checked too, or the first member's key entry is overwritten.
    const first = await propose(admitBody('hosp-f'));
    const second = await propose(admitBody('hosp-g'));
    for (const m of ['hosp-a', 'hosp-b', 'clinic-c']) expect(await vote(m, first, true)).toBe('OK');
    expect(ledger.get<KeyEntry>('keys', newcomer.keyId)?.owner).toEqual({ kind: 'institution', institution: 'hosp-f' });
    // Six members now: the fourth yes decides.
    for (const m of ['hosp-a', 'hosp-b', 'clinic-c']) expect(await vote(m, second, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', second)?.status).toBe('open');
    expect(await vote('lab-d', second, true)).toBe('ALREADY_EXISTS');
    expect(ledger.get<KeyEntry>('keys', newcomer.keyId)?.owner).toEqual({ kind: 'institution', institution: 'hosp-f' });
    expect(ledger.get('members', 'hosp-g')).toBeUndefined();
  });
});

describe('membership.setEndpoint', () => {
  it('lets an institution publish its vault URL, and only an http(s) URL', async () => {
    const a = ledger.institution('hosp-a');
    await ledger.ok(ledger.tx(a, 'membership.setEndpoint', { vaultUrl: 'https://vault.hosp-a.example:8443/base' }));
    expect(ledger.get<Member>('members', 'hosp-a')!.vaultUrl).toBe('https://vault.hosp-a.example:8443/base');
    for (const vaultUrl of ['ftp://x', 'https://a b', 'javascript:alert(1)', 'https://h/?q=1']) {
      expect(await ledger.code(ledger.tx(a, 'membership.setEndpoint', { vaultUrl }))).toBe('TX_BODY_INVALID');
    }
    await ledger.ok(ledger.tx(a, 'membership.setEndpoint', { vaultUrl: null }));
    expect(ledger.get<Member>('members', 'hosp-a')!.vaultUrl).toBeNull();
  });
});
