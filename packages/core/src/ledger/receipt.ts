/**
 * Receipts: a transaction with its inclusion proof, its block header and the block's codes, so
 * a client can check offline, with `core` alone, that the tx is in that block with that code.
 */
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

/** Checks a receipt offline; throws CHAIN_BROKEN saying which part does not hold. */
export function verifyReceipt(r: Receipt, maxTxBytes = 16 * 1024 * 1024): void {
  const bad = (what: string): never => {
    throw new MedledgerError('CHAIN_BROKEN', { details: `Receipt: ${what}.`, payload: { what } });
  };
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
