/** `medledger verify <data-dir>`: exit 0 on an intact chain, 3 and the first bad height otherwise. */
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { MedledgerError } from '@medledger/core/errors';
import { DataDirFiles } from '../../config/data-dir.ts';
import { verifyStore } from '../../store/verify-store.ts';
import { printResult } from '../output.ts';

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('Verify a node’s data directory: every hash, signature, Merkle root and state root, and the stored state')
    .argument('<data-dir>', 'the node’s data directory')
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      const path = join(resolve(dir), DataDirFiles.chain);
      if (!existsSync(path)) throw new MedledgerError('NOT_FOUND', { details: `No ledger at ${path}.` });
      const bar = process.stderr.isTTY
        ? new SingleBar({ format: 'verify [{bar}] {value}/{total} blocks', stream: process.stderr }, Presets.shades_classic)
        : null;
      let started = false;
      const started0 = performance.now();
      try {
        const result = await verifyStore(path, (h, of) => {
          if (bar === null) return;
          if (!started) {
            bar.start(of, 0);
            started = true;
          }
          bar.update(h);
        });
        bar?.stop();
        const seconds = (performance.now() - started0) / 1000;
        printResult(
          {
            status: 'intact',
            height: result.height,
            txs: result.txCount,
            stateEntries: result.stateEntries,
            stateRoot: result.stateRoot,
            txPerSecond: Math.round(result.txCount / seconds),
          },
          cmd.optsWithGlobals<{ json?: boolean }>().json === true,
        );
      } catch (e) {
        bar?.stop();
        if (e instanceof MedledgerError && (e.code === 'CHAIN_BROKEN' || e.code === 'STATE_MISMATCH')) {
          const h = e.payload['height'];
          process.stderr.write(`medledger: ${e.code}: ${e.message}${typeof h === 'number' ? ` (first bad height: ${h})` : ''}\n`);
          process.exit(3);
        }
        throw e;
      }
    });
}
