/**
 * The institution's role-group keys (TMSMD), one per epoch, sealed under the vault master key in
 * a file of their own (mode 0600), written atomically. The ledger holds the same keys wrapped to
 * each member; this copy lets the vault wrap new records' data keys for the group.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fromBase64Url, toBase64Url, utf8 } from '@medledger/core/codec/bytes';
import { decryptWithDataKey, encryptWithDataKey } from '@medledger/core/crypto/record-envelope';
import { writeJson } from '../config/data-dir.ts';

export class GroupKeyring {
  private sealed: Record<string, string>;

  constructor(
    private readonly path: string,
    private readonly masterKey: Uint8Array,
  ) {
    this.sealed = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>) : {};
  }

  private aad(groupKeyId: string): Uint8Array {
    return utf8(`medledger/group-key/v1 ${groupKeyId}`);
  }

  async get(groupKeyId: string): Promise<Uint8Array | undefined> {
    const s = this.sealed[groupKeyId];
    return s === undefined ? undefined : decryptWithDataKey(this.masterKey, fromBase64Url(s), this.aad(groupKeyId));
  }

  async put(groupKeyId: string, key: Uint8Array): Promise<void> {
    const sealed = toBase64Url(await encryptWithDataKey(this.masterKey, key, this.aad(groupKeyId)));
    this.sealed = { ...this.sealed, [groupKeyId]: sealed };
    writeJson(this.path, this.sealed, true);
  }

  delete(groupKeyId: string): Promise<void> {
    this.sealed = Object.fromEntries(Object.entries(this.sealed).filter(([id]) => id !== groupKeyId));
    writeJson(this.path, this.sealed, true);
    return Promise.resolve();
  }
}
