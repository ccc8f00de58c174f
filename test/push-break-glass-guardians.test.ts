/**
 * Issue 7 through the HTTP API of a real node (SQLite, solo orderer, vaults of hosp-a and hosp-b,
 * an injected clock for block times): push subscriptions delivered to a real webhook server on
 * 127.0.0.1 with RFC 9421 signatures checked against the ledger's key, retried, dead-lettered,
 * re-driven after a restart and stopped by a revocation; break-glass by an emergency doctor only,
 * time-limited by block time, notified, queued and closed by an auditor; guardians consenting
 * within their scope and refused outside it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Identity } from '@medledger/core/client/identity';
import { VaultClient, type RecordIndex } from '@medledger/core/client/vault-client';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { AccessLogEntry, Consent, Member, RecordEntry, Review } from '@medledger/core/contracts/state';
import { keyId } from '@medledger/core/crypto/ed25519';
import { sha256Hex } from '@medledger/core/crypto/hash';
import { parseContentDigest } from '@medledger/core/http/content-digest';
import { verifyRequest } from '@medledger/core/http/message-signatures';
import { toHex } from '@medledger/core/codec/bytes';
import { keyFilePath, writeJson } from '../packages/node/src/config/data-dir.ts';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import type { Delivery } from '../packages/node/src/push/push-store.ts';
import { WEBHOOK_SIGNATURE_TAG } from '../packages/node/src/push/push-service.ts';
import { enrolCast, http, makeNetwork, observation, recordBody, send, type Cast, type TestNetwork } from './test-network.ts';

const HOUR = 3_600_000;

/** The node's clock: wall time plus a shift the break-glass test moves forward. */
let shift = 0;
const now = (): number => Date.now() + shift;

let net: TestNetwork;
let node: LedgerNode;
let cast: Cast;

// ------------------------------------------------------------------ the institution's webhook receiver

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  target: string;
  answered: number;
}
const received: Received[] = [];
/** how the receiver answers the next requests: a queue of statuses, then 204 */
let answers: number[] = [];
let alwaysFail = false;
let hook: Server;
let hookUrl: string;

