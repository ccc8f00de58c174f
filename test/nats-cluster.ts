/**
 * Starts a real NATS JetStream cluster for tests and benchmarks: `nats-server` processes (Debian's
 * package) on free loopback ports, each with its own store directory, clustered with routes.
 * Nothing is mocked; each server can be killed, paused and restarted by the test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { freePort, tempDir } from './test-network.ts';
import { NATS_SERVER_PATHS, natsConfig } from '../packages/node/src/cluster/nats-config.ts';

export const NATS_SERVER = NATS_SERVER_PATHS.find((p) => spawnSync(p, ['--version']).status === 0);

export interface NatsServer {
  name: string;
  port: number;
  clusterPort: number;
  dir: string;
  process: ChildProcess | null;
}

export class NatsCluster {
  private constructor(readonly servers: NatsServer[]) {}

  get urls(): string[] {
    return this.servers.map((s) => `nats://127.0.0.1:${s.port}`);
  }

  static async start(size = 3): Promise<NatsCluster> {
    if (NATS_SERVER === undefined) throw new Error('nats-server is not installed (apt-get install nats-server)');
    const root = tempDir('nats');
    const servers: NatsServer[] = [];
    for (let i = 0; i < size; i++) {
      servers.push({
        name: `n${i + 1}`,
        port: await freePort(),
        clusterPort: await freePort(),
        dir: join(root, `n${i + 1}`),
        process: null,
      });
    }
    const cluster = new NatsCluster(servers);
    for (const s of servers) {
      mkdirSync(s.dir, { recursive: true });
      const plans = servers.map((o) => ({ name: o.name, port: o.port, clusterPort: o.clusterPort, storeDir: join(o.dir, 'js') }));
      writeFileSync(join(s.dir, 'nats.conf'), natsConfig(plans[servers.indexOf(s)]!, plans));
    }
    for (const s of servers) cluster.spawn(s);
    await cluster.waitReady();
    return cluster;
  }

  private spawn(s: NatsServer): void {
    s.process = spawn(NATS_SERVER!, ['-c', join(s.dir, 'nats.conf')], { stdio: 'ignore' });
  }

  /** Waits until every server answers and JetStream has a meta leader. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const nc = await connect({ servers: this.urls, timeout: 1000 });
        try {
          const info = await nc.request('$JS.API.INFO', undefined, { timeout: 1000 });
          const body = JSON.parse(new TextDecoder().decode(info.data)) as { error?: unknown };
          if (body.error === undefined) return;
        } finally {
          await nc.close();
        }
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error('NATS cluster did not become ready');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async kill(index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.servers[index]!.process;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
    this.servers[index]!.process = null;
  }

  /** Index of the server that leads `stream` now. */
  async streamLeader(stream: string): Promise<number> {
    const nc = await connect({ servers: this.urls, timeout: 2000 });
    try {
      const info = await nc.request(`$JS.API.STREAM.INFO.${stream}`, undefined, { timeout: 2000 });
      const leader = (JSON.parse(new TextDecoder().decode(info.data)) as { cluster?: { leader?: string } }).cluster?.leader;
      const i = this.servers.findIndex((s) => s.name === leader);
      if (i < 0) throw new Error(`no leader for ${stream}`);
      return i;
    } finally {
      await nc.close();
    }
  }

  restart(index: number): void {
    this.spawn(this.servers[index]!);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.servers.length; i++) await this.kill(i, 'SIGTERM');
  }
}
