/**
 * The `medledger` command tree, built afresh on each call (main.ts parses process.argv with it;
 * tests parse argv vectors in-process), and how a failure is reported: a stable code and an exit
 * status.
 */
import { Command, Option } from 'commander';
import { MedledgerError, isMedledgerError } from '@medledger/core/errors';
import { registerNetworkCommands } from './commands/network.ts';
import { registerIdentityCommands } from './commands/acting.ts';
import { registerVerifyCommand } from './commands/verify.ts';
import { registerClusterCommands } from './commands/cluster.ts';
import { registerVaultCommands } from './commands/vault.ts';
import { registerResearchCommands } from './commands/research.ts';
import { registerKeyRotationCommands } from './commands/key-rotation.ts';
import { registerCareCommands } from './commands/care.ts';

export function buildProgram(): Command {
  const program = new Command()
    .name('medledger')
    .description('A consortium ledger on which institutions share patient records under the patient’s control.')
    .version('0.1.0')
    .showHelpAfterError()
    .addOption(new Option('--json', 'print machine-readable JSON').default(false));

  registerNetworkCommands(program);
  registerIdentityCommands(program);
  registerVerifyCommand(program);
  registerClusterCommands(program);
  registerVaultCommands(program);
  registerResearchCommands(program);
  registerKeyRotationCommands(program);
  registerCareCommands(program);
  return program;
}

/** What fails when a file or directory the user named cannot be used (Node's fs error codes). */
const FILE_ERRORS: Record<string, 'NOT_FOUND' | 'BAD_REQUEST'> = {
  ENOENT: 'NOT_FOUND',
  ENOTDIR: 'BAD_REQUEST',
  EISDIR: 'BAD_REQUEST',
  EEXIST: 'BAD_REQUEST',
  EACCES: 'BAD_REQUEST',
  EPERM: 'BAD_REQUEST',
  ENAMETOOLONG: 'BAD_REQUEST',
  ELOOP: 'BAD_REQUEST',
  EROFS: 'BAD_REQUEST',
  ENOSPC: 'BAD_REQUEST',
};

/**
 * A failure as the CLI reports it: a coded error and the exit status (3: the chain does not
 * verify; 2: a coded refusal; 1: anything else, reported as INTERNAL by its name only, since an
 * unknown error's message may quote what it read).
 */
export function cliFailure(e: unknown): { error: MedledgerError; exitCode: number } {
  if (isMedledgerError(e)) return { error: e, exitCode: e.code === 'CHAIN_BROKEN' || e.code === 'STATE_MISMATCH' ? 3 : 2 };
  const f = (typeof e === 'object' && e !== null ? e : {}) as { code?: unknown; syscall?: unknown; path?: unknown };
  const fileCode = typeof f.code === 'string' && typeof f.syscall === 'string' ? FILE_ERRORS[f.code] : undefined;
  if (fileCode !== undefined) {
    const path = typeof f.path === 'string' ? ` ${f.path}` : '';
    return {
      error: new MedledgerError(fileCode, { details: `Cannot ${f.syscall as string}${path} (${f.code as string}).`, cause: e }),
      exitCode: 2,
    };
  }
  return { error: new MedledgerError('INTERNAL', { details: `(${e instanceof Error ? e.name : typeof e})`, cause: e }), exitCode: 1 };
}
