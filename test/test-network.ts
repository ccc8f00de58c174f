/**
 * Shared test harness: makes a real network on disk (genesis, keys, node data directories, as
 * `medledger init` does), starts nodes in-process or as child processes on free loopback ports,
 * and talks to them over HTTP. Tests use it instead of mocking any part of the node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import { Identity } from '@medledger/core/client/identity';
import { patientCodeOf } from '@medledger/core/contracts/identity';
import { createNetwork, type InstitutionPlan, type NewNetwork } from '@medledger/core/ledger/network-builder';
import type { Genesis } from '@medledger/core/ledger/genesis';
import type { Tx } from '@medledger/core/ledger/tx';
import type { TxType } from '@medledger/core/ledger/tx-types';
import type { StaffRole } from '@medledger/core/policy/roles';
import { DataDirFiles, writeJson } from '../packages/node/src/config/data-dir.ts';
import { installNodeCrypto } from '../packages/node/src/crypto/node-crypto.ts';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';

installNodeCrypto();

export const ROOT = join(import.meta.dirname, '..');
export const CLI = join(ROOT, 'packages/node/bin/medledger.js');

export const INSTITUTIONS: InstitutionPlan[] = [
  { id: 'hosp-a', name: 'Hospital A', kind: 'hospital', validator: true },
  { id: 'hosp-b', name: 'Hospital B', kind: 'hospital', validator: true },
  { id: 'clinic-c', name: 'Clinic C', kind: 'clinic', validator: true },
  { id: 'lab-d', name: 'Laboratory D', kind: 'laboratory', validator: true },
  { id: 'res-e', name: 'Research E', kind: 'research', validator: false },
];

/** Directories made by `tempDir`, removed when the process exits unless kept. */
const madeDirs = new Set<string>();
let removalArranged = false;

function removeMadeDirs(): void {
  if (process.env['MEDLEDGER_KEEP_TEST_DIRS'] !== undefined) return;
  for (const dir of madeDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a mount point or a file still held open: leave it rather than fail the run at exit
    }
  }
}

/**
 * A new directory under the system's temp dir (under the run's own one in Vitest, see
 * temp-root.ts), removed when the process exits (set MEDLEDGER_KEEP_TEST_DIRS to keep every one,
 * or call `keepTempDir` to keep one for a report).
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(process.env['MEDLEDGER_TEST_TMP'] ?? tmpdir(), `medledger-${prefix}-`));
  if (!removalArranged) process.once('exit', removeMadeDirs);
  removalArranged = true;
  madeDirs.add(dir);
  return dir;
}

/** Keeps a directory made by `tempDir` after the process exits: its logs explain a failure. */
export function keepTempDir(dir: string): void {
  madeDirs.delete(dir);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface TestNetwork extends NewNetwork {
  dir: string;
  nodeDir(institution: string): string;
}

/** A network on disk with one node data directory per institution, as `medledger init` makes. */
export async function makeNetwork(config: Partial<Genesis['config']> = {}, institutions = INSTITUTIONS): Promise<TestNetwork> {
  const dir = tempDir('net');
  const net = await createNetwork({ name: 'test network', createdAt: 1_700_000_000_000, institutions, config });
  for (const p of institutions) {
    const nodeDir = join(dir, p.id);
    writeJson(join(nodeDir, DataDirFiles.config), {
      institution: p.id,
      ordering: { kind: 'solo' },
      api: { host: '127.0.0.1', port: 0 },
      rateLimitPerMinute: 1_000_000,
    });
    writeJson(join(nodeDir, DataDirFiles.genesis), net.genesis);
    writeJson(join(nodeDir, DataDirFiles.consortium), { patientCodeKey: net.patientCodeKey }, true);
    writeJson(join(nodeDir, DataDirFiles.keys, `${p.id}.json`), net.institutions.get(p.id)!.file, true);
  }
  return { ...net, dir, nodeDir: (id) => join(dir, id) };
}

/**
 * Starts institution `id`'s node in this process, ordering on the given NATS servers (stream
 * `<prefix>_<network>`, one replica) and keeping the institution's vault in `store`.
 */
export function startVaultNode(
  net: TestNetwork,
  natsUrls: string[],
  prefix: string,
  id: string,
  store: { kind: 'sqlite' } | { kind: 'postgres'; connectionString: string } = { kind: 'sqlite' },
): Promise<LedgerNode> {
  return LedgerNode.start({
    dataDir: net.nodeDir(id),
    genesis: net.genesis,
    institution: id,
    host: '127.0.0.1',
    port: 0,
    ordering: { kind: 'nats', servers: natsUrls, stream: `${prefix}_${net.network.slice(0, 12)}`, replicas: 1 },
    signer: net.institutions.get(id)!.file.signing,
    vault: { store, institutions: [id] },
  });
}

export interface HttpAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export async function http<T = Record<string, unknown>>(method: string, url: string, body?: unknown, raw?: string): Promise<HttpAnswer<T>> {
  const res = await fetch(url, {
    method,
    headers: body === undefined && raw === undefined ? {} : { 'content-type': 'application/json' },
    ...(raw !== undefined ? { body: raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text.length > 0 ? JSON.parse(text) : {}) as T };
}

/** Signs and submits a tx, waiting for its commit; returns the HTTP answer and the txId. */
export async function send(
  base: string,
  network: string,
  who: Identity,
  type: TxType,
  body: JsonObject,
): Promise<{ txId: string; status: number; code: string | undefined; answer: HttpAnswer }> {
  const { tx, txId } = await who.tx(network, type, body);
  const answer = await http('POST', `${base}/api/tx?wait=commit`, tx);
  return { txId, status: answer.status, code: (answer.body['code'] as string | undefined) ?? undefined, answer };
}

export async function sendTx(base: string, tx: Tx, wait = true): Promise<HttpAnswer> {
  return http('POST', `${base}/api/tx${wait ? '?wait=commit' : ''}`, tx);
}

export interface Cast {
  staff: Map<string, Identity>;
  patients: { identity: Identity; code: string; home: string }[];
}

/** Enrols staff (`institution/local` → role) and registers patients at their home hospitals. */
export async function enrolCast(
  base: string,
  net: TestNetwork,
  staffRoles: Record<string, StaffRole>,
  patientHomes: string[],
): Promise<Cast> {
  const staff = new Map<string, Identity>();
  for (const [staffId, role] of Object.entries(staffRoles)) {
    const [inst, local] = staffId.split('/') as [string, string];
    const identity = await Identity.generate(staffId);
    const r = await send(base, net.network, net.institutions.get(inst)!, 'identity.enrolStaff', {
      localId: local,
      role,
      signingKey: identity.signingKey,
      encryptionKey: identity.encryptionKey,
      displayName: staffId,
    });
    if (r.code !== 'OK') throw new Error(`enrol ${staffId}: ${String(r.code)}`);
    staff.set(staffId, identity);
  }
  const patients: Cast['patients'] = [];
  for (const [i, home] of patientHomes.entries()) {
    const identity = await Identity.generate(`patient-${i}`);
    const code = patientCodeOf(fromBase64Url(net.patientCodeKey), `TEST-${i}-${home}`);
    const registrar = [...staff.entries()].find(([id]) => id.startsWith(`${home}/`))?.[1];
    if (registrar === undefined) throw new Error(`no staff at ${home} to register a patient`);
    const r = await send(base, net.network, registrar, 'identity.registerPatient', {
      patientCode: code,
      signingKey: identity.signingKey,
      encryptionKey: identity.encryptionKey,
      possession: await identity.possessionProof(net.network, code, home),
    });
    if (r.code !== 'OK') throw new Error(`register patient ${i}: ${String(r.code)}`);
    patients.push({ identity, code, home });
  }
  return { staff, patients };
}

/** A small valid FHIR Observation (synthetic, no real person), the record the vault tests store. */
export function observation(note: string): JsonObject {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }], text: note },
    subject: { reference: 'Patient/synthetic-1' },
    effectiveDateTime: '2026-11-01T09:30:00Z',
    valueQuantity: { value: 13.2, unit: 'g/dL' },
  };
}

