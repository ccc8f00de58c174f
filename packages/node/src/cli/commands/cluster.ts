/** `medledger cluster up|down|status`: a local consortium of NATS servers and validator nodes. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { clusterDown, clusterStatus, clusterUp } from '../../cluster/local-cluster.ts';
import { printResult } from '../output.ts';
import { integerOption } from '../integer-option.ts';

const CLI = resolve(import.meta.dirname, '../../../bin/medledger.js');

export function registerClusterCommands(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('Run a local consortium: NATS JetStream servers and validator nodes, each with its own data directory');
  cluster
    .command('up')
    .description('Create (first time) and start the NATS servers and validator nodes in the background')
    .option('--dir <dir>', 'cluster directory', '.medledger/cluster')
    .option('--nats <n>', 'NATS servers (stream replicas: min(3, n))', '3')
    .option('--validators <n>', 'validator nodes: hosp-a, hosp-b, clinic-c, lab-d, …', '4')
    .option('--base-port <port>', 'API port of the first validator', '8101')
    .option('--nats-port <port>', 'client port of the first NATS server (cluster ports are +100)', '14222')
    .action(async (o: { dir: string; nats: string; validators: string; basePort: string; natsPort: string }) => {
      // Whole numbers, and ports that stay ports for the last node and server (cluster ports are +100).
      const natsServers = integerOption(o.nats, '--nats', 1, 99);
      const validators = integerOption(o.validators, '--validators', 1, Number.MAX_SAFE_INTEGER);
      await clusterUp({
        dir: resolve(o.dir),
        natsServers,
        validators,
        basePort: integerOption(o.basePort, '--base-port', 1, Math.max(1, 65536 - validators)),
        natsBasePort: integerOption(o.natsPort, '--nats-port', 1, 65536 - 100 - natsServers),
        cli: CLI,
        log: (l) => process.stdout.write(l + '\n'),
      });
      process.stdout.write(`cluster up; see: medledger cluster status --dir ${o.dir}\n`);
    });
  cluster
    .command('down')
    .description('Stop the processes `cluster up` started (data stays)')
    .option('--dir <dir>', 'cluster directory', '.medledger/cluster')
    .action(async (o: { dir: string }) => clusterDown(resolve(o.dir), (l) => process.stdout.write(l + '\n')));
  cluster
    .command('status')
    .description('Heights, last final height and state of every validator, and which NATS servers run')
    .option('--dir <dir>', 'cluster directory', '.medledger/cluster')
    .action(async (o: { dir: string }, cmd: Command) => {
      const s = await clusterStatus(resolve(o.dir));
      const json = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      if (json) printResult(s, true);
      else {
        process.stdout.write(`network ${s.network}\n`);
        printResult(s.nodes, false);
        printResult(s.nats, false);
      }
    });
}
