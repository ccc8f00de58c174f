/**
 * The vault's HTTP API (DESIGN §6). Every route takes only requests signed with HTTP Message
 * Signatures (RFC 9421) by an enrolled identity; a body must match its signed Content-Digest.
 * Routes are logged by pattern only (the URLs carry record ids).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { toBase64Url } from '@medledger/core/codec/bytes';
import { MedledgerError } from '@medledger/core/errors';
import { MAX_RESOURCE_BYTES } from '@medledger/core/fhir/validate';
import type { VaultService, SignedRequest } from '../vault/vault-service.ts';

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Hex32 = Type.String({ pattern: '^[0-9a-f]{32}$' });
const Institution = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}$' });
const ErrorBody = Type.Object({
  code: Type.String(),
  message: Type.String(),
  payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  410: ErrorBody,
  413: ErrorBody,
  422: ErrorBody,
};
const SIGNED =
  'Signed with RFC 9421 HTTP Message Signatures (`Signature-Input`, `Signature`; components @method, @path, @authority, @query when present, content-digest for bodies; parameters created, expires, nonce, keyid = the signer’s key id, alg ed25519, tag medledger-vault).';

/** A request as the vault's signature check takes it (the FHIR facade authenticates the same way). */
export function signedRequest(req: FastifyRequest): SignedRequest {
  return {
    method: req.method,
    protocol: req.protocol,
    target: req.url,
    headers: req.headers,
    body: (req as FastifyRequest & { rawBody?: Buffer }).rawBody,
  };
}

