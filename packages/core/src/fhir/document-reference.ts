/**
 * A ledger index entry as a FHIR R4 DocumentReference (IHE MHD ITI-67's answer): who the record
 * is about, its category, custodian and registration time, its version links, and where its
 * content is retrieved (ITI-68) — never the content itself, which stays in the custodian's vault.
 */
import type { DocumentReference } from '@medplum/fhirtypes';
import type { RecordEntry } from '../contracts/state.ts';
import { ATTACHMENT_SHA256_EXTENSION } from './validate.ts';
import {
  Hl7Systems,
  MedledgerExtensions,
  MedledgerSystems,
  instantOf,
  institutionReference,
  patientReference,
  staffReference,
} from './systems.ts';

/** DocumentReference.status (R4 DocumentReferenceStatus) of each index state. */
export const DocumentStatusOfState = {
  active: 'current',
  superseded: 'superseded',
  retracted: 'entered-in-error',
  erased: 'entered-in-error',
} as const satisfies Record<RecordEntry['state'], DocumentReference['status']>;

const MAX_UNSIGNED_INT = 2_147_483_647;

export interface DocumentReferenceOptions {
  /** where the content is retrieved: the custodian's `/fhir/Binary/<id>` */
  contentUrl: string;
}

export function documentReferenceOf(r: RecordEntry, o: DocumentReferenceOptions): DocumentReference {
  const kind = { system: Hl7Systems.resourceTypes, code: r.category };
  return {
    resourceType: 'DocumentReference',
    id: r.recordId,
    meta: { lastUpdated: instantOf(r.registeredAt) },
    extension: [
      { url: MedledgerExtensions.recordState, valueCode: r.state },
      { url: MedledgerExtensions.ledgerHeight, valueInteger: r.height },
    ],
    identifier: [{ system: MedledgerSystems.record, value: r.recordId }],
    status: DocumentStatusOfState[r.state],
    type: { coding: [kind] },
    category: [{ coding: [kind] }],
    subject: patientReference(r.patientCode),
    date: instantOf(r.registeredAt),
    author: [staffReference(r.author)],
    custodian: institutionReference(r.custodian),
    ...(r.supersedes === null ? {} : { relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${r.supersedes}` } }] }),
    content: [
      {
        attachment: {
          contentType: 'application/fhir+json',
          url: o.contentUrl,
          ...(r.size <= MAX_UNSIGNED_INT ? { size: r.size } : {}),
          // FHIR's Attachment.hash is SHA-1; the index keeps the plaintext's SHA-256.
          extension: [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: r.hash }],
        },
      },
    ],
  };
}