/**
 * Writes each validator's `node.json` for ordering on a NATS stream (one per network, `prefix`
 * naming it), on a free loopback port it answers in `ports`.
 */
export async function writeNatsNodeConfigs(
  net: TestNetwork,
  validators: readonly string[],
  natsUrls: string[],
  o: { prefix: string; replicas: number; ports: Map<string, number>; extra?: (id: string) => JsonObject },
): Promise<void> {
  for (const id of validators) {
    o.ports.set(id, await freePort());
    writeJson(join(net.nodeDir(id), DataDirFiles.config), {
      institution: id,
      ordering: { kind: 'nats', servers: natsUrls, stream: `${o.prefix}_${net.network.slice(0, 16)}`, replicas: o.replicas },
      api: { host: '127.0.0.1', port: o.ports.get(id)! },
      rateLimitPerMinute: 1_000_000,
      ...(o.extra?.(id) ?? {}),
    });
  }
}

/** A record index body with syntactically valid hashes (the ledger never sees plaintext). */
export function recordBody(patientCode: string, category: string, seed: string, extra: JsonObject = {}): JsonObject {
  const hex = (s: string): string => Buffer.from(s.padEnd(32, '.').slice(0, 32)).toString('hex');
  return {
    patientCode,
    category,
    groupKeyId: null,
    hashAlg: 'sha-256',
    hashLength: 32,
    hash: hex(`h${seed}`),
    ciphertextHash: hex(`c${seed}`),
    size: 1000,
    storage: 'vault',
    pointer: `vault://record/${seed}`,
    ciphertext: null,
    keyEnvelopes: { patient: 'cGF0aWVudA', custodian: 'Y3VzdG9kaWFu' },
    registrationRequestId: null,
    ...extra,
  };
}

export class NodeProcess {
  private exited: Promise<number | null>;
  output = '';

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  /** Starts `medledger start --data dir` as a child process and waits for /api/health. */
  static async start(dataDir: string, port: number): Promise<NodeProcess> {
    // MEDLEDGER_NODE_ARGS passes Node options to node processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
    const nodeArgs = (process.env['MEDLEDGER_NODE_ARGS'] ?? '').split(' ').filter((x) => x.length > 0);
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'start', '--data', dataDir, '--port', String(port), '--host', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new NodeProcess(child, `http://127.0.0.1:${port}`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`node exited: ${p.output}`);
      try {
        const res = await fetch(`${p.url}/api/health`);
        if (res.ok) return p;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`node did not start: ${p.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

/**
 * Starts two servers side by side and answers both; if one fails to start, stops the other before
 * rethrowing, so that no server outlives a failed setup.
 */
export async function startAll<A extends Stoppable, B extends Stoppable>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'fulfilled' && y.status === 'fulfilled') return [x.value, y.value];
  for (const s of [x, y]) if (s.status === 'fulfilled') await s.value.stop().catch(() => undefined);
  throw x.status === 'rejected' ? x.reason : (y as PromiseRejectedResult).reason;
}

interface Stoppable {
  stop(): Promise<void>;
}
