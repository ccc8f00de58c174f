/**
 * `follow()` on a real 3-server JetStream cluster (R3): whatever happens to the servers or to the
 * client's consumer, a follower hands every message of the stream to its handler exactly once and
 * in order. The ordered consumer of @nats-io/jetstream can hang after its server is killed,
 * delivering nothing and reporting nothing (seen in the fault soak: two validators stopped at the
 * same height while reporting themselves healthy); the first tests make such a consumer, and one
 * that loses its place in the stream, on purpose; the last kills and pauses the servers under a
 * live follower.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream, StorageType, type ConsumerMessages, type Consumers, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { follow, openStream } from '../packages/node/src/ordering/jetstream-stream.ts';
import { NatsCluster } from './nats-cluster.ts';

let cluster: NatsCluster;
let pub: { nc: NatsConnection; js: JetStreamClient };
const encoder = new TextEncoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  pub = { nc, js: jetstream(nc) };
}, 120_000);

afterAll(async () => {
  await pub?.nc.close();
  await cluster?.stop();
});

async function makeStream(name: string): Promise<void> {
  const jsm = await pub.js.jetstreamManager();
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File, num_replicas: 3 });
}

async function publish(stream: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await pub.js.publish(`${stream}.m`, encoder.encode(String(i)));
}

/** Collects what a follower hands over, and fails on a repeat or a gap. */
function recorder(): { seqs: number[]; handle: (m: JsMsg) => Promise<void> } {
  const seqs: number[] = [];
  return {
    seqs,
    handle: (m) => {
      const last = seqs.at(-1) ?? 0;
      if (m.seq !== last + 1) throw new Error(`message ${m.seq} after ${last}`);
      seqs.push(m.seq);
      return Promise.resolve();
    },
  };
}

/** The first answer of `ask`, asked again after each failure until `timeoutMs` has passed. */
async function answered<T>(what: string, ask: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await ask();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: e });
      await sleep(200);
    }
  }
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

type Next = (it: AsyncIterator<JsMsg>, handed: number) => Promise<IteratorResult<JsMsg>>;

/**
 * The client's own JetStream, except that the first consumer it makes misbehaves as `next` says
 * (given the real iterator and how many messages it handed over); stop() stops the real one.
 */
function faultyFirstConsumer(js: JetStreamClient, next: Next): JetStreamClient {
  let made = 0;
  const consumers: Pick<Consumers, 'get'> = {
    get: async (...args: Parameters<Consumers['get']>) => {
      const consumer = await js.consumers.get(...args);
      if (made++ > 0) return consumer;
      return Object.assign(Object.create(consumer) as typeof consumer, {
        consume: async (...opts: Parameters<typeof consumer.consume>) => {
          const real = await consumer.consume(...opts);
          const it = real[Symbol.asyncIterator]();
          let handed = 0;
          return {
            stop: () => real.stop(),
            [Symbol.asyncIterator]: () => ({ next: () => next(it, handed++) }),
          } as unknown as ConsumerMessages;
        },
      });
    },
  };
  return new Proxy(js, {
    get: (target, p) => (p === 'consumers' ? consumers : (Reflect.get(target, p, target) as unknown)),
  });
}

/** Hands over `before` messages, then hangs: no message, no error, no end. */
const hangAfter =
  (before: number): Next =>
  (it, handed) =>
    handed < before ? it.next() : new Promise<IteratorResult<JsMsg>>(() => undefined);

/** Hands over messages in order, except that message `lost` never comes and `repeated` comes twice. */
function skipAndRepeat(lost: number, repeated: number): Next {
  let again: IteratorResult<JsMsg> | null = null;
  const take = async (it: AsyncIterator<JsMsg>): Promise<IteratorResult<JsMsg>> => {
    if (again !== null) {
      const r = again;
      again = null;
      return r;
    }
    const r = await it.next();
    if (r.done !== true && r.value.seq === repeated) again = r;
    if (r.done !== true && r.value.seq === lost) return it.next();
    return r;
  };
  return (it) => take(it);
}

