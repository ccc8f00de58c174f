/**
 * Chain verification from genesis: recomputes every txId, checks every signature, the Merkle
 * root, the results hash, the header links and times, re-executes every block and checks the
 * state root. Needs only `core`, so a browser or an auditor's laptop can do it offline.
 */
import { fromBase64Url, toBase64Url } from '../codec/bytes.ts';
import { verify } from '../crypto/ed25519.ts';
import type { BlockContext } from '../contracts/context.ts';
import type { KeyEntry, StateReader, StateWrite } from '../contracts/state.ts';
import { MedledgerError } from '../errors.ts';
import { ZERO_HASH, blockHash, chainStateRoot, encodeWrites, resultsHashOf, txRootOf, type Block } from './block.ts';
import { executeBlock, type BlockEntry, type BlockExecution, type ChainIndex } from './execute.ts';
import { genesisBlock, networkIdOf, type Genesis } from './genesis.ts';
import { decodeTx, txSigningMessage } from './tx.ts';

export interface WritableLedgerState extends StateReader, ChainIndex {
  hasTx(txId: string): boolean;
  /** `values`, when given, are the writes' canonical texts (computed once for the state root). */
  apply(
    writes: readonly StateWrite[],
    txs: readonly { txId: string; author: string; nonce: string; ok: boolean }[],
    values?: readonly (string | null)[],
  ): void;
}

/** Ed25519 answers known so far, keyed by (key, message, signature). */
type SignatureAnswers = Map<string, boolean>;

function sigKey(publicKey: string, message: Uint8Array, signature: Uint8Array): string {
  return publicKey + '|' + toBase64Url(message) + '|' + toBase64Url(signature);
}

/**
 * Runs `executeBlock` with asynchronous signature checks: execute with the answers known, and
 * while execution asked about a signature not yet checked, check those (in parallel) and run
 * again. Execution is deterministic given the answers, so the last run is the true one.
 *
 * Signatures by authors whose key is in the state before the block are checked (in parallel)
 * before the first run, so a block whose authors were all known runs once, not twice; only
 * keys registered inside the block need a second run.
 */
export async function executeBlockAsync(
  state: StateReader,
  chain: ChainIndex,
  entries: readonly BlockEntry[],
  ctx: Omit<BlockContext, 'verifySignature'>,
  answers: SignatureAnswers = new Map(),
): Promise<BlockExecution> {
  const ahead: Promise<void>[] = [];
  for (const { tx, txId } of entries) {
    const key = state.get('keys', tx.author) as KeyEntry | undefined;
    if (key === undefined || typeof key.publicKey !== 'string') continue;
    let signature: Uint8Array;
    try {
      signature = fromBase64Url(tx.signature);
    } catch {
      continue; // execution refuses it with its code
    }
    const message = txSigningMessage(txId);
    const k = sigKey(key.publicKey, message, signature);
    if (answers.has(k)) continue;
    ahead.push(verify(key.publicKey, message, signature).then((ok) => void answers.set(k, ok)));
  }
  await Promise.all(ahead);
  for (;;) {
    const pending: { k: string; publicKey: string; message: Uint8Array; signature: Uint8Array }[] = [];
    const result = executeBlock(state, chain, entries, {
      ...ctx,
      verifySignature(publicKey, message, signature) {
        const k = sigKey(publicKey, message, signature);
        const known = answers.get(k);
        if (known !== undefined) return known;
        pending.push({ k, publicKey, message, signature });
        return true;
      },
    });
    if (pending.length === 0) return result;
    const verdicts = await Promise.all(pending.map((p) => verify(p.publicKey, p.message, p.signature)));
    pending.forEach((p, i) => answers.set(p.k, verdicts[i]!));
  }
}

export interface ChainVerification {
  height: number;
  headHash: string;
  stateRoot: string;
  txCount: number;
}

export interface VerifyChainOptions {
  /** Called after each block is verified, with the block and its transactions' ids. */
  onBlock?: (height: number, block: Block, txIds: readonly string[]) => void;
}

