/**
 * The OpenAPI document the node serves describes every route, and docs/openapi.json is that
 * document (run with UPDATE_OPENAPI=1 to rewrite it after changing the API).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LedgerNode } from '../ledger-node.ts';
import { makeNetwork } from '../../../../test/test-network.ts';

const SNAPSHOT = join(import.meta.dirname, '../../../../docs/openapi.json');
let node: LedgerNode;

beforeAll(async () => {
  const net = await makeNetwork();
  node = await LedgerNode.start({
    dataDir: net.nodeDir('hosp-a'),
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
  });
});
afterAll(() => node.stop());

it('serves an OpenAPI 3 document covering the API, equal to docs/openapi.json', async () => {
  const doc = (await (await fetch(`${node.url}/api/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
  expect(doc.openapi).toMatch(/^3\./);
  for (const path of [
    '/api/health',
    '/api/tx',
    '/api/tx/{id}',
    '/api/blocks',
    '/api/blocks/{height}',
    '/api/records',
    '/api/records/{id}',
    '/api/patients/{code}/consents',
    '/api/patients/{code}/access-log',
    '/api/events',
    '/api/members',
  ]) {
    expect(Object.keys(doc.paths)).toContain(path);
  }
  if (process.env['UPDATE_OPENAPI'] === '1') writeFileSync(SNAPSHOT, JSON.stringify(doc, null, 2) + '\n');
  expect(JSON.parse(readFileSync(SNAPSHOT, 'utf8')), 'docs/openapi.json is stale: run UPDATE_OPENAPI=1 npx vitest run openapi').toEqual(
    doc,
  );
});
