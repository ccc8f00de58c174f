import { describe, expect, it } from 'vitest';
import { generateSigningKey, keyId } from '../crypto/ed25519.ts';
import { signVote, verifyVote, type Validator, type Vote } from './finality.ts';

describe('verifyVote', () => {
  it('answers false, never throws, for a vote of the wrong shape from a known validator (anyone may publish votes)', async () => {
    const key = await generateSigningKey();
    const validators: Validator[] = [{ institution: 'hosp-a', keyId: keyId(key.publicKey), publicKey: key.publicKey }];
    const good = await signVote({ network: 'n'.repeat(32), height: 3, blockHash: 'a'.repeat(64), stateRoot: 'b'.repeat(64) }, key);
    expect(await verifyVote(good, validators)).toBe(true);
    const broken: unknown[] = [
      { ...good, blockHash: undefined },
      { ...good, stateRoot: 7 },
      { ...good, network: null },
      { ...good, blockHash: { nested: [1n === 1n] } },
      { ...good, signature: 'not base64url!' },
      { ...good, height: 4 },
    ];
    for (const v of broken) await expect(verifyVote(v as Vote, validators)).resolves.toBe(false);
  });
});
