/**
 * Membership: a proposal passes once more than half of the current members approved it
 * (consortium paper §3) and fails once it no longer can.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../codec/canonical-json.ts';
import { toBase64Url } from '../codec/bytes.ts';
import { sign } from '../crypto/ed25519.ts';
import { Identity } from '../client/identity.ts';
import { blockHash } from '../ledger/block.ts';
import { signVote, validatorsAt, verifyCertificate, type FinalityCertificate } from '../ledger/finality.ts';
import { recordBody, TestLedger, type Cast, createCast } from '../ledger/test-network.test-fixture.ts';
import { memberKeyMessage } from './membership.ts';
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

/** New keys for `institution` taken from `next`, the proof signed by `prover` (default: `next`). */
async function newKeys(
  institution: string,
  next: Identity,
  o: { prover?: Identity; network?: string; encryptionKey?: string | null } = {},
): Promise<JsonObject> {
  const encryptionKey = o.encryptionKey === undefined ? next.encryptionKey : o.encryptionKey;
  const message = memberKeyMessage(o.network ?? ledger.network, institution, next.signingKey, encryptionKey);
  return {
    signingKey: next.signingKey,
    encryptionKey,
    possession: toBase64Url(await sign((o.prover ?? next).file.signing.privateKey, message)),
  };
}

describe('membership.rotateKey', () => {
  let cast: Cast;
  let next: Identity;
  beforeEach(async () => {
    cast = await createCast();
    ledger = cast.ledger;
    next = await Identity.generate('hosp-a');
  });

  it('replaces the institution’s keys with its current key; the old key is refused, its staff keep theirs', async () => {
    const old = ledger.institution('hosp-a');
    const before = ledger.get<Member>('members', 'hosp-a')!;
    const exec = await ledger.run([await ledger.tx(old, 'membership.rotateKey', await newKeys('hosp-a', next))]);
    expect(exec.codes).toEqual(['OK']);
    expect(ledger.get<Member>('members', 'hosp-a')).toEqual({
      ...before,
      signingKey: next.signingKey,
      encryptionKey: next.encryptionKey,
      previousKeys: [{ publicKey: old.signingKey, untilHeight: ledger.height }],
    });
    expect(ledger.get<KeyEntry>('keys', old.keyId)?.status).toBe('revoked');
    expect(ledger.get<KeyEntry>('keys', next.keyId)).toEqual({
      keyId: next.keyId,
      publicKey: next.signingKey,
      owner: { kind: 'institution', institution: 'hosp-a' },
      status: 'active',
    });
    expect(exec.events.map((e) => e.event)).toEqual([
      { type: 'membership.keyRotated', data: { institution: 'hosp-a', mode: 'planned', keyId: next.keyId, previousKeyId: old.keyId } },
    ]);
    expect(await ledger.code(ledger.tx(old, 'membership.setEndpoint', { vaultUrl: null }))).toBe('IDENTITY_REVOKED');
    expect(await ledger.code(ledger.tx(next, 'membership.setEndpoint', { vaultUrl: null }))).toBe('OK');
    // Staff keys are entries of their own, not certified by the institution key: they still act.
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(cast.alice.patientCode)))).toBe('OK');
    expect(await ledger.code(ledger.tx(next, 'identity.revokeStaff', { staffId: 'hosp-a/nurse-lee' }))).toBe('OK');
  });

  it('may keep no encryption key, and takes effect inside its block', async () => {
    const old = ledger.institution('hosp-b');
    const exec = await ledger.run([
      await ledger.tx(old, 'membership.rotateKey', await newKeys('hosp-b', next, { encryptionKey: null })),
      await ledger.tx(old, 'membership.setEndpoint', { vaultUrl: null }),
    ]);
    expect(exec.codes).toEqual(['OK', 'IDENTITY_REVOKED']);
    expect(ledger.get<Member>('members', 'hosp-b')?.encryptionKey).toBeNull();
  });

  it('refuses a proof the new key did not sign for this institution, network and keys with MEMBER_KEY_POSSESSION_INVALID', async () => {
    const old = ledger.institution('hosp-a');
    const bodies = [
      await newKeys('hosp-a', next, { prover: old }),
      await newKeys('hosp-b', next),
      await newKeys('hosp-a', next, { network: 'f'.repeat(32) }),
      { ...(await newKeys('hosp-a', next)), encryptionKey: old.encryptionKey },
      { ...(await newKeys('hosp-a', next)), encryptionKey: null },
    ];
    const before = ledger.snapshot();
    for (const [i, body] of bodies.entries()) {
      expect(await ledger.code(ledger.tx(old, 'membership.rotateKey', body)), String(i)).toBe('MEMBER_KEY_POSSESSION_INVALID');
    }
    expect(ledger.snapshot()).toEqual(before);
  });

  it('refuses a key that is, or was, anyone’s with ALREADY_EXISTS', async () => {
    const old = ledger.institution('hosp-a');
    for (const who of [old, ledger.institution('hosp-b'), cast.staff('hosp-a/dr-kim'), cast.alice.patient, ledger.net.issuer]) {
      expect(await ledger.code(ledger.tx(old, 'membership.rotateKey', await newKeys('hosp-a', who))), who.label).toBe('ALREADY_EXISTS');
    }
    await ledger.ok(ledger.tx(old, 'membership.rotateKey', await newKeys('hosp-a', next)));
    expect(await ledger.code(ledger.tx(next, 'membership.rotateKey', await newKeys('hosp-a', old)))).toBe('ALREADY_EXISTS');
  });

  it('is for institutions only, and not for a removed one', async () => {
    const body = await newKeys('hosp-a', next);
    for (const author of [cast.staff('hosp-a/op-a'), cast.alice.patient, ledger.net.issuer]) {
      expect(await ledger.code(ledger.tx(author, 'membership.rotateKey', body)), author.label).toBe('ROLE_FORBIDDEN');
    }
    const id = await propose({ action: 'remove', institutionId: 'clinic-c' });
    for (const m of ['hosp-a', 'hosp-b', 'lab-d']) await vote(m, id, true);
    expect(await ledger.code(ledger.tx(ledger.institution('clinic-c'), 'membership.rotateKey', await newKeys('clinic-c', next)))).toBe(
      'NOT_A_MEMBER',
    );
  });
});

