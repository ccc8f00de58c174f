/**
 * The node's HTTP API as the browser uses it: JSON reads, and transactions signed here with
 * core's client code before they are sent. Every failure becomes a MedledgerError with the
 * API's stable code, so the UI can show the code and the sentence that goes with it.
 */
import type { Identity } from '@medledger/core/client/identity';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import { MedledgerError, isErrorCode } from '@medledger/core/errors';
import type { TxType } from '@medledger/core/ledger/tx-types';

async function failure(res: Response): Promise<MedledgerError> {
  let code = 'INTERNAL';
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { code?: string; message?: string };
    code = body.code ?? code;
    message = body.message ?? message;
  } catch {
    // not JSON: the status says enough
  }
  return new MedledgerError(isErrorCode(code) ? code : 'INTERNAL', { details: message, payload: { status: res.status } });
}

export async function getJson<T>(path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { accept: 'application/json' } });
  } catch (cause) {
    throw new MedledgerError('NODE_UNAVAILABLE', { details: 'The node did not answer.', cause });
  }
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export interface Health {
  status: string;
  network: string;
  institution: string;
  ordering: string;
  height: number;
  headHash: string;
  stateRoot: string;
  time: number;
  finalHeight: number | null;
  divergence: unknown;
  dissentingValidators: string[];
}

let firstHealth: Promise<Health> | null = null;

/** The node's health as first read: its network and ordering do not change while the page lives. */
function nodeFacts(): Promise<Health> {
  firstHealth ??= getJson<Health>('/api/health').catch((e: unknown) => {
    firstHealth = null;
    throw e;
  });
  return firstHealth;
}

/** The network id transactions are signed for. */
export async function network(): Promise<string> {
  return (await nodeFacts()).network;
}

/** How the node orders: `solo` (one node; a committed block is final) or `nats` (a consortium). */
export async function ordering(): Promise<string> {
  return (await nodeFacts()).ordering;
}

export interface Submitted {
  txId: string;
  height: number;
}

/**
 * Signs a transaction in this browser and submits it, waiting for its block. A tx the
 * contracts refused is recorded with its code; that code is thrown here.
 */
export async function submitTx(who: Identity, type: TxType, body: JsonObject): Promise<Submitted> {
  const { tx } = await who.tx(await network(), type, body);
  const res = await fetch('/api/tx?wait=commit', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(tx),
  });
  if (!res.ok) throw await failure(res);
  const answer = (await res.json()) as { txId: string; status: string; height?: number; code?: string };
  if (answer.status !== 'committed' || answer.height === undefined)
    throw new MedledgerError('NODE_UNAVAILABLE', { details: 'The transaction is accepted but not yet in a block; look again shortly.' });
  if (answer.code !== undefined && answer.code !== 'OK')
    throw new MedledgerError(isErrorCode(answer.code) ? answer.code : 'INTERNAL', { payload: { txId: answer.txId } });
  return { txId: answer.txId, height: answer.height };
}
