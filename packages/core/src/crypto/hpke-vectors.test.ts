/**
 * `@hpke/core`, which wraps record data keys (record-envelope.ts), against the published test
 * vectors of RFC 9180 Appendix A.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, in base
 * mode (A.1.1) and PSK mode (A.1.2). The KEM and KDF are the ones medledger uses; the vectors'
 * AEAD is AES-128-GCM where medledger uses AES-256-GCM, which RFC 9180 has no X25519 vector for.
 */
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256, type PreSharedKey } from '@hpke/core';
import { describe, expect, it } from 'vitest';
import { fromBase64Url, fromHex, toBase64Url, toHex } from '../codec/bytes.ts';
import { newDataKey, unwrapDataKey, wrapDataKey } from './record-envelope.ts';
import { generateEncryptionKey } from './x25519.ts';

interface Vector {
  section: string;
  info: string;
  ikmE: string;
  pkEm: string;
  skEm: string;
  ikmR: string;
  pkRm: string;
  skRm: string;
  psk?: { key: string; id: string };
  enc: string;
  /** The first three sequence numbers of the vector's Encryptions table, in order. */
  encryptions: readonly { aad: string; ct: string }[];
  /** The vector's Exported Values table; every entry has L = 32. */
  exports: readonly { context: string; value: string }[];
}

/** The plaintext of every encryption in Appendix A ("Beauty is truth, truth beauty"). */
const PT = '4265617574792069732074727574682c20747275746820626561757479';

const VECTORS: readonly Vector[] = [
  {
    section: 'A.1.1 (base mode)',
    info: '4f6465206f6e2061204772656369616e2055726e',
    ikmE: '7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234',
    pkEm: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
    skEm: '52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736',
    ikmR: '6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037',
    pkRm: '3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d',
    skRm: '4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8',
    enc: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
    encryptions: [
      { aad: '436f756e742d30', ct: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a' },
      { aad: '436f756e742d31', ct: 'af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84' },
      { aad: '436f756e742d32', ct: '498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180' },
    ],
    exports: [
      { context: '', value: '3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee' },
      { context: '00', value: '2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5' },
      { context: '54657374436f6e74657874', value: 'e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931' },
    ],
  },
  {
    section: 'A.1.2 (PSK mode)',
    info: '4f6465206f6e2061204772656369616e2055726e',
    ikmE: '78628c354e46f3e169bd231be7b2ff1c77aa302460a26dbfa15515684c00130b',
    pkEm: '0ad0950d9fb9588e59690b74f1237ecdf1d775cd60be2eca57af5a4b0471c91b',
    skEm: '463426a9ffb42bb17dbe6044b9abd1d4e4d95f9041cef0e99d7824eef2b6f588',
    ikmR: 'd4a09d09f575fef425905d2ab396c1449141463f698f8efdb7accfaff8995098',
    pkRm: '9fed7e8c17387560e92cc6462a68049657246a09bfa8ade7aefe589672016366',
    skRm: 'c5eb01eb457fe6c6f57577c5413b931550a162c71a03ac8d196babbd4e5ce0fd',
    psk: {
      key: '0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82',
      id: '456e6e796e20447572696e206172616e204d6f726961',
    },
    enc: '0ad0950d9fb9588e59690b74f1237ecdf1d775cd60be2eca57af5a4b0471c91b',
    encryptions: [
      { aad: '436f756e742d30', ct: 'e52c6fed7f758d0cf7145689f21bc1be6ec9ea097fef4e959440012f4feb73fb611b946199e681f4cfc34db8ea' },
      { aad: '436f756e742d31', ct: '49f3b19b28a9ea9f43e8c71204c00d4a490ee7f61387b6719db765e948123b45b61633ef059ba22cd62437c8ba' },
      { aad: '436f756e742d32', ct: '257ca6a08473dc851fde45afd598cc83e326ddd0abe1ef23baa3baa4dd8cde99fce2c1e8ce687b0b47ead1adc9' },
    ],
    exports: [
      { context: '', value: 'dff17af354c8b41673567db6259fd6029967b4e1aad13023c2ae5df8f4f43bf6' },
      { context: '00', value: '6a847261d8207fe596befb52928463881ab493da345b10e1dcc645e3b94e2d95' },
      { context: '54657374436f6e74657874', value: '8aff52b45a1be3a734bc7a41e20b4e055ad4c4d22104b0c20285a7c4302401cd' },
    ],
  },
];

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });

