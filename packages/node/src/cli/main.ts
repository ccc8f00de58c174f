#!/usr/bin/env node
/**
 * The `medledger` command line: create a network, run a node or the demo, make keys, act as an
 * identity (transactions, records, consent, access) and verify a node's data directory.
 * Errors print their stable code; the exit status is non-zero on any failure.
 */
import { installNodeCrypto } from '../crypto/node-crypto.ts';
import { buildProgram, cliFailure } from './program.ts';

installNodeCrypto();

buildProgram()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    const { error, exitCode } = cliFailure(e);
    process.stderr.write(`medledger: ${error.code}: ${error.message}\n`);
    process.exit(exitCode);
  });
