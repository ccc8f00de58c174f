/**
 * Genesis: the document every node of a network starts from — the Issuer's key, the founding
 * institutions and the network's configuration. Its hash names the network; applying it gives
 * block 0.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { canonicalBytes } from '../codec/canonical-json.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { keyId } from '../crypto/ed25519.ts';
import { Draft } from '../contracts/context.ts';
import { InstitutionSchema, admitInstitution } from '../contracts/membership.ts';
import { PublicKey, Text } from '../contracts/schemas.ts';
import type { KeyEntry, StateReader, StateWrite } from '../contracts/state.ts';
import { MedledgerError } from '../errors.ts';
import { ZERO_HASH, blockHash, sortWrites, nextStateRoot, resultsHashOf, txRootOf, type Block } from './block.ts';

export const QuorumRules = { majority: 'more than half of the validators', 'two-thirds': 'at least two thirds of the validators' } as const;
export type QuorumRule = keyof typeof QuorumRules;

export const GenesisSchema = Type.Object(
  {
    name: Text(100),
    createdAt: Type.Integer({ minimum: 0 }),
    issuer: Type.Object({ name: Text(200), signingKey: PublicKey }, { additionalProperties: false }),
    institutions: Type.Array(InstitutionSchema, { minItems: 1, maxItems: 256 }),
    config: Type.Object(
      {
        maxTxPerBlock: Type.Integer({ minimum: 1, maximum: 100_000 }),
        batchTimeoutMs: Type.Integer({ minimum: 1, maximum: 60_000 }),
        maxTxBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 }),
        quorum: Type.Union([Type.Literal('majority'), Type.Literal('two-thirds')]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type Genesis = Static<typeof GenesisSchema>;

export const DEFAULT_CONFIG: Genesis['config'] = { maxTxPerBlock: 2000, batchTimeoutMs: 10, maxTxBytes: 256 * 1024, quorum: 'two-thirds' };

/** The network id: the first 128 bits of the genesis hash, in hex. */
export function networkIdOf(genesis: Genesis): string {
  return sha256Hex(canonicalBytes(genesis)).slice(0, 32);
}

export function checkGenesis(value: unknown): Genesis {
  if (!Value.Check(GenesisSchema, value)) {
    const first = Value.Errors(GenesisSchema, value).First();
    throw new MedledgerError('GENESIS_INVALID', first ? { details: `${first.path}: ${first.message}` } : {});
  }
  const ids = new Set(value.institutions.map((i) => i.id));
  if (ids.size !== value.institutions.length) throw new MedledgerError('GENESIS_INVALID', { details: 'Institution ids repeat.' });
  return value;
}

const EMPTY: StateReader = { get: () => undefined };

/** Block 0 and its write set: the Issuer's key and the founding members. */
export function genesisBlock(genesis: Genesis): { block: Block; writes: StateWrite[] } {
  const draft = new Draft(EMPTY);
  const issuerKey: KeyEntry = {
    keyId: keyId(genesis.issuer.signingKey),
    publicKey: genesis.issuer.signingKey,
    owner: { kind: 'issuer' },
    status: 'active',
  };
  draft.put('keys', issuerKey.keyId, issuerKey);
  draft.put('meta', 'issuer', { name: genesis.issuer.name, keyId: issuerKey.keyId });
  for (const inst of genesis.institutions) admitInstitution(draft, inst, genesis.createdAt, 0);
  const writes = sortWrites(draft.writes.values());
  const network = networkIdOf(genesis);
  const block: Block = {
    header: {
      network,
      height: 0,
      prevHash: ZERO_HASH,
      txRoot: txRootOf([]),
      resultsHash: resultsHashOf([], []),
      stateRoot: nextStateRoot(ZERO_HASH, writes),
      time: genesis.createdAt,
      position: '',
    },
    txs: [],
    codes: [],
  };
  return { block, writes };
}

export function genesisHash(genesis: Genesis): string {
  return blockHash(genesisBlock(genesis).block.header);
}
