/**
 * `medledger demo`: an embedded consortium in one process — the Issuer, two hospitals, a clinic,
 * a laboratory and a research institute — on solo ordering and SQLite, seeded on first start
 * with synthetic patients, records, consents and accesses, and reused on the next start.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import { fromBase64Url, toBase64Url } from '@medledger/core/codec/bytes';
import { Identity } from '@medledger/core/client/identity';
import { sealRecord, type SealedRecord } from '@medledger/core/client/seal-record';
import { patientCodeOf } from '@medledger/core/contracts/identity';
import { createNetwork, type InstitutionPlan } from '@medledger/core/ledger/network-builder';
import type { TxType } from '@medledger/core/ledger/tx-types';
import type { StaffRole } from '@medledger/core/policy/roles';
import { MedledgerError } from '@medledger/core/errors';
import { installNodeCrypto } from '../crypto/node-crypto.ts';
import type { VaultConfig } from '../config/data-dir.ts';
import { LedgerNode } from '../ledger-node.ts';
import { DataDirFiles, readGenesis, writeJson } from '../config/data-dir.ts';
import { syntheticPatients, syntheticRecords } from './synthetic-records.ts';

export const DEMO_INSTITUTIONS: InstitutionPlan[] = [
  { id: 'hosp-north', name: 'Northside General Hospital', kind: 'hospital', validator: true },
  { id: 'hosp-river', name: 'Riverside University Hospital', kind: 'hospital', validator: true },
  { id: 'clinic-east', name: 'Eastgate Family Clinic', kind: 'clinic', validator: true },
  { id: 'lab-central', name: 'Central Pathology Laboratory', kind: 'laboratory', validator: true },
  { id: 'research-inst', name: 'Institute for Health Research', kind: 'research', validator: false },
];

const DEMO_STAFF: { institution: string; localId: string; role: StaffRole; displayName: string }[] = [
  { institution: 'hosp-north', localId: 'dr-ahn', role: 'doctor', displayName: 'Dr. Seo-yeon Ahn' },
  { institution: 'hosp-north', localId: 'nurse-bae', role: 'nurse', displayName: 'Min-ji Bae, RN' },
  { institution: 'hosp-north', localId: 'ops-cho', role: 'operator', displayName: 'Records office (Cho)' },
  { institution: 'hosp-north', localId: 'audit-do', role: 'auditor', displayName: 'Privacy officer (Do)' },
  { institution: 'hosp-river', localId: 'dr-eom', role: 'doctor', displayName: 'Dr. Jae Eom' },
  { institution: 'hosp-river', localId: 'ops-fin', role: 'operator', displayName: 'Records office (Finn)' },
  { institution: 'clinic-east', localId: 'dr-gil', role: 'doctor', displayName: 'Dr. Ana Gil' },
  { institution: 'clinic-east', localId: 'ops-han', role: 'operator', displayName: 'Front desk (Han)' },
  { institution: 'lab-central', localId: 'ops-ito', role: 'operator', displayName: 'Lab office (Ito)' },
  { institution: 'research-inst', localId: 'res-jin', role: 'researcher', displayName: 'Dr. Wei Jin (research)' },
];

const PATIENTS = 12;

export interface DemoOptions {
  dataDir: string;
  host: string;
  port: number;
  log: (line: string) => void;
}

/** The index entry of a record kept on the chain (TMSMD mode: the ciphertext is in the tx). */
function onChainRecordBody(patientCode: string, category: string, sealed: SealedRecord, registrationRequestId: string | null): JsonObject {
  return {
    patientCode,
    category,
    groupKeyId: null,
    hashAlg: 'sha-256',
    hashLength: 32,
    hash: sealed.hash,
    ciphertextHash: sealed.ciphertextHash,
    size: sealed.size,
    storage: 'chain',
    pointer: null,
    ciphertext: toBase64Url(sealed.ciphertext),
    keyEnvelopes: sealed.keyEnvelopes,
    registrationRequestId,
  };
}

