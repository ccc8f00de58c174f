/** `medledger init`, `start` and `demo`: create a network, run one node, run the demo consortium. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createNetwork, type InstitutionPlan } from '@medledger/core/ledger/network-builder';
import { InstitutionKinds, type InstitutionKind } from '@medledger/core/policy/roles';
import { MedledgerError } from '@medledger/core/errors';
import {
  DataDirFiles,
  keyFilePath,
  readGenesis,
  readIdentityFile,
  readNodeConfig,
  writeJson,
  type NodeConfig,
} from '../../config/data-dir.ts';
import { LedgerNode } from '../../ledger-node.ts';
import { isStorageFailure } from '../../store/storage-failure.ts';
import { runDemo } from '../../demo/demo.ts';
import { integerOption } from '../integer-option.ts';

function parseInstitution(spec: string): InstitutionPlan {
  // id:kind[:name]
  const [id, kind, ...name] = spec.split(':');
  if (id === undefined || !/^[a-z0-9][a-z0-9-]{0,47}$/.test(id) || kind === undefined || !Object.hasOwn(InstitutionKinds, kind)) {
    throw new MedledgerError('BAD_REQUEST', {
      details: `Institution "${spec}" is not id:kind[:name] with kind one of ${Object.keys(InstitutionKinds).join(', ')}.`,
    });
  }
  return { id, kind: kind as InstitutionKind, name: name.length > 0 ? name.join(':') : id, validator: kind !== 'research' };
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (): void => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export function registerNetworkCommands(program: Command): void {
  program
    .command('init')
    .description('Create a new network: genesis, the Issuer’s keys and a data directory per founding institution')
    .requiredOption('--dir <dir>', 'directory to create the network in')
    .option('--name <name>', 'network name', 'medledger consortium')
    .option('--institution <spec...>', 'founding institutions as id:kind[:name]; kind: hospital, clinic, laboratory, research', [
      'hosp-a:hospital:Hospital A',
      'hosp-b:hospital:Hospital B',
      'clinic-c:clinic:Clinic C',
      'lab-d:laboratory:Laboratory D',
    ])
    .option('--base-port <port>', 'API port of the first institution; the others follow', '8081')
    .action(async (o: { dir: string; name: string; institution: string[]; basePort: string }) => {
      const dir = resolve(o.dir);
      const plans = o.institution.map(parseInstitution);
      // Each institution's node listens on the next port: the last one must be a port too.
      const basePort = integerOption(o.basePort, '--base-port', 1, 65536 - plans.length);
      if (existsSync(join(dir, 'issuer'))) throw new MedledgerError('ALREADY_EXISTS', { details: `${dir} already holds a network.` });
      const net = await createNetwork({ name: o.name, createdAt: Date.now(), institutions: plans });
      writeJson(join(dir, 'issuer', 'keys', 'issuer.json'), net.issuer.file, true);
      writeJson(join(dir, 'issuer', DataDirFiles.genesis), net.genesis);
      plans.forEach((p, i) => {
        const nodeDir = join(dir, p.id);
        const config: NodeConfig = {
          institution: p.id,
          ordering: { kind: 'solo' },
          api: { host: '127.0.0.1', port: basePort + i },
          rateLimitPerMinute: 60_000,
          vault: { store: { kind: 'sqlite' }, institutions: [p.id] },
        };
        writeJson(join(nodeDir, DataDirFiles.config), config);
        writeJson(join(nodeDir, DataDirFiles.genesis), net.genesis);
        writeJson(join(nodeDir, DataDirFiles.consortium), { patientCodeKey: net.patientCodeKey }, true);
        writeJson(join(nodeDir, DataDirFiles.keys, `${p.id}.json`), net.institutions.get(p.id)!.file, true);
      });
      process.stdout.write(`network ${net.network} created in ${dir}\n`);
      for (const p of plans) process.stdout.write(`  ${p.id} (${p.kind}): medledger start --data ${join(dir, p.id)}\n`);
    });

  program
    .command('start')
    .description('Start one institution node from its data directory (solo ordering; see the README for a consortium)')
    .requiredOption('--data <dir>', 'the node’s data directory (made by `medledger init`)')
    .option('--port <port>', 'API port (overrides node.json)')
    .option('--host <host>', 'API address to bind (overrides node.json)')
    .option('--log', 'log requests (patient codes are redacted)', false)
    .action(async (o: { data: string; port?: string; host?: string; log: boolean }) => {
      const port = o.port === undefined ? undefined : integerOption(o.port, '--port', 0, 65535);
      const dataDir = resolve(o.data);
      const config = readNodeConfig(dataDir);
      const genesis = readGenesis(join(dataDir, DataDirFiles.genesis));
      const node = await LedgerNode.start({
        dataDir,
        genesis,
        institution: config.institution,
        host: o.host ?? config.api.host,
        port: port ?? config.api.port,
        rateLimitPerMinute: config.rateLimitPerMinute,
        ordering: config.ordering,
        signer: existsSync(keyFilePath(dataDir, config.institution))
          ? readIdentityFile(keyFilePath(dataDir, config.institution)).signing
          : null,
        logger: o.log,
        vault: config.vault ?? null,
        push: config.push ?? null,
      });
      process.stdout.write(`medledger node ${config.institution} listening on ${node.url} (height ${node.peer.store.head().height})\n`);
      onSignals(() => node.stop());
      // A full disk or a failing one: exit (EX_TEMPFAIL) so that the supervisor restarts the node
      // once storage is back. Any other halt keeps the node up, reporting it on /api/health.
      // The same for a storage failure thrown where no caller catches it (a vote or vault write).
      const fatal = (e: unknown): void => {
        if (isStorageFailure(e)) {
          process.stderr.write('medledger: STORAGE_FAILED: the node’s store cannot be written (disk full or I/O error); exiting\n');
          process.exit(75);
        }
        process.stderr.write(`medledger: INTERNAL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        process.exit(70);
      };
      process.on('uncaughtException', fatal);
      process.on('unhandledRejection', fatal);
      const onHalt = (e: unknown): void => {
        if (!isStorageFailure(e)) return;
        process.stderr.write(
          'medledger: STORAGE_FAILED: the ledger store cannot commit (disk full or I/O error); exiting, restart the node when storage is back: it resumes from its last committed block\n',
        );
        setTimeout(() => process.exit(75), 5000).unref();
        void node.stop().finally(() => process.exit(75));
      };
      node.peer.on('error', onHalt);
      // It may have halted already, catching up before the API listened.
      if (node.peer.haltedBy !== null) onHalt(node.peer.haltedBy);
    });

  program
    .command('demo')
    .description('Run an embedded consortium in one process, seeded with synthetic patients, records, consents and accesses')
    .option('--port <port>', 'API port (default: $PORT or 8080)')
    .option('--host <host>', 'address to bind', 'localhost')
    .option('--data <dir>', 'data directory, reused on the next start', '.medledger/demo')
    .action(async (o: { port?: string; host: string; data: string }) => {
      const port = integerOption(o.port ?? process.env['PORT'] ?? '8080', o.port === undefined ? 'PORT' : '--port', 0, 65535);
      const dataDir = resolve(o.data);
      const node = await runDemo({ dataDir, host: o.host, port, log: (l) => process.stdout.write(l + '\n') });
      process.stdout.write(
        `medledger demo: API on http://localhost:${port} (OpenAPI at /api/openapi.json), web app at http://localhost:${port}/, data in ${dataDir}\n`,
      );
      onSignals(() => node.stop());
    });
}
