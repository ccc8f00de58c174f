/**
 * Chain verification from genesis: a chain made by executing blocks verifies to its head; any
 * damage to a block is reported as CHAIN_BROKEN at that block's height.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Identity } from '../client/identity.ts';
import { MedledgerError } from '../errors.ts';
import { blockHash, resultsHashOf, type Block } from './block.ts';
import { verifyChain } from './chain-verify.ts';
import { createNetwork } from './network-builder.ts';
import { MemoryState } from './memory-state.ts';
import { createCast, DAY, FOUNDERS, GENESIS_TIME, recordBody, type Cast } from './test-network.test-fixture.ts';
import { txIdOf } from './tx.ts';

/** The height at which most damage is done: a block with accepted and rejected txs. */
const H = 4;

let cast: Cast;
let chain: readonly Block[];

beforeAll(async () => {
  cast = await createCast(); // blocks 1–3: staff enrolled, Alice and Bob registered
  const { ledger, alice } = cast;
  const kim = cast.staff('hosp-a/dr-kim');
  const mixed = await ledger.run([
    await ledger.tx(kim, 'records.register', recordBody(alice.patientCode)),
    await ledger.tx(cast.staff('clinic-c/dr-choi'), 'records.register', recordBody(alice.patientCode)),
    await ledger.tx(alice.patient, 'consent.grant', {
      patientCode: alice.patientCode,
      grantee: { kind: 'institution', institution: 'hosp-b' },
      scope: { kind: 'all' },
      purposes: ['TREAT'],
      period: { from: GENESIS_TIME, to: null },
      deidentification: 'identified',
    }),
  ]);
  expect(mixed.codes).toEqual(['OK', 'CONSENT_REQUIRED', 'OK']);
  expect(ledger.height).toBe(H);
  const recordId = ledger.blocks[H]!.txs[0]!;
  await ledger.run([
    await ledger.tx(ledger.institution('hosp-a'), 'access.recordServed', {
      recordId: txIdOf(recordId),
      requester: 'hosp-b/dr-park',
      purpose: 'TREAT',
      deidentification: 'identified',
    }),
    await ledger.tx(cast.staff('hosp-a/nurse-lee'), 'records.register', recordBody(cast.bob.patientCode)),
  ]);
  const stranger = await Identity.generate('stranger');
  const onlyRejected = await ledger.run([await ledger.tx(stranger, 'records.register', recordBody(alice.patientCode))]);
  expect(onlyRejected.codes).toEqual(['TX_UNKNOWN_AUTHOR']);
  await ledger.run(
    [await ledger.tx(ledger.institution('hosp-a'), 'identity.revokeStaff', { staffId: 'hosp-a/nurse-lee' })],
    ledger.time + DAY,
  );
  expect(ledger.blocks.slice(1).every((b) => b.codes.length > 0)).toBe(true);
  chain = structuredClone(ledger.blocks);
});

function flipFirstHexDigit(hex: string): string {
  return (parseInt(hex[0]!, 16) ^ 1).toString(16) + hex.slice(1);
}

function copy(): Block[] {
  return structuredClone(chain) as Block[];
}

function at(blocks: Block[], height: number): Block {
  return blocks[height]!;
}

/** Verifies and returns the CHAIN_BROKEN payload; fails the test if the chain verifies. */
async function brokenAt(blocks: Iterable<Block>): Promise<{ height: unknown; what: unknown }> {
  try {
    await verifyChain(cast.ledger.net.genesis, blocks, new MemoryState());
  } catch (e) {
    if (e instanceof MedledgerError && e.code === 'CHAIN_BROKEN') return { height: e.payload['height'], what: e.payload['what'] };
    throw e;
  }
  throw new Error('the damaged chain verified');
}

