/**
 * A node's data directory: `node.json` (who this node is and how it orders), `genesis.json`,
 * `consortium.json` (the consortium's patient-code key; secret), `keys/*.json` (identity files;
 * secret, mode 0600; during a key rotation also `<file>.next` and, after it, `<file>.<keyId>.revoked`),
 * `chain.db` (the ledger store) and `orderer/` (the solo log).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { checkGenesis, type Genesis } from '@medledger/core/ledger/genesis';
import type { IdentityFile } from '@medledger/core/client/identity';
import { MedledgerError } from '@medledger/core/errors';

export const VaultConfigSchema = Type.Object(
  {
    store: Type.Union([
      Type.Object({ kind: Type.Literal('sqlite') }, { additionalProperties: false }),
      Type.Object({ kind: Type.Literal('postgres'), connectionString: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    ]),
    institutions: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}$' }), { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type VaultConfig = Static<typeof VaultConfigSchema>;

/**
 * Push (issue 7): where this node delivers its institutions' subscription notifications. Kept in
 * node configuration, not on the ledger: a webhook address is an institution's internal endpoint,
 * which other members need not see and which changes without a vote; receivers check deliveries
 * against the institution's signing key, which is on the ledger.
 */
export const PushConfigSchema = Type.Object(
  {
    webhooks: Type.Array(
      Type.Object(
        { institution: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}$' }), url: Type.String({ pattern: '^https?://[^\\s]+$' }) },
        { additionalProperties: false },
      ),
      { maxItems: 64 },
    ),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
    retryBaseMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);
export type PushConfig = Static<typeof PushConfigSchema>;

export const NodeConfigSchema = Type.Object(
  {
    institution: Type.String(),
    ordering: Type.Union([
      Type.Object({ kind: Type.Literal('solo') }, { additionalProperties: false }),
      Type.Object(
        {
          kind: Type.Literal('nats'),
          servers: Type.Array(Type.String(), { minItems: 1 }),
          stream: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
          replicas: Type.Integer({ minimum: 1, maximum: 5 }),
        },
        { additionalProperties: false },
      ),
    ]),
    api: Type.Object({ host: Type.String(), port: Type.Integer({ minimum: 0, maximum: 65535 }) }, { additionalProperties: false }),
    rateLimitPerMinute: Type.Integer({ minimum: 1 }),
    /** the vault(s) this node keeps: the institution's own, or several on an embedded node */
    vault: Type.Optional(VaultConfigSchema),
    push: Type.Optional(PushConfigSchema),
  },
  { additionalProperties: false },
);
export type NodeConfig = Static<typeof NodeConfigSchema>;

export const DataDirFiles = {
  config: 'node.json',
  genesis: 'genesis.json',
  consortium: 'consortium.json',
  keys: 'keys',
  chain: 'chain.db',
  orderer: 'orderer',
  vault: 'vault.db',
  vaultKeys: 'vault-keys',
  push: 'push.db',
} as const;

/** Writes a file atomically (temp file, fsync, rename), with `mode`. */
export function writeFileDurable(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode });
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
  chmodSync(path, mode);
}

export function writeJson(path: string, value: unknown, secret = false): void {
  writeFileDurable(path, JSON.stringify(value, null, 2) + '\n', secret ? 0o600 : 0o644);
}

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new MedledgerError('NOT_FOUND', { details: `Missing ${path}.` });
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new MedledgerError('INVALID_JSON', { details: `In ${path}.`, cause });
  }
}

export function readNodeConfig(dir: string): NodeConfig {
  const v = readJson(join(dir, DataDirFiles.config));
  if (!Value.Check(NodeConfigSchema, v))
    throw new MedledgerError('BAD_REQUEST', { details: `${join(dir, DataDirFiles.config)} is not a node configuration.` });
  return v;
}

export function readGenesis(path: string): Genesis {
  return checkGenesis(readJson(path));
}

export function readIdentityFile(path: string): IdentityFile {
  const v = readJson(path) as Partial<IdentityFile>;
  if (typeof v.label !== 'string' || typeof v.signing?.privateKey !== 'string' || typeof v.encryption?.privateKey !== 'string') {
    throw new MedledgerError('BAD_REQUEST', { details: `${path} is not an identity file.` });
  }
  return v as IdentityFile;
}

export function readConsortium(dir: string): { patientCodeKey: string } {
  return readJson(join(dir, DataDirFiles.consortium)) as { patientCodeKey: string };
}

export function keyFilePath(dir: string, label: string): string {
  return join(dir, DataDirFiles.keys, `${label.replace(/[^a-z0-9.-]/gi, '_')}.json`);
}

/** Where a key rotation keeps the new identity file until the ledger has taken its key. */
export function nextIdentityPath(path: string): string {
  return `${path}.next`;
}

/** Where a replaced identity file is kept: its encryption key still opens what was wrapped to it. */
export function revokedIdentityPath(path: string, keyId: string): string {
  return `${path}.${keyId}.revoked`;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the new identity file of a key rotation (mode 0600) before its transaction is sent, so
 * a key the ledger takes is never one this machine lost in a crash.
 */
export function writeNextIdentity(path: string, file: IdentityFile): void {
  writeJson(nextIdentityPath(path), file, true);
  fsyncDir(dirname(path));
}

/**
 * Once the ledger took the new key: the old file is kept as revoked, then the new one takes its
 * place; each step is a rename made durable, so after a crash a rerun finds the `.next` file
 * (and no current one) and finishes. Answers the path the old file was kept at.
 */
export function adoptNextIdentity(path: string, oldKeyId: string): string | null {
  let kept: string | null = null;
  if (existsSync(path)) {
    kept = revokedIdentityPath(path, oldKeyId);
    renameSync(path, kept);
    fsyncDir(dirname(path));
  }
  renameSync(nextIdentityPath(path), path);
  fsyncDir(dirname(path));
  return kept;
}