describe('membership.propose replaceKey: a lost or stolen institution key', () => {
  let cast: Cast;
  let next: Identity;
  beforeEach(async () => {
    cast = await createCast();
    ledger = cast.ledger;
    next = await Identity.generate('clinic-c');
  });

  async function replaceBody(institutionId = 'clinic-c', who = next): Promise<JsonObject> {
    return { action: 'replaceKey', institutionId, ...(await newKeys(institutionId, who)) };
  }

  it('is decided by the other members: 3 of the other 4; the subject may not vote', async () => {
    const stolen = ledger.institution('clinic-c');
    const id = await propose(await replaceBody(), ledger.institution('hosp-a'));
    expect(ledger.get<Proposal>('proposals', id)).toMatchObject({
      action: 'replaceKey',
      institutionId: 'clinic-c',
      institution: null,
      replacement: { signingKey: next.signingKey, encryptionKey: next.encryptionKey },
      status: 'open',
    });
    expect(await vote('clinic-c', id, true)).toBe('ROLE_FORBIDDEN');
    expect(await vote('clinic-c', id, false)).toBe('ROLE_FORBIDDEN');
    expect(await vote('hosp-a', id, true)).toBe('OK');
    expect(await vote('hosp-b', id, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('open');
    expect(ledger.get<KeyEntry>('keys', stolen.keyId)?.status).toBe('active');

    const exec = await ledger.run([await ledger.tx(ledger.institution('lab-d'), 'membership.vote', { proposalId: id, approve: true })]);
    expect(exec.codes).toEqual(['OK']);
    expect(ledger.get<Proposal>('proposals', id)).toMatchObject({ status: 'accepted', decidedAtHeight: ledger.height });
    expect(ledger.get<Member>('members', 'clinic-c')).toMatchObject({
      status: 'active',
      signingKey: next.signingKey,
      encryptionKey: next.encryptionKey,
      previousKeys: [{ publicKey: stolen.signingKey, untilHeight: ledger.height }],
    });
    expect(exec.events.map((e) => e.event.type)).toEqual(['membership.keyRotated', 'membership.changed']);
    expect(exec.events[0]?.event.data).toEqual({
      institution: 'clinic-c',
      mode: 'replaced',
      keyId: next.keyId,
      previousKeyId: stolen.keyId,
    });
    expect(await ledger.code(ledger.tx(stolen, 'membership.setEndpoint', { vaultUrl: null }))).toBe('IDENTITY_REVOKED');
    expect(await ledger.code(ledger.tx(next, 'membership.setEndpoint', { vaultUrl: null }))).toBe('OK');
    const asked = {
      patientCode: cast.alice.patientCode,
      scope: { kind: 'all' },
      purpose: 'TREAT',
      deidentification: 'identified',
      reason: 'x',
    };
    expect(await ledger.code(ledger.tx(cast.staff('clinic-c/dr-choi'), 'access.request', asked))).toBe('OK');
  });

  it('needs what a removal needs, counting the subject’s seat: with 4 members, all 3 others', async () => {
    // Two members must not get a third validator key (3 of 4 certify alone) more cheaply than
    // they could remove that member.
    const out = await propose({ action: 'remove', institutionId: 'res-e' }, ledger.institution('hosp-a'));
    for (const m of ['hosp-a', 'hosp-b', 'lab-d']) expect(await vote(m, out, true)).toBe('OK');
    expect(ledger.get<Member>('members', 'res-e')?.status).toBe('removed');
    const id = await propose(await replaceBody(), ledger.institution('hosp-a'));
    expect(await vote('hosp-a', id, true)).toBe('OK');
    expect(await vote('hosp-b', id, true)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('open');
    expect(ledger.get<Member>('members', 'clinic-c')?.signingKey).toBe(ledger.institution('clinic-c').signingKey);
    expect(await vote('lab-d', id, true)).toBe('OK');
    expect(ledger.get<Member>('members', 'clinic-c')?.signingKey).toBe(next.signingKey);

    const again = await propose(await replaceBody('hosp-b', await Identity.generate('hosp-b')), ledger.institution('hosp-a'));
    expect(await vote('lab-d', again, false)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', again)?.status).toBe('rejected');
  });

  it('fails once the other members can no longer pass it: 2 no of 4', async () => {
    const id = await propose(await replaceBody(), ledger.net.issuer);
    expect(await vote('hosp-a', id, false)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)?.status).toBe('open');
    expect(await vote('res-e', id, false)).toBe('OK');
    expect(ledger.get<Proposal>('proposals', id)).toMatchObject({ status: 'rejected', decidedAtHeight: ledger.height });
    expect(ledger.get<Member>('members', 'clinic-c')?.signingKey).toBe(ledger.institution('clinic-c').signingKey);
    expect(ledger.get('keys', next.keyId)).toBeUndefined();
  });

  it('replaces whatever key a thief rotated to in the meantime', async () => {
    const stolen = ledger.institution('clinic-c');
    const id = await propose(await replaceBody(), ledger.institution('hosp-b'));
    const thief = await Identity.generate('thief');
    await ledger.ok(ledger.tx(stolen, 'membership.rotateKey', await newKeys('clinic-c', thief)));
    for (const m of ['hosp-a', 'hosp-b', 'lab-d']) expect(await vote(m, id, true)).toBe('OK');
    expect(ledger.get<Member>('members', 'clinic-c')?.signingKey).toBe(next.signingKey);
    expect(ledger.get<Member>('members', 'clinic-c')?.previousKeys?.map((k) => k.publicKey)).toEqual([stolen.signingKey, thief.signingKey]);
    expect(await ledger.code(ledger.tx(thief, 'membership.setEndpoint', { vaultUrl: null }))).toBe('IDENTITY_REVOKED');
  });

  it('refuses at proposal: a non-member, the subject itself, a bad proof, a key in use', async () => {
    const a = ledger.institution('hosp-a');
    expect(await ledger.code(ledger.tx(a, 'membership.propose', await replaceBody('hosp-z')))).toBe('NOT_A_MEMBER');
    expect(await ledger.code(ledger.tx(ledger.institution('clinic-c'), 'membership.propose', await replaceBody()))).toBe('ROLE_FORBIDDEN');
    const forged = { ...(await replaceBody()), possession: (await newKeys('clinic-c', next, { prover: a }))['possession']! };
    expect(await ledger.code(ledger.tx(a, 'membership.propose', forged))).toBe('MEMBER_KEY_POSSESSION_INVALID');
    const otherMember = { ...(await replaceBody('hosp-b')), institutionId: 'clinic-c' };
    expect(await ledger.code(ledger.tx(a, 'membership.propose', otherMember))).toBe('MEMBER_KEY_POSSESSION_INVALID');
    expect(await ledger.code(ledger.tx(a, 'membership.propose', await replaceBody('clinic-c', cast.staff('hosp-a/dr-kim'))))).toBe(
      'ALREADY_EXISTS',
    );
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'membership.propose', await replaceBody()))).toBe('ROLE_FORBIDDEN');
  });

  it('re-checks the key at the deciding vote: taken since by another → ALREADY_EXISTS, nothing replaced', async () => {
    const id = await propose(await replaceBody(), ledger.institution('hosp-a'));
    // The same key enrolled as staff before the vote decides.
    await ledger.ok(
      ledger.tx(ledger.institution('hosp-b'), 'identity.enrolStaff', {
        localId: 'x',
        role: 'doctor',
        signingKey: next.signingKey,
        encryptionKey: null,
        displayName: 'x',
      }),
    );
    expect(await vote('hosp-a', id, true)).toBe('OK');
    expect(await vote('hosp-b', id, true)).toBe('OK');
    expect(await vote('lab-d', id, true)).toBe('ALREADY_EXISTS');
    expect(ledger.get<Member>('members', 'clinic-c')?.signingKey).toBe(ledger.institution('clinic-c').signingKey);
  });
});