describe('verifyChain on an intact chain', () => {
  it('returns the head height, hash, state root and tx count', async () => {
    const head = chain[chain.length - 1]!.header;
    const result = await verifyChain(cast.ledger.net.genesis, copy(), new MemoryState());
    expect(result).toEqual({
      height: chain.length - 1,
      headHash: blockHash(head),
      stateRoot: head.stateRoot,
      txCount: chain.reduce((n, b) => n + b.txs.length, 0),
    });
    expect(result.height).toBe(7);
  });

  it('rebuilds the same world state the blocks were made with', async () => {
    const state = new MemoryState();
    await verifyChain(cast.ledger.net.genesis, copy(), state);
    expect([...state.entries()]).toEqual(cast.ledger.snapshot());
  });

  it('reports each height in order', async () => {
    const seen: number[] = [];
    await verifyChain(cast.ledger.net.genesis, copy(), new MemoryState(), { onBlock: (h) => seen.push(h) });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('verifies a prefix of the chain to its own head, and reads blocks from an async iterable', async () => {
    const prefix = copy().slice(0, H + 1);
    expect((await verifyChain(cast.ledger.net.genesis, prefix, new MemoryState())).stateRoot).toBe(chain[H]!.header.stateRoot);
    async function* stream(): AsyncGenerator<Block> {
      for (const b of copy()) yield await Promise.resolve(b);
    }
    expect((await verifyChain(cast.ledger.net.genesis, stream(), new MemoryState())).height).toBe(7);
  });
});

describe('verifyChain reports damage at the damaged height', () => {
  const damage: readonly [string, (blocks: Block[]) => void][] = [
    [
      'a changed byte of an accepted tx body',
      (b) => (at(b, H).txs[0]!.body['hash'] = flipFirstHexDigit(at(b, H).txs[0]!.body['hash'] as string)),
    ],
    ['a changed number in a tx body', (b) => (at(b, H).txs[0]!.body['size'] = 1235)],
    ['a changed byte of a rejected tx body', (b) => (at(b, H).txs[1]!.body['pointer'] = 'vault://record/2')],
    ['a changed nonce', (b) => (at(b, H).txs[2]!.nonce += 'x')],
    ['a changed signature', (b) => (at(b, H).txs[0]!.signature = at(b, H - 1).txs[0]!.signature)],
    [
      'a signature swapped between two txs',
      (b) => ([at(b, H).txs[0]!.signature, at(b, H).txs[2]!.signature] = [at(b, H).txs[2]!.signature, at(b, H).txs[0]!.signature]),
    ],
    ['a malformed tx', (b) => Object.assign(at(b, H).txs[0]!, { extra: true })],
    ['a changed code', (b) => (at(b, H).codes[1] = 'OK')],
    ['two codes swapped', (b) => ([at(b, H).codes[0], at(b, H).codes[1]] = [at(b, H).codes[1]!, at(b, H).codes[0]!])],
    [
      'a code changed with the resultsHash recomputed',
      (b) => {
        const block = at(b, H);
        block.codes[1] = 'OK';
        block.header.resultsHash = resultsHashOf(block.txs, block.codes);
      },
    ],
    [
      'a code changed for another rejection code, resultsHash recomputed',
      (b) => {
        const block = at(b, H);
        block.codes[1] = 'ROLE_FORBIDDEN';
        block.header.resultsHash = resultsHashOf(block.txs, block.codes);
      },
    ],
    ['a later time', (b) => (at(b, H).header.time += 1)],
    ['a time before the previous block', (b) => (at(b, H).header.time = at(b, H - 1).header.time - 1)],
    ['a changed stateRoot', (b) => (at(b, H).header.stateRoot = at(b, H - 1).header.stateRoot)],
    ['a changed txRoot', (b) => (at(b, H).header.txRoot = at(b, H - 1).header.txRoot)],
    ['a changed resultsHash', (b) => (at(b, H).header.resultsHash = at(b, H - 1).header.resultsHash)],
    ['a changed prevHash', (b) => (at(b, H).header.prevHash = blockHash(at(b, H - 2).header))],
    ['a changed height', (b) => (at(b, H).header.height += 1)],
    ['a changed network', (b) => (at(b, H).header.network = 'f'.repeat(32))],
    [
      'a removed tx with its code',
      (b) => {
        at(b, H).txs.splice(1, 1);
        at(b, H).codes.splice(1, 1);
      },
    ],
    ['a removed tx without its code', (b) => at(b, H).txs.splice(2, 1)],
    ['a removed code', (b) => at(b, H).codes.pop()],
    [
      'a duplicated tx',
      (b) => {
        at(b, H).txs.push(at(b, H).txs[0]!);
        at(b, H).codes.push('TX_REPLAY');
      },
    ],
    [
      'a tx of an earlier block repeated',
      (b) => {
        at(b, H).txs.push(at(b, 2).txs[0]!);
        at(b, H).codes.push('ALREADY_EXISTS');
      },
    ],
    [
      'two txs in another order',
      (b) => {
        const block = at(b, H);
        [block.txs[0], block.txs[2]] = [block.txs[2]!, block.txs[0]!];
        [block.codes[0], block.codes[2]] = [block.codes[2]!, block.codes[0]!];
      },
    ],
    ['the block missing', (b) => b.splice(H, 1)],
  ];

  it.each(damage)('%s', async (_name, damageIt) => {
    const blocks = copy();
    damageIt(blocks);
    expect((await brokenAt(blocks)).height).toBe(H);
  });

  it('sees a block given twice where the next block should be', async () => {
    const blocks = copy();
    blocks.splice(H, 0, structuredClone(at(blocks, H)));
    expect((await brokenAt(blocks)).height).toBe(H + 1);
  });

  it('names what is wrong', async () => {
    const blocks = copy();
    at(blocks, H).header.stateRoot = '0'.repeat(64);
    expect(await brokenAt(blocks)).toEqual({ height: H, what: 'stateRoot does not match re-execution' });
  });

  it('sees a changed time in a block that writes no time at the next block', async () => {
    // Block 6 holds only a rejected tx: its time changes no state, so only block 7's
    // prevHash commits to it.
    const blocks = copy();
    at(blocks, 6).header.time += 1;
    expect((await brokenAt(blocks)).height).toBe(7);
  });

  it('sees a changed position at the next block, which commits to it', async () => {
    const blocks = copy();
    at(blocks, H).header.position = 'elsewhere';
    expect((await brokenAt(blocks)).height).toBe(H + 1);
  });

  it('refuses a transaction that was recorded before, even as a rejected one', async () => {
    const blocks = copy();
    // The rejected tx of block H, offered again in a later block.
    at(blocks, 7).txs.push(at(blocks, H).txs[1]!);
    at(blocks, 7).codes.push('CONSENT_REQUIRED');
    expect((await brokenAt(blocks)).height).toBe(7);
  });
});

describe('verifyChain and the genesis block', () => {
  it('refuses an empty chain', async () => {
    expect((await brokenAt([])).height).toBe(0);
  });

  it('refuses a chain that does not start at height 0', async () => {
    expect((await brokenAt(copy().slice(1))).height).toBe(0);
  });

  it('refuses a genesis block that differs from the genesis document', async () => {
    for (const damageIt of [
      (g: Block) => (g.header.stateRoot = '0'.repeat(64)),
      (g: Block) => (g.header.time += 1),
      (g: Block) => (g.header.txRoot = chain[1]!.header.txRoot),
    ]) {
      const blocks = copy();
      damageIt(at(blocks, 0));
      expect((await brokenAt(blocks)).height).toBe(0);
    }
  });

  it('refuses the chain against another network’s genesis document', async () => {
    const other = await createNetwork({ name: 'Other', createdAt: GENESIS_TIME, institutions: FOUNDERS });
    await expect(verifyChain(other.genesis, copy(), new MemoryState())).rejects.toMatchObject({
      code: 'CHAIN_BROKEN',
      payload: { height: 0 },
    });
  });

  it('refuses a transaction smuggled into the genesis block', async () => {
    // Block 0 has no transactions (its txRoot is the empty tree's); a stored block 0 that
    // carries one does not match the genesis document, even though its header does.
    const blocks = copy();
    at(blocks, 0).txs.push(at(blocks, H).txs[0]!);
    at(blocks, 0).codes.push('OK');
    expect((await brokenAt(blocks)).height).toBe(0);
  });
});