function startHook(): Promise<void> {
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const status = alwaysFail ? 503 : (answers.shift() ?? 204);
      received.push({ headers: req.headers, body, target: req.url ?? '', answered: status });
      res.writeHead(status).end();
    });
  });
  return new Promise((resolve) =>
    hook.listen(0, '127.0.0.1', () => {
      hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hooks/medledger`;
      resolve();
    }),
  );
}

/** Verifies a delivery as a receiver would: RFC 9421 against hosp-b's signing key from the ledger, and the digest. */
async function verifyDelivery(r: Received): Promise<JsonObject> {
  const members = (await http<Member[]>('GET', `${node.url}/api/members`)).body;
  const signingKey = members.find((m) => m.id === 'hosp-b')!.signingKey;
  await verifyRequest({
    method: 'POST',
    url: new URL(r.target, hookUrl).toString(),
    headers: r.headers,
    now: now(),
    tag: WEBHOOK_SIGNATURE_TAG,
    lookupKey: (kid) => Promise.resolve(kid === keyId(signingKey) ? signingKey : null),
  });
  expect(toHex(parseContentDigest(r.headers['content-digest'] as string))).toBe(sha256Hex(r.body));
  return JSON.parse(r.body) as JsonObject;
}

// ------------------------------------------------------------------ helpers

const staff = (id: string): Identity => cast.staff.get(id)!;
const patient = () => cast.patients[0]!;
const guardian = () => cast.patients[1]!;

async function ok(who: Identity, type: Parameters<typeof send>[3], body: JsonObject): Promise<string> {
  const r = await send(node.url, net.network, who, type, body);
  expect(r.code, `${type}: ${JSON.stringify(r.answer.body)}`).toBe('OK');
  return r.txId;
}
async function code(who: Identity, type: Parameters<typeof send>[3], body: JsonObject): Promise<string | undefined> {
  return (await send(node.url, net.network, who, type, body)).code;
}

async function startNode(): Promise<LedgerNode> {
  return LedgerNode.start({
    dataDir: net.nodeDir('hosp-a'),
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
    vault: { store: { kind: 'sqlite' }, institutions: ['hosp-a', 'hosp-b'] },
    push: { webhooks: [{ institution: 'hosp-b', url: hookUrl }], maxAttempts: 3, retryBaseMs: 40 },
    now,
  });
}

/** Polls `check` (no timing asserted: it waits for the node to get there, up to a generous bound). */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

/** Reads server-sent events of one stream into `events` until closed. */
function listen(path: string): { events: { event: string; data: JsonObject }[]; close: () => void } {
  const controller = new AbortController();
  const events: { event: string; data: JsonObject }[] = [];
  void (async () => {
    try {
      const res = await fetch(`${node.url}${path}`, { signal: controller.signal });
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) as JsonObject });
        }
      }
    } catch {
      // closed
    }
  })();
  return { events, close: () => controller.abort() };
}

const deliveries = async (status: Delivery['status'], who = staff('hosp-b/ops-b')): Promise<Delivery[]> =>
  (
    (await new VaultClient(who, { now }).get(`${node.url}/api/push/hosp-b/deliveries?status=${status}`)) as unknown as {
      deliveries: Delivery[];
    }
  ).deliveries;

beforeAll(async () => {
  await startHook();
  net = await makeNetwork({ batchTimeoutMs: 5 });
  // One embedded node keeps both hospitals' vaults and signs hosp-b's webhooks with hosp-b's key.
  writeJson(keyFilePath(net.nodeDir('hosp-a'), 'hosp-b'), net.institutions.get('hosp-b')!.file, true);
  node = await startNode();
  cast = await enrolCast(
    node.url,
    net,
    {
      'hosp-a/dr-kim': 'doctor',
      'hosp-b/dr-park': 'doctor',
      'hosp-b/dr-er': 'doctor',
      'hosp-b/nurse-b': 'nurse',
      'hosp-b/aud-b': 'auditor',
      'hosp-b/ops-b': 'operator',
    },
    ['hosp-a', 'hosp-a', 'hosp-a'],
  );
  for (const id of ['hosp-a', 'hosp-b']) await ok(net.institutions.get(id)!, 'membership.setEndpoint', { vaultUrl: node.url });
}, 120_000);

afterAll(async () => {
  await node.stop();
  await new Promise((r) => hook.close(r));
});

// ------------------------------------------------------------------ push

describe('push subscriptions', () => {
  let consentId: string;
  let subscriptionId: string;
  let seq = 0;
  const register = (category = 'Observation'): Promise<string> =>
    ok(staff('hosp-a/dr-kim'), 'records.register', recordBody(patient().code, category, `push-${++seq}`));

  it('admits a subscription only under a consent that covers the doctor', async () => {
    const subscribe = { patientCode: patient().code, categories: ['Observation'], purpose: 'TREAT' };
    expect(await code(staff('hosp-b/dr-park'), 'subscriptions.subscribe', subscribe)).toBe('CONSENT_REQUIRED');
    expect(await code(staff('hosp-b/nurse-b'), 'subscriptions.subscribe', subscribe)).toBe('ROLE_FORBIDDEN');
    consentId = await ok(patient().identity, 'consent.grant', {
      patientCode: patient().code,
      grantee: { kind: 'person', staffId: 'hosp-b/dr-park' },
      scope: { kind: 'categories', categories: ['Observation'] },
      purposes: ['TREAT'],
      period: { from: now() - 60_000, to: now() + 30 * 24 * HOUR },
      deidentification: 'identified',
    });
    subscriptionId = await ok(staff('hosp-b/dr-park'), 'subscriptions.subscribe', subscribe);
    const subs = (
      await http<{ subscriptionId: string; consentId: string }[]>('GET', `${node.url}/api/patients/${patient().code}/subscriptions`)
    ).body;
    expect(subs).toEqual([expect.objectContaining({ subscriptionId, consentId, status: 'active' })]);
  });

  it('delivers a new record to the webhook, signed with the institution’s key, and on the doctor’s event stream', async () => {
    const stream = listen('/api/events?subscriber=hosp-b/dr-park');
    await until('stream open', () => (stream.events.some((e) => e.event === 'hello') ? true : undefined));
    const before = received.length;
    const recordId = await register();
    // A record of another category is not followed.
    await register('Condition');
    const r = await until('delivery', () => received[before]);
    const body = await verifyDelivery(r);
    expect(Object.keys(body).sort()).toEqual([
      'deliveryId',
      'height',
      'patientCode',
      'recordId',
      'subscriber',
      'subscriptionId',
      'time',
      'type',
    ]);
    expect(body).toMatchObject({ type: 'record.registered', subscriptionId, patientCode: patient().code, recordId });
    expect(r.headers['medledger-delivery']).toBe(body['deliveryId']);
    const note = await until('notification', () => stream.events.find((e) => e.event === 'notification'));
    expect(note.data).toMatchObject({ kind: 'record', subscriptionId, recordId, subscriber: 'hosp-b/dr-park' });
    stream.close();
    await node.push.idle();
    expect(received.length).toBe(before + 1);
    // A tampered body no longer verifies.
    await expect(verifyDelivery({ ...r, body: r.body.replace('record.registered', 'record.forged') })).rejects.toBeDefined();
  });

  it('retries after a failure with the same delivery id, and the institution’s operator sees it delivered', async () => {
    answers = [500];
    const before = received.length;
    const recordId = await register();
    const [first, second] = await until('two attempts', () => (received.length >= before + 2 ? received.slice(before) : undefined));
    expect([first!.answered, second!.answered]).toEqual([500, 204]);
    expect(second!.headers['medledger-delivery']).toBe(first!.headers['medledger-delivery']);
    expect((await verifyDelivery(second!))['recordId']).toBe(recordId);
    const done = await until('delivered', async () => (await deliveries('delivered')).find((d) => d.recordId === recordId));
    expect(done).toMatchObject({ attempts: 2, status: 'delivered', lastError: null });
    expect(done).not.toHaveProperty('url');
  });

  it('dead-letters after the last attempt, keeps it across a restart, and re-drives it on an operator’s signed request', async () => {
    alwaysFail = true;
    const recordId = await register();
    const dead = await until('dead letter', async () => (await deliveries('dead')).find((d) => d.recordId === recordId));
    expect(dead).toMatchObject({ attempts: 3, lastError: 'HTTP 503' });
    // only the institution's operators (or its key) see its outbox; a signature is required
    await expect(deliveries('dead', staff('hosp-b/nurse-b'))).rejects.toMatchObject({ code: 'ROLE_FORBIDDEN' });
    await expect(deliveries('dead', staff('hosp-a/dr-kim'))).rejects.toMatchObject({ code: 'ROLE_FORBIDDEN' });
    expect((await http('GET', `${node.url}/api/push/hosp-b/deliveries?status=dead`)).body['code']).toBe('SIGNATURE_MISSING');

    await node.stop();
    node = await startNode();
    alwaysFail = false;
    expect((await deliveries('dead')).map((d) => d.deliveryId)).toContain(dead.deliveryId);
    const redrive = (id: string, who = staff('hosp-b/ops-b')) =>
      new VaultClient(who, { now }).post(`${node.url}/api/push/hosp-b/deliveries/${id}/redrive`, {});
    await expect(redrive(dead.deliveryId, staff('hosp-b/nurse-b'))).rejects.toMatchObject({ code: 'ROLE_FORBIDDEN' });
    await expect(redrive('0'.repeat(64))).rejects.toMatchObject({ code: 'DELIVERY_NOT_FOUND' });
    await redrive(dead.deliveryId);
    const redriven = await until('re-driven', async () => (await deliveries('delivered')).find((d) => d.deliveryId === dead.deliveryId));
    expect(redriven.attempts).toBe(1);
    // the institution's own key may manage its outbox too
    expect((await deliveries('dead', net.institutions.get('hosp-b'))).map((d) => d.deliveryId)).not.toContain(dead.deliveryId);
  });

  it('stops after the consent is revoked: a queued delivery is dropped and new records are not delivered', async () => {
    alwaysFail = true;
    const before = received.length;
    const queued = await register();
    await until('a failed attempt', () => (received.length > before ? true : undefined));
    await ok(patient().identity, 'consent.revoke', { consentId });
    const dropped = await until('dropped', async () => (await deliveries('dropped')).find((d) => d.recordId === queued));
    expect(dropped.lastError).toBe('CONSENT_REVOKED');
    alwaysFail = false;
    const afterRevocation = received.length;
    const unseen = await register();
    await node.push.idle();
    expect(received.length).toBe(afterRevocation);
    const all = [...(await deliveries('pending')), ...(await deliveries('delivered')), ...(await deliveries('dead'))];
    expect(all.map((d) => d.recordId)).not.toContain(unseen);
    // and the subscription cannot be renewed without a consent
    expect(
      await code(staff('hosp-b/dr-park'), 'subscriptions.subscribe', {
        patientCode: patient().code,
        categories: ['Observation'],
        purpose: 'TREAT',
      }),
    ).toBe('CONSENT_REVOKED');
    expect(await code(patient().identity, 'subscriptions.cancel', { subscriptionId })).toBe('OK');
  });
});

// ------------------------------------------------------------------ break-glass

describe('break-glass', () => {
  let recordId: string;
  let reviewId: string;
  const justification = 'Unconscious patient brought to the emergency room';
  const indexOf = (id: string): RecordIndex => node.peer.store.get('records', id) as unknown as RecordEntry;

  it('is refused to a doctor without the emergency qualification and to a nurse', async () => {
    const stored = await new VaultClient(staff('hosp-a/dr-kim'), { now }).store(node.url, 'hosp-a', {
      patientCode: patient().code,
      resource: observation('haemoglobin before surgery'),
    });
    recordId = await ok(staff('hosp-a/dr-kim'), 'records.register', {
      patientCode: patient().code,
      registrationRequestId: null,
      ...stored.index,
    });
    await node.vault!.idle();
    const body = { patientCode: patient().code, reason: 'BTG', justification, durationMs: HOUR };
    expect(await code(staff('hosp-b/dr-er'), 'access.breakGlass', body)).toBe('ROLE_FORBIDDEN');
    expect(await code(staff('hosp-b/nurse-b'), 'access.breakGlass', body)).toBe('ROLE_FORBIDDEN');
    await expect(new VaultClient(staff('hosp-b/dr-er'), { now }).fetchRecord(node.url, indexOf(recordId), 'BTG')).rejects.toMatchObject({
      code: 'CONSENT_REQUIRED',
    });
    await ok(net.institutions.get('hosp-b')!, 'identity.setQualifications', { staffId: 'hosp-b/dr-er', qualifications: ['emergency'] });
    expect(
      await code(net.institutions.get('hosp-b')!, 'identity.setQualifications', {
        staffId: 'hosp-b/nurse-b',
        qualifications: ['emergency'],
      }),
    ).toBe('ROLE_FORBIDDEN');
  });

  it('opens the records to the emergency doctor until it expires by block time, notifies the patient, and queues a review', async () => {
    const stream = listen(`/api/events?patientCode=${patient().code}`);
    await until('stream open', () => (stream.events.some((e) => e.event === 'hello') ? true : undefined));
    reviewId = await ok(staff('hosp-b/dr-er'), 'access.breakGlass', {
      patientCode: patient().code,
      reason: 'BTG',
      justification,
      durationMs: HOUR,
    });
    const note = await until('patient notified', () => stream.events.find((e) => e.event === 'notification'));
    expect(note.data).toMatchObject({ kind: 'break-glass', reviewId, doctor: 'hosp-b/dr-er', reason: 'BTG' });
    stream.close();

    const fetched = await new VaultClient(staff('hosp-b/dr-er'), { now }).fetchRecord(node.url, indexOf(recordId), 'BTG');
    expect(fetched.resource).toEqual(observation('haemoglobin before surgery'));
    const queue = (await http<Review[]>('GET', `${node.url}/api/break-glass/reviews?institution=hosp-b`)).body;
    expect(queue).toEqual([expect.objectContaining({ reviewId, status: 'open', doctor: 'hosp-b/dr-er', accessed: [recordId] })]);

    // Two hours later by the node's clock (block time): refused.
    shift += 2 * HOUR;
    await expect(new VaultClient(staff('hosp-b/dr-er'), { now }).fetchRecord(node.url, indexOf(recordId), 'BTG')).rejects.toMatchObject({
      code: 'CONSENT_EXPIRED',
    });
    const log = (await http<AccessLogEntry[]>('GET', `${node.url}/api/patients/${patient().code}/access-log`)).body;
    expect(log.find((e) => e.entryId === reviewId)).toMatchObject({ outcome: 'break-glass', actor: 'hosp-b/dr-er', reason: justification });
    expect(log.find((e) => e.entryId === fetched.accessTx)).toMatchObject({ outcome: 'served', reason: `break-glass: ${justification}` });
    // the refusal reaches the ledger after the answer (the vault does not wait for it)
    const refused = await until('refusal on the ledger', async () =>
      (await http<AccessLogEntry[]>('GET', `${node.url}/api/patients/${patient().code}/access-log`)).body.find(
        (e) => e.outcome === 'refused' && e.code === 'CONSENT_EXPIRED',
      ),
    );
    expect(refused).toMatchObject({ actor: 'hosp-b/dr-er', purpose: 'BTG' });
  });

  it('is closed by an auditor of the doctor’s institution with a finding, which the patient sees', async () => {
    const review = { reviewId, finding: 'justified', note: 'Admission confirmed by the ward log' };
    expect(await code(staff('hosp-b/dr-er'), 'access.reviewBreakGlass', review)).toBe('ROLE_FORBIDDEN');
    const closed = await ok(staff('hosp-b/aud-b'), 'access.reviewBreakGlass', review);
    expect(await code(staff('hosp-b/aud-b'), 'access.reviewBreakGlass', review)).toBe('REVIEW_CLOSED');
    expect((await http<Review[]>('GET', `${node.url}/api/break-glass/reviews?institution=hosp-b`)).body).toEqual([]);
    const done = (await http<Review[]>('GET', `${node.url}/api/break-glass/reviews?status=closed`)).body;
    expect(done).toEqual([
      expect.objectContaining({
        reviewId,
        closure: expect.objectContaining({ reviewer: 'hosp-b/aud-b', finding: 'justified' }) as unknown,
      }),
    ]);
    const log = (await http<AccessLogEntry[]>('GET', `${node.url}/api/patients/${patient().code}/access-log`)).body;
    expect(log.find((e) => e.entryId === closed)).toMatchObject({
      outcome: 'break-glass-reviewed',
      reason: 'justified',
      consentId: reviewId,
    });
  });
});

// ------------------------------------------------------------------ guardians

describe('guardians', () => {
  let guardianshipId: string;
  const grant = (overrides: JsonObject = {}): JsonObject => ({
    patientCode: patient().code,
    grantee: { kind: 'institution', institution: 'hosp-b' },
    scope: { kind: 'categories', categories: ['Observation'] },
    purposes: ['TREAT'],
    period: { from: now() - 60_000, to: now() + 7 * 24 * HOUR },
    deidentification: 'identified',
    ...overrides,
  });

  it('lets a guardian grant within scope, recorded as theirs and in the patient’s history', async () => {
    expect(await code(guardian().identity, 'consent.grant', grant())).toBe('ROLE_FORBIDDEN');
    guardianshipId = await ok(patient().identity, 'identity.appointGuardian', {
      patientCode: patient().code,
      guardian: guardian().code,
      scope: { actions: ['consent.grant', 'consent.revoke'], categories: ['Observation'], purposes: ['TREAT'] },
      period: { from: now() - 60_000, to: now() + 30 * 24 * HOUR },
    });
    const consentId = await ok(guardian().identity, 'consent.grant', grant());
    const consents = (await http<Consent[]>('GET', `${node.url}/api/patients/${patient().code}/consents`)).body;
    expect(consents.find((c) => c.consentId === consentId)).toMatchObject({ grantedBy: { guardian: guardian().code, guardianshipId } });
    const guardians = (await http<JsonObject[]>('GET', `${node.url}/api/patients/${patient().code}/guardians`)).body;
    expect(guardians).toEqual([expect.objectContaining({ guardianshipId, guardian: guardian().code, status: 'active' })]);
    expect((await http<JsonObject[]>('GET', `${node.url}/api/patients/${guardian().code}/wards`)).body).toHaveLength(1);
    const log = (await http<AccessLogEntry[]>('GET', `${node.url}/api/patients/${patient().code}/access-log`)).body;
    expect(log.find((e) => e.entryId === guardianshipId)).toMatchObject({ outcome: 'guardian-appointed' });
    expect(log.find((e) => e.entryId === consentId)).toMatchObject({
      outcome: 'guardian-acted',
      actor: guardian().code,
      reason: 'consent.grant',
    });
  });

  it('refuses a guardian outside the scope with GUARDIAN_OUT_OF_SCOPE, and after revocation with GUARDIANSHIP_REVOKED', async () => {
    expect(await code(guardian().identity, 'consent.grant', grant({ purposes: ['HRESCH'] }))).toBe('GUARDIAN_OUT_OF_SCOPE');
    expect(await code(guardian().identity, 'consent.grant', grant({ scope: { kind: 'categories', categories: ['Condition'] } }))).toBe(
      'GUARDIAN_OUT_OF_SCOPE',
    );
    expect(await code(guardian().identity, 'consent.grant', grant({ period: { from: now(), to: null } }))).toBe('GUARDIAN_OUT_OF_SCOPE');
    // the third patient was never appointed
    expect(await code(cast.patients[2]!.identity, 'consent.grant', grant())).toBe('ROLE_FORBIDDEN');
    await ok(patient().identity, 'identity.revokeGuardian', { guardianshipId });
    expect(await code(guardian().identity, 'consent.grant', grant())).toBe('GUARDIANSHIP_REVOKED');
    const log = (await http<AccessLogEntry[]>('GET', `${node.url}/api/patients/${patient().code}/access-log`)).body;
    expect(log.some((e) => e.outcome === 'guardian-revoked')).toBe(true);
  });
});
