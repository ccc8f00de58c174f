/**
 * Membership: the Issuer or a member proposes to admit or remove an institution; members vote;
 * a proposal passes when more than half of the current members approve (consortium paper §3:
 * operations need the agreement of more than half of the nodes) and fails once it no longer can.
 * An institution replaces its own key with its current one; one that lost its key (or had it
 * stolen) gets a new one by a proposal that the other members decide.
 */
import { Type, type Static } from '@sinclair/typebox';
import { canonicalBytes } from '../codec/canonical-json.ts';
import { concatBytes, fromBase64Url, utf8 } from '../codec/bytes.ts';
import { keyId } from '../crypto/ed25519.ts';
import { reject, type ContractInput, type Draft } from './context.ts';
import { Id, InstitutionKind, PublicKey, Signature, Text, TxRef } from './schemas.ts';
import type { InstitutionDescriptor, KeyEntry, Member, Proposal } from './state.ts';

export const InstitutionSchema = Type.Object(
  {
    id: Id,
    name: Text(200),
    kind: InstitutionKind,
    signingKey: PublicKey,
    encryptionKey: Type.Union([PublicKey, Type.Null()]),
    validator: Type.Boolean(),
  },
  { additionalProperties: false },
);

/** An institution's new keys, with the proof (`memberKeyMessage`) that the new signing key signed them. */
const NewMemberKeys = {
  signingKey: PublicKey,
  encryptionKey: Type.Union([PublicKey, Type.Null()]),
  possession: Signature,
};

