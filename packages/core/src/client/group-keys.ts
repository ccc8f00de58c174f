/**
 * Group keys on the client side (TMSMD §4.2): a fresh epoch key wrapped to each member with HPKE,
 * and a record's data key wrapped under an epoch key (AES-256-GCM, bound to the epoch's id), so
 * any member of the group at that epoch can open the record and no one else can.
 */
import { utf8 } from '../codec/bytes.ts';
import { fromBase64Url, toBase64Url } from '../codec/bytes.ts';
import { decryptWithDataKey, encryptWithDataKey, newDataKey, unwrapDataKey, wrapDataKey } from '../crypto/record-envelope.ts';

const aad = (groupKeyId: string) => utf8(`medledger/group-envelope/v1 ${groupKeyId}`);

/** A new epoch: the key, and the envelopes for `groups.rotate` (staff id -> wrapped key). */
export async function issueGroupEpoch(members: readonly { staffId: string; encryptionKey: string }[]): Promise<{
  groupKey: Uint8Array;
  envelopes: Record<string, string>;
}> {
  const groupKey = newDataKey();
  const envelopes: Record<string, string> = {};
  for (const m of members) envelopes[m.staffId] = await wrapDataKey(groupKey, m.encryptionKey);
  return { groupKey, envelopes };
}

/** A member opens its envelope of an epoch with its encryption private key. */
export function openGroupEnvelope(envelope: string, memberPrivateKey: string): Promise<Uint8Array> {
  return unwrapDataKey(envelope, memberPrivateKey);
}

/** The record's `keyEnvelopes.group`: its data key under the epoch key. */
export async function wrapForGroup(dataKey: Uint8Array, groupKey: Uint8Array, groupKeyId: string): Promise<string> {
  return toBase64Url(await encryptWithDataKey(groupKey, dataKey, aad(groupKeyId)));
}

export async function unwrapFromGroup(envelope: string, groupKey: Uint8Array, groupKeyId: string): Promise<Uint8Array> {
  return decryptWithDataKey(groupKey, fromBase64Url(envelope), aad(groupKeyId));
}
