/**
 * An identity that acts on the ledger: its signing and encryption keys, and a builder that signs
 * transactions for one network. Private keys stay in the object that holds them.
 */
import type { JsonObject } from '../codec/canonical-json.ts';
import { toBase64Url } from '../codec/bytes.ts';
import { generateSigningKey, keyId, sign, type Ed25519KeyPair } from '../crypto/ed25519.ts';
import { generateEncryptionKey, type X25519KeyPair } from '../crypto/x25519.ts';
import { patientPossessionMessage } from '../contracts/identity.ts';
import { buildTx, type Tx } from '../ledger/tx.ts';
import type { TxType } from '../ledger/tx-types.ts';

export interface IdentityFile {
  /** who this is, e.g. "hosp-a", "hosp-a/dr-kim", "patient:<code prefix>" */
  label: string;
  signing: Ed25519KeyPair;
  encryption: X25519KeyPair;
}

export class Identity {
  readonly keyId: string;
  constructor(readonly file: IdentityFile) {
    this.keyId = keyId(file.signing.publicKey);
  }

  static async generate(label: string): Promise<Identity> {
    return new Identity({ label, signing: await generateSigningKey(), encryption: await generateEncryptionKey() });
  }

  get label(): string {
    return this.file.label;
  }
  get signingKey(): string {
    return this.file.signing.publicKey;
  }
  get encryptionKey(): string {
    return this.file.encryption.publicKey;
  }

  tx(
    network: string,
    type: TxType,
    body: JsonObject,
    options: { nonce?: string; createdAt?: number } = {},
  ): Promise<{ tx: Tx; txId: string }> {
    return buildTx({ network, type, body, signer: this.file.signing, ...options });
  }

  /** The proof a patient gives the institution registering them that they hold these keys. */
  async possessionProof(network: string, patientCode: string, institution: string): Promise<string> {
    const message = patientPossessionMessage(network, patientCode, this.signingKey, this.encryptionKey, institution);
    return toBase64Url(await sign(this.file.signing.privateKey, message));
  }
}
