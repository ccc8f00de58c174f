/**
 * `npm run bench:share`: the record-sharing round trip on the embedded node (solo orderer, SQLite
 * ledger and vaults), all through HTTP: a doctor at hospital A asks for a 10 KiB record kept by
 * hospital B → the patient approves → B's vault writes the served access and waits until it is
 * final → answers the ciphertext and the re-wrapped key → A decrypts and checks the hashes.
 * p50/p99 over many round trips, median of several runs. Measured in the same run, as the
 * baseline: one lone transaction submit→commit over HTTP (the round trip makes three in a row)
 * and one HPKE wrap + unwrap (the round trip makes one of each).
 *
 *   npm run bench:share -- [--trips 60] [--runs 3] [--quick]
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import type { Identity } from '@medledger/core/client/identity';
import { VaultClient } from '@medledger/core/client/vault-client';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { RecordEntry } from '@medledger/core/contracts/state';
import { newDataKey, unwrapDataKey, wrapDataKey } from '@medledger/core/crypto/record-envelope';
import { installNodeCrypto } from '../packages/node/src/crypto/node-crypto.ts';
import { writeJson } from '../packages/node/src/config/data-dir.ts';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { enrolCast, makeNetwork, send } from '../test/test-network.ts';
import { percentile, progress, report, summarise } from './bench-report.ts';

installNodeCrypto();

const { values: args } = parseArgs({
  options: {
    trips: { type: 'string', default: '60' },
    runs: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
  },
});
const TRIPS = args.quick ? 10 : Number(args.trips);
const RUNS = args.quick ? 1 : Number(args.runs);
const RECORD_BYTES = 10 * 1024;

const INSTITUTIONS = [
  { id: 'hosp-a', name: 'Hospital A', kind: 'hospital' as const, validator: true },
  { id: 'hosp-b', name: 'Hospital B', kind: 'hospital' as const, validator: false },
];

/** A DiagnosticReport whose text makes the canonical record about 10 KiB. */
function report10k(i: number): JsonObject {
  const filler = 'Findings within normal limits. '.repeat(Math.ceil(RECORD_BYTES / 31));
  return {
    resourceType: 'DiagnosticReport',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '24627-2', display: 'Chest CT' }] },
    subject: { reference: `Patient/synthetic-${i}` },
    conclusion: filler.slice(0, RECORD_BYTES - 300),
  };
}

interface RunResult {
  p50: number;
  p99: number;
  lone50: number;
  hpke50: number;
}

async function oneRun(run: number): Promise<RunResult> {
  const net = await makeNetwork({ batchTimeoutMs: 2 }, INSTITUTIONS);
  const dir = net.nodeDir('hosp-a');
  writeJson(join(dir, 'keys', 'hosp-b.json'), net.institutions.get('hosp-b')!.file, true);
  const node = await LedgerNode.start({
    dataDir: dir,
    genesis: net.genesis,
    institution: 'hosp-a',
    host: '127.0.0.1',
    port: 0,
    vault: { store: { kind: 'sqlite' }, institutions: ['hosp-a', 'hosp-b'] },
  });
  try {
    const cast = await enrolCast(node.url, net, { 'hosp-a/dr-kim': 'doctor', 'hosp-b/dr-park': 'doctor' }, ['hosp-b']);
    const patient = cast.patients[0]!;
    const park = new VaultClient(cast.staff.get('hosp-b/dr-park')!);
    const kimId = cast.staff.get('hosp-a/dr-kim')!;
    const kim = new VaultClient(kimId);
    const ok = async (who: Identity, type: Parameters<typeof send>[3], body: JsonObject): Promise<string> => {
      const r = await send(node.url, net.network, who, type, body);
      if (r.code !== 'OK') throw new Error(`${type}: ${JSON.stringify(r.answer.body)}`);
      return r.txId;
    };
    // Records registered ahead, one per round trip.
    const records: string[] = [];
    for (let i = 0; i < TRIPS; i++) {
      const stored = await park.store(node.url, 'hosp-b', { patientCode: patient.code, resource: report10k(i) });
      records.push(
        await ok(cast.staff.get('hosp-b/dr-park')!, 'records.register', {
          patientCode: patient.code,
          registrationRequestId: null,
          ...stored.index,
        }),
      );
    }
    // Baseline 1: a lone tx submit→commit over HTTP.
    const lone: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await ok(patient.identity, 'consent.grant', {
        patientCode: patient.code,
        grantee: { kind: 'institution', institution: 'hosp-a' },
        scope: { kind: 'categories', categories: ['Condition'] },
        purposes: ['TREAT'],
        period: { from: 0, to: null },
        deidentification: 'identified',
      });
      lone.push(performance.now() - t0);
    }
    // Baseline 2: one HPKE wrap and unwrap of a data key.
    const hpke: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await unwrapDataKey(await wrapDataKey(newDataKey(), kimId.encryptionKey), kimId.file.encryption.privateKey);
      hpke.push(performance.now() - t0);
    }
    const trips: number[] = [];
    for (const [i, recordId] of records.entries()) {
      progress(`run ${run + 1}/${RUNS}: round trip ${i + 1}/${TRIPS}`);
      const index = node.peer.store.get('records', recordId) as unknown as RecordEntry;
      const t0 = performance.now();
      const requestId = await ok(kimId, 'access.request', {
        patientCode: patient.code,
        scope: { kind: 'records', recordIds: [recordId] },
        purpose: 'TREAT',
        deidentification: 'identified',
        reason: 'benchmark referral',
      });
      await ok(patient.identity, 'access.decide', { requestId, approve: true, durationMs: null });
      const fetched = await kim.fetchRecord(node.url, index, 'TREAT');
      trips.push(performance.now() - t0);
      if (fetched.resource['resourceType'] !== 'DiagnosticReport') throw new Error('wrong record');
    }
    return { p50: percentile(trips, 50), p99: percentile(trips, 99), lone50: percentile(lone, 50), hpke50: percentile(hpke, 50) };
  } finally {
    await node.stop();
  }
}

const results: RunResult[] = [];
for (let run = 0; run < RUNS; run++) results.push(await oneRun(run));
const p50 = summarise(
  'round trip p50 (request → approve → final → fetch → decrypt)',
  'ms',
  results.map((r) => r.p50),
  { id: 'share.p50_ms', target: '≤ 50 ms' },
);
p50.met = p50.median <= 50;
const lone = summarise(
  'baseline: lone tx submit→commit (HTTP)',
  'ms',
  results.map((r) => r.lone50),
  { id: 'share.lone_commit_p50_ms' },
);
report(
  'share',
  [
    p50,
    summarise(
      'round trip p99',
      'ms',
      results.map((r) => r.p99),
      { id: 'share.p99_ms' },
    ),
    lone,
    summarise(
      'baseline: HPKE wrap + unwrap',
      'ms',
      results.map((r) => r.hpke50),
      { id: 'share.hpke_ms' },
    ),
    summarise(
      'ratio: round trip p50 / lone commit p50',
      'x',
      results.map((r) => r.p50 / r.lone50),
      {
        note: 'three txs in a row commit; ≈3 means the vault adds little',
      },
    ),
  ],
  { trips: TRIPS, runs: RUNS, recordBytes: RECORD_BYTES, ordering: 'solo', stores: 'SQLite ledger and vaults' },
);
