/**
 * Group keys (TMSMD §4.2): each role group of an institution (its doctors, its nurses, …) shares a
 * symmetric key, issued in epochs. An epoch's key is wrapped to every member's encryption key on
 * the ledger; a record that uses a group key names the epoch (`groupKeyId`). When the group's
 * members change (enrolment or revocation), the group goes stale and no record may use it until
 * the institution issues the next epoch, wrapped to exactly the remaining members.
 */
import { Type, type Static } from '@sinclair/typebox';
import { reject, type ContractInput, type Draft } from './context.ts';
import { StaffRole } from './schemas.ts';
import type { GroupEpoch, GroupKey, Staff } from './state.ts';
import type { StaffRole as Role } from '../policy/roles.ts';
import { StaffRoles } from '../policy/roles.ts';

const B64 = '^[A-Za-z0-9_-]*$';

export const RotateBody = Type.Object(
  {
    role: StaffRole,
    epoch: Type.Integer({ minimum: 1, maximum: 2 ** 31 }),
    envelopes: Type.Record(
      Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}/[a-z0-9][a-z0-9.-]{0,47}$' }),
      Type.String({ pattern: B64, maxLength: 1024 }),
      {
        maxProperties: 4096,
      },
    ),
  },
  { additionalProperties: false },
);

export function groupId(institution: string, role: string): string {
  return `${institution}/${role}`;
}

export function groupKeyIdOf(institution: string, role: string, epoch: number): string {
  return `${groupId(institution, role)}:${epoch}`;
}

/** Parses `<institution>/<role>:<epoch>`; null when it is not of that form. */
export function parseGroupKeyId(id: string): { institution: string; role: Role; epoch: number } | null {
  const m = /^([a-z0-9][a-z0-9-]{0,47})\/([a-z]+):([1-9][0-9]{0,9})$/.exec(id);
  if (m === null || !Object.hasOwn(StaffRoles, m[2]!)) return null;
  return { institution: m[1]!, role: m[2] as Role, epoch: Number(m[3]) };
}

/** The staff ids a group's key must be wrapped to: its active members that have an encryption key. */
export function groupMembers(draft: Draft, institution: string, role: Role): string[] {
  const ids = draft.get<string[]>('meta', staffIndexKey(institution)) ?? [];
  return ids
    .map((id) => draft.get<Staff>('staff', id))
    .filter((s): s is Staff => s !== undefined && s.status === 'active' && s.role === role && s.encryptionKey !== null)
    .map((s) => s.staffId)
    .sort();
}

/** The per-institution list of staff ids, kept by the identity contract. */
export function staffIndexKey(institution: string): string {
  return `staff:${institution}`;
}

/** Called when a group's membership changes: the current epoch may no longer be used. */
export function markGroupStale(draft: Draft, institution: string, role: Role): void {
  const group = draft.get<GroupKey>('groupKeys', groupId(institution, role));
  if (group !== undefined && !group.stale) draft.put('groupKeys', group.groupId, { ...group, stale: true });
}

export function rotate(input: ContractInput<Static<typeof RotateBody>>): void {
  const { draft, body, ctx, principal } = input;
  const institution = principal.institution!.id;
  const id = groupId(institution, body.role);
  const current = draft.get<GroupKey>('groupKeys', id);
  if (body.epoch !== (current?.epoch ?? 0) + 1) reject('GROUP_EPOCH_INVALID', 'The epoch must be the next one.');
  const members = groupMembers(draft, institution, body.role);
  const wrapped = Object.keys(body.envelopes).sort();
  if (members.length === 0) reject('GROUP_EPOCH_INVALID', 'The group has no member with an encryption key.');
  if (wrapped.length !== members.length || wrapped.some((s, i) => s !== members[i])) {
    reject('GROUP_EPOCH_INVALID', 'The key must be wrapped to exactly the group’s active members.');
  }
  const groupKeyId = groupKeyIdOf(institution, body.role, body.epoch);
  const epoch: GroupEpoch = {
    groupKeyId,
    groupId: id,
    epoch: body.epoch,
    envelopes: body.envelopes,
    issuedAt: ctx.time,
    height: ctx.height,
  };
  const group: GroupKey = {
    groupId: id,
    institution,
    role: body.role,
    epoch: body.epoch,
    stale: false,
    rotatedAt: ctx.time,
    height: ctx.height,
  };
  draft.put('groupKeys', groupKeyId, epoch);
  draft.put('groupKeys', id, group);
  input.events.push({ type: 'groups.rotated', data: { groupId: id, groupKeyId, epoch: body.epoch, members: wrapped.length } });
}
