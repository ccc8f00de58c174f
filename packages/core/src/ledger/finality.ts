/**
 * Finality (DESIGN §2): after executing block h each validator signs
 * `(network, height, blockHash, stateRoot)`; a block is final when a quorum of the validator
 * set in force at that height signed the same values. A certificate is those signatures, and
 * anyone can check it offline with `core` and the validator set.
 */
import { canonicalBytes } from '../codec/canonical-json.ts';
import { concatBytes, fromBase64Url, toBase64Url, utf8 } from '../codec/bytes.ts';
import { keyId, sign, verify } from '../crypto/ed25519.ts';
import { MedledgerError } from '../errors.ts';
import type { Member, StateReader } from '../contracts/state.ts';
import type { QuorumRule } from './genesis.ts';

export interface Vote {
  network: string;
  height: number;
  blockHash: string;
  stateRoot: string;
  /** key id of the validator's signing key */
  validator: string;
  signature: string;
}

export interface Validator {
  institution: string;
  keyId: string;
  publicKey: string;
}

export interface FinalityCertificate {
  network: string;
  height: number;
  blockHash: string;
  stateRoot: string;
  votes: { validator: string; signature: string }[];
}

const VOTE_DOMAIN = utf8('medledger/vote/v1\n');

export function voteMessage(v: Pick<Vote, 'network' | 'height' | 'blockHash' | 'stateRoot'>): Uint8Array {
  return concatBytes(VOTE_DOMAIN, canonicalBytes({ network: v.network, height: v.height, blockHash: v.blockHash, stateRoot: v.stateRoot }));
}

export async function signVote(p: Omit<Vote, 'validator' | 'signature'>, signer: { publicKey: string; privateKey: string }): Promise<Vote> {
  return { ...p, validator: keyId(signer.publicKey), signature: toBase64Url(await sign(signer.privateKey, voteMessage(p))) };
}

/**
 * The validator set in force at `height`, from member rows alone: a member admitted, removed or
 * given a new key in block k counts with its new standing or key from height k+1 on. `state`
 * may be any later state, so a client checks an old certificate with `core` and today's state.
 */
export function validatorsAt(state: StateReader, height: number): Validator[] {
  const ids = (state.get('meta', 'members') as string[] | undefined) ?? [];
  const set: Validator[] = [];
  for (const id of ids) {
    const m = state.get('members', id) as Member | undefined;
    if (m === undefined || !m.validator || m.admittedAtHeight >= height) continue;
    if (m.status !== 'active' && (m.removedAtHeight === undefined || m.removedAtHeight < height)) continue;
    // The first key whose last height is at or after `height`, or the current one.
    const publicKey = (m.previousKeys ?? []).find((k) => k.untilHeight >= height)?.publicKey ?? m.signingKey;
    set.push({ institution: m.id, keyId: keyId(publicKey), publicKey });
  }
  return set;
}

/** How many of `n` validators make a quorum. */
export function quorumSize(rule: QuorumRule, n: number): number {
  return rule === 'majority' ? Math.floor(n / 2) + 1 : Math.ceil((2 * n) / 3);
}

export async function verifyVote(v: Vote, validators: readonly Validator[]): Promise<boolean> {
  const val = validators.find((x) => x.keyId === v.validator);
  if (val === undefined) return false;
  let sig: Uint8Array;
  let message: Uint8Array;
  try {
    // Anyone may publish to the votes stream: a vote of the wrong shape is just not a vote.
    if (typeof v.blockHash !== 'string' || typeof v.stateRoot !== 'string' || typeof v.network !== 'string') return false;
    sig = fromBase64Url(v.signature);
    message = voteMessage(v);
  } catch {
    return false;
  }
  return verify(val.publicKey, message, sig);
}

/** Checks a certificate against the validator set in force at its height; throws CHAIN_BROKEN. */
export async function verifyCertificate(c: FinalityCertificate, validators: readonly Validator[], rule: QuorumRule): Promise<void> {
  const seen = new Set<string>();
  let good = 0;
  for (const v of c.votes) {
    if (seen.has(v.validator)) continue;
    seen.add(v.validator);
    if (await verifyVote({ ...v, network: c.network, height: c.height, blockHash: c.blockHash, stateRoot: c.stateRoot }, validators))
      good++;
  }
  const need = quorumSize(rule, validators.length);
  if (good < need) {
    throw new MedledgerError('CHAIN_BROKEN', {
      details: `Certificate has ${good} valid votes of ${need} needed.`,
      payload: { height: c.height, good, need },
    });
  }
}
