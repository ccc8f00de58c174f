/**
 * Vitest global setup: every directory the tests make with `tempDir` goes under one directory of
 * this run, removed when the run ends (set MEDLEDGER_KEEP_TEST_DIRS to keep it). Test workers
 * inherit the variable; other runs on the same machine keep their own.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let root: string | null = null;

export function setup(): void {
  root = mkdtempSync(join(tmpdir(), 'medledger-run-'));
  // Others may pass through but not list: PostgreSQL runs as its own user inside a directory here.
  chmodSync(root, 0o711);
  process.env['MEDLEDGER_TEST_TMP'] = root;
}

export function teardown(): void {
  if (root === null) return;
  if (process.env['MEDLEDGER_KEEP_TEST_DIRS'] !== undefined) {
    process.stdout.write(`test directories kept in ${root}\n`);
    return;
  }
  rmSync(root, { recursive: true, force: true });
}