function identitiesDir(dataDir: string): string {
  return join(dataDir, 'identities');
}

/** The embedded consortium keeps every care institution's vault in its one node. */
function demoVaults(dataDir: string): { vault: VaultConfig; keysDir: string; demoIdentitiesDir: string } {
  const care = DEMO_INSTITUTIONS.filter((i) => i.kind !== 'research').map((i) => i.id);
  return {
    vault: { store: { kind: 'sqlite' }, institutions: care },
    keysDir: identitiesDir(dataDir),
    demoIdentitiesDir: identitiesDir(dataDir),
  };
}

/** Starts the demo node, creating and seeding the network on first start. */
export async function runDemo(o: DemoOptions): Promise<LedgerNode> {
  installNodeCrypto();
  const marker = join(o.dataDir, 'demo.json');
  if (existsSync(marker)) {
    const genesis = readGenesis(join(o.dataDir, DataDirFiles.genesis));
    const node = await LedgerNode.start({
      dataDir: o.dataDir,
      genesis,
      institution: 'demo',
      host: o.host,
      port: o.port,
      ...demoVaults(o.dataDir),
    });
    o.log(`medledger demo: reusing ${o.dataDir} (height ${node.peer.store.head().height})`);
    return node;
  }
  const net = await createNetwork({ name: 'medledger demo consortium', createdAt: Date.now(), institutions: DEMO_INSTITUTIONS });
  writeJson(join(o.dataDir, DataDirFiles.genesis), net.genesis);
  writeJson(join(o.dataDir, DataDirFiles.consortium), { patientCodeKey: net.patientCodeKey }, true);
  const ids = identitiesDir(o.dataDir);
  writeJson(join(ids, 'issuer.json'), net.issuer.file, true);
  for (const [id, identity] of net.institutions) writeJson(join(ids, `${id}.json`), identity.file, true);

  const node = await LedgerNode.start({
    dataDir: o.dataDir,
    genesis: net.genesis,
    institution: 'demo',
    host: o.host,
    port: o.port,
    ...demoVaults(o.dataDir),
  });
  o.log(`medledger demo: new network ${net.network}, seeding synthetic data in ${o.dataDir}`);
  await seed(node, net.network, net.institutions, fromBase64Url(net.patientCodeKey), o);
  writeJson(marker, { seeded: true, network: net.network, createdAt: net.genesis.createdAt });
  return node;
}

