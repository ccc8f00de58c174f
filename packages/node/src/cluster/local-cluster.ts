/**
 * `medledger cluster up|down|status`: a local consortium on one machine — N NATS JetStream
 * servers (clustered on loopback, own store dirs) and M validator nodes (each with its own data
 * directory and API port), started as background processes whose pids are kept in
 * `cluster.json`, so `down` stops exactly the processes `up` started.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetwork, type InstitutionPlan } from '@medledger/core/ledger/network-builder';
import { MedledgerError } from '@medledger/core/errors';
import { DataDirFiles, writeFileDurable, writeJson, type NodeConfig } from '../config/data-dir.ts';
import { NATS_SERVER_PATHS, natsConfig, type NatsServerPlan } from './nats-config.ts';

export interface ClusterFile {
  network: string;
  nats: (NatsServerPlan & { pid: number | null })[];
  nodes: { institution: string; dataDir: string; url: string; pid: number | null }[];
}

const VALIDATOR_PLANS: InstitutionPlan[] = [
  { id: 'hosp-a', name: 'Hospital A', kind: 'hospital', validator: true },
  { id: 'hosp-b', name: 'Hospital B', kind: 'hospital', validator: true },
  { id: 'clinic-c', name: 'Clinic C', kind: 'clinic', validator: true },
  { id: 'lab-d', name: 'Laboratory D', kind: 'laboratory', validator: true },
  { id: 'hosp-e', name: 'Hospital E', kind: 'hospital', validator: true },
  { id: 'hosp-f', name: 'Hospital F', kind: 'hospital', validator: true },
  { id: 'clinic-g', name: 'Clinic G', kind: 'clinic', validator: true },
];

function natsBinary(): string {
  const bin = NATS_SERVER_PATHS.find((p) => spawnSync(p, ['--version']).status === 0);
  if (bin === undefined)
    throw new MedledgerError('NODE_UNAVAILABLE', { details: 'nats-server is not installed (apt-get install nats-server).' });
  return bin;
}

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readCluster(dir: string): ClusterFile | null {
  const file = join(dir, 'cluster.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterFile) : null;
}

export interface ClusterUpOptions {
  dir: string;
  natsServers: number;
  validators: number;
  basePort: number;
  natsBasePort: number;
  cli: string;
  log: (line: string) => void;
}

export async function clusterUp(o: ClusterUpOptions): Promise<ClusterFile> {
  let file = readCluster(o.dir);
  if (file === null) {
    if (o.validators < 1 || o.validators > VALIDATOR_PLANS.length)
      throw new MedledgerError('BAD_REQUEST', { details: `1 to ${VALIDATOR_PLANS.length} validators.` });
    const plans = VALIDATOR_PLANS.slice(0, o.validators);
    const net = await createNetwork({ name: 'medledger local consortium', createdAt: Date.now(), institutions: plans });
    const nats = Array.from({ length: o.natsServers }, (_, i) => ({
      name: `n${i + 1}`,
      port: o.natsBasePort + i,
      clusterPort: o.natsBasePort + 100 + i,
      storeDir: join(o.dir, `nats-n${i + 1}`, 'js'),
      pid: null,
    }));
    const servers = nats.map((s) => `nats://127.0.0.1:${s.port}`);
    const stream = `ML_${net.network.slice(0, 16)}`;
    writeJson(join(o.dir, 'issuer', 'keys', 'issuer.json'), net.issuer.file, true);
    writeJson(join(o.dir, 'issuer', DataDirFiles.genesis), net.genesis);
    const nodes = plans.map((p, i) => {
      const dataDir = join(o.dir, p.id);
      const config: NodeConfig = {
        institution: p.id,
        ordering: { kind: 'nats', servers, stream, replicas: Math.min(3, o.natsServers) },
        api: { host: '127.0.0.1', port: o.basePort + i },
        rateLimitPerMinute: 60_000,
      };
      writeJson(join(dataDir, DataDirFiles.config), config);
      writeJson(join(dataDir, DataDirFiles.genesis), net.genesis);
      writeJson(join(dataDir, DataDirFiles.consortium), { patientCodeKey: net.patientCodeKey }, true);
      writeJson(join(dataDir, DataDirFiles.keys, `${p.id}.json`), net.institutions.get(p.id)!.file, true);
      return { institution: p.id, dataDir, url: `http://127.0.0.1:${o.basePort + i}`, pid: null };
    });
    for (const s of nats) writeFileDurable(join(o.dir, `nats-n${s.name.slice(1)}`, 'nats.conf'), natsConfig(s, nats));
    file = { network: net.network, nats, nodes };
    o.log(`network ${net.network}: ${nats.length} NATS servers, ${nodes.length} validators in ${o.dir}`);
  }
  const bin = natsBinary();
  for (const s of file.nats) {
    if (alive(s.pid)) continue;
    const dir = join(o.dir, `nats-${s.name}`);
    mkdirSync(dir, { recursive: true });
    const out = openSync(join(dir, 'nats.log'), 'a');
    const child = spawn(bin, ['-c', join(dir, 'nats.conf')], { detached: true, stdio: ['ignore', out, out] });
    child.unref();
    s.pid = child.pid ?? null;
  }
  writeJson(join(o.dir, 'cluster.json'), file);
  for (const n of file.nodes) {
    if (alive(n.pid)) continue;
    const out = openSync(join(n.dataDir, 'node.log'), 'a');
    const child = spawn(process.execPath, [o.cli, 'start', '--data', n.dataDir], { detached: true, stdio: ['ignore', out, out] });
    child.unref();
    n.pid = child.pid ?? null;
  }
  writeJson(join(o.dir, 'cluster.json'), file);
  const deadline = Date.now() + 60_000;
  for (const n of file.nodes) {
    for (;;) {
      try {
        if ((await fetch(`${n.url}/api/health`)).ok) break;
      } catch {
        // starting
      }
      if (Date.now() > deadline)
        throw new MedledgerError('NODE_UNAVAILABLE', { details: `${n.institution} did not start; see ${join(n.dataDir, 'node.log')}.` });
      await new Promise((r) => setTimeout(r, 200));
    }
    o.log(`  ${n.institution} ${n.url} (pid ${String(n.pid)})`);
  }
  return file;
}

export async function clusterDown(dir: string, log: (line: string) => void): Promise<void> {
  const file = readCluster(dir);
  if (file === null) throw new MedledgerError('NOT_FOUND', { details: `No cluster in ${dir}.` });
  const stop = async (pid: number | null, what: string): Promise<void> => {
    if (!alive(pid)) return;
    process.kill(pid!, 'SIGTERM');
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    log(`  stopped ${what} (pid ${String(pid)})`);
  };
  for (const n of file.nodes) await stop(n.pid, n.institution);
  for (const s of file.nats) await stop(s.pid, `nats ${s.name}`);
  for (const x of [...file.nodes, ...file.nats]) x.pid = null;
  writeJson(join(dir, 'cluster.json'), file);
}

export interface NodeStatus {
  institution: string;
  url: string;
  running: boolean;
  status: string;
  height: number | null;
  finalHeight: number | null;
  stateRoot: string | null;
}

export async function clusterStatus(
  dir: string,
): Promise<{ network: string; nodes: NodeStatus[]; nats: { name: string; port: number; running: boolean }[] }> {
  const file = readCluster(dir);
  if (file === null) throw new MedledgerError('NOT_FOUND', { details: `No cluster in ${dir}.` });
  const nodes = await Promise.all(
    file.nodes.map(async (n) => {
      try {
        const h = (await (await fetch(`${n.url}/api/health`)).json()) as {
          status: string;
          height: number;
          finalHeight: number | null;
          stateRoot: string;
        };
        return {
          institution: n.institution,
          url: n.url,
          running: true,
          status: h.status,
          height: h.height,
          finalHeight: h.finalHeight,
          stateRoot: h.stateRoot.slice(0, 16),
        };
      } catch {
        return {
          institution: n.institution,
          url: n.url,
          running: alive(n.pid),
          status: 'down',
          height: null,
          finalHeight: null,
          stateRoot: null,
        };
      }
    }),
  );
  return { network: file.network, nodes, nats: file.nats.map((s) => ({ name: s.name, port: s.port, running: alive(s.pid) })) };
}
