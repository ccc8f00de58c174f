/** The configuration of one JetStream server of a local cluster: loopback only, own store dir. */
export interface NatsServerPlan {
  name: string;
  port: number;
  clusterPort: number;
  storeDir: string;
}

export function natsConfig(server: NatsServerPlan, all: readonly NatsServerPlan[]): string {
  const routes = all.filter((o) => o !== server).map((o) => `"nats-route://127.0.0.1:${o.clusterPort}"`);
  return [
    `server_name: ${server.name}`,
    `listen: "127.0.0.1:${server.port}"`,
    `jetstream { store_dir: "${server.storeDir}", max_memory_store: 268435456, max_file_store: 4294967296 }`,
    all.length > 1 ? `cluster { name: medledger, listen: "127.0.0.1:${server.clusterPort}", routes: [${routes.join(', ')}] }` : '',
  ].join('\n');
}

/** Debian installs nats-server in /usr/sbin, which a non-root PATH may lack. */
export const NATS_SERVER_PATHS = ['/usr/sbin/nats-server', '/usr/bin/nats-server', 'nats-server'];
