/** Index entries as DocumentReference: status per state, version links, content pointer, no content. */
import { describe, expect, it } from 'vitest';
import { documentReferenceOf } from './document-reference.ts';
import { hex, recordEntry } from './ledger-resources.test-fixture.ts';
import { ATTACHMENT_SHA256_EXTENSION } from './validate.ts';

const url = 'https://hosp-b.example/fhir/Binary/1';

describe('documentReferenceOf', () => {
  it.each([
    ['active', 'current'],
    ['superseded', 'superseded'],
    ['retracted', 'entered-in-error'],
    ['erased', 'entered-in-error'],
  ] as const)('shows a %s entry as %s, keeping the ledger state', (state, status) => {
    const d = documentReferenceOf(recordEntry({ state }), { contentUrl: url });
    expect(d.status).toBe(status);
    expect(d.extension?.[0]?.valueCode).toBe(state);
  });

  it('links an amendment to what it replaces and points at the custodian’s Binary', () => {
    const d = documentReferenceOf(recordEntry({ supersedes: hex('0'), version: 2 }), { contentUrl: url });
    expect(d).toMatchObject({
      id: hex('1'),
      date: '2026-11-01T09:30:00.000Z',
      type: { coding: [{ code: 'Observation' }] },
      relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${hex('0')}` } }],
      content: [{ attachment: { url, size: 1234, extension: [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: hex('2') }] } }],
    });
    // The index's pointers, envelopes and ciphertext hash stay on the ledger.
    expect(JSON.stringify(d)).not.toMatch(/vault:hosp-b|cA|3333/);
  });

  it('leaves out a size FHIR cannot carry', () => {
    expect(documentReferenceOf(recordEntry({ size: 2 ** 32 }), { contentUrl: url }).content[0]!.attachment.size).toBeUndefined();
  });
});
