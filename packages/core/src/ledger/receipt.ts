/**
 * Receipts: a transaction with its inclusion proof, its block header and the block's codes, so
 * a client can check offline, with `core` alone, that the tx is in that block with that code.
 */
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { fromHex, toHex } from '../codec/bytes.ts';
import { MedledgerError } from '../errors.ts';
import { blockHash, resultsHashOf, type BlockHeader } from './block.ts';
import type { TxCode } from './execute.ts';
import { inclusionProof, verifyInclusion } from './merkle.ts';
import { decodeTx, type Tx } from './tx.ts';

export interface Receipt {
  txId: string;
  tx: Tx;
  height: number;
  index: number;
  code: TxCode;
  treeSize: number;
  /** RFC 6962 audit path, hex */
  proof: string[];
  header: BlockHeader;
  blockHash: string;
  /** every signature and code of the block, to check `header.resultsHash` */
  signatures: string[];
  codes: TxCode[];
}

export function buildReceipt(
  header: BlockHeader,
  txs: readonly { tx: Tx; txId: string }[],
  codes: readonly TxCode[],
  index: number,
): Receipt {
  const entry = txs[index];
  if (entry === undefined) throw new RangeError('tx index out of range');
  return {
    txId: entry.txId,
    tx: entry.tx,
    height: header.height,
    index,
    code: codes[index]!,
    treeSize: txs.length,
    proof: inclusionProof(
      txs.map((t) => fromHex(t.txId)),
      index,
    ).map(toHex),
    header,
    blockHash: blockHash(header),
    signatures: txs.map((t) => t.tx.signature),
    codes: [...codes],
  };
}

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Count = Type.Integer({ minimum: 0, maximum: 2 ** 31 });
/** The shape a receipt must have before any of it is trusted (it comes from a node, maybe a hostile one). */
const ReceiptShape = Type.Object({
  txId: Hex64,
  tx: Type.Unknown(),
  height: Count,
  index: Count,
  code: Type.String({ maxLength: 64 }),
  treeSize: Type.Integer({ minimum: 1, maximum: 2 ** 31 }),
  proof: Type.Array(Hex64, { maxItems: 64 }),
  header: Type.Object({
    network: Type.String({ maxLength: 64 }),
    height: Count,
    prevHash: Type.String({ maxLength: 64 }),
    txRoot: Hex64,
    resultsHash: Type.String({ maxLength: 64 }),
    stateRoot: Type.String({ maxLength: 64 }),
    time: Type.Integer({ minimum: 0 }),
    position: Type.String({ maxLength: 64 }),
  }),
  blockHash: Type.String({ maxLength: 64 }),
  signatures: Type.Array(Type.String({ maxLength: 128 })),
  codes: Type.Array(Type.String({ maxLength: 64 })),
});

/** Checks a receipt offline; throws CHAIN_BROKEN saying which part does not hold. */
export function verifyReceipt(r: Receipt, maxTxBytes = 16 * 1024 * 1024): void {
  const bad = (what: string): never => {
    throw new MedledgerError('CHAIN_BROKEN', { details: `Receipt: ${what}.`, payload: { what } });
  };
  if (!Value.Check(ReceiptShape, r)) bad('not a well-formed receipt');
  if (r.index >= r.treeSize) bad('index is outside the block');
  const { txId } = decodeTx(r.tx, maxTxBytes);
  if (txId !== r.txId) bad('txId does not match the transaction');
  if (r.header.height !== r.height) bad('height does not match the header');
  if (blockHash(r.header) !== r.blockHash) bad('block hash does not match the header');
  if (r.codes.length !== r.treeSize || r.signatures.length !== r.treeSize || r.codes[r.index] !== r.code)
    bad('code does not match the block’s codes');
  if (r.signatures[r.index] !== r.tx.signature) bad('signature does not match the block’s signatures');
  if (
    resultsHashOf(
      r.signatures.map((signature) => ({ signature })),
      r.codes,
    ) !== r.header.resultsHash
  )
    bad('signatures and codes do not match the header');
  const ok = verifyInclusion(fromHex(txId), r.index, r.treeSize, r.proof.map(fromHex), fromHex(r.header.txRoot));
  if (!ok) bad('inclusion proof does not lead to the txRoot');
}
