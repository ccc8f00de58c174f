/**
 * Opens a connection to the consortium's NATS servers and makes sure a JetStream stream exists
 * (created with `config` the first time; an existing stream is used as it is). Shared by the
 * ordering stream and the votes stream.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, type JetStreamClient, type StreamConfig } from '@nats-io/jetstream';

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
export const CONSUME_OPTIONS = { expires: 5_000, idle_heartbeat: 1_000 } as const;