function fail(height: number, what: string): never {
  throw new MedledgerError('CHAIN_BROKEN', { details: `At height ${height}: ${what}.`, payload: { height, what } });
}

/**
 * Verifies blocks 0..n against the genesis document, building the state in `state`. Throws
 * CHAIN_BROKEN naming the first bad height and what is wrong.
 */
export async function verifyChain(
  genesis: Genesis,
  blocks: AsyncIterable<Block> | Iterable<Block>,
  state: WritableLedgerState,
  options: VerifyChainOptions = {},
): Promise<ChainVerification> {
  const network = networkIdOf(genesis);
  const g = genesisBlock(genesis);
  let expectedHeight = 0;
  let prevHash = ZERO_HASH;
  let prevStateRoot = ZERO_HASH;
  let prevTime = 0;
  let txCount = 0;
  const maxTxBytes = genesis.config.maxTxBytes;
  for await (const block of blocks) {
    const h = block.header;
    let txIds: string[] = [];
    if (h.height !== expectedHeight) fail(expectedHeight, `expected this height, found ${String(h.height)}`);
    if (h.network !== network) fail(h.height, 'network id differs from genesis');
    if (h.prevHash !== prevHash) fail(h.height, 'prevHash does not match the previous block');
    if (h.time < prevTime) fail(h.height, 'block time goes backwards');
    if (block.codes.length !== block.txs.length) fail(h.height, 'codes and transactions differ in number');
    if (h.height === 0) {
      if (blockHash(h) !== blockHash(g.block.header)) fail(0, 'genesis block differs from the genesis document');
      if (block.txs.length !== 0) fail(0, 'the genesis block holds transactions');
      state.apply(g.writes, []);
    } else {
      const entries: BlockEntry[] = [];
      const seen = new Set<string>();
      for (const [i, raw] of block.txs.entries()) {
        let decoded;
        try {
          decoded = decodeTx(raw, maxTxBytes);
        } catch (e) {
          fail(h.height, `transaction ${i} is malformed (${e instanceof MedledgerError ? e.code : 'error'})`);
        }
        if (seen.has(decoded.txId) || state.hasTx(decoded.txId)) fail(h.height, `transaction ${i} repeats an earlier one`);
        seen.add(decoded.txId);
        entries.push({ tx: decoded.tx, txId: decoded.txId });
      }
      if (h.txRoot !== txRootOf(entries.map((e) => e.txId))) fail(h.height, 'txRoot does not match the transactions');
      if (h.resultsHash !== resultsHashOf(block.txs, block.codes)) fail(h.height, 'resultsHash does not match the signatures and codes');
      const exec = await executeBlockAsync(state, state, entries, { network, height: h.height, time: h.time });
      exec.codes.forEach((code, i) => {
        if (code !== block.codes[i]) fail(h.height, `transaction ${i} has code ${String(block.codes[i])}, execution gives ${code}`);
      });
      const encoded = encodeWrites(exec.writes);
      if (h.stateRoot !== chainStateRoot(prevStateRoot, encoded.hash)) fail(h.height, 'stateRoot does not match re-execution');
      state.apply(
        exec.writes,
        entries.map((e, i) => ({ txId: e.txId, author: e.tx.author, nonce: e.tx.nonce, ok: exec.codes[i] === 'OK' })),
        encoded.values,
      );
      txCount += entries.length;
      txIds = entries.map((e) => e.txId);
    }
    if (h.height === 0 && h.stateRoot !== g.block.header.stateRoot) fail(0, 'genesis state root differs');
    prevHash = blockHash(h);
    prevStateRoot = h.stateRoot;
    prevTime = h.time;
    expectedHeight++;
    options.onBlock?.(h.height, block, txIds);
  }
  if (expectedHeight === 0) fail(0, 'the chain has no genesis block');
  return { height: expectedHeight - 1, headHash: prevHash, stateRoot: prevStateRoot, txCount };
}
