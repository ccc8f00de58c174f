/** Receipts: a tx, its RFC 6962 inclusion proof, its header and the block's results, checked offline. */
import { beforeAll, describe, expect, it } from 'vitest';
import { MedledgerError } from '../errors.ts';
import { blockHash, resultsHashOf, type Block } from './block.ts';
import type { BlockEntry } from './execute.ts';
import { buildReceipt, verifyReceipt, type Receipt } from './receipt.ts';
import { createCast, recordBody, TestLedger } from './test-network.test-fixture.ts';
import { txIdOf } from './tx.ts';

let block: Block;
let entries: BlockEntry[];
let single: { block: Block; entries: BlockEntry[] };

function entriesOf(b: Block): BlockEntry[] {
  return b.txs.map((tx) => ({ tx, txId: txIdOf(tx) }));
}

beforeAll(async () => {
  const cast = await createCast();
  const { ledger, alice, bob } = cast;
  const kim = cast.staff('hosp-a/dr-kim');
  const txs: BlockEntry[] = [];
  for (let i = 0; i < 6; i++)
    txs.push(await ledger.tx(kim, 'records.register', recordBody(i % 2 === 0 ? alice.patientCode : bob.patientCode, { size: i })));
  txs.push(await ledger.tx(cast.staff('clinic-c/dr-choi'), 'records.register', recordBody(alice.patientCode)));
  const exec = await ledger.run(txs);
  expect(exec.codes).toEqual(['OK', 'OK', 'OK', 'OK', 'OK', 'OK', 'CONSENT_REQUIRED']);
  block = structuredClone(ledger.blocks[ledger.height]!);
  entries = entriesOf(block);
  const other = await TestLedger.create();
  await other.run([await other.tx(other.institution('hosp-a'), 'identity.revokeStaff', { staffId: 'hosp-a/nobody' })]);
  const b = structuredClone(other.blocks[1]!);
  single = { block: b, entries: entriesOf(b) };
});

function receipt(index: number): Receipt {
  return structuredClone(buildReceipt(block.header, entries, block.codes, index));
}

function refusal(r: Receipt): string | undefined {
  try {
    verifyReceipt(r);
  } catch (e) {
    if (e instanceof MedledgerError) return e.code;
    throw e;
  }
  return undefined;
}

describe('buildReceipt → verifyReceipt', () => {
  it('verifies for every tx of a block, accepted or rejected', () => {
    for (let i = 0; i < entries.length; i++) {
      const r = receipt(i);
      expect(r).toMatchObject({ txId: entries[i]!.txId, index: i, treeSize: 7, height: block.header.height, code: block.codes[i] });
      expect(r.blockHash).toBe(blockHash(block.header));
      expect(() => verifyReceipt(r)).not.toThrow();
    }
    expect(receipt(6).code).toBe('CONSENT_REQUIRED');
  });

  it('verifies after travelling as JSON', () => {
    const r = JSON.parse(JSON.stringify(receipt(3))) as Receipt;
    expect(() => verifyReceipt(r)).not.toThrow();
  });

  it('verifies for the only tx of a block (empty proof)', () => {
    const r = buildReceipt(single.block.header, single.entries, single.block.codes, 0);
    expect(r.proof).toEqual([]);
    expect(r.code).toBe('NOT_FOUND');
    expect(() => verifyReceipt(r)).not.toThrow();
  });

  it('refuses an index outside the block', () => {
    expect(() => buildReceipt(block.header, entries, block.codes, 7)).toThrow(RangeError);
    expect(() => buildReceipt(block.header, entries, block.codes, -1)).toThrow(RangeError);
  });
});

describe('verifyReceipt refuses with CHAIN_BROKEN', () => {
  const damage: readonly [string, (r: Receipt) => void][] = [
    ['a proof element with one bit flipped', (r) => (r.proof[1] = (parseInt(r.proof[1]![0]!, 16) ^ 1).toString(16) + r.proof[1]!.slice(1))],
    ['a proof element replaced', (r) => (r.proof[0] = r.proof[2]!)],
    ['a proof element removed', (r) => r.proof.pop()],
    ['a proof element added', (r) => r.proof.push(r.proof[0]!)],
    ['proof elements swapped', (r) => ([r.proof[0], r.proof[1]] = [r.proof[1]!, r.proof[0]!])],
    ['the code', (r) => (r.code = 'CONSENT_REQUIRED')],
    [
      'the code and the block’s codes alike',
      (r) => {
        r.code = 'CONSENT_REQUIRED';
        r.codes[r.index] = 'CONSENT_REQUIRED';
      },
    ],
    ['another tx’s code', (r) => (r.codes[6] = 'OK')],
    ['a code dropped', (r) => r.codes.pop()],
    ['another tx’s signature', (r) => (r.signatures[0] = r.signatures[1]!)],
    ['the header’s txRoot', (r) => (r.header.txRoot = r.header.stateRoot)],
    ['the header’s time', (r) => (r.header.time += 1)],
    ['the header’s height', (r) => (r.header.height += 1)],
    ['the height', (r) => (r.height += 1)],
    ['the block hash', (r) => (r.blockHash = r.header.prevHash)],
    [
      'the txRoot, with the block hash recomputed',
      (r) => {
        r.header.txRoot = r.header.stateRoot;
        r.blockHash = blockHash(r.header);
      },
    ],
    [
      'the resultsHash, with the block hash recomputed',
      (r) => {
        r.header.resultsHash = resultsHashOf(
          r.signatures.map((signature) => ({ signature })),
          r.codes.map(() => 'OK'),
        );
        r.blockHash = blockHash(r.header);
      },
    ],
    ['the index', (r) => (r.index += 1)],
    ['the tree size', (r) => (r.treeSize += 1)],
    ['the txId', (r) => (r.txId = entries[4]!.txId)],
    ['the tx body', (r) => (r.tx.body['size'] = 999)],
    [
      'the tx, with txId, and its signature, replaced by another of the block',
      (r) => {
        r.tx = structuredClone(entries[4]!.tx);
        r.txId = entries[4]!.txId;
      },
    ],
  ];

  it.each(damage)('%s', (_name, damageIt) => {
    const r = receipt(2);
    damageIt(r);
    expect(refusal(r)).toBe('CHAIN_BROKEN');
  });

  it('says which part does not hold', () => {
    const r = receipt(2);
    r.proof[0] = r.proof[1]!;
    try {
      verifyReceipt(r);
      expect.unreachable();
    } catch (e) {
      expect((e as MedledgerError).payload).toEqual({ what: 'inclusion proof does not lead to the txRoot' });
    }
  });

  it('refuses a malformed tx with its envelope code', () => {
    const r = receipt(0);
    Object.assign(r.tx, { extra: 1 });
    expect(refusal(r)).toBe('TX_MALFORMED');
  });
});
