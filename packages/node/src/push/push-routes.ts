/**
 * HTTP routes of issue 7. Ledger reads (the break-glass review queue, a patient's guardians and
 * subscriptions) are open like the other ledger reads; the webhook outbox of an institution (its
 * dead letters, re-driving one) takes only requests signed (RFC 9421) by the institution's key or
 * its operators. Routes are logged by pattern only.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { MedledgerError } from '@medledger/core/errors';
import type { Review } from '@medledger/core/contracts/state';
import type { LedgerStore } from '../store/ledger-store.ts';
import type { PushService } from './push-service.ts';
import type { Delivery } from './push-store.ts';

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Institution = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}$' });
const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 }));
const ErrorBody = Type.Object({
  code: Type.String(),
  message: Type.String(),
  payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const SIGNED =
  'Signed with RFC 9421 HTTP Message Signatures as vault requests are (tag medledger-vault), by the institution’s key or one of its operators.';

/** What the API shows of a delivery: not its URL (the institution’s internal address). */
function shown(d: Delivery): Omit<Delivery, 'url'> & { url?: never } {
  const copy: Partial<Delivery> = { ...d };
  delete copy.url;
  return copy as Omit<Delivery, 'url'>;
}

export async function registerPushRoutes(app: FastifyInstance, store: LedgerStore, push: PushService): Promise<void> {
  app.get(
    '/api/break-glass/reviews',
    {
      schema: {
        summary: 'Break-glass accesses to review (open) or reviewed (closed), newest first; optionally of one institution’s doctors',
        tags: ['access'],
        querystring: Type.Object({
          status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('closed')], { default: 'open' })),
          institution: Type.Optional(Institution),
          limit: Limit,
        }),
      },
    },
    (req) => {
      const q = req.query as { status?: 'open' | 'closed'; institution?: string; limit?: number };
      const rows = store.query('reviews', { status: q.status ?? 'open' }, null, null, 100_000) as unknown as Review[];
      return rows
        .filter((r) => q.institution === undefined || r.institution === q.institution)
        .sort((a, b) => b.openedAt - a.openedAt || (a.reviewId < b.reviewId ? -1 : 1))
        .slice(0, q.limit ?? 100);
    },
  );

  const byPatient = (path: string, summary: string, table: 'guardianships' | 'subscriptions', column: string): void => {
    app.get(
      `/api/patients/:code/${path}`,
      { schema: { summary, tags: ['patients'], params: Type.Object({ code: Hex64 }), querystring: Type.Object({ limit: Limit }) } },
      (req) =>
        store.query(table, { [column]: (req.params as { code: string }).code }, null, null, (req.query as { limit?: number }).limit ?? 100),
    );
  };
  byPatient(
    'guardians',
    'The guardians a patient appointed, active and revoked, with their scope and period',
    'guardianships',
    'patient_code',
  );
  byPatient('wards', 'The patients who appointed this patient their guardian', 'guardianships', 'guardian_code');
  byPatient('subscriptions', 'Subscriptions to a patient’s new records, active and cancelled', 'subscriptions', 'patient_code');

  await app.register((scope, _opts, done) => {
    // Bodies are kept as bytes too, to check them against their signed digest.
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (req, body, next) => {
      (req as FastifyRequest & { rawBody?: Buffer }).rawBody = body as Buffer;
      try {
        next(null, JSON.parse((body as Buffer).toString('utf8')));
      } catch {
        next(new MedledgerError('INVALID_JSON'), undefined);
      }
    });
    const signed = (req: FastifyRequest) => ({
      method: req.method,
      protocol: req.protocol,
      target: req.url,
      headers: req.headers,
      body: (req as FastifyRequest & { rawBody?: Buffer }).rawBody,
    });

    scope.get(
      '/api/push/:institution/deliveries',
      {
        schema: {
          summary: 'The institution’s webhook deliveries by status (dead: the dead-letter list), most recently changed first',
          description: SIGNED,
          tags: ['push'],
          params: Type.Object({ institution: Institution }),
          querystring: Type.Object({
            status: Type.Optional(
              Type.Union([Type.Literal('dead'), Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dropped')], {
                default: 'dead',
              }),
            ),
            limit: Limit,
          }),
          response: errors,
        },
      },
      async (req) => {
        const { institution } = req.params as { institution: string };
        const q = req.query as { status?: Delivery['status']; limit?: number };
        await push.authorize(signed(req), institution);
        return { deliveries: push.deliveries(institution, q.status ?? 'dead', q.limit ?? 100).map(shown) };
      },
    );

    scope.post(
      '/api/push/:institution/deliveries/:deliveryId/redrive',
      {
        schema: {
          summary: 'Put a dead-lettered delivery back in the queue with fresh attempts, and attempt it now',
          description: `${SIGNED} The body is {} (its Content-Digest is signed).`,
          tags: ['push'],
          params: Type.Object({ institution: Institution, deliveryId: Hex64 }),
          response: errors,
        },
      },
      async (req) => {
        const { institution, deliveryId } = req.params as { institution: string; deliveryId: string };
        await push.authorize(signed(req), institution);
        return shown(await push.redrive(institution, deliveryId));
      },
    );
    done();
  });
}
