/**
 * `medledger verify <data-dir>`: exit 0 when everything the node keeps is intact; 3 with the
 * first finding's code and what it names (height, table and key, or file) otherwise.
 */
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { MedledgerError } from '@medledger/core/errors';
import { DataDirFiles } from '../../config/data-dir.ts';
import { verifyDataDir } from '../../store/verify-store.ts';
import { printResult } from '../output.ts';

/** Findings of damage or tampering: exit status 3, as opposed to 2 for a verify that could not run. */
const TAMPER_CODES: ReadonlySet<string> = new Set([
  'CHAIN_BROKEN',
  'STATE_MISMATCH',
  'FINALITY_INVALID',
  'VAULT_TAMPERED',
  'DATA_DIR_TAMPERED',
]);

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      'Verify a node’s data directory: every hash, signature, Merkle root and state root, the stored state, finality ' +
        'votes and certificates, the solo log, genesis, configuration and key files, and every vault table',
    )
    .argument('<data-dir>', 'the node’s data directory')
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      const root = resolve(dir);
      const path = join(root, DataDirFiles.chain);
      if (!existsSync(path)) throw new MedledgerError('NOT_FOUND', { details: `No ledger at ${path}.` });
      const bar = process.stderr.isTTY
        ? new SingleBar({ format: 'verify [{bar}] {value}/{total} blocks', stream: process.stderr }, Presets.shades_classic)
        : null;
      let started = false;
      const started0 = performance.now();
      try {
        const result = await verifyDataDir(root, (h, of) => {
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
            finality: result.finality,
            orderer: result.orderer,
            vault: result.vault,
            files: result.files,
            txPerSecond: Math.round(result.txCount / seconds),
          },
          cmd.optsWithGlobals<{ json?: boolean }>().json === true,
        );
      } catch (e) {
        bar?.stop();
        if (e instanceof MedledgerError && TAMPER_CODES.has(e.code)) {
          const h = e.payload['height'];
          process.stderr.write(`medledger: ${e.code}: ${e.message}${typeof h === 'number' ? ` (first bad height: ${h})` : ''}\n`);
          process.exit(3);
        }
        throw e;
      }
    });
}
