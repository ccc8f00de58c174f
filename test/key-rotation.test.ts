/**
 * Key loss and rotation end to end, through a real node and the `medledger` CLI: a patient
 * replaces their keys (the old key is refused, a record registered before opens only with the new
 * one); a patient who lost their device is frozen and recovered by their home hospital; an
 * institution replaces its key on an embedded node and its vault works again after a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Identity, type IdentityFile } from '@medledger/core/client/identity';
import { VaultClient, type RecordIndex } from '@medledger/core/client/vault-client';
import { toBase64Url } from '@medledger/core/codec/bytes';
import type { JsonObject, JsonValue } from '@medledger/core/codec/canonical-json';
import { patientRotationMessage } from '@medledger/core/contracts/identity';
import { sign } from '@medledger/core/crypto/ed25519';
import type { Consent, Member, RecordEntry, StateReader } from '@medledger/core/contracts/state';
import { signVote, validatorsAt, verifyCertificate, type FinalityCertificate } from '@medledger/core/ledger/finality';
import { readIdentityFile, writeJson } from '../packages/node/src/config/data-dir.ts';
import { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { NatsCluster } from './nats-cluster.ts';
import {
  CLI,
  NodeProcess,
  enrolCast,
  http,
  makeNetwork,
  recordBody,
  send,
  sendTx,
  tempDir,
  writeNatsNodeConfigs,
  type Cast,
  type TestNetwork,
} from './test-network.ts';

/** Runs the CLI as a child process without blocking this process's event loop (the node runs here). */
function medledger(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function cli(...args: string[]): Promise<JsonObject> {
  const r = await medledger('--json', ...args);
  expect(r.status, `${args.slice(0, 2).join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as JsonObject;
}

const COMMANDS = [
  ['patient'],
  ['patient', 'rotate-keys'],
  ['patient', 'recover'],
  ['patient', 'freeze'],
  ['institution'],
  ['institution', 'rotate-key'],
  ['institution', 'new-key'],
  ['institution', 'propose-key'],
  ['institution', 'vote'],
  ['institution', 'adopt-key'],
];

describe('help', () => {
  it('every key command answers --help', async () => {
    const answers = await Promise.all(COMMANDS.map((cmd) => medledger(...cmd, '--help')));
    answers.forEach((r, i) => {
      expect(r.status, COMMANDS[i]!.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: medledger/);
    });
  });
});

describe('on an embedded node with its vault', () => {
  let net: TestNetwork;
  let node: LedgerNode;
  let cast: Cast;
  let work: string;
  let code: string;
  let patientFile: string;
  let opsFile: string;
  let recordId: string;
  const staff = (id: string): Identity => cast.staff.get(id)!;

  const start = (signer: IdentityFile['signing']): Promise<LedgerNode> =>
    LedgerNode.start({
      dataDir: net.nodeDir('hosp-a'),
      genesis: net.genesis,
      institution: 'hosp-a',
      host: '127.0.0.1',
      port: 0,
      signer,
      vault: { store: { kind: 'sqlite' }, institutions: ['hosp-a'] },
    });

  function indexOf(id: string): RecordIndex {
    return node.peer.store.get('records', id) as unknown as RecordEntry;
  }

  async function ok(who: Identity, type: Parameters<typeof send>[3], body: JsonObject): Promise<string> {
    const r = await send(node.url, net.network, who, type, body);
    expect(r.code, `${type}: ${JSON.stringify(r.answer.body)}`).toBe('OK');
    return r.txId;
  }

  beforeAll(async () => {
    net = await makeNetwork();
    node = await start(net.institutions.get('hosp-a')!.file.signing);
    cast = await enrolCast(node.url, net, { 'hosp-a/ops': 'operator', 'hosp-a/dr': 'doctor', 'hosp-b/dr': 'doctor' }, ['hosp-a']);
    await ok(net.institutions.get('hosp-a')!, 'membership.setEndpoint', { vaultUrl: node.url });
    const patient = cast.patients[0]!;
    code = patient.code;
    work = tempDir('keys');
    patientFile = join(work, 'patient.json');
    opsFile = join(work, 'ops.json');
    writeJson(patientFile, patient.identity.file, true);
    writeJson(opsFile, staff('hosp-a/ops').file, true);
    // A record registered before any key changes, and a consent for a doctor of hosp-b.
    const resource = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }] },
      subject: { reference: 'Patient/synthetic-rot' },
      valueQuantity: { value: 13.2, unit: 'g/dL' },
    };
    const stored = await new VaultClient(staff('hosp-a/ops')).store(node.url, 'hosp-a', { patientCode: code, resource });
    recordId = await ok(staff('hosp-a/ops'), 'records.register', { patientCode: code, registrationRequestId: null, ...stored.index });
    await node.vault!.idle();
  }, 60_000);

  afterAll(async () => {
    await node?.stop();
  });

  it('a patient rotates: the old key is refused, the record opens only with the new key, consents stay', async () => {
    const old = new Identity(readIdentityFile(patientFile));
    expect((await new VaultClient(old).fetchRecord(node.url, indexOf(recordId), 'TREAT')).resource['resourceType']).toBe('Observation');
    const consentId = await ok(old, 'consent.grant', {
      patientCode: code,
      grantee: { kind: 'person', staffId: 'hosp-b/dr' },
      scope: { kind: 'all' },
      purposes: ['TREAT'],
      period: { from: 0, to: null },
      deidentification: 'identified',
    });

    const out = await cli('patient', 'rotate-keys', '--key', patientFile, '--patient-code', code, '--node', node.url);
    const next = new Identity(readIdentityFile(patientFile));
    expect(out).toMatchObject({ keyId: next.keyId, previousKeyId: old.keyId, identityFile: patientFile });
    expect(next.keyId).not.toBe(old.keyId);
    // The old file is kept beside it, named after its key; both readable by their owner only.
    const kept = `${patientFile}.${old.keyId}.revoked`;
    expect(out['revokedFile']).toBe(kept);
    expect(readIdentityFile(kept)).toEqual(old.file);
    expect(existsSync(`${patientFile}.next`)).toBe(false);
    for (const f of [patientFile, kept]) expect(statSync(f).mode & 0o777).toBe(0o600);

    // The old key: refused on the ledger with IDENTITY_REVOKED, and by the vault.
    const grant = await send(node.url, net.network, old, 'consent.revoke', { consentId });
    expect(grant.code).toBe('IDENTITY_REVOKED');
    await expect(new VaultClient(old).fetchRecord(node.url, indexOf(recordId), 'TREAT')).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
    });

    // The record registered under the old key opens with the new one, and the answer is wrapped
    // to the new encryption key only: the new signing key with the old encryption key cannot open it.
    const fetched = await new VaultClient(next).fetchRecord(node.url, indexOf(recordId), 'TREAT');
    expect(fetched.resource['valueQuantity']).toEqual({ value: 13.2, unit: 'g/dL' });
    const hybrid = new Identity({ ...next.file, encryption: old.file.encryption });
    await expect(new VaultClient(hybrid).fetchRecord(node.url, indexOf(recordId), 'TREAT')).rejects.toThrow();

    // The consent granted with the old key is still the patient's: the new key revokes it.
    const consents = (await http<Consent[]>('GET', `${node.url}/api/patients/${code}/consents`)).body;
    expect(consents.find((c) => c.consentId === consentId)?.status).toBe('active');
    expect(await cli('consent', 'revoke', '--key', patientFile, '--node', node.url, consentId)).toMatchObject({ code: 'OK' });

    // Cut off after sending: the new file waits as .next and its rotation is on the chain, with the
    // nonce the command derives from the new key. Running the command again finishes the files.
    const third = await Identity.generate('patient');
    writeJson(`${patientFile}.next`, third.file, true);
    const message = patientRotationMessage(net.network, code, third.signingKey, third.encryptionKey);
    const body = {
      patientCode: code,
      signingKey: third.signingKey,
      encryptionKey: third.encryptionKey,
      possession: toBase64Url(await sign(third.file.signing.privateKey, message)),
    };
    const { tx } = await next.tx(net.network, 'identity.rotatePatientKeys', body, { nonce: `rot-${third.keyId}` });
    expect((await sendTx(node.url, tx)).body['code']).toBe('OK');
    const resumed = await cli('patient', 'rotate-keys', '--key', patientFile, '--patient-code', code, '--node', node.url);
    expect(resumed).toMatchObject({ keyId: third.keyId, previousKeyId: next.keyId });
    expect(readIdentityFile(patientFile)).toEqual(third.file);
    expect(readIdentityFile(`${patientFile}.${next.keyId}.revoked`)).toEqual(next.file);
  }, 60_000);

  it('a lost device: home staff freeze the patient, then recover them with a new identity file; other staff are refused', async () => {
    const lost = new Identity(readIdentityFile(patientFile));
    const frozen = await cli('patient', 'freeze', '--key', opsFile, '--patient-code', code, '--node', node.url);
    expect(typeof frozen['height']).toBe('number');
    expect((await send(node.url, net.network, lost, 'identity.freezePatient', { patientCode: code })).code).toBe('IDENTITY_REVOKED');

    // Staff of another institution may not recover hosp-a's patient, and leave no key file behind.
    const otherFile = join(work, 'other-staff.json');
    writeJson(otherFile, staff('hosp-b/dr').file, true);
    const refusedOut = join(work, 'refused.json');
    const refused = await medledger(
      'patient',
      'recover',
      '--key',
      otherFile,
      '--patient-code',
      code,
      '--out',
      refusedOut,
      '--node',
      node.url,
    );
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('NOT_HOME_INSTITUTION');
    expect(existsSync(refusedOut)).toBe(false);

    const newFile = join(work, 'patient-new-device.json');
    const out = await cli('patient', 'recover', '--key', opsFile, '--patient-code', code, '--out', newFile, '--node', node.url);
    const recovered = new Identity(readIdentityFile(newFile));
    expect(out).toMatchObject({ keyId: recovered.keyId, identityFile: newFile });
    expect(statSync(newFile).mode & 0o777).toBe(0o600);
    const tx = (await http('GET', `${node.url}/api/tx/${out['txId'] as string}`)).body;
    expect(tx).toMatchObject({ code: 'OK' });

    await expect(new VaultClient(lost).fetchRecord(node.url, indexOf(recordId), 'TREAT')).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
    });
    const fetched = await new VaultClient(recovered).fetchRecord(node.url, indexOf(recordId), 'TREAT');
    expect(fetched.resource['resourceType']).toBe('Observation');
    // Running the same recovery again changes nothing: its nonce is used (TX_REPLAY), so it reports done.
    expect(await cli('patient', 'recover', '--key', opsFile, '--patient-code', code, '--out', newFile, '--node', node.url)).toMatchObject({
      keyId: recovered.keyId,
    });
    expect(node.peer.store.get('patients', code)).toMatchObject({ keyId: recovered.keyId });
  }, 60_000);

  it('an institution rotates its key: the old key is refused, staff keep acting, the vault signs again after a restart', async () => {
    const dir = net.nodeDir('hosp-a');
    const keyFile = join(dir, 'keys', 'hosp-a.json');
    const old = new Identity(readIdentityFile(keyFile));
    const out = await cli('institution', 'rotate-key', '--data', dir, '--node', node.url);
    const next = new Identity(readIdentityFile(keyFile));
    expect(out).toMatchObject({
      institution: 'hosp-a',
      keyId: next.keyId,
      previousKeyId: old.keyId,
      revokedFile: `${keyFile}.${old.keyId}.revoked`,
    });
    // The encryption key is kept by default: what was wrapped to the institution still opens.
    expect(next.encryptionKey).toBe(old.encryptionKey);
    const members = (await http<Member[]>('GET', `${node.url}/api/members`)).body;
    const hospA = members.find((m) => m.id === 'hosp-a');
    expect(hospA?.signingKey).toBe(next.signingKey);
    expect(hospA?.previousKeys).toEqual([{ publicKey: old.signingKey, untilHeight: out['height'] }]);
    expect((await send(node.url, net.network, old, 'membership.setEndpoint', { vaultUrl: node.url })).code).toBe('IDENTITY_REVOKED');
    // Staff keys are not certified by the institution key: they still store and register records.
    const ops = staff('hosp-a/ops');
    const second = await new VaultClient(ops).store(node.url, 'hosp-a', {
      patientCode: code,
      resource: {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'after rotation' },
        subject: { reference: 'Patient/synthetic-rot' },
      },
    });
    await ok(ops, 'records.register', { patientCode: code, registrationRequestId: null, ...second.index });

    // A doctor of hosp-b with consent: the running vault still writes access.recordServed with the
    // old key, which the ledger refuses; after a restart with the new key file, it is served.
    const patient = new Identity(readIdentityFile(join(work, 'patient-new-device.json')));
    await ok(patient, 'consent.grant', {
      patientCode: code,
      grantee: { kind: 'person', staffId: 'hosp-b/dr' },
      scope: { kind: 'all' },
      purposes: ['TREAT'],
      period: { from: 0, to: null },
      deidentification: 'identified',
    });
    await expect(new VaultClient(staff('hosp-b/dr')).fetchRecord(node.url, indexOf(recordId), 'TREAT')).rejects.toMatchObject({
      code: 'IDENTITY_REVOKED',
    });
    await node.stop();
    node = await start(readIdentityFile(keyFile).signing);
    const fetched = await new VaultClient(staff('hosp-b/dr')).fetchRecord(node.url, indexOf(recordId), 'TREAT');
    expect(fetched.resource['resourceType']).toBe('Observation');
    // The served access is on the ledger, written with the institution's new key.
    const served = (await http<{ height: number; index: number; code: string }>('GET', `${node.url}/api/tx/${fetched.accessTx!}`)).body;
    expect(served.code).toBe('OK');
    const block = (await http<{ txs: { tx: { author: string; type: string } }[] }>('GET', `${node.url}/api/blocks/${served.height}`)).body;
    expect(block.txs[served.index]?.tx).toMatchObject({ type: 'access.recordServed', author: next.keyId });
  }, 90_000);
});

describe('an institution that lost its key, on an embedded node', () => {
  let net: TestNetwork;
  let node: LedgerNode;
  beforeAll(async () => {
    net = await makeNetwork();
    node = await LedgerNode.start({
      dataDir: net.nodeDir('hosp-a'),
      genesis: net.genesis,
      institution: 'hosp-a',
      host: '127.0.0.1',
      port: 0,
    });
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('gets new keys by the other members’ vote: new-key, propose-key, vote, adopt-key', async () => {
    const dir = net.nodeDir('hosp-b');
    const keyFile = join(dir, 'keys', 'hosp-b.json');
    const lost = new Identity(readIdentityFile(keyFile));
    const work = tempDir('lost');
    const requestFile = join(work, 'request.json');
    const issuerFile = join(work, 'issuer.json');
    writeJson(issuerFile, net.issuer.file, true);
    const n = ['--node', node.url];

    const made = await cli('institution', 'new-key', '--data', dir, '--out', requestFile);
    const pending = new Identity(readIdentityFile(`${keyFile}.next`));
    expect(made).toMatchObject({ institutionId: 'hosp-b', keyId: pending.keyId });
    const proposed = await cli('institution', 'propose-key', '--key', issuerFile, '--request', requestFile, ...n);
    expect(proposed).toMatchObject({ code: 'OK' });
    const proposalId = proposed['proposalId'] as string;
    // Not decided yet: nothing to adopt. hosp-b (or whoever holds its old key) may not vote.
    const early = await medledger('institution', 'adopt-key', '--data', dir, ...n);
    expect(early.status).not.toBe(0);
    expect(early.stderr).toContain('NOT_FOUND');
    expect(await cli('institution', 'vote', proposalId, '--key', keyFile, ...n)).toMatchObject({ code: 'ROLE_FORBIDDEN' });
    for (const voter of ['hosp-a', 'clinic-c', 'lab-d']) {
      expect(await cli('institution', 'vote', proposalId, '--key', join(net.nodeDir(voter), 'keys', `${voter}.json`), ...n)).toMatchObject({
        code: 'OK',
      });
    }

    const adopted = await cli('institution', 'adopt-key', '--data', dir, ...n);
    expect(adopted).toMatchObject({ institution: 'hosp-b', keyId: pending.keyId, previousKeyId: lost.keyId });
    expect(readIdentityFile(keyFile)).toEqual(pending.file);
    expect(existsSync(`${keyFile}.${lost.keyId}.revoked`)).toBe(true);
    expect((await send(node.url, net.network, lost, 'membership.setEndpoint', { vaultUrl: null })).code).toBe('IDENTITY_REVOKED');
    expect((await send(node.url, net.network, pending, 'membership.setEndpoint', { vaultUrl: null })).code).toBe('OK');
  }, 90_000);
});

describe('on a NATS consortium of four validators', () => {
  const VALIDATORS = ['hosp-a', 'hosp-b', 'clinic-c', 'lab-d'];
  let cluster: NatsCluster;
  let net: TestNetwork;
  let cast: Cast;
  const nodes = new Map<string, NodeProcess>();
  const ports = new Map<string, number>();
  const url = (id: string): string => nodes.get(id)!.url;

  async function startNode(id: string): Promise<void> {
    nodes.set(id, await NodeProcess.start(net.nodeDir(id), ports.get(id)!));
  }

  /** A record tx through `via`, waited for until final there; answers its certificate and height. */
  async function finalRecord(via: string, seed: string): Promise<{ height: number; cert: FinalityCertificate }> {
    const { tx, txId } = await cast.staff
      .get('hosp-a/doc')!
      .tx(net.network, 'records.register', recordBody(cast.patients[0]!.code, 'Observation', seed));
    expect((await sendTx(url(via), tx)).body['code']).toBe('OK');
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = (await http<{ status: string; height: number; finality: FinalityCertificate }>('GET', `${url(via)}/api/tx/${txId}`)).body;
      if (r.status === 'final') return { height: r.height, cert: r.finality };
      if (Date.now() > deadline) throw new Error(`${txId} never final on ${via}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** The member rows a node serves, as the state `validatorsAt` reads: what a client holds. */
  async function membersState(via: string): Promise<StateReader> {
    const members = (await http<Member[]>('GET', `${url(via)}/api/members`)).body;
    return {
      get: (table, key) =>
        (table === 'meta' && key === 'members'
          ? members.map((m) => m.id)
          : table === 'members'
            ? members.find((m) => m.id === key)
            : undefined) as JsonValue | undefined,
    };
  }

  beforeAll(async () => {
    cluster = await NatsCluster.start(1);
    net = await makeNetwork({ maxTxPerBlock: 100, batchTimeoutMs: 20 });
    await writeNatsNodeConfigs(net, VALIDATORS, cluster.urls, { prefix: 'KR', replicas: 1, ports });
    await Promise.all(VALIDATORS.map(startNode));
    cast = await enrolCast(url('hosp-a'), net, { 'hosp-a/doc': 'doctor' }, ['hosp-a']);
  }, 180_000);

  afterAll(async () => {
    for (const n of nodes.values()) await n.kill('SIGTERM');
    await cluster?.stop();
  });

  it('switches the validator set to the new key at the next height: finality continues, the old key’s votes are refused', async () => {
    const old = net.institutions.get('hosp-a')!;
    const before = await finalRecord('hosp-a', 'before');

    const out = await cli('institution', 'rotate-key', '--data', net.nodeDir('hosp-a'), '--node', url('hosp-a'));
    const k = out['height'] as number;
    const next = new Identity(readIdentityFile(join(net.nodeDir('hosp-a'), 'keys', 'hosp-a.json')));
    // Until hosp-a restarts it has no key in the set, and the other three are two thirds of four.
    const during = await finalRecord('hosp-b', 'during');
    expect(during.height).toBeGreaterThan(k);
    expect(during.cert.votes.map((v) => v.validator)).not.toContain(old.keyId);

    // hosp-a restarts with its new key file; lab-d stops, so no quorum forms without hosp-a's new key.
    await nodes.get('hosp-a')!.kill('SIGTERM');
    await startNode('hosp-a');
    await nodes.get('lab-d')!.kill('SIGTERM');
    const after = await finalRecord('hosp-b', 'after');
    expect(after.cert.votes.map((v) => v.validator)).toContain(next.keyId);

    // A client checks each certificate with core and the member rows of today: the key in force at its height.
    const state = await membersState('hosp-b');
    expect(validatorsAt(state, k).find((v) => v.institution === 'hosp-a')?.keyId).toBe(old.keyId);
    expect(validatorsAt(state, k + 1).find((v) => v.institution === 'hosp-a')?.keyId).toBe(next.keyId);
    for (const { height, cert } of [before, during, after]) await verifyCertificate(cert, validatorsAt(state, height), 'two-thirds');
    // The same certificate with hosp-a's vote signed by its old key falls below the quorum.
    const forged = await signVote(
      { network: net.network, height: after.height, blockHash: after.cert.blockHash, stateRoot: after.cert.stateRoot },
      old.file.signing,
    );
    const withOld = {
      ...after.cert,
      votes: after.cert.votes.map((v) => (v.validator === next.keyId ? { validator: forged.validator, signature: forged.signature } : v)),
    };
    await expect(verifyCertificate(withOld, validatorsAt(state, after.height), 'two-thirds')).rejects.toMatchObject({
      code: 'CHAIN_BROKEN',
    });
    await startNode('lab-d');
  }, 180_000);
});
