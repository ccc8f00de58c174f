/**
 * The webhook outbox on a real SQLite file: the cursor moves with the deliveries it made, a
 * delivery is made once however often its block is read, only a dead letter is re-driven, and
 * all of it is there after the file is closed and opened again.
 */
import { expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PushStore } from './push-store.ts';

const delivery = (id: string, at: number) => ({
  deliveryId: id.repeat(64),
  subscriptionId: 's'.repeat(64),
  institution: 'hosp-b',
  subscriber: 'hosp-b/dr-park',
  patientCode: 'p'.repeat(64),
  recordId: 'r'.repeat(64),
  url: 'http://127.0.0.1:9/hook',
  body: '{}',
  nextAttemptAt: at,
  createdAt: at,
});

it('keeps deliveries and the cursor together, once each, across a reopen; re-drives only dead letters', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'medledger-push-')), 'push.db');
  let store = new PushStore(path);
  expect(store.cursor()).toBeNull();
  store.advance(7, [delivery('a', 100), delivery('b', 200)]);
  // the same block read again (a restart before the cursor moved) makes nothing twice
  store.advance(7, [delivery('a', 999)]);
  expect(store.cursor()).toBe(7);
  expect(store.due(150, 10).map((d) => d.deliveryId)).toEqual(['a'.repeat(64)]);
  expect(store.nextDue()).toBe(100);
  store.settle('a'.repeat(64), { status: 'dead', attempts: 5, nextAttemptAt: 300, lastError: 'HTTP 503' }, 300);
  store.settle('b'.repeat(64), { status: 'delivered', attempts: 1, nextAttemptAt: 200, lastError: null }, 300);
  store.close();

  store = new PushStore(path);
  expect(store.cursor()).toBe(7);
  expect(store.list('hosp-b', 'dead', 10)).toMatchObject([{ deliveryId: 'a'.repeat(64), attempts: 5, lastError: 'HTTP 503' }]);
  expect(store.list('hosp-a', 'dead', 10)).toEqual([]);
  expect(store.redrive('hosp-b', 'b'.repeat(64), 400)).toBe(false);
  expect(store.redrive('hosp-a', 'a'.repeat(64), 400)).toBe(false);
  expect(store.redrive('hosp-b', 'a'.repeat(64), 400)).toBe(true);
  expect(store.get('a'.repeat(64))).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAt: 400 });
  expect(store.claimNonce('k1', 'n1', 1000, 400)).toBe(true);
  expect(store.claimNonce('k1', 'n1', 1000, 400)).toBe(false);
  store.close();
});