export async function registerVaultRoutes(app: FastifyInstance, vault: VaultService): Promise<void> {
  await app.register((scope, _opts, done) => {
    // In this scope JSON bodies are kept as bytes too, to check them against their digest.
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_RESOURCE_BYTES * 2 }, (req, body, next) => {
      (req as FastifyRequest & { rawBody?: Buffer }).rawBody = body as Buffer;
      try {
        next(null, JSON.parse((body as Buffer).toString('utf8')));
      } catch {
        next(new MedledgerError('INVALID_JSON'), undefined);
      }
    });
    // Files arrive as a stream and are encrypted as they come; nothing buffers a whole file.
    scope.addContentTypeParser('application/octet-stream', (_req, payload, next) => next(null, payload));

    scope.post(
      '/vault/:institution/records',
      {
        schema: {
          summary: 'Store a FHIR R4 record in the institution’s vault (its staff only); answers the index fields to register',
          description: SIGNED,
          tags: ['vault'],
          params: Type.Object({ institution: Institution }),
          body: Type.Object({ patientCode: Hex64, resource: Type.Object({}, { additionalProperties: true }) }),
          response: errors,
        },
      },
      async (req) => {
        const { institution } = req.params as { institution: string };
        const requester = await vault.authenticate(signedRequest(req), institution, 'POST /vault/:institution/records', null);
        return vault.storeRecord(requester, institution, req.body as { patientCode: string; resource: unknown });
      },
    );

    scope.put(
      '/vault/:institution/objects/:objectId/attachments/:index',
      {
        schema: {
          summary: 'Upload one file of a stored DocumentReference (application/octet-stream, streamed, at most 20 MiB)',
          description: `${SIGNED} Content-Digest is the SHA-256 of the file.`,
          tags: ['vault'],
          params: Type.Object({ institution: Institution, objectId: Hex32, index: Type.Integer({ minimum: 0, maximum: 63 }) }),
          response: errors,
        },
      },
      async (req) => {
        const { institution, objectId, index } = req.params as { institution: string; objectId: string; index: number };
        const requester = await vault.authenticate(
          signedRequest(req),
          institution,
          'PUT /vault/:institution/objects/:objectId/attachments/:index',
          null,
        );
        const digest = req.headers['content-digest'];
        if (!(req.body instanceof Readable))
          throw new MedledgerError('BAD_REQUEST', { details: 'Send the file as application/octet-stream.' });
        return vault.storeAttachment(requester, institution, objectId, index, req.body, typeof digest === 'string' ? digest : undefined);
      },
    );

    scope.get(
      '/vault/records/:recordId',
      {
        schema: {
          summary: 'Fetch a record: served only if a final consent covers the requester, record, purpose and time',
          description: `${SIGNED} The vault first writes access.recordServed to the ledger and waits until it is final; the answer carries the ciphertext and its data key wrapped (HPKE) to the requester’s encryption key. Refusals are audited with their code.`,
          tags: ['vault'],
          params: Type.Object({ recordId: Hex64 }),
          querystring: Type.Object({
            purpose: Type.String({ description: 'HL7 purpose of use, e.g. TREAT' }),
            deidentification: Type.Optional(Type.String()),
            study: Type.Optional(
              Type.String({
                description: 'a researcher asks within a study: the record is de-identified at the study’s level, without files',
              }),
            ),
          }),
          response: errors,
        },
      },
      async (req) => {
        const { recordId } = req.params as { recordId: string };
        const custodian = vault.custodianOf(recordId);
        const requester = await vault.authenticate(signedRequest(req), custodian, 'GET /vault/records/:recordId', recordId);
        const served = await vault.serveRecord(
          requester,
          recordId,
          req.query as { purpose?: string; deidentification?: string; study?: string },
        );
        return { ...served, ciphertext: toBase64Url(served.ciphertext) };
      },
    );

    scope.get(
      '/vault/records/:recordId/attachments/:index',
      {
        schema: {
          summary: 'Stream one file of a record (ciphertext, stream-AEAD chunks) to a requester the ledger recorded as served it',
          description: SIGNED,
          tags: ['vault'],
          params: Type.Object({ recordId: Hex64, index: Type.Integer({ minimum: 0, maximum: 63 }) }),
          querystring: Type.Object({ access: Type.Optional(Hex64) }),
          response: errors,
        },
      },
      async (req, reply) => {
        const { recordId, index } = req.params as { recordId: string; index: number };
        const custodian = vault.custodianOf(recordId);
        const requester = await vault.authenticate(
          signedRequest(req),
          custodian,
          'GET /vault/records/:recordId/attachments/:index',
          recordId,
        );
        const file = await vault.serveAttachment(requester, recordId, index, (req.query as { access?: string }).access);
        void reply.header('content-type', 'application/octet-stream').header('medledger-ciphertext-hash', file.ciphertextHash);
        return reply.send(toNodeStream(file.chunks));
      },
    );

    scope.get(
      '/vault/:institution/audit',
      {
        schema: {
          summary: 'The vault’s audit trail: every answer, served or refused, with its code (the institution’s auditors)',
          description: SIGNED,
          tags: ['vault'],
          params: Type.Object({ institution: Institution }),
          querystring: Type.Object({
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          }),
          response: errors,
        },
      },
      async (req) => {
        const { institution } = req.params as { institution: string };
        const q = req.query as { after?: number; limit?: number };
        const requester = await vault.authenticate(signedRequest(req), institution, 'GET /vault/:institution/audit', null);
        return { entries: await vault.auditLog(requester, institution, q.after ?? 0, q.limit ?? 100) };
      },
    );
    done();
  });
}

/** A stream that reads the next chunk from the store only when the socket asks for more. */
function toNodeStream(chunks: AsyncIterable<Uint8Array>): Readable {
  const it = chunks[Symbol.asyncIterator]();
  return new Readable({
    highWaterMark: 0,
    read() {
      it.next().then(
        (n) => this.push(n.done === true ? null : Buffer.from(n.value.buffer, n.value.byteOffset, n.value.byteLength)),
        (e: unknown) => this.destroy(e instanceof Error ? e : new Error(String(e))),
      );
    },
    destroy(error, callback) {
      // A client that went away: let the store's reader finish.
      void it.return?.();
      callback(error);
    },
  });
}
