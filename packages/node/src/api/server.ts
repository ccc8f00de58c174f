/**
 * The node's HTTP API (Fastify, described by OpenAPI at /api/openapi.json): submit signed
 * transactions, read receipts and blocks, search the record index, read a patient's consents
 * and access log, and follow new blocks and ledger events as server-sent events.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import rateLimit from '@fastify/rate-limit';
import { Type } from '@sinclair/typebox';
import { buildReceipt } from '@medledger/core/ledger/receipt';
import { MedledgerError } from '@medledger/core/errors';
import type { JsonValue } from '@medledger/core/codec/canonical-json';
import type { Member, Study } from '@medledger/core/contracts/state';
import { Id } from '@medledger/core/contracts/schemas';
import { TxEnvelopeSchema, txIdOf } from '@medledger/core/ledger/tx';
import type { Peer, CommittedBlock } from '../peer/peer.ts';
import type { FinalityTracker } from '../peer/finality-tracker.ts';
import { rawAnswer, rawErrorAnswer, toHttpError } from './http-errors.ts';
import { registerVaultRoutes } from './vault-routes.ts';
import { registerFhirRoutes } from './fhir-routes.ts';
import type { VaultService } from '../vault/vault-service.ts';
import { registerWebApp } from './web-app.ts';
import { registerDemoIdentities } from './demo-identities.ts';
import type { KeyEntry, Patient, Staff } from '@medledger/core/contracts/state';
import type { Notification, PushService } from '../push/push-service.ts';
import { registerPushRoutes } from '../push/push-routes.ts';

export interface ApiOptions {
  /** largest request body accepted, bytes */
  bodyLimit: number;
  /** requests per minute per client address */
  rateLimitPerMinute: number;
  institution: string;
  logger: boolean;
  /** on a consortium: finality certificates and divergence */
  finality?: FinalityTracker | null;
  /** the vault(s) this node keeps, served under /vault */
  vault?: VaultService | null;
  /** the built browser app to serve at `/` (packages/web/dist); null serves none */
  webDist?: string | null;
  /** `medledger demo` only: the demo's synthetic identity files, offered to the app's sign-in */
  demoIdentitiesDir?: string | null;
  /** issue 7: subscription and break-glass notifications, the webhook outbox */
  push?: PushService | null;
}

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const ErrorBody = Type.Object({
  code: Type.String(),
  message: Type.String(),
  payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 }));
/**
 * URLs carry patient codes; logs never do (STYLE rule 7): a request is logged by its route
 * pattern (`/api/patients/:code/consents`), never by its URL.
 */
export function logPath(req: { routeOptions?: { url?: string | undefined } | undefined }): string {
  return req.routeOptions?.url ?? '(no route)';
}

