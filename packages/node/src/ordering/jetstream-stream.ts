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
  try {
    await jsm.streams.info(config.name);
  } catch {
    await jsm.streams.add(config);
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
 * Reads `stream` from sequence `startSeq` on, handing each message to `handle` in order, until
 * stopped. An ordered consumer re-creates itself after most failures, but not all: when its
 * iterator ends or throws (its server died while the JetStream API had no leader, say), the
 * follower makes a new one from the next unhandled sequence, with backoff, so that a node never
 * silently stops reading while it reports itself healthy. A failure of `handle` itself stops the
 * follower and goes to `onFatal`: the node must halt rather than apply a message twice. The first
 * consumer's failure is the caller's.
 */
export async function follow(
  js: JetStreamClient,
  stream: string,
  startSeq: number,
  handle: (m: JsMsg) => Promise<void>,
  onTrouble: (e: unknown) => void = () => undefined,
  onFatal: (e: unknown) => void = onTrouble,
): Promise<Follower> {
  let next = startSeq;
  let stopped = false;
  const open = async (): Promise<ConsumerMessages> => {
    const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next });
    return consumer.consume(CONSUME_OPTIONS);
  };
  let messages = await open();
  const done = (async () => {
    let attempt = 0;
    while (!stopped) {
      try {
        for await (const m of messages) {
          if (stopped) return;
          try {
            await handle(m);
          } catch (e) {
            // Never delivered again: a handler that changed state and then failed would act twice.
            stopped = true;
            messages.stop();
            onFatal(e);
            return;
          }
          next = m.seq + 1;
          attempt = 0;
        }
      } catch (e) {
        onTrouble(e);
      }
      while (!stopped) {
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt++)));
        if (stopped) return;
        try {
          messages = await open();
          if (stopped) messages.stop();
          break;
        } catch (e) {
          onTrouble(e);
        }
      }
    }
  })();
  return {
    stop: () => {
      stopped = true;
      messages.stop();
    },
    done,
  };
}