it('abandons a consumer that hangs silently and reads on from the next unhandled message, each message once', async () => {
  await makeStream('HANG');
  await publish('HANG', 40);
  const r = recorder();
  const troubles: string[] = [];
  const sub = await openStream(cluster.urls, 'test-follower', { name: 'HANG' });
  const follower = await follow(
    faultyFirstConsumer(sub.js, hangAfter(15)),
    'HANG',
    1,
    r.handle,
    (e) => troubles.push(String(e)),
    (e) => troubles.push(`fatal: ${String(e)}`),
    500,
  );
  try {
    await until('the follower to read past the hang', () => r.seqs.length === 40, 20_000);
    await publish('HANG', 10);
    await until('the follower to read new messages', () => r.seqs.length === 50, 20_000);
    expect(r.seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(troubles).toHaveLength(1);
    expect(troubles[0]).toMatch(/no message for \d+ s while the stream holds up to 40/);
  } finally {
    follower.stop();
    await follower.done;
    await sub.nc.close();
  }
});

it('drops a repeated message and abandons a consumer that skips one, so every message is handled once and in order', async () => {
  await makeStream('SKIP');
  await publish('SKIP', 30);
  const r = recorder();
  const troubles: string[] = [];
  const sub = await openStream(cluster.urls, 'test-skip', { name: 'SKIP' });
  const follower = await follow(
    faultyFirstConsumer(sub.js, skipAndRepeat(12, 5)),
    'SKIP',
    1,
    r.handle,
    (e) => troubles.push(String(e)),
    (e) => troubles.push(`fatal: ${String(e)}`),
    500,
  );
  try {
    await until('the follower to read every message', () => r.seqs.length === 30, 20_000);
    expect(r.seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(troubles).toEqual(['Error: message 13 arrived where 12 was next']);
  } finally {
    follower.stop();
    await follower.done;
    await sub.nc.close();
  }
});

it('an idle follower on a stream with nothing new is left alone', async () => {
  await makeStream('IDLE');
  await publish('IDLE', 5);
  const r = recorder();
  const troubles: string[] = [];
  const sub = await openStream(cluster.urls, 'test-idle', { name: 'IDLE' });
  const follower = await follow(sub.js, 'IDLE', 1, r.handle, (e) => troubles.push(String(e)), undefined, 300);
  try {
    await until('the first messages', () => r.seqs.length === 5, 10_000);
    await sleep(1500); // five watchdog periods with nothing to read
    expect(troubles).toEqual([]);
  } finally {
    follower.stop();
    await follower.done;
    await sub.nc.close();
  }
});

it('reads every message once and in order while servers are killed and paused under it', async () => {
  await makeStream('FAULTS');
  const r = recorder();
  const fatal: unknown[] = [];
  // Connected to one server first, so that faults of that server hit its consumer.
  const sub = await openStream([cluster.urls[1]!, cluster.urls[0]!, cluster.urls[2]!], 'test-faults', { name: 'FAULTS' });
  const follower = await follow(
    sub.js,
    'FAULTS',
    1,
    r.handle,
    () => undefined,
    (e) => fatal.push(e),
    2000,
  );
  let published = 0;
  let publishing = true;
  const load = (async () => {
    while (publishing) {
      try {
        await pub.js.publish('FAULTS.m', encoder.encode(String(published)), { timeout: 2000 });
        published++;
      } catch {
        // no stream leader for a moment: the publisher retries, as a node's submit does
      }
      await sleep(5);
    }
  })();
  try {
    for (const [server, fault] of [
      [1, 'kill'],
      [1, 'pause'],
      [0, 'kill'],
      [2, 'kill'],
    ] as const) {
      await sleep(1000);
      if (fault === 'kill') {
        await cluster.kill(server);
        await sleep(1500);
        cluster.restart(server);
      } else {
        cluster.servers[server]!.process?.kill('SIGSTOP');
        await sleep(3000);
        cluster.servers[server]!.process?.kill('SIGCONT');
      }
      await cluster.waitReady();
    }
    publishing = false;
    await load;
    const jsm = await pub.js.jetstreamManager();
    // The cluster answers before the stream has a leader again: ask until the stream does.
    const last = (await answered('the stream to answer after the faults', () => jsm.streams.info('FAULTS'), 30_000)).state.last_seq;
    await until(`the follower to reach ${last}`, () => r.seqs.length >= last, 30_000);
    expect(fatal).toEqual([]);
    expect(r.seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
  } finally {
    publishing = false;
    await load;
    follower.stop();
    await follower.done;
    await sub.nc.close();
  }
}, 120_000);