const hex = (buffer: ArrayBuffer) => toHex(new Uint8Array(buffer));

function pskOf(v: Vector): { psk: PreSharedKey } | Record<string, never> {
  return v.psk ? { psk: { key: fromHex(v.psk.key), id: fromHex(v.psk.id) } } : {};
}

describe('RFC 9180 Appendix A.1 with @hpke/core', () => {
  for (const v of VECTORS) {
    describe(v.section, () => {
      it('derives the ephemeral and recipient key pairs from ikmE and ikmR', async () => {
        const e = await suite.kem.deriveKeyPair(fromHex(v.ikmE));
        const r = await suite.kem.deriveKeyPair(fromHex(v.ikmR));
        expect(hex(await suite.kem.serializePublicKey(e.publicKey))).toBe(v.pkEm);
        expect(hex(await suite.kem.serializePrivateKey(e.privateKey))).toBe(v.skEm);
        expect(hex(await suite.kem.serializePublicKey(r.publicKey))).toBe(v.pkRm);
        expect(hex(await suite.kem.serializePrivateKey(r.privateKey))).toBe(v.skRm);
      });

      it('opens the vector ciphertexts in sequence and exports the vector values', async () => {
        const r = await suite.kem.deriveKeyPair(fromHex(v.ikmR));
        const recipient = await suite.createRecipientContext({ recipientKey: r, enc: fromHex(v.enc), info: fromHex(v.info), ...pskOf(v) });
        for (const e of v.encryptions) expect(hex(await recipient.open(fromHex(e.ct), fromHex(e.aad)))).toBe(PT);
        for (const x of v.exports) expect(hex(await recipient.export(fromHex(x.context), 32))).toBe(x.value);
      });

      it('seals to the vector enc and ciphertexts given the vector ephemeral key', async () => {
        const r = await suite.kem.deriveKeyPair(fromHex(v.ikmR));
        const ekm = await suite.kem.deriveKeyPair(fromHex(v.ikmE));
        const sender = await suite.createSenderContext({ recipientPublicKey: r.publicKey, info: fromHex(v.info), ekm, ...pskOf(v) });
        expect(hex(sender.enc)).toBe(v.enc);
        for (const e of v.encryptions) expect(hex(await sender.seal(fromHex(PT), fromHex(e.aad)))).toBe(e.ct);
        for (const x of v.exports) expect(hex(await sender.export(fromHex(x.context), 32))).toBe(x.value);
      });

      it('single-shot open of sequence 0, and a tampered ciphertext refused', async () => {
        const r = await suite.kem.deriveKeyPair(fromHex(v.ikmR));
        const params = { recipientKey: r, enc: fromHex(v.enc), info: fromHex(v.info), ...pskOf(v) };
        const first = v.encryptions[0]!;
        expect(hex(await suite.open(params, fromHex(first.ct), fromHex(first.aad)))).toBe(PT);
        const tampered = fromHex(first.ct);
        tampered[0]! ^= 1;
        await expect(suite.open(params, tampered, fromHex(first.aad))).rejects.toThrow();
      });
    });
  }
});

describe('wrapDataKey / unwrapDataKey', () => {
  it('round-trips a data key to its recipient', async () => {
    const recipient = await generateEncryptionKey();
    const dataKey = newDataKey();
    const envelope = await wrapDataKey(dataKey, recipient.publicKey);
    expect(fromBase64Url(envelope).length).toBe(32 + 32 + 16);
    expect(await unwrapDataKey(envelope, recipient.privateKey)).toEqual(dataKey);
  });

  it('refuses another recipient’s key and a tampered envelope with RECORD_INTEGRITY', async () => {
    const recipient = await generateEncryptionKey();
    const other = await generateEncryptionKey();
    const envelope = await wrapDataKey(newDataKey(), recipient.publicKey);
    await expect(unwrapDataKey(envelope, other.privateKey)).rejects.toMatchObject({ code: 'RECORD_INTEGRITY' });
    const bytes = fromBase64Url(envelope);
    bytes[bytes.length - 1]! ^= 1;
    await expect(unwrapDataKey(toBase64Url(bytes), recipient.privateKey)).rejects.toMatchObject({ code: 'RECORD_INTEGRITY' });
  });
});