export async function createApi(peer: Peer, o: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: o.bodyLimit,
    // Errors Fastify raises before routing (a malformed URL) get the same coded body.
    frameworkErrors: (_error, _req, reply) => {
      (reply as unknown as { code(s: number): { send(b: unknown): void } }).code(400).send(new MedledgerError('BAD_REQUEST').toJSON());
    },
    // Node would answer a missing Host with an empty 400; the onRequest hook below answers it coded.
    http: { requireHostHeader: false },
    // ... and so do requests Node's HTTP parser refuses before Fastify sees them.
    clientErrorHandler: (error, socket) => {
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return;
      // As Node itself does: answer only when no answer on this connection has begun.
      const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (socket.writable && inFlight?.headersSent !== true) socket.end(rawErrorAnswer(error), () => socket.destroy());
      else socket.destroy();
    },
    logger: o.logger
      ? {
          level: 'info',
          serializers: {
            req: (req: { method: string; routeOptions?: { url?: string | undefined } }) => ({ method: req.method, route: logPath(req) }),
          },
        }
      : false,
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'medledger node API',
        version: '1',
        description:
          'A consortium ledger node. Submissions are answered `accepted` (durable, to be ordered), `committed` (in a block) ' +
          'or, on a consortium, `final` (certified by a quorum of validators). Errors are `{ code, message }` with a stable code.',
      },
      servers: [{ url: '/' }],
    },
  });
  await app.register(rateLimit, {
    max: o.rateLimitPerMinute,
    timeWindow: 60_000,
    errorResponseBuilder: () => ({ statusCode: 429, code: 'RATE_LIMITED', message: new MedledgerError('RATE_LIMITED').message }),
  });

  app.setErrorHandler((error, _req, reply) => {
    const { status, body } = toHttpError(error);
    if (status >= 500) app.log.error({ code: body.code, err: error instanceof Error ? error.name : 'error' }, 'request failed');
    return reply.status(status).send(body);
  });
  const web = o.webDist == null ? null : await registerWebApp(app, o.webDist);
  // A path the app routes in the browser gets its index.html; anything else a coded 404.
  app.setNotFoundHandler((req, reply) => web?.fallback(req, reply) || reply.status(404).send(new MedledgerError('NOT_FOUND').toJSON()));
  // RFC 9112 §3.2: a server answers 400 to an HTTP/1.1 request without exactly one Host.
  app.addHook('onRequest', (req, _reply, done) => {
    const hosts = req.raw.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'host').length;
    done(
      req.raw.httpVersion === '1.1' && hosts !== 1 ? new MedledgerError('BAD_REQUEST', { details: 'Name exactly one Host.' }) : undefined,
    );
  });
  // Ajv coerces "Infinity" or 1e400 to Infinity and lets it past `minimum` and `maximum` (SQLite
  // then refuses it as a LIMIT): no handler sees a path or query number that is not finite.
  app.addHook('preHandler', (req, _reply, done) => {
    const values = [req.params, req.query].flatMap((p): unknown[] => (typeof p === 'object' && p !== null ? Object.values(p).flat() : []));
    const infinite = values.some((v) => typeof v === 'number' && !Number.isFinite(v));
    done(infinite ? new MedledgerError('BAD_REQUEST', { details: 'A number in the path or query is not finite.' }) : undefined);
  });
  // Node drops a CONNECT no one listens for without a word; this node is no proxy.
  app.server.on('connect', (_req, socket: Duplex) => {
    socket.end(rawAnswer(405, new MedledgerError('BAD_REQUEST', { details: 'This node is not a proxy.' })), () => socket.destroy());
  });
  // Node answers an Expect it does not know with an empty 417 unless someone listens.
  app.server.on('checkExpectation', (_req, res) => {
    const body = JSON.stringify(new MedledgerError('BAD_REQUEST', { details: 'Only Expect: 100-continue is understood.' }).toJSON());
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', connection: 'close' }).end(body);
  });

  const store = peer.store;
  /** the open server-sent event streams */
  const streams = new Set<ServerResponse>();
  /**
   * txIds of recently committed blocks, for `final` events: finality follows commit by a few
   * blocks, and recomputing 2,000 txIds from a stored block for every event stream would cost
   * the node tens of milliseconds per height.
   */
  const recentTxIds = new Map<number, string[]>();
  const rememberTxIds = (b: CommittedBlock): void => {
    recentTxIds.set(b.height, b.txIds);
    if (recentTxIds.size > 1024) recentTxIds.delete(recentTxIds.keys().next().value!);
  };
  const txIdsAt = (height: number): string[] => {
    const cached = recentTxIds.get(height);
    if (cached !== undefined) return cached;
    return store.block(height)?.block.txs.map((tx) => txIdOf(tx)) ?? [];
  };
  peer.on('block', rememberTxIds);
  app.addHook('onClose', () => {
    peer.off('block', rememberTxIds);
  });
  const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 429: ErrorBody, 503: ErrorBody };

  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());

  app.get('/api/health', { schema: { summary: 'Node status and chain head', tags: ['node'] } }, () => {
    const head = store.head();
    const fin = o.finality?.status;
    return {
      status: fin?.divergence ? 'DIVERGENCE' : peer.haltedBy === null ? 'ok' : 'halted',
      finalHeight: fin?.finalHeight ?? null,
      divergence: fin?.divergence ?? null,
      dissentingValidators: [...new Set((fin?.dissents ?? []).map((d) => d.institution))],
      network: peer.network,
      institution: o.institution,
      ordering: peer.orderer.kind,
      height: head.height,
      headHash: head.hash,
      stateRoot: head.stateRoot,
      time: head.time,
    };
  });

  app.post(
    '/api/tx',
    {
      // The schema documents the envelope; decodeTx checks it, so errors carry TX_* codes.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Submit a signed transaction',
        description:
          'Answers once the tx is durable (`accepted`). With `wait=commit`, answers once it is in a block, with its validity code.',
        tags: ['ledger'],
        querystring: Type.Object({ wait: Type.Optional(Type.Union([Type.Literal('commit'), Type.Literal('none')])) }),
        body: TxEnvelopeSchema,
        response: {
          200: Type.Object({
            txId: Hex64,
            status: Type.String(),
            height: Type.Optional(Type.Integer()),
            code: Type.Optional(Type.String()),
          }),
          202: Type.Object({ txId: Hex64, status: Type.String() }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const q = req.query as { wait?: string };
      if (q.wait !== undefined && q.wait !== 'commit' && q.wait !== 'none')
        throw new MedledgerError('BAD_REQUEST', { details: 'wait is commit or none.' });
      const { txId, status } = await peer.submit(req.body);
      const final = q.wait === 'commit' ? await peer.waitForCommit(txId, 30_000) : status;
      if (final.status === 'committed')
        return reply.status(200).send({ txId, status: 'committed', height: final.height, code: final.code });
      return reply.status(202).send({ txId, status: final.status });
    },
  );

  app.get(
    '/api/tx/:id',
    {
      schema: {
        summary: 'Status, validity code and receipt (inclusion proof) of a transaction',
        tags: ['ledger'],
        params: Type.Object({ id: Hex64 }),
        response: { 404: ErrorBody },
      },
    },
    (req) => {
      const { id } = req.params as { id: string };
      const status = peer.status(id);
      if (status.status === 'unknown') throw new MedledgerError('NOT_FOUND', { details: 'No such transaction.' });
      if (status.status !== 'committed') return { txId: id, status: status.status };
      const stored = store.block(status.height)!;
      const txs = stored.block.txs.map((tx) => ({ tx, txId: txIdOf(tx) }));
      const certificate = o.finality?.certificate(status.height) ?? null;
      return {
        txId: id,
        status: certificate !== null ? 'final' : 'committed',
        height: status.height,
        index: status.index,
        code: status.code,
        receipt: buildReceipt(stored.block.header, txs, stored.block.codes, status.index),
        finality: certificate,
      };
    },
  );

  app.get(
    '/api/blocks',
    { schema: { summary: 'Recent block headers, newest first', tags: ['ledger'], querystring: Type.Object({ limit: Limit }) } },
    (req) => store.recentBlocks((req.query as { limit?: number }).limit ?? 20),
  );

  app.get(
    '/api/blocks/:height',
    {
      schema: {
        summary: 'A block with its transactions and validity codes',
        tags: ['ledger'],
        params: Type.Object({ height: Type.Integer({ minimum: 0 }) }),
        response: { 404: ErrorBody },
      },
    },
    (req) => {
      const stored = store.block((req.params as { height: number }).height);
      if (stored === undefined) throw new MedledgerError('NOT_FOUND', { details: 'No block at that height.' });
      return {
        hash: stored.hash,
        header: stored.block.header,
        txs: stored.block.txs.map((tx, i) => ({ txId: txIdOf(tx), code: stored.block.codes[i], tx })),
      };
    },
  );

  app.get(
    '/api/keys/:keyId',
    {
      schema: {
        summary: 'Who holds a signing key: its owner (staff with role and institution, patient, institution, issuer) and status',
        tags: ['consortium'],
        params: Type.Object({ keyId: Type.String({ pattern: '^k[0-9a-f]{40}$' }) }),
        response: { 404: ErrorBody },
      },
    },
    (req) => {
      const key = store.get('keys', (req.params as { keyId: string }).keyId) as unknown as KeyEntry | undefined;
      if (key === undefined) throw new MedledgerError('NOT_FOUND', { details: 'No identity holds this key.' });
      const owner = key.owner;
      const staff = owner.kind === 'staff' ? (store.get('staff', owner.staffId) as unknown as Staff | undefined) : undefined;
      const patient = owner.kind === 'patient' ? (store.get('patients', owner.patientCode) as unknown as Patient | undefined) : undefined;
      return {
        keyId: key.keyId,
        status: key.status,
        owner,
        staff:
          staff === undefined
            ? null
            : { staffId: staff.staffId, institution: staff.institution, role: staff.role, displayName: staff.displayName },
        patient: patient === undefined ? null : { patientCode: patient.patientCode, home: patient.home },
      };
    },
  );

  app.get('/api/members', { schema: { summary: 'Member institutions', tags: ['consortium'] } }, () =>
    ((store.get('meta', 'members') as string[] | undefined) ?? []).map((id) => store.get('members', id) as unknown as Member),
  );

  app.get(
    '/api/proposals',
    {
      schema: {
        summary: 'Membership proposals with their votes, newest first',
        tags: ['consortium'],
        querystring: Type.Object({ limit: Limit }),
      },
    },
    (req) => store.query('proposals', {}, null, { column: 'created_at', desc: true }, (req.query as { limit?: number }).limit ?? 100),
  );

  app.get(
    '/api/records',
    {
      schema: {
        summary: 'Search the record index by conditions',
        tags: ['records'],
        querystring: Type.Object({
          patientCode: Type.Optional(Hex64),
          category: Type.Optional(Type.String({ pattern: '^[A-Z][A-Za-z]{1,63}$' })),
          custodian: Type.Optional(Type.String({ maxLength: 48 })),
          from: Type.Optional(Type.Integer({ minimum: 0, description: 'registered at or after, ms' })),
          to: Type.Optional(Type.Integer({ minimum: 0, description: 'registered before, ms' })),
          limit: Limit,
        }),
      },
    },
    (req, reply) => {
      const q = req.query as { patientCode?: string; category?: string; custodian?: string; from?: number; to?: number; limit?: number };
      if (q.patientCode === undefined && q.custodian === undefined) {
        throw new MedledgerError('BAD_REQUEST', { details: 'Give patientCode or custodian.' });
      }
      const texts = store.queryTexts(
        'records',
        { patient_code: q.patientCode, category: q.category, custodian: q.custodian },
        { column: 'registered_at', from: q.from, to: q.to },
        { column: 'registered_at', desc: true },
        q.limit ?? 100,
      );
      // The stored values are canonical JSON already: passed through, not parsed and re-serialised.
      return reply.type('application/json; charset=utf-8').send(`[${texts.join(',')}]`);
    },
  );

  app.get(
    '/api/records/:id',
    { schema: { summary: 'One record index entry', tags: ['records'], params: Type.Object({ id: Hex64 }), response: { 404: ErrorBody } } },
    (req) => {
      const r = store.get('records', (req.params as { id: string }).id);
      if (r === undefined) throw new MedledgerError('RECORD_NOT_FOUND');
      return r;
    },
  );

  // Research: studies and aggregation rounds, as the ledger holds them (shares are sealed to the releaser).
  const publicStudy = (value: unknown): unknown => {
    const { keyEnvelopes, ...study } = value as Study;
    return { ...study, keyShared: keyEnvelopes !== null };
  };
  app.get(
    '/api/studies',
    {
      schema: {
        summary: 'Registered research studies, newest first',
        tags: ['research'],
        querystring: Type.Object({ limit: Limit }),
      },
    },
    (req) =>
      store
        .query('studies', {}, null, { column: 'registered_at', desc: true }, (req.query as { limit?: number }).limit ?? 100)
        .map(publicStudy),
  );
  app.get(
    '/api/studies/:id',
    {
      schema: {
        summary: 'A study with its privacy budget and its aggregation rounds (query, custodians, released result and its hash)',
        tags: ['research'],
        params: Type.Object({ id: Id }),
        response: { 404: ErrorBody },
      },
    },
    (req) => {
      const id = (req.params as { id: string }).id;
      const study = store.get('studies', id);
      if (study === undefined) throw new MedledgerError('STUDY_NOT_FOUND');
      const rounds = store.query('rounds', { study_id: id }, null, { column: 'opened_at', desc: true }, 1000);
      return { study: publicStudy(study), rounds };
    },
  );
  app.get(
    '/api/rounds/:id',
    {
      schema: {
        summary: 'One aggregation round: its custodians, who contributed, and its released result',
        tags: ['research'],
        params: Type.Object({ id: Hex64 }),
        response: { 404: ErrorBody },
      },
    },
    (req) => {
      const round = store.get('rounds', (req.params as { id: string }).id);
      if (round === undefined) throw new MedledgerError('ROUND_NOT_FOUND');
      return round;
    },
  );

  const perPatient = (
    path: string,
    summary: string,
    table: 'consents' | 'accessLog' | 'accessRequests' | 'regRequests',
    order: string | null,
  ): void => {
    app.get(
      `/api/patients/:code/${path}`,
      { schema: { summary, tags: ['patients'], params: Type.Object({ code: Hex64 }), querystring: Type.Object({ limit: Limit }) } },
      (req) => {
        const code = (req.params as { code: string }).code;
        return store.query(
          table,
          { patient_code: code },
          null,
          order === null ? null : { column: order, desc: true },
          (req.query as { limit?: number }).limit ?? 100,
        );
      },
    );
  };
  perPatient('consents', 'A patient’s consents, active and revoked', 'consents', null);
  perPatient('access-log', 'A patient’s access history: who, which institution, when, what, why, served or refused', 'accessLog', 'time');
  perPatient('access-requests', 'Access requests made to a patient', 'accessRequests', 'created_at');
  perPatient('registration-requests', 'Requests to register a record for a patient', 'regRequests', 'created_at');

  app.get(
    '/api/events',
    {
      schema: {
        summary:
          'Server-sent events: `block` for each committed block, `ledger` for each contract event, `final` for each certified height (consortium), ' +
          '`notification` for a subscriber’s new record (`subscriber=`) and a patient’s break-glass notice (`patientCode=`)',
        tags: ['ledger'],
        querystring: Type.Object({
          patientCode: Type.Optional(Hex64),
          subscriber: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,47}/[a-z0-9][a-z0-9.-]{0,47}$' })),
        }),
      },
    },
    (req, reply) => {
      const { patientCode, subscriber } = req.query as { patientCode?: string; subscriber?: string };
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      // A HEAD asks for the head only: Node would hold it back until an end that never comes.
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const send = (event: string, data: JsonValue | object): void => {
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const head = store.head();
      send('hello', { network: peer.network, height: head.height });
      const onBlock = (b: CommittedBlock): void => {
        send('block', {
          height: b.height,
          hash: b.hash,
          time: b.time,
          txCount: b.txIds.length,
          rejected: b.codes.filter((c) => c !== 'OK').length,
        });
        for (const { txId, event } of b.events) {
          if (patientCode !== undefined && event.patientCode !== patientCode) continue;
          send('ledger', { height: b.height, txId, type: event.type, patientCode: event.patientCode ?? null, data: event.data });
        }
      };
      peer.on('block', onBlock);
      // On a consortium: each newly final height, with its txIds, for clients that wait for finality.
      const onFinal = (f: { height: number; blockHash: string }): void => {
        send('final', { height: f.height, hash: f.blockHash, txIds: txIdsAt(f.height) });
      };
      o.finality?.on('final', onFinal);
      // issue 7: a subscriber's record notifications; a patient's break-glass notices.
      const onNotification = (n: Notification): void => {
        const forSubscriber = n.kind === 'record' && subscriber !== undefined && n.subscriber === subscriber;
        const forPatient = n.kind === 'break-glass' && patientCode !== undefined && n.patientCode === patientCode;
        if (forSubscriber || forPatient || (subscriber === undefined && patientCode === undefined)) send('notification', n);
      };
      o.push?.on('notification', onNotification);
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      streams.add(res);
      req.raw.on('close', () => {
        streams.delete(res);
        clearInterval(keepAlive);
        peer.off('block', onBlock);
        o.finality?.off('final', onFinal);
        o.push?.off('notification', onNotification);
      });
    },
  );
  // An open event stream would hold a stopping node forever: close() ends every one first.
  app.addHook('preClose', (done) => {
    for (const res of streams) res.end();
    done();
  });

  if (o.vault) await registerVaultRoutes(app, o.vault);
  // The FHIR R4 facade answers on every node; without a vault only its metadata (nothing to authenticate with).
  await registerFhirRoutes(app, { peer, vault: o.vault ?? null, institution: o.institution });
  if (o.demoIdentitiesDir != null) registerDemoIdentities(app, store, o.demoIdentitiesDir);
  if (o.push) await registerPushRoutes(app, store, o.push);
  return app;
}
