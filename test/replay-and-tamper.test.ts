/**
 * Replaying a node's blocks on a fresh node gives the same state root; flipping any single byte
 * of a stored block makes `verify` fail at that block's height; changing a stored state or
 * index row is named by table and key.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { MedledgerError } from '@medledger/core/errors';
import { Identity } from '@medledger/core/client/identity';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { LedgerStore } from '../packages/node/src/store/ledger-store.ts';
import { SoloOrderer } from '../packages/node/src/ordering/solo-orderer.ts';
import { Peer } from '../packages/node/src/peer/peer.ts';
import { verifyStore } from '../packages/node/src/store/verify-store.ts';
import { CLI, enrolCast, makeNetwork, recordBody, send, tempDir, type TestNetwork } from './test-network.ts';

let net: TestNetwork;
let chainPath: string;
let foreignTx: string;

beforeAll(async () => {
  net = await makeNetwork();
  const node = await LedgerNode.start({
    dataDir: net.nodeDir('hosp-a'),
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
  });
  const cast = await enrolCast(node.url, net, { 'hosp-a/doc': 'doctor', 'hosp-b/doc': 'doctor', 'hosp-b/nurse': 'nurse' }, [
    'hosp-a',
    'hosp-b',
  ]);
  const p = cast.patients[0]!;
  const rec = await send(node.url, net.network, cast.staff.get('hosp-a/doc')!, 'records.register', recordBody(p.code, 'Condition', 'x'));
  await send(node.url, net.network, p.identity, 'consent.grant', {
    patientCode: p.code,
    grantee: { kind: 'institution', institution: 'hosp-b' },
    scope: { kind: 'all' },
    purposes: ['TREAT'],
    period: { from: 0, to: null },
    deidentification: 'identified',
  });
  await send(node.url, net.network, net.institutions.get('hosp-a')!, 'access.recordServed', {
    recordId: rec.txId,
    requester: 'hosp-b/doc',
    purpose: 'TREAT',
    deidentification: 'identified',
  });
  // A rejected tx too: its signature and code must be covered as well.
  await send(node.url, net.network, cast.staff.get('hosp-b/nurse')!, 'access.breakGlass', {
    patientCode: p.code,
    reason: 'ETREAT',
    justification: 'a nurse may not break the glass',
    durationMs: 60_000,
  });
  // A tx from an unknown author, as another node could order it: rejected before any
  // signature check, so only the header's resultsHash covers its signature.
  const stranger = await Identity.generate('stranger');
  const foreign = await stranger.tx(net.network, 'records.register', recordBody(p.code, 'Condition', 'foreign'));
  await node.peer.orderer.submit([foreign]);
  expect((await node.peer.waitForCommit(foreign.txId, 10_000)).status).toBe('committed');
  foreignTx = foreign.txId;
  await node.stop();
  chainPath = join(net.nodeDir('hosp-a'), 'chain.db');
});

/** A new node of the same network with an empty store, started. */
async function freshPeer(prefix: string): Promise<{ dir: string; store: LedgerStore; peer: Peer }> {
  const dir = tempDir(prefix);
  const store = new LedgerStore(join(dir, 'chain.db'));
  const orderer = new SoloOrderer({ dir: join(dir, 'orderer'), maxTxPerBlock: 100, batchTimeoutMs: 10, maxTxBytes: 65536 });
  const peer = new Peer(store, orderer, net.genesis);
  await peer.start();
  return { dir, store, peer };
}

describe('replay', () => {
  it('a fresh node applying the same blocks reaches the same state root', async () => {
    const source = new LedgerStore(chainPath, { readonly: true });
    const { dir, store, peer } = await freshPeer('replay');
    const top = source.head().height;
    for (let h = 1; h <= top; h++) peer.applyBlock(source.block(h)!.block);
    expect(store.head()).toEqual(source.head());
    await peer.stop();
    store.close();
    source.close();
    expect((await verifyStore(join(dir, 'chain.db'))).stateRoot).toBe(source.head().stateRoot);
  });

  it('refuses a block whose re-execution differs', async () => {
    const source = new LedgerStore(chainPath, { readonly: true });
    const { store, peer } = await freshPeer('replay-bad');
    const b1 = source.block(1)!.block;
    expect(() => peer.applyBlock({ ...b1, header: { ...b1.header, stateRoot: '0'.repeat(64) } })).toThrow(MedledgerError);
    expect(store.head().height).toBe(0);
    await peer.stop();
    store.close();
    source.close();
  });
});

