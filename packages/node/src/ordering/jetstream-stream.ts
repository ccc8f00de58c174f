/**
 * Opens a connection to the consortium's NATS servers and makes sure a JetStream stream exists
 * (created with `config` the first time; an existing stream is used as it is). Shared by the
 * ordering stream and the votes stream.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';

export async function openStream(
  servers: string[],
  connectionName: string,
  config: Partial<StreamConfig> & { name: string },
): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
  // Reconnect forever: a member's NATS server may be restarted or its stream leader re-elected.
  const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: connectionName });
  const jsm = await jetstreamManager(nc);
  // Members start together: two may create the stream at once, or ask before JetStream has a
  // leader. Each failure is asked again until the stream answers, for up to 30 s.
  const deadline = Date.now() + 30_000;
  for (let attempt = 0; ; attempt++) {
    try {
      await jsm.streams.info(config.name);
      break;
    } catch {
      try {
        await jsm.streams.add(config);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }
  return { nc, js: jetstream(nc) };
}

/**
 * Options for every `consume()` of an ordered consumer. Such a consumer lives on one server; when
 * that server dies the client notices only after two missed idle heartbeats, by default 2 × 15 s,
 * during which the node orders nothing. A 1-s heartbeat lets it re-create the consumer on a live
 * server, from the next stream sequence, within about two seconds.
 */
const CONSUME_OPTIONS = { expires: 5_000, idle_heartbeat: 1_000 } as const;

export interface Follower {
  stop(): void;
  /** settles when the follower has stopped */
  done: Promise<void>;
}

/**
 * How long a follower may go without a message while the stream holds one it has not read before
 * it gives up on its consumer. An ordered consumer whose server was killed can hang without an
 * error or a heartbeat status (measured: about one kill in twelve on a 3-server cluster), and a
 * node that silently stops reading still reports itself healthy.
 */
const STALL_MS = 5_000;

/**
 * Reads `stream` from sequence `startSeq` on, handing each message to `handle` in order, until
 * stopped. An ordered consumer re-creates itself after most failures, but not all: when its
 * iterator ends or throws (its server died while the JetStream API had no leader, say), when it
 * delivers nothing for `STALL_MS` while the stream has messages past the last one handled, or when
 * it hands over a message out of sequence, the follower abandons it and makes a new one from the
 * next unhandled sequence, with backoff. Each such restart goes to `onTrouble`. A failure of
 * `handle` itself stops the follower and goes to `onFatal`: the node must halt rather than apply a
 * message twice. The first consumer's failure is the caller's.
 */
export async function follow(
  js: JetStreamClient,
  stream: string,
  startSeq: number,
  handle: (m: JsMsg) => Promise<void>,
  onTrouble: (e: unknown) => void = () => undefined,
  onFatal: (e: unknown) => void = onTrouble,
  stallMs = STALL_MS,
): Promise<Follower> {
  const jsm = await js.jetstreamManager(false);
  let next = startSeq;
  let stopped = false;
  // Bumped whenever a consumer is abandoned: its iterator may still yield later, and must not be read.
  let generation = 0;
  let handling = false;
  let progressAt = Date.now();
  let abandon: (() => void) | null = null;
  // The sequence a consumer skipped, until a message is handled in order again.
  let holeAt = -1;
  const open = async (): Promise<ConsumerMessages> => {
    const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next });
    return consumer.consume(CONSUME_OPTIONS);
  };
  let messages = await open();

  /** Hands the consumer's messages to `handle` until it ends, fails or is abandoned. */
  const read = async (from: ConsumerMessages, mine: number): Promise<void> => {
    try {
      for await (const m of from) {
        if (stopped || mine !== generation) return;
        // Every node must apply the same messages in the same order, so a follower takes the
        // stream's sequence numbers one by one: a repeat is dropped, and a message past the next
        // one means this consumer lost its place, so it is abandoned for one that starts there.
        if (m.seq < next) continue;
        if (m.seq > next) {
          const lost = new Error(`message ${m.seq} arrived where ${next} was next`);
          if (holeAt === next) {
            // A fresh consumer asked to start at `next` skipped it too: the stream has a hole,
            // which this stream (no limits, no deletes) never makes. Halting beats guessing.
            stopped = true;
            from.stop();
            onFatal(new Error(`the stream has no message ${next}: ${lost.message}`));
            return;
          }
          holeAt = next;
          onTrouble(lost);
          generation++;
          from.stop();
          return;
        }
        holeAt = -1;
        handling = true;
        try {
          await handle(m);
        } catch (e) {
          // Never delivered again: a handler that changed state and then failed would act twice.
          stopped = true;
          from.stop();
          onFatal(e);
          return;
        } finally {
          handling = false;
        }
        next = m.seq + 1;
        progressAt = Date.now();
      }
    } catch (e) {
      if (mine === generation && !stopped) onTrouble(e);
    }
  };

  let checking = false;
  const watchdog = setInterval(
    () => {
      if (stopped || abandon === null || handling || checking || Date.now() - progressAt < stallMs) return;
      checking = true;
      const seen = progressAt;
      jsm.streams
        .info(stream)
        .then((info) => {
          // Re-checked after the answer: a message may have arrived meanwhile, or be in hand.
          if (stopped || abandon === null || handling || progressAt !== seen) return;
          if (info.state.last_seq < next) {
            progressAt = Date.now(); // nothing to read: all is well
            return;
          }
          onTrouble(
            new Error(`no message for ${Math.round((Date.now() - seen) / 1000)} s while the stream holds up to ${info.state.last_seq}`),
          );
          generation++;
          messages.stop();
          abandon();
        })
        .catch(() => undefined) // no JetStream answer now: ask again on the next tick
        .finally(() => {
          checking = false;
        });
    },
    Math.max(100, Math.floor(stallMs / 5)),
  );
  watchdog.unref();

  const done = (async () => {
    let attempt = 0;
    while (!stopped) {
      const before = next;
      await Promise.race([read(messages, generation), new Promise<void>((resolve) => (abandon = resolve))]);
      abandon = null;
      if (next > before) attempt = 0;
      while (!stopped) {
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt++)));
        if (stopped) break;
        try {
          messages = await open();
          if (stopped) messages.stop();
          generation++;
          progressAt = Date.now();
          break;
        } catch (e) {
          onTrouble(e);
        }
      }
    }
    clearInterval(watchdog);
  })();
  return {
    stop: () => {
      stopped = true;
      clearInterval(watchdog);
      messages.stop();
      abandon?.();
    },
    done,
  };
}