describe('finality follows a member’s key from the height after the block that changed it', () => {
  /** A certificate for block `height` of the test ledger, signed by `signers`. */
  async function certificate(height: number, signers: Identity[]): Promise<FinalityCertificate> {
    const header = ledger.blocks[height]!.header;
    const values = { network: ledger.network, height, blockHash: blockHash(header), stateRoot: header.stateRoot };
    const votes = await Promise.all(signers.map((s) => signVote(values, s.file.signing)));
    return { ...values, votes: votes.map((v) => ({ validator: v.validator, signature: v.signature })) };
  }

  it('checks a certificate of each height against the key in force then: the old key is refused after its block', async () => {
    // Validators: hosp-a, hosp-b, clinic-c (two-thirds: 2 of 3).
    const old = ledger.institution('hosp-a');
    const b = ledger.institution('hosp-b');
    const next = await Identity.generate('hosp-a');
    await ledger.run([]);
    await ledger.ok(ledger.tx(old, 'membership.rotateKey', await newKeys('hosp-a', next)));
    const k = ledger.height;
    await ledger.run([]);
    await ledger.run([]);

    // Checked with the latest state: every height gets the key in force at it.
    expect(validatorsAt(ledger.state, k).find((v) => v.institution === 'hosp-a')?.publicKey).toBe(old.signingKey);
    expect(validatorsAt(ledger.state, k + 1).find((v) => v.institution === 'hosp-a')?.publicKey).toBe(next.signingKey);
    expect(validatorsAt(ledger.state, k + 1).map((v) => v.institution)).toEqual(['hosp-a', 'hosp-b', 'clinic-c']);

    await expect(verifyCertificate(await certificate(k, [old, b]), validatorsAt(ledger.state, k), 'two-thirds')).resolves.toBeUndefined();
    await expect(
      verifyCertificate(await certificate(k + 1, [next, b]), validatorsAt(ledger.state, k + 1), 'two-thirds'),
    ).resolves.toBeUndefined();
    for (const h of [k + 1, k + 2]) {
      await expect(verifyCertificate(await certificate(h, [old, b]), validatorsAt(ledger.state, h), 'two-thirds')).rejects.toMatchObject({
        code: 'CHAIN_BROKEN',
        payload: { height: h, good: 1, need: 2 },
      });
    }
    // And the new key cannot sign for the heights before it.
    await expect(verifyCertificate(await certificate(k, [next, b]), validatorsAt(ledger.state, k), 'two-thirds')).rejects.toMatchObject({
      code: 'CHAIN_BROKEN',
    });
  });

  it('walks two rotations and a replacement, and admissions and removals, height by height', async () => {
    const keysOfA = [ledger.institution('hosp-a')];
    for (let i = 0; i < 2; i++) {
      const n = await Identity.generate('hosp-a');
      await ledger.ok(ledger.tx(keysOfA[i]!, 'membership.rotateKey', await newKeys('hosp-a', n)));
      keysOfA.push(n);
    }
    const replaced = await Identity.generate('hosp-a');
    const id = await propose(
      { action: 'replaceKey', institutionId: 'hosp-a', ...(await newKeys('hosp-a', replaced)) },
      ledger.institution('hosp-b'),
    );
    for (const m of ['hosp-b', 'clinic-c', 'lab-d']) await vote(m, id, true);
    keysOfA.push(replaced);
    const validator = await Identity.generate('hosp-f');
    const admit = await propose(
      {
        ...admitBody('hosp-f', validator),
        institution: { ...(admitBody('hosp-f', validator)['institution'] as JsonObject), validator: true },
      },
      ledger.institution('hosp-b'),
    );
    for (const m of ['hosp-b', 'clinic-c', 'lab-d']) await vote(m, admit, true);
    const remove = await propose({ action: 'remove', institutionId: 'clinic-c' }, ledger.institution('hosp-b'));
    for (const m of ['hosp-b', 'lab-d', 'res-e']) await vote(m, remove, true);
    // Six members: the fourth yes, from hosp-a's key of now.
    await ledger.ok(ledger.tx(replaced, 'membership.vote', { proposalId: remove, approve: true }));
    const admittedAt = ledger.get<Member>('members', 'hosp-f')!.admittedAtHeight;
    const removedAt = ledger.get<Member>('members', 'clinic-c')!.removedAtHeight!;
    const changes = ledger.get<Member>('members', 'hosp-a')!.previousKeys!.map((k) => k.untilHeight);

    // The same answer as the set a node records block by block from the state of the moment.
    for (let h = 1; h <= ledger.height + 1; h++) {
      const set = validatorsAt(ledger.state, h);
      const expectedA = keysOfA[changes.filter((c) => c < h).length]!;
      expect(set.find((v) => v.institution === 'hosp-a')?.publicKey, `hosp-a at ${h}`).toBe(expectedA.signingKey);
      expect(
        set.some((v) => v.institution === 'hosp-f'),
        `hosp-f at ${h}`,
      ).toBe(h > admittedAt);
      expect(
        set.some((v) => v.institution === 'clinic-c'),
        `clinic-c at ${h}`,
      ).toBe(h <= removedAt);
      expect(set.some((v) => v.institution === 'lab-d' || v.institution === 'res-e')).toBe(false);
    }
  });
});
