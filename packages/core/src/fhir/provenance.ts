/**
 * Who registered or amended a record, as a FHIR R4 Provenance: the DocumentReference it made,
 * the block time, the author and their institution, and the author's signature over the
 * transaction (Ed25519 over "medledger/tx/v1\n" || txId), with the txId to check it against.
 */
import type { Provenance } from '@medplum/fhirtypes';
import type { RecordEntry } from '../contracts/state.ts';
import { fromBase64Url } from '../codec/bytes.ts';
import { Hl7Systems, MedledgerExtensions, MedledgerSystems, instantOf, institutionReference, staffReference, toBase64 } from './systems.ts';

/** The register or amend transaction that made the entry, as stored in its block. */
export interface RecordTx {
  txId: string;
  /** key id of the author's signing key */
  author: string;
  /** base64url Ed25519 signature */
  signature: string;
}

export function provenanceOf(r: RecordEntry, tx: RecordTx): Provenance {
  const recorded = instantOf(r.registeredAt);
  return {
    resourceType: 'Provenance',
    id: r.recordId,
    extension: [
      { url: MedledgerExtensions.ledgerTx, valueString: tx.txId },
      { url: MedledgerExtensions.ledgerHeight, valueInteger: r.height },
    ],
    target: [{ reference: `DocumentReference/${r.recordId}` }],
    recorded,
    activity: { coding: [{ system: Hl7Systems.dataOperation, code: r.supersedes === null ? 'CREATE' : 'UPDATE' }] },
    agent: [
      {
        type: { coding: [{ system: Hl7Systems.provenanceParticipantType, code: 'author' }] },
        who: staffReference(r.author),
        onBehalfOf: institutionReference(r.custodian),
      },
      {
        type: { coding: [{ system: Hl7Systems.provenanceParticipantType, code: 'custodian' }] },
        who: institutionReference(r.custodian),
      },
    ],
    ...(r.supersedes === null ? {} : { entity: [{ role: 'revision', what: { reference: `DocumentReference/${r.supersedes}` } }] }),
    signature: [
      {
        // ASTM E1762-95 1.2.840.10065.1.12.1.1: Author's Signature.
        type: [{ system: Hl7Systems.signatureType, code: '1.2.840.10065.1.12.1.1', display: 'Author’s Signature' }],
        when: recorded,
        who: { identifier: { system: MedledgerSystems.key, value: tx.author }, display: r.author },
        data: toBase64(fromBase64Url(tx.signature)),
      },
    ],
  };
}
