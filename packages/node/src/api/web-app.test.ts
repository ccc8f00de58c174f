/**
 * The node serves the browser app beside the API: built files, index.html for the app's own
 * paths, coded 404s for unknown API and vault paths, and a how-to-build page without a build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LedgerNode } from '../ledger-node.ts';
import { makeNetwork, tempDir } from '../../../../test/test-network.ts';

let institutionKeyId = '';

async function start(webDist: string, id: string): Promise<LedgerNode> {
  const net = await makeNetwork();
  institutionKeyId = net.institutions.get(id)!.keyId;
  return LedgerNode.start({ dataDir: net.nodeDir(id), genesis: net.genesis, institution: id, host: '127.0.0.1', port: 0, webDist });
}

describe('with a built app', () => {
  let node: LedgerNode;
  beforeAll(async () => {
    const dist = tempDir('dist');
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(join(dist, 'assets', 'app-1234.js'), 'console.log(1)');
    node = await start(dist, 'hosp-a');
  });
  afterAll(() => node.stop());

  it('serves files, and index.html for any app path', async () => {
    const root = await fetch(`${node.url}/`);
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/text\/html/);
    expect(await root.text()).toContain('id="root"');
    const asset = await fetch(`${node.url}/assets/app-1234.js`);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    const deep = await fetch(`${node.url}/patient/history?x=1`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('id="root"');
  });

  it('answers index.html for its own pages only: other paths keep their coded 404s, /fhir its OperationOutcome', async () => {
    for (const path of ['/api/nope', '/vault/nope', '/assets/missing.js', '/0ault/hosp-a/audit', '/patients', '/network.json']) {
      const res = await fetch(`${node.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.json(), path).toMatchObject({ code: 'NOT_FOUND' });
    }
    // A path too long for a route's parameter once reached the static files and failed there with a 500.
    const long = await fetch(`${node.url}/api/studies/${'x'.repeat(4000)}`);
    expect(long.status).toBeLessThan(500);
    expect(await long.json()).toHaveProperty('code');
    const fhir = await fetch(`${node.url}/fhir/Patient`);
    expect(fhir.status).toBe(404);
    expect(fhir.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(await fhir.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ details: { coding: [{ code: 'NOT_FOUND' }] } }],
    });
    expect((await fetch(`${node.url}/api/health`)).status).toBe(200);
    const post = await fetch(`${node.url}/patient`, { method: 'POST' });
    expect(post.status).toBe(404);
  });

  it('says who holds a key (the app learns who signed in), and a coded 404 for an unknown one', async () => {
    const known = await fetch(`${node.url}/api/keys/${institutionKeyId}`);
    expect(await known.json()).toMatchObject({
      keyId: institutionKeyId,
      status: 'active',
      owner: { kind: 'institution', institution: 'hosp-a' },
    });
    const unknown = await fetch(`${node.url}/api/keys/k${'0'.repeat(40)}`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('does not offer demo identities outside the demo', async () => {
    expect((await fetch(`${node.url}/api/demo/identities`)).status).toBe(404);
  });
});

describe('without a build', () => {
  let node: LedgerNode;
  beforeAll(async () => {
    node = await start(join(tempDir('nodist'), 'dist'), 'hosp-b');
  });
  afterAll(() => node.stop());

  it('says at / how to build the app, and the API still answers', async () => {
    const root = await fetch(`${node.url}/`);
    expect(root.status).toBe(200);
    expect(await root.text()).toContain('npm run build');
    expect((await fetch(`${node.url}/api/health`)).status).toBe(200);
    expect((await fetch(`${node.url}/patient`)).status).toBe(404);
  });
});
