/** A small HTTP client of a node's API for the CLI: JSON in, JSON out, coded errors. */
import { MedledgerError, isErrorCode } from '@medledger/core/errors';
import type { Tx } from '@medledger/core/ledger/tx';

export class NodeClient {
  constructor(readonly baseUrl: string) {}

  async get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (cause) {
      throw new MedledgerError('NODE_UNAVAILABLE', { details: `Cannot reach ${this.baseUrl}.`, cause });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new MedledgerError('INTERNAL', { details: `Node answered ${res.status} with non-JSON.` });
    }
    if (!res.ok) {
      const e = json as { code?: string; message?: string };
      const code = typeof e.code === 'string' && isErrorCode(e.code) ? e.code : 'INTERNAL';
      throw new MedledgerError(code, { details: `(HTTP ${res.status})` });
    }
    return json as T;
  }

  async network(): Promise<string> {
    return (await this.get<{ network: string }>('/api/health')).network;
  }

  async submit(tx: Tx, wait: boolean): Promise<{ txId: string; status: string; height?: number; code?: string }> {
    return this.post(`/api/tx${wait ? '?wait=commit' : ''}`, tx);
  }
}