export const ProposeBody = Type.Union([
  Type.Object({ action: Type.Literal('admit'), institution: InstitutionSchema }, { additionalProperties: false }),
  Type.Object({ action: Type.Literal('remove'), institutionId: Id }, { additionalProperties: false }),
  Type.Object({ action: Type.Literal('replaceKey'), institutionId: Id, ...NewMemberKeys }, { additionalProperties: false }),
]);
export const RotateKeyBody = Type.Object(NewMemberKeys, { additionalProperties: false });
export const VoteBody = Type.Object({ proposalId: TxRef, approve: Type.Boolean() }, { additionalProperties: false });
export const SetEndpointBody = Type.Object(
  { vaultUrl: Type.Union([Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$', maxLength: 300 }), Type.Null()]) },
  { additionalProperties: false },
);

export const MEMBERS_KEY = 'members';

const MEMBER_KEY_DOMAIN = utf8('medledger/member-key/v1\n');

/**
 * What an institution's new signing key signs to become that institution's key: by its own
 * rotation or by the other members' vote. It names the institution, so another member cannot
 * take the proof to claim the key.
 */
export function memberKeyMessage(network: string, institution: string, signingKey: string, encryptionKey: string | null): Uint8Array {
  return concatBytes(MEMBER_KEY_DOMAIN, canonicalBytes({ network, institution, signingKey, encryptionKey }));
}

export function memberIds(draft: Draft): string[] {
  return draft.get<string[]>('meta', MEMBERS_KEY) ?? [];
}

export function activeMembers(draft: Draft): Member[] {
  return memberIds(draft)
    .map((id) => draft.get<Member>('members', id))
    .filter((m): m is Member => m !== undefined && m.status === 'active');
}

/** Writes a newly admitted institution and its key; shared by genesis and admission votes. */
export function admitInstitution(draft: Draft, inst: InstitutionDescriptor, time: number, height: number): void {
  const member: Member = { ...inst, status: 'active', admittedAt: time, admittedAtHeight: height };
  draft.put('members', inst.id, member);
  const kid = keyId(inst.signingKey);
  const key: KeyEntry = { keyId: kid, publicKey: inst.signingKey, owner: { kind: 'institution', institution: inst.id }, status: 'active' };
  draft.put('keys', kid, key);
  const ids = memberIds(draft);
  if (!ids.includes(inst.id)) draft.put('meta', MEMBERS_KEY, [...ids, inst.id]);
}

/**
 * Installs `keys` as the member's from the next height on: its current key is revoked now, so a
 * tx it signs later in this block or after is refused, and the validator set of the next height
 * names the new key (see `validatorsAt` in ledger/finality).
 */
function replaceMemberKey(draft: Draft, member: Member, keys: { signingKey: string; encryptionKey: string | null }, height: number): void {
  const oldId = keyId(member.signingKey);
  const old = draft.get<KeyEntry>('keys', oldId);
  if (old !== undefined) draft.put('keys', oldId, { ...old, status: 'revoked' });
  const kid = keyId(keys.signingKey);
  const key: KeyEntry = {
    keyId: kid,
    publicKey: keys.signingKey,
    owner: { kind: 'institution', institution: member.id },
    status: 'active',
  };
  draft.put('keys', kid, key);
  draft.put('members', member.id, {
    ...member,
    signingKey: keys.signingKey,
    encryptionKey: keys.encryptionKey,
    previousKeys: [...(member.previousKeys ?? []), { publicKey: member.signingKey, untilHeight: height }],
  });
}

function checkNewMemberKeys(input: ContractInput<unknown>, institution: string, keys: Static<typeof RotateKeyBody>): void {
  if (input.draft.get('keys', keyId(keys.signingKey)) !== undefined) reject('ALREADY_EXISTS', 'Signing key is in use.');
  const message = memberKeyMessage(input.ctx.network, institution, keys.signingKey, keys.encryptionKey);
  if (!input.ctx.verifySignature(keys.signingKey, message, fromBase64Url(keys.possession))) reject('MEMBER_KEY_POSSESSION_INVALID');
}

export function propose(input: ContractInput<Static<typeof ProposeBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  if (body.action === 'admit') {
    if (draft.get('members', body.institution.id) !== undefined) reject('ALREADY_EXISTS', 'Institution id is taken.');
    if (draft.get('keys', keyId(body.institution.signingKey)) !== undefined) reject('ALREADY_EXISTS', 'Signing key is in use.');
  } else {
    const m = draft.get<Member>('members', body.institutionId);
    if (m === undefined || m.status !== 'active') reject('NOT_A_MEMBER', 'Only an active member can be removed or have its key replaced.');
    if (body.action === 'replaceKey') {
      // An institution that still holds its key rotates it itself (membership.rotateKey).
      if (principal.institution?.id === m.id) reject('ROLE_FORBIDDEN', 'A member replaces its own key with membership.rotateKey.');
      checkNewMemberKeys(input, m.id, body);
    }
  }
  const proposal: Proposal = {
    id: txId,
    action: body.action,
    institution: body.action === 'admit' ? body.institution : null,
    institutionId: body.action === 'admit' ? body.institution.id : body.institutionId,
    ...(body.action === 'replaceKey' ? { replacement: { signingKey: body.signingKey, encryptionKey: body.encryptionKey } } : {}),
    proposer: principal.institution?.id ?? 'issuer',
    votes: {},
    status: 'open',
    createdAt: ctx.time,
  };
  draft.put('proposals', txId, proposal);
  input.events.push({
    type: 'membership.proposed',
    data: { proposalId: txId, action: body.action, institutionId: proposal.institutionId },
  });
}

export function vote(input: ContractInput<Static<typeof VoteBody>>): void {
  const { draft, body, ctx, principal } = input;
  const voter = principal.institution;
  if (voter === null) reject('ROLE_FORBIDDEN');
  const proposal = draft.get<Proposal>('proposals', body.proposalId);
  if (proposal === undefined) reject('NOT_FOUND', 'No such proposal.');
  if (proposal.status !== 'open') reject('PROPOSAL_CLOSED');
  if (Object.hasOwn(proposal.votes, voter.id)) reject('ALREADY_VOTED');
  // Whoever holds a lost or stolen key must not decide on its replacement: the others do.
  const subject = proposal.action === 'replaceKey' ? proposal.institutionId : null;
  if (voter.id === subject) reject('ROLE_FORBIDDEN', 'The other members decide on replacing a member’s key.');
  proposal.votes[voter.id] = body.approve;

  // Only votes of members active now count, so a removed member's earlier vote does not. A key
  // replacement needs what a removal needs, a majority of all active members, the subject's seat
  // counting against it: whoever gets the new key acts, and validates, as that member.
  const members = activeMembers(draft);
  const voters = members.filter((m) => m.id !== subject);
  const yes = voters.filter((m) => proposal.votes[m.id] === true).length;
  const no = voters.filter((m) => proposal.votes[m.id] === false).length;
  const needed = Math.floor(members.length / 2) + 1;
  if (yes >= needed) {
    proposal.status = 'accepted';
    proposal.decidedAtHeight = ctx.height;
    if (proposal.action === 'admit' && proposal.institution !== null) {
      // Re-checked at the deciding vote: another admission or enrolment may have taken the id
      // or the key since the proposal was made.
      if (draft.get('members', proposal.institution.id) !== undefined) reject('ALREADY_EXISTS', 'Institution id is taken.');
      if (draft.get('keys', keyId(proposal.institution.signingKey)) !== undefined) reject('ALREADY_EXISTS', 'Signing key is in use.');
      admitInstitution(draft, proposal.institution, ctx.time, ctx.height);
    } else if (proposal.action === 'replaceKey' && proposal.replacement !== undefined) {
      // Re-checked at the deciding vote, as for an admission.
      const m = draft.get<Member>('members', proposal.institutionId);
      if (m === undefined || m.status !== 'active') reject('NOT_A_MEMBER', 'Only an active member can have its key replaced.');
      if (draft.get('keys', keyId(proposal.replacement.signingKey)) !== undefined) reject('ALREADY_EXISTS', 'Signing key is in use.');
      replaceMemberKey(draft, m, proposal.replacement, ctx.height);
      input.events.push({
        type: 'membership.keyRotated',
        data: { institution: m.id, mode: 'replaced', keyId: keyId(proposal.replacement.signingKey), previousKeyId: keyId(m.signingKey) },
      });
    } else {
      const m = draft.get<Member>('members', proposal.institutionId);
      if (m !== undefined && m.status === 'active') {
        draft.put('members', m.id, { ...m, status: 'removed', removedAtHeight: ctx.height });
      }
    }
    input.events.push({
      type: 'membership.changed',
      data: { proposalId: proposal.id, action: proposal.action, institutionId: proposal.institutionId },
    });
  } else if (voters.length - no < needed) {
    proposal.status = 'rejected';
    proposal.decidedAtHeight = ctx.height;
  }
  draft.put('proposals', proposal.id, proposal);
}

/** An institution publishes where its vault answers, so other members can fetch what it keeps. */
export function setEndpoint(input: ContractInput<Static<typeof SetEndpointBody>>): void {
  const { draft, body, principal } = input;
  const member = draft.get<Member>('members', principal.institution!.id)!;
  draft.put('members', member.id, { ...member, vaultUrl: body.vaultUrl });
  input.events.push({ type: 'membership.endpoint', data: { institution: member.id, vaultUrl: body.vaultUrl } });
}

/**
 * An institution replaces its own keys, signing with its current key and proving it holds the new
 * one. Its staff keep their own keys: they are entries of their own, not certified by this one.
 */
export function rotateKey(input: ContractInput<Static<typeof RotateKeyBody>>): void {
  const { draft, body, ctx, principal } = input;
  const member = draft.get<Member>('members', principal.institution!.id)!;
  checkNewMemberKeys(input, member.id, body);
  replaceMemberKey(draft, member, body, ctx.height);
  input.events.push({
    type: 'membership.keyRotated',
    data: { institution: member.id, mode: 'planned', keyId: keyId(body.signingKey), previousKeyId: keyId(member.signingKey) },
  });
}
