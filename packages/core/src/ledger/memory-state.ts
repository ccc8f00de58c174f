/** World state and chain index held in memory: for verification, tests and the browser. */
import { canonicalJson, type JsonValue } from '../codec/canonical-json.ts';
import type { StateTable, StateWrite } from '../contracts/state.ts';
import type { WritableLedgerState } from './chain-verify.ts';

export class MemoryState implements WritableLedgerState {
  /** values kept as canonical JSON text, so readers always get fresh copies */
  readonly tables = new Map<string, string>();
  private readonly nonces = new Set<string>();
  private readonly txIds = new Set<string>();

  get(table: StateTable, key: string): JsonValue | undefined {
    const v = this.tables.get(table + '\u0000' + key);
    return v === undefined ? undefined : (JSON.parse(v) as JsonValue);
  }

  nonceUsed(author: string, nonce: string): boolean {
    return this.nonces.has(author + ' ' + nonce);
  }

  hasTx(txId: string): boolean {
    return this.txIds.has(txId);
  }

  apply(
    writes: readonly StateWrite[],
    txs: readonly { txId: string; author: string; nonce: string; ok: boolean }[],
    values?: readonly (string | null)[],
  ): void {
    writes.forEach((w, i) => {
      const k = w.table + '\u0000' + w.key;
      if (w.value === null) this.tables.delete(k);
      else this.tables.set(k, values?.[i] ?? canonicalJson(w.value));
    });
    for (const t of txs) {
      this.txIds.add(t.txId);
      if (t.ok) this.nonces.add(t.author + ' ' + t.nonce);
    }
  }

  /** Every (table, key, canonical value), sorted: what a stored state is compared against. */
  *entries(): Generator<[StateTable, string, string]> {
    const keys = [...this.tables.keys()].sort();
    for (const k of keys) {
      const i = k.indexOf('\u0000');
      yield [k.slice(0, i) as StateTable, k.slice(i + 1), this.tables.get(k)!];
    }
  }
}