/** A small deterministic generator, so a failing flip can be reproduced. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function otherChar(c: string): string {
  if (/[0-9]/.test(c)) return String((Number(c) + 1) % 10);
  if (/[a-z]/.test(c)) return c === 'z' ? 'a' : String.fromCharCode(c.charCodeAt(0) + 1);
  if (/[A-Z]/.test(c)) return c === 'Z' ? 'A' : String.fromCharCode(c.charCodeAt(0) + 1);
  return c === '"' ? "'" : '"';
}

describe('tamper sweep', () => {
  it('flipping one byte anywhere in a stored block fails verify at that height', async () => {
    const rand = lcg(20261121);
    const source = new LedgerStore(chainPath, { readonly: true });
    const top = source.head().height;
    source.close();
    const columns = ['header', 'txs', 'codes', 'hash'] as const;
    let trials = 0;
    for (let h = 0; h <= top; h++) {
      for (const column of columns) {
        for (let k = 0; k < 6; k++) {
          const dir = tempDir('tamper');
          const path = join(dir, 'chain.db');
          copyFileSync(chainPath, path);
          const db = new LedgerStore(path);
          const row = db.rawBlock(h)!;
          const text = row[column];
          if (text.length === 0 || (column === 'codes' && text === '[]')) {
            db.close();
            continue;
          }
          const at = Math.floor(rand() * text.length);
          const changed = text.slice(0, at) + otherChar(text[at]!) + text.slice(at + 1);
          db.db.prepare(`UPDATE blocks SET ${column} = ? WHERE height = ?`).run(changed, h);
          db.close();
          const err = await verifyStore(path).then(
            () => null,
            (e: unknown) => e,
          );
          expect(err, `height ${h} ${column} byte ${at}`).toBeInstanceOf(MedledgerError);
          expect((err as MedledgerError).payload['height'], `height ${h} ${column} byte ${at}: ${(err as Error).message}`).toBe(h);
          trials++;
        }
      }
    }
    expect(trials).toBeGreaterThan(50);
  });

  it('a changed signature of a tx rejected before its signature was checked is caught', async () => {
    const dir = tempDir('tamper-sig');
    const path = join(dir, 'chain.db');
    copyFileSync(chainPath, path);
    const db = new LedgerStore(path);
    const loc = db.txLocation(foreignTx)!;
    expect(loc.code).toBe('TX_UNKNOWN_AUTHOR');
    const row = db.rawBlock(loc.height)!;
    const txs = JSON.parse(row.txs) as { signature: string }[];
    const sig = txs[loc.index]!.signature;
    db.db.prepare('UPDATE blocks SET txs = ? WHERE height = ?').run(row.txs.replace(sig, otherChar(sig[0]!) + sig.slice(1)), loc.height);
    db.close();
    const err = (await verifyStore(path).catch((e: unknown) => e)) as MedledgerError;
    expect(err.code).toBe('CHAIN_BROKEN');
    expect(err.payload['height']).toBe(loc.height);
  });

  it('a changed state row or index row is named by table and key', async () => {
    for (const [sql, table] of [
      ['UPDATE s_records SET value = replace(value, \'"Condition"\', \'"Procedure"\')', 'records'],
      ['UPDATE s_consents SET value = replace(value, \'"TREAT"\', \'"HRESCH"\')', 'consents'],
      ["UPDATE txs SET code = 'OK' WHERE code <> 'OK'", 'txs'],
      ['DELETE FROM s_accessLog', 'accessLog'],
    ] as const) {
      const dir = tempDir('tamper-state');
      const path = join(dir, 'chain.db');
      copyFileSync(chainPath, path);
      const db = new LedgerStore(path);
      expect(db.db.prepare(sql).run().changes).toBeGreaterThan(0);
      db.close();
      const err = (await verifyStore(path).catch((e: unknown) => e)) as MedledgerError;
      expect(err.code).toBe('STATE_MISMATCH');
      expect(err.payload['table']).toBe(table);
    }
  });

  it('medledger verify exits 0 on an intact store and non-zero with the first bad height', () => {
    const ok = spawnSync(process.execPath, [CLI, 'verify', net.nodeDir('hosp-a')], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const dir = tempDir('tamper-cli');
    copyFileSync(chainPath, join(dir, 'chain.db'));
    const db = new LedgerStore(join(dir, 'chain.db'));
    const row = db.rawBlock(2)!;
    db.db.prepare('UPDATE blocks SET txs = ? WHERE height = 2').run(row.txs.replace('"nonce":"', '"nonce":"Z'));
    db.close();
    const bad = spawnSync(process.execPath, [CLI, 'verify', dir], { encoding: 'utf8' });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toContain('first bad height: 2');
  });
});
