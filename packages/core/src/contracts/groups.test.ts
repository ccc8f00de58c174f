/**
 * Group keys: epochs follow one another, each wrapped to exactly the group's active members; a
 * change of members makes the group stale until the next epoch; records name a current epoch;
 * a member opens the epoch key and, with it, a record's data key.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createCast, recordBody, type Cast } from '../ledger/test-network.test-fixture.ts';
import { issueGroupEpoch, openGroupEnvelope, unwrapFromGroup, wrapForGroup } from '../client/group-keys.ts';
import { newDataKey } from '../crypto/record-envelope.ts';
import type { Identity } from '../client/identity.ts';
import type { GroupEpoch, GroupKey } from './state.ts';
import { parseGroupKeyId } from './groups.ts';

let cast: Cast;
beforeEach(async () => {
  cast = await createCast();
});

const member = (id: Identity) => ({ staffId: id.label, encryptionKey: id.encryptionKey });

async function rotate(author: Identity, role: string, epoch: number, members: Identity[]) {
  const issued = await issueGroupEpoch(members.map(member));
  const entry = await cast.ledger.tx(author, 'groups.rotate', { role, epoch, envelopes: issued.envelopes });
  return { code: await cast.ledger.code(entry), issued };
}

describe('groups.rotate', () => {
  it('issues epoch 1 to the doctors of hosp-a, which a member opens', async () => {
    const kim = cast.staff('hosp-a/dr-kim');
    const { code, issued } = await rotate(cast.ledger.institution('hosp-a'), 'doctor', 1, [kim]);
    expect(code).toBe('OK');
    expect(cast.ledger.get<GroupKey>('groupKeys', 'hosp-a/doctor')).toMatchObject({ epoch: 1, stale: false });
    const epoch = cast.ledger.get<GroupEpoch>('groupKeys', 'hosp-a/doctor:1')!;
    const opened = await openGroupEnvelope(epoch.envelopes['hosp-a/dr-kim']!, kim.file.encryption.privateKey);
    expect(opened).toEqual(issued.groupKey);
  });

  it('lets the institution’s operator rotate, but not its doctor', async () => {
    const kim = cast.staff('hosp-a/dr-kim');
    expect((await rotate(kim, 'doctor', 1, [kim])).code).toBe('ROLE_FORBIDDEN');
    expect((await rotate(cast.staff('hosp-a/op-a'), 'doctor', 1, [kim])).code).toBe('OK');
  });

  it('refuses a skipped epoch, a missing member and an outsider', async () => {
    const a = cast.ledger.institution('hosp-a');
    const kim = cast.staff('hosp-a/dr-kim');
    expect((await rotate(a, 'doctor', 2, [kim])).code).toBe('GROUP_EPOCH_INVALID');
    expect((await rotate(a, 'nurse', 1, [kim])).code).toBe('GROUP_EPOCH_INVALID');
    expect((await rotate(a, 'doctor', 1, [kim, cast.staff('hosp-b/dr-park')])).code).toBe('GROUP_EPOCH_INVALID');
    expect((await rotate(a, 'researcher', 1, [])).code).toBe('GROUP_EPOCH_INVALID');
  });

  it('goes stale when a member joins or leaves, until the next epoch wraps to the remaining members', async () => {
    const a = cast.ledger.institution('hosp-a');
    const kim = cast.staff('hosp-a/dr-kim');
    expect((await rotate(a, 'doctor', 1, [kim])).code).toBe('OK');
    const ahn = await cast.ledger.enrol('hosp-a', 'dr-ahn', 'doctor');
    expect(cast.ledger.get<GroupKey>('groupKeys', 'hosp-a/doctor')!.stale).toBe(true);
    // the old epoch may no longer be used for new records
    const stale = recordBody(cast.alice.patientCode, {
      groupKeyId: 'hosp-a/doctor:1',
      keyEnvelopes: { patient: 'AA', custodian: 'AA', group: 'AA' },
    });
    expect(await cast.ledger.code(cast.ledger.tx(kim, 'records.register', stale))).toBe('GROUP_EPOCH_STALE');
    expect((await rotate(a, 'doctor', 2, [kim, ahn])).code).toBe('OK');
    await cast.ledger.ok(cast.ledger.tx(a, 'identity.revokeStaff', { staffId: 'hosp-a/dr-ahn' }));
    expect(cast.ledger.get<GroupKey>('groupKeys', 'hosp-a/doctor')!.stale).toBe(true);
    // a removed member gets no envelope of the new epoch
    expect((await rotate(a, 'doctor', 3, [kim, ahn])).code).toBe('GROUP_EPOCH_INVALID');
    expect((await rotate(a, 'doctor', 3, [kim])).code).toBe('OK');
    expect(Object.keys(cast.ledger.get<GroupEpoch>('groupKeys', 'hosp-a/doctor:3')!.envelopes)).toEqual(['hosp-a/dr-kim']);
  });
});

describe('records that use a group key', () => {
  it('name the current epoch of one of the custodian’s groups, with a group envelope', async () => {
    const a = cast.ledger.institution('hosp-a');
    const kim = cast.staff('hosp-a/dr-kim');
    const { issued } = await rotate(a, 'doctor', 1, [kim]);
    await rotate(cast.ledger.institution('hosp-b'), 'doctor', 1, [cast.staff('hosp-b/dr-park')]);
    const dataKey = newDataKey();
    const group = await wrapForGroup(dataKey, issued.groupKey, 'hosp-a/doctor:1');
    const body = (groupKeyId: string | null, g?: string) =>
      recordBody(cast.alice.patientCode, {
        groupKeyId,
        keyEnvelopes: g === undefined ? { patient: 'AA', custodian: 'AA' } : { patient: 'AA', custodian: 'AA', group: g },
      });
    expect(await cast.ledger.code(cast.ledger.tx(kim, 'records.register', body('hosp-a/doctor:1')))).toBe('TX_BODY_INVALID');
    expect(await cast.ledger.code(cast.ledger.tx(kim, 'records.register', body(null, group)))).toBe('TX_BODY_INVALID');
    expect(await cast.ledger.code(cast.ledger.tx(kim, 'records.register', body('hosp-b/doctor:1', group)))).toBe('GROUP_EPOCH_STALE');
    expect(await cast.ledger.code(cast.ledger.tx(kim, 'records.register', body('hosp-a/doctor:2', group)))).toBe('GROUP_EPOCH_STALE');
    expect(await cast.ledger.code(cast.ledger.tx(kim, 'records.register', body('hosp-a/doctor:1', group)))).toBe('OK');
    expect(await unwrapFromGroup(group, issued.groupKey, 'hosp-a/doctor:1')).toEqual(dataKey);
    await expect(unwrapFromGroup(group, issued.groupKey, 'hosp-a/doctor:2')).rejects.toMatchObject({ code: 'RECORD_INTEGRITY' });
  });

  it('parses group key ids strictly', () => {
    expect(parseGroupKeyId('hosp-a/doctor:12')).toEqual({ institution: 'hosp-a', role: 'doctor', epoch: 12 });
    for (const bad of ['hosp-a/doctor', 'hosp-a/doctor:0', 'hosp-a/pilot:1', 'Hosp/doctor:1', 'hosp-a/doctor:1:2']) {
      expect(parseGroupKeyId(bad)).toBeNull();
    }
  });
});