async function seed(
  node: LedgerNode,
  network: string,
  institutions: Map<string, Identity>,
  patientCodeKey: Uint8Array,
  o: DemoOptions,
): Promise<void> {
  const ids = identitiesDir(o.dataDir);
  const peer = node.peer;
  const run = async (steps: { who: Identity; type: TxType; body: JsonObject }[]): Promise<string[]> => {
    const built = await Promise.all(steps.map((s) => s.who.tx(network, s.type, s.body)));
    await Promise.all(built.map((b) => peer.submit(b.tx)));
    const out: string[] = [];
    for (const b of built) {
      const st = await peer.waitForCommit(b.txId, 30_000);
      if (st.status !== 'committed' || st.code !== 'OK') {
        throw new MedledgerError('INTERNAL', {
          details: `Demo seed step ${b.tx.type} ended ${st.status === 'committed' ? st.code : st.status}.`,
        });
      }
      out.push(b.txId);
    }
    return out;
  };
  const inst = (id: string): Identity => institutions.get(id)!;

  // The care institutions' vaults answer on this node.
  await run(
    demoVaults(o.dataDir).vault.institutions.map((id) => ({ who: inst(id), type: 'membership.setEndpoint', body: { vaultUrl: node.url } })),
  );

  // Staff, enrolled by their institutions.
  const staff = new Map<string, Identity>();
  for (const s of DEMO_STAFF) staff.set(`${s.institution}/${s.localId}`, await Identity.generate(`${s.institution}/${s.localId}`));
  await run(
    DEMO_STAFF.map((s) => ({
      who: inst(s.institution),
      type: 'identity.enrolStaff',
      body: {
        localId: s.localId,
        role: s.role,
        signingKey: staff.get(`${s.institution}/${s.localId}`)!.signingKey,
        encryptionKey: staff.get(`${s.institution}/${s.localId}`)!.encryptionKey,
        displayName: s.displayName,
      },
    })),
  );
  for (const [label, identity] of staff) writeJson(join(ids, `${label.replace('/', '__')}.json`), identity.file, true);
  const who = (staffId: string): Identity => staff.get(staffId)!;

  // Patients, registered at their home hospital with proof that they hold their keys.
  const people = syntheticPatients(PATIENTS);
  const patients: { identity: Identity; code: string; home: string }[] = [];
  for (const [i, p] of people.entries()) {
    const code = patientCodeOf(patientCodeKey, p.nationalId);
    const identity = await Identity.generate(`patient ${p.given} ${p.family}`);
    patients.push({ identity, code, home: i % 2 === 0 ? 'hosp-north' : 'hosp-river' });
    writeJson(
      join(ids, `patient-${String(i + 1).padStart(2, '0')}.json`),
      { ...identity.file, patientCode: code, nationalId: p.nationalId },
      true,
    );
  }
  await run(
    await Promise.all(
      patients.map(async (p) => ({
        who: who(p.home === 'hosp-north' ? 'hosp-north/ops-cho' : 'hosp-river/ops-fin'),
        type: 'identity.registerPatient' as const,
        body: {
          patientCode: p.code,
          signingKey: p.identity.signingKey,
          encryptionKey: p.identity.encryptionKey,
          possession: await p.identity.possessionProof(network, p.code, p.home),
        },
      })),
    ),
  );

  // Records, registered by each patient's home hospital (TMSMD on-chain mode until vaults exist).
  const recordSteps: { who: Identity; type: TxType; body: JsonObject }[] = [];
  for (const [i, p] of patients.entries()) {
    const custodian = inst(p.home);
    for (const r of syntheticRecords(i, `Patient/${p.code.slice(0, 16)}`, Date.now())) {
      const sealed = await sealRecord({
        resource: r.resource,
        patientCode: p.code,
        category: r.category,
        patientEncryptionKey: p.identity.encryptionKey,
        custodianEncryptionKey: custodian.encryptionKey,
      });
      recordSteps.push({
        who: who(p.home === 'hosp-north' ? 'hosp-north/dr-ahn' : 'hosp-river/dr-eom'),
        type: 'records.register',
        body: onChainRecordBody(p.code, r.category, sealed, null),
      });
    }
  }
  await run(recordSteps);

  // Consent before registration at the clinic: asked, accepted, then registered.
  const p0 = patients[0]!;
  const [reqId] = await run([
    {
      who: who('clinic-east/dr-gil'),
      type: 'consent.requestRegistration',
      body: { patientCode: p0.code, category: 'Observation', purpose: 'TREAT', note: 'Blood pressure follow-up at the clinic' },
    },
  ]);
  await run([{ who: p0.identity, type: 'consent.answerRegistration', body: { requestId: reqId!, accept: true } }]);
  const obs = syntheticRecords(3, `Patient/${p0.code.slice(0, 16)}`, Date.now())[1]!;
  const sealed = await sealRecord({
    resource: obs.resource,
    patientCode: p0.code,
    category: 'Observation',
    patientEncryptionKey: p0.identity.encryptionKey,
    custodianEncryptionKey: inst('clinic-east').encryptionKey,
  });
  await run([
    {
      who: who('clinic-east/dr-gil'),
      type: 'records.register',
      body: onChainRecordBody(p0.code, 'Observation', sealed, reqId!),
    },
  ]);

  // Consents and access: patient 0 lets Riverside's doctors see conditions and observations;
  // patient 1 allows pseudonymised research; Riverside asks for patient 2's records (approved)
  // and patient 3's (denied).
  const now = Date.now();
  await run([
    {
      who: p0.identity,
      type: 'consent.grant',
      body: {
        patientCode: p0.code,
        grantee: { kind: 'role', role: 'doctor', institution: 'hosp-river' },
        scope: { kind: 'categories', categories: ['Condition', 'Observation'] },
        purposes: ['TREAT'],
        period: { from: now - 60_000, to: now + 90 * 86_400_000 },
        deidentification: 'identified',
      },
    },
    {
      who: patients[1]!.identity,
      type: 'consent.grant',
      body: {
        patientCode: patients[1]!.code,
        grantee: { kind: 'institution', institution: 'research-inst' },
        scope: { kind: 'all' },
        purposes: ['HRESCH'],
        period: { from: now - 60_000, to: null },
        deidentification: 'pseudonymised',
      },
    },
  ]);
  const [approveReq, denyReq] = await run([
    {
      who: who('hosp-river/dr-eom'),
      type: 'access.request',
      body: {
        patientCode: patients[2]!.code,
        scope: { kind: 'all' },
        purpose: 'TREAT',
        deidentification: 'identified',
        reason: 'Referral for cardiology consultation',
      },
    },
    {
      who: who('hosp-river/dr-eom'),
      type: 'access.request',
      body: {
        patientCode: patients[4]!.code,
        scope: { kind: 'categories', categories: ['MedicationRequest'] },
        purpose: 'TREAT',
        deidentification: 'identified',
        reason: 'Medication reconciliation',
      },
    },
  ]);
  await run([
    { who: patients[2]!.identity, type: 'access.decide', body: { requestId: approveReq!, approve: true, durationMs: null } },
    { who: patients[4]!.identity, type: 'access.decide', body: { requestId: denyReq!, approve: false, durationMs: null } },
  ]);
  const p2Records = peer.store.query('records', { patient_code: patients[2]!.code }, null, null, 10) as { recordId: string }[];
  await run([
    {
      who: inst('hosp-north'),
      type: 'access.recordServed',
      body: { recordId: p2Records[0]!.recordId, requester: 'hosp-river/dr-eom', purpose: 'TREAT', deidentification: 'identified' },
    },
    {
      who: inst('hosp-north'),
      type: 'access.recordRefused',
      body: { patientCode: patients[4]!.code, recordId: null, requester: 'hosp-river/dr-eom', purpose: 'TREAT', code: 'CONSENT_REFUSED' },
    },
  ]);
  // Research: a study of chronic conditions that most patients consent to. `medledger study run`
  // asks the custodians; the released total is suppressed under k and names no one.
  const snomed = (code: string) => ({ system: 'http://snomed.info/sct', code });
  await run([
    {
      who: who('research-inst/res-jin'),
      type: 'research.registerStudy',
      body: {
        studyId: 'chronic-care',
        title: 'Chronic conditions across the consortium',
        purpose: 'HRESCH',
        categories: ['Patient', 'Condition', 'Observation'],
        query: {
          cohort: { codes: ['44054006', '38341003', '195967001', '13645005', '49436004'].map(snomed) },
          measure: { kind: 'count' },
          groupBy: [],
        },
        deidentification: 'pseudonymised',
        k: 5,
        epsilonBudgetMilli: 3000,
      },
    },
  ]);
  await run(
    patients
      .filter((_, i) => i % 4 !== 3)
      .map((p) => ({
        who: p.identity,
        type: 'consent.grant' as const,
        body: {
          patientCode: p.code,
          grantee: { kind: 'study', studyId: 'chronic-care' },
          scope: { kind: 'all' },
          purposes: ['HRESCH'],
          period: { from: now - 60_000, to: null },
          deidentification: 'pseudonymised',
        },
      })),
  );
  o.log(
    `medledger demo: seeded ${PATIENTS} patients, ${String(recordSteps.length + 1)} records, ${String(readdirSync(ids).length)} identities`,
  );
}
