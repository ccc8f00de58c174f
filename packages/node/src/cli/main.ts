#!/usr/bin/env node
/**
 * The `medledger` command line: create a network, run a node or the demo, make keys, act as an
 * identity (transactions, records, consent, access) and verify a node's data directory.
 * Errors print their stable code; the exit status is non-zero on any failure.
 */
import { Command, Option } from 'commander';
import { MedledgerError } from '@medledger/core/errors';
import { installNodeCrypto } from '../crypto/node-crypto.ts';
import { registerNetworkCommands } from './commands/network.ts';
import { registerIdentityCommands } from './commands/acting.ts';
import { registerVerifyCommand } from './commands/verify.ts';
import { registerClusterCommands } from './commands/cluster.ts';
import { registerVaultCommands } from './commands/vault.ts';
import { registerResearchCommands } from './commands/research.ts';

installNodeCrypto();

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

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof MedledgerError) {
    process.stderr.write(`medledger: ${e.code}: ${e.message}\n`);
    process.exit(e.code === 'CHAIN_BROKEN' || e.code === 'STATE_MISMATCH' ? 3 : 2);
  }
  process.stderr.write(`medledger: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
