/**
 * Opens the vault(s) a node keeps: the store (SQLite in the data dir, or PostgreSQL), and for each
 * institution its identity file and its vault master key — 32 random bytes made on first start
 * in `vault-keys/<institution>.key` (mode 0600), outside the database, so a copy of the database
 * alone opens nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBase64Url, toBase64Url } from '@medledger/core/codec/bytes';
import { Identity } from '@medledger/core/client/identity';
import { randomBytes } from '@medledger/core/crypto/random';
import { MedledgerError } from '@medledger/core/errors';
import { DataDirFiles, keyFilePath, readIdentityFile, writeFileDurable, type VaultConfig } from '../config/data-dir.ts';
import type { Peer } from '../peer/peer.ts';
import type { FinalityTracker } from '../peer/finality-tracker.ts';
import { GroupKeyring } from './group-keyring.ts';
import { PgVaultStore } from './pg-vault-store.ts';
import { SqliteVaultStore } from './sqlite-vault-store.ts';
import { VaultService, type HostedVault } from './vault-service.ts';
import type { VaultStore } from './vault-store.ts';

export type { VaultService };

function masterKey(dir: string, institution: string): Uint8Array {
  const path = join(dir, `${institution}.key`);
  if (!existsSync(path)) writeFileDurable(path, toBase64Url(randomBytes(32)) + '\n', 0o600);
  const key = fromBase64Url(readFileSync(path, 'utf8').trim());
  if (key.length !== 32) throw new MedledgerError('BAD_REQUEST', { details: `${path} is not a vault master key.` });
  return key;
}

export function openVaultStore(dataDir: string, config: VaultConfig): VaultStore {
  return config.store.kind === 'postgres'
    ? new PgVaultStore({ connectionString: config.store.connectionString })
    : new SqliteVaultStore(join(dataDir, DataDirFiles.vault));
}

export async function openVaults(
  dataDir: string,
  keysDir: string,
  config: VaultConfig,
  peer: Peer,
  finality: FinalityTracker | null,
  now?: () => number,
): Promise<VaultService> {
  const keyDir = join(dataDir, DataDirFiles.vaultKeys);
  const vaults: HostedVault[] = config.institutions.map((institution) => {
    const path = keysDir === join(dataDir, DataDirFiles.keys) ? keyFilePath(dataDir, institution) : join(keysDir, `${institution}.json`);
    const key = masterKey(keyDir, institution);
    return {
      institution,
      identity: new Identity(readIdentityFile(path)),
      masterKey: key,
      groupKeys: new GroupKeyring(join(keyDir, `${institution}.groups.json`), key),
    };
  });
  const service = new VaultService({ peer, finality, store: openVaultStore(dataDir, config), vaults, ...(now ? { now } : {}) });
  await service.start();
  return service;
}
