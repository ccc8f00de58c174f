/**
 * What a contract sees and returns. Contracts are pure: `(draft, tx, ctx) -> events` or a
 * rejection; time and height come from `ctx`, never a clock; signatures are checked through
 * `ctx.verifySignature`, which the caller supplies (deterministic by nature).
 */
import type { JsonObject, JsonValue } from '../codec/canonical-json.ts';
import { MedledgerError, type ErrorCode } from '../errors.ts';
import type { Tx } from '../ledger/tx.ts';
import type { InstitutionKind, Role } from '../policy/roles.ts';
import type { KeyEntry, Member, Patient, Staff, StateReader, StateTable, StateWrite } from './state.ts';

export interface BlockContext {
  network: string;
  height: number;
  /** block time in ms, from the orderer */
  time: number;
  verifySignature(publicKey: string, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * Optional answer from signatures checked ahead of time: true when exactly this signature of
   * this tx was verified against exactly `publicKey`; undefined when not known.
   */
  checkedTxSignature?: (txId: string, signature: string, publicKey: string) => boolean | undefined;
}

export interface LedgerEvent {
  type: string;
  patientCode?: string;
  data: JsonObject;
}

/** The principal behind a transaction's author key, resolved from state. */
export interface Principal {
  role: Role;
  keyId: string;
  /** the institution the author acts for (absent for the Issuer and patients) */
  institution: Member | null;
  institutionKind: InstitutionKind | undefined;
  staff: Staff | null;
  patient: Patient | null;
  key: KeyEntry;
}

/** A rejection carries a stable code; the tx is kept in its block with it. */
export class Rejection extends MedledgerError {}

export function reject(code: ErrorCode, details?: string): never {
  throw new Rejection(code, details === undefined ? {} : { details });
}

/**
 * A copy-on-write view of the state for one transaction: reads see this tx's own writes first.
 * Values are returned as fresh copies (a `StateReader` must return a value no one else holds),
 * so a contract cannot change state by mutating them.
 */
export class Draft {
  readonly writes = new Map<string, StateWrite>();
  constructor(private readonly base: StateReader) {}

  get<T>(table: StateTable, key: string): T | undefined {
    const w = this.writes.get(table + '\u0000' + key);
    // StateReader.get returns a fresh value; this draft's own writes are copied on the way out.
    if (w === undefined) return this.base.get(table, key) as T | undefined;
    return w.value === null ? undefined : (structuredClone(w.value) as T);
  }

  put(table: StateTable, key: string, value: object | null): void {
    this.writes.set(table + '\u0000' + key, { table, key, value: value as JsonValue | null });
  }
}

export interface ContractInput<B> {
  draft: Draft;
  tx: Tx;
  txId: string;
  body: B;
  principal: Principal;
  ctx: BlockContext;
  events: LedgerEvent[];
}
