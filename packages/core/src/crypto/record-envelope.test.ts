import { afterEach, expect, it } from 'vitest';
import { fromBase64Url } from '../codec/bytes.ts';
import { newDataKey, setRecipientKeyResolver, unwrapDataKey, wrapDataKey } from './record-envelope.ts';
import { generateEncryptionKey, x25519Pkcs8 } from './x25519.ts';

afterEach(() => setRecipientKeyResolver(() => undefined));

it('unwraps with a non-extractable key pair that a handle names, as a browser keeps it', async () => {
  const recipient = await generateEncryptionKey();
  const keys = {
    privateKey: await crypto.subtle.importKey('pkcs8', x25519Pkcs8(recipient.privateKey), { name: 'X25519' }, false, ['deriveBits']),
    publicKey: await crypto.subtle.importKey(
      'raw',
      fromBase64Url(recipient.publicKey) as Uint8Array<ArrayBuffer>,
      { name: 'X25519' },
      true,
      [],
    ),
  };
  setRecipientKeyResolver((handle) => (handle === 'held:1' ? keys : undefined));
  const dataKey = newDataKey();
  const envelope = await wrapDataKey(dataKey, recipient.publicKey);
  expect(await unwrapDataKey(envelope, 'held:1')).toEqual(dataKey);
  // A raw key still works beside the resolver, and an unknown handle is no key at all.
  expect(await unwrapDataKey(envelope, recipient.privateKey)).toEqual(dataKey);
  await expect(unwrapDataKey(envelope, 'held:2')).rejects.toMatchObject({ code: 'RECORD_INTEGRITY' });
});
