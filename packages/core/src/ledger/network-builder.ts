/**
 * Creates a new network: fresh keys for the Issuer and each founding institution, and the
 * genesis document naming them. Used by `medledger init`, the demo and tests.
 */
import { Identity } from '../client/identity.ts';
import type { InstitutionKind } from '../policy/roles.ts';
import { randomBytes } from '../crypto/random.ts';
import { toBase64Url } from '../codec/bytes.ts';
import { DEFAULT_CONFIG, networkIdOf, type Genesis } from './genesis.ts';

export interface InstitutionPlan {
  id: string;
  name: string;
  kind: InstitutionKind;
  validator: boolean;
}

export interface NewNetwork {
  genesis: Genesis;
  network: string;
  issuer: Identity;
  institutions: Map<string, Identity>;
  /** the consortium secret under which patient codes are computed; shared with members only */
  patientCodeKey: string;
}

export async function createNetwork(p: {
  name: string;
  createdAt: number;
  institutions: readonly InstitutionPlan[];
  config?: Partial<Genesis['config']>;
}): Promise<NewNetwork> {
  const issuer = await Identity.generate('issuer');
  const institutions = new Map<string, Identity>();
  for (const plan of p.institutions) institutions.set(plan.id, await Identity.generate(plan.id));
  const genesis: Genesis = {
    name: p.name,
    createdAt: p.createdAt,
    issuer: { name: `${p.name} Issuer`, signingKey: issuer.signingKey },
    institutions: p.institutions.map((plan) => ({
      id: plan.id,
      name: plan.name,
      kind: plan.kind,
      signingKey: institutions.get(plan.id)!.signingKey,
      encryptionKey: institutions.get(plan.id)!.encryptionKey,
      validator: plan.validator,
    })),
    config: { ...DEFAULT_CONFIG, ...p.config },
  };
  return { genesis, network: networkIdOf(genesis), issuer, institutions, patientCodeKey: toBase64Url(randomBytes(32)) };
}
