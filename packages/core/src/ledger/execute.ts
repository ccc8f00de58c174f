/**
 * Executes the transactions of one block in order against the state: checks the network, the
 * author key, the signature, replay, the author's standing and permission, the body, then runs
 * the contract. A rejected transaction keeps its place in the block with its code and writes
 * nothing; an accepted one's writes are visible to the transactions after it.
 */
import type { JsonValue } from '../codec/canonical-json.ts';
import { fromBase64Url } from '../codec/bytes.ts';
import { Draft, type BlockContext, type LedgerEvent, type Principal } from '../contracts/context.ts';
import { Contracts, bodyMatches } from '../contracts/registry.ts';
import { checkBody } from '../contracts/schemas.ts';
import type { KeyEntry, Member, Patient, Staff, StateReader, StateTable, StateWrite } from '../contracts/state.ts';
import { MedledgerError, type ErrorCode } from '../errors.ts';
import { can } from '../policy/roles.ts';
import { txSigningMessage, type Tx } from './tx.ts';
import { sortWrites } from './block.ts';

/** What the chain (not the world state) knows: which nonces valid transactions have used. */
export interface ChainIndex {
  nonceUsed(author: string, nonce: string): boolean;
}

export interface BlockEntry {
  tx: Tx;
  txId: string;
}

export type TxCode = 'OK' | ErrorCode;

export interface BlockExecution {
  codes: TxCode[];
  /** final value per changed key, sorted by table then key: the block's write set */
  writes: StateWrite[];
  /** events of accepted transactions, with the index of their transaction */
  events: { txIndex: number; txId: string; event: LedgerEvent }[];
}

/** The block-level overlay: accepted transactions' writes over the committed state. */
class BlockState implements StateReader {
  readonly changes = new Map<string, StateWrite>();
  constructor(private readonly base: StateReader) {}
  get(table: StateTable, key: string): JsonValue | undefined {
    const w = this.changes.get(table + '\u0000' + key);
    if (w !== undefined) return w.value === null ? undefined : structuredClone(w.value);
    return this.base.get(table, key);
  }
}

function resolvePrincipal(state: StateReader, tx: Tx): Principal {
  const key = state.get('keys', tx.author) as KeyEntry | undefined;
  if (key === undefined) throw new MedledgerError('TX_UNKNOWN_AUTHOR');
  const base = { keyId: key.keyId, key, institution: null, institutionKind: undefined, staff: null, patient: null };
  const owner = key.owner;
  switch (owner.kind) {
    case 'issuer':
      return { ...base, role: 'issuer' };
    case 'patient':
      return { ...base, role: 'patient', patient: state.get('patients', owner.patientCode) as unknown as Patient };
    case 'institution':
    case 'staff': {
      const member = state.get('members', owner.institution) as Member | undefined;
      if (member === undefined || member.status !== 'active') throw new MedledgerError('NOT_A_MEMBER');
      if (owner.kind === 'institution') return { ...base, role: 'institution', institution: member, institutionKind: member.kind };
      const staff = state.get('staff', owner.staffId) as unknown as Staff;
      return { ...base, role: staff.role, institution: member, institutionKind: member.kind, staff };
    }
  }
}

/**
 * `verifySignature` checks an Ed25519 signature synchronously; callers that verified signatures
 * ahead of time in parallel answer from their cache (see packages/node peer).
 */
export function executeBlock(state: StateReader, chain: ChainIndex, entries: readonly BlockEntry[], ctx: BlockContext): BlockExecution {
  const block = new BlockState(state);
  const codes: TxCode[] = [];
  const events: BlockExecution['events'] = [];
  const usedNonces = new Set<string>();

  entries.forEach(({ tx, txId }, txIndex) => {
    const txEvents: LedgerEvent[] = [];
    const draft = new Draft(block);
    try {
      if (tx.network !== ctx.network) throw new MedledgerError('TX_WRONG_NETWORK');
      const principal = resolvePrincipal(block, tx);
      const checked = ctx.checkedTxSignature?.(txId, tx.signature, principal.key.publicKey);
      if (
        checked === false ||
        (checked === undefined && !ctx.verifySignature(principal.key.publicKey, txSigningMessage(txId), fromBase64Url(tx.signature)))
      ) {
        throw new MedledgerError('TX_BAD_SIGNATURE');
      }
      const nonceKey = tx.author + ' ' + tx.nonce;
      if (usedNonces.has(nonceKey) || chain.nonceUsed(tx.author, tx.nonce)) throw new MedledgerError('TX_REPLAY');
      if (principal.key.status !== 'active' || principal.staff?.status === 'revoked') throw new MedledgerError('IDENTITY_REVOKED');
      if (
        !can({ role: principal.role, institutionKind: principal.institutionKind, qualifications: principal.staff?.qualifications }, tx.type)
      ) {
        throw new MedledgerError('ROLE_FORBIDDEN');
      }
      const contract = Contracts[tx.type];
      if (!bodyMatches(tx.type, tx.body)) checkBody(contract.schema, tx.body);
      try {
        contract.run({ draft, tx, txId, body: tx.body as never, principal, ctx, events: txEvents });
      } catch (e) {
        // A decoder refusing a field (TypeError/RangeError) is bad input, not a fault of the
        // node: every node rejects the tx the same way instead of halting on it.
        if (e instanceof TypeError || e instanceof RangeError) throw new MedledgerError('TX_BODY_INVALID', { details: e.message });
        throw e;
      }
      usedNonces.add(nonceKey);
      for (const [k, w] of draft.writes) block.changes.set(k, w);
      for (const event of txEvents) events.push({ txIndex, txId, event });
      codes.push('OK');
    } catch (e) {
      if (!(e instanceof MedledgerError)) throw e;
      codes.push(e.code);
    }
  });

  return { codes, writes: sortWrites(block.changes.values()), events };
}
