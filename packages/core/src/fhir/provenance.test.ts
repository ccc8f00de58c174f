/** Registrations and amendments as Provenance, with the author's tx signature in standard base64. */
import { describe, expect, it } from 'vitest';
import { fromBase64Url } from '../codec/bytes.ts';
import { hex, recordEntry } from './ledger-resources.test-fixture.ts';
import { provenanceOf } from './provenance.ts';
import { fromBase64 } from './systems.ts';

const SIG = 'AQID_-' + 'A'.repeat(79) + 'A';
const tx = { txId: hex('1'), author: 'k' + '0'.repeat(40), signature: SIG };

describe('provenanceOf', () => {
  it('records a registration: target, block time, author on behalf of the custodian, signature', () => {
    const p = provenanceOf(recordEntry(), tx);
    expect(p).toMatchObject({
      id: hex('1'),
      target: [{ reference: `DocumentReference/${hex('1')}` }],
      recorded: '2026-11-01T09:30:00.000Z',
      activity: { coding: [{ code: 'CREATE' }] },
      agent: [{ who: { identifier: { value: 'hosp-b/dr-park' } }, onBehalfOf: { identifier: { value: 'hosp-b' } } }, {}],
    });
    expect(p.entity).toBeUndefined();
    const sig = p.signature![0]!;
    expect(sig.who.identifier?.value).toBe(tx.author);
    expect(fromBase64(sig.data!)).toEqual(fromBase64Url(SIG));
  });

  it('records an amendment as an UPDATE with the revised version as its entity', () => {
    const p = provenanceOf(recordEntry({ supersedes: hex('0') }), tx);
    expect(p.activity?.coding?.[0]?.code).toBe('UPDATE');
    expect(p.entity).toEqual([{ role: 'revision', what: { reference: `DocumentReference/${hex('0')}` } }]);
  });
});
