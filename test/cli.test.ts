/**
 * The `medledger` CLI as a person uses it: `--help` on every command, `init` a network, `start`
 * a node from it, act as identities with `keys`, `tx`, `consent`, `access`, and read back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Identity } from '@medledger/core/client/identity';
import { patientCodeOf } from '@medledger/core/contracts/identity';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import type { IdentityFile } from '@medledger/core/client/identity';
import { writeJson } from '../packages/node/src/config/data-dir.ts';
import { CLI, NodeProcess, freePort, tempDir } from './test-network.ts';

function medledger(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMMANDS = [
  [],
  ['init'],
  ['start'],
  ['demo'],
  ['keys'],
  ['keys', 'generate'],
  ['keys', 'show'],
  ['tx'],
  ['tx', 'submit'],
  ['tx', 'status'],
  ['records'],
  ['records', 'search'],
  ['records', 'show'],
  ['consent'],
  ['consent', 'grant'],
  ['consent', 'revoke'],
  ['consent', 'list'],
  ['access'],
  ['access', 'request'],
  ['access', 'approve'],
  ['access', 'deny'],
  ['access', 'requests'],
  ['access', 'log'],
  ['verify'],
  ['cluster'],
  ['cluster', 'up'],
  ['cluster', 'down'],
  ['cluster', 'status'],
  ['vault'],
  ['vault', 'store'],
  ['vault', 'fetch'],
  ['vault', 'erase'],
  ['vault', 'audit'],
  ['study'],
  ['study', 'register'],
  ['study', 'list'],
  ['study', 'show'],
  ['study', 'run'],
  ['study', 'fetch'],
  // issue 7
  ['subscriptions'],
  ['subscriptions', 'subscribe'],
  ['subscriptions', 'cancel'],
  ['subscriptions', 'list'],
  ['push'],
  ['push', 'deliveries'],
  ['push', 'redrive'],
  ['break-glass'],
  ['break-glass', 'open'],
  ['break-glass', 'queue'],
  ['break-glass', 'review'],
  ['guardian'],
  ['guardian', 'appoint'],
  ['guardian', 'revoke'],
  ['guardian', 'list'],
  ['staff'],
  ['staff', 'qualify'],
];

describe('help', () => {
  it.each(COMMANDS.map((c) => [c.join(' ') || '(top)', c]))('medledger %s --help', (_name, cmd) => {
    const r = medledger(...cmd, '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: medledger/);
  });
});

describe('a network made and used from the command line', () => {
  let node: NodeProcess | null = null;
  afterAll(async () => {
    await node?.kill('SIGTERM');
  });

  it('init, start, enrol, register a patient, consent, access, log, verify', async () => {
    const dir = join(tempDir('cli'), 'net');
    const init = medledger('init', '--dir', dir, '--institution', 'hosp-a:hospital:Hospital A', 'hosp-b:hospital:Hospital B');
    expect(init.status, init.stderr).toBe(0);
    expect(init.stdout).toContain('network');
    node = await NodeProcess.start(join(dir, 'hosp-a'), await freePort());
    const n = ['--node', node.url];

    const work = tempDir('cli-keys');
    const doctorFile = join(work, 'doctor.json');
    const gen = medledger('--json', 'keys', 'generate', '--label', 'hosp-b/dr', '--out', doctorFile);
    expect(gen.status, gen.stderr).toBe(0);
    const doctor = JSON.parse(gen.stdout) as { signingKey: string; encryptionKey: string };
    const hospB = join(dir, 'hosp-b', 'keys', 'hosp-b.json');
    const hospA = join(dir, 'hosp-a', 'keys', 'hosp-a.json');
    const enrol = medledger(
      '--json',
      'tx',
      'submit',
      '--key',
      hospB,
      ...n,
      '--type',
      'identity.enrolStaff',
      '--body',
      JSON.stringify({
        localId: 'dr',
        role: 'doctor',
        signingKey: doctor.signingKey,
        encryptionKey: doctor.encryptionKey,
        displayName: 'Dr B',
      }),
    );
    expect(enrol.status, enrol.stderr).toBe(0);
    expect(JSON.parse(enrol.stdout)).toMatchObject({ status: 'committed', code: 'OK' });

    // A registrar at hosp-a registers a patient whose keys were made on the patient's side.
    const registrarFile = join(work, 'ops.json');
    const ops = JSON.parse(medledger('--json', 'keys', 'generate', '--label', 'hosp-a/ops', '--out', registrarFile).stdout) as {
      signingKey: string;
      encryptionKey: string;
    };
    expect(
      JSON.parse(
        medledger(
          '--json',
          'tx',
          'submit',
          '--key',
          hospA,
          ...n,
          '--type',
          'identity.enrolStaff',
          '--body',
          JSON.stringify({
            localId: 'ops',
            role: 'operator',
            signingKey: ops.signingKey,
            encryptionKey: ops.encryptionKey,
            displayName: 'Ops',
          }),
        ).stdout,
      ),
    ).toMatchObject({ code: 'OK' });
    const consortium = JSON.parse(readFileSync(join(dir, 'hosp-a', 'consortium.json'), 'utf8')) as { patientCodeKey: string };
    const code = patientCodeOf(fromBase64Url(consortium.patientCodeKey), 'CLI-PATIENT-1');
    const patient = await Identity.generate('patient');
    const patientFile = join(work, 'patient.json');
    writeJson(patientFile, patient.file satisfies IdentityFile, true);
    const health = (await (await fetch(`${node.url}/api/health`)).json()) as { network: string };
    const reg = medledger(
      '--json',
      'tx',
      'submit',
      '--key',
      registrarFile,
      ...n,
      '--type',
      'identity.registerPatient',
      '--body',
      JSON.stringify({
        patientCode: code,
        signingKey: patient.signingKey,
        encryptionKey: patient.encryptionKey,
        possession: await patient.possessionProof(health.network, code, 'hosp-a'),
      }),
    );
    expect(JSON.parse(reg.stdout)).toMatchObject({ code: 'OK' });

    const req = medledger('--json', 'access', 'request', '--key', doctorFile, ...n, '--patient-code', code, '--reason', 'referral');
    expect(req.status, req.stderr).toBe(0);
    const requestId = (JSON.parse(req.stdout) as { txId: string }).txId;
    const approve = medledger('--json', 'access', 'approve', '--key', patientFile, ...n, requestId);
    expect(JSON.parse(approve.stdout)).toMatchObject({ code: 'OK' });

    // hosp-a publishes its vault; its operator stores a record there; the approved doctor fetches it.
    const endpoint = medledger(
      '--json',
      'tx',
      'submit',
      '--key',
      hospA,
      ...n,
      '--type',
      'membership.setEndpoint',
      '--body',
      JSON.stringify({ vaultUrl: node.url }),
    );
    expect(JSON.parse(endpoint.stdout)).toMatchObject({ code: 'OK' });
    const resourceFile = join(work, 'observation.json');
    const observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '2339-0', display: 'Glucose' }] },
      subject: { reference: 'Patient/cli-1' },
      valueQuantity: { value: 5.4, unit: 'mmol/L' },
    };
    writeFileSync(resourceFile, JSON.stringify(observation));
    const stored = medledger('--json', 'vault', 'store', '--key', registrarFile, ...n, '--patient', code, '--resource', resourceFile);
    expect(stored.status, stored.stderr).toBe(0);
    const recordId = (JSON.parse(stored.stdout) as { txId: string; code: string }).txId;
    const out = join(work, 'received');
    const fetched = medledger(
      '--json',
      'vault',
      'fetch',
      '--key',
      doctorFile,
      ...n,
      '--record',
      recordId,
      '--purpose',
      'TREAT',
      '--out',
      out,
    );
    expect(fetched.status, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout)).toMatchObject({ recordId, verified: true });
    expect(JSON.parse(readFileSync(join(out, 'resource.json'), 'utf8'))).toEqual(observation);
    const wrongPurpose = medledger('vault', 'fetch', '--key', doctorFile, ...n, '--record', recordId, '--purpose', 'HPAYMT', '--out', out);
    expect(wrongPurpose.status).not.toBe(0);
    expect(wrongPurpose.stderr).toContain('CONSENT_PURPOSE_MISMATCH');
    const grant = medledger(
      '--json',
      'consent',
      'grant',
      '--key',
      patientFile,
      ...n,
      '--patient-code',
      code,
      '--institution',
      'hosp-b',
      '--category',
      'Condition',
      '--days',
      '30',
    );
    expect(JSON.parse(grant.stdout)).toMatchObject({ code: 'OK' });
    const consents = JSON.parse(medledger('--json', 'consent', 'list', ...n, '--patient-code', code).stdout) as { status: string }[];
    expect(consents).toHaveLength(2);
    const revoke = medledger(
      '--json',
      'consent',
      'revoke',
      '--key',
      patientFile,
      ...n,
      (JSON.parse(grant.stdout) as { txId: string }).txId,
    );
    expect(JSON.parse(revoke.stdout)).toMatchObject({ code: 'OK' });
    const requests = JSON.parse(medledger('--json', 'access', 'requests', ...n, '--patient-code', code).stdout) as { status: string }[];
    expect(requests[0]?.status).toBe('approved');

    // Wrong role from the CLI: a coded answer, exit 0 (the tx is recorded as rejected).
    const denied = medledger('--json', 'access', 'approve', '--key', doctorFile, ...n, requestId);
    expect(JSON.parse(denied.stdout)).toMatchObject({ code: 'ROLE_FORBIDDEN' });
    // Bad input: a clear coded error and a non-zero exit.
    const bad = medledger('tx', 'submit', '--key', doctorFile, ...n, '--type', 'records.destroy', '--body', '{}');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('TX_UNKNOWN_TYPE');

    await node.kill('SIGTERM');
    node = null;
    const verify = medledger('verify', join(dir, 'hosp-a'));
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toContain('intact');
  });
});

describe('a local consortium from the command line', () => {
  it('cluster up starts NATS servers and validators, status shows them agreeing, down stops them', async () => {
    const dir = join(tempDir('cluster'), 'c');
    const base = await freePort();
    const natsPort = 30000 + (base % 20000);
    const up = medledger('cluster', 'up', '--dir', dir, '--base-port', String(base), '--nats-port', String(natsPort));
    try {
      expect(up.status, up.stderr).toBe(0);
      const status = JSON.parse(medledger('--json', 'cluster', 'status', '--dir', dir).stdout) as {
        nodes: { status: string; height: number }[];
        nats: { running: boolean }[];
      };
      expect(status.nodes).toHaveLength(4);
      expect(status.nodes.every((n) => n.status === 'ok')).toBe(true);
      expect(status.nats.every((n) => n.running)).toBe(true);
    } finally {
      const down = medledger('cluster', 'down', '--dir', dir);
      expect(down.status, down.stderr).toBe(0);
    }
    const after = JSON.parse(medledger('--json', 'cluster', 'status', '--dir', dir).stdout) as {
      nodes: { status: string }[];
      nats: { running: boolean }[];
    };
    expect(after.nodes.every((n) => n.status === 'down')).toBe(true);
    expect(after.nats.every((n) => !n.running)).toBe(true);
  });
});

describe('the demo consortium and a study from the command line', () => {
  it('demo seeds a study; study run releases its total through the custodians’ vaults and spends ε', async () => {
    const data = join(tempDir('demo'), 'd');
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'demo', '--data', data, '--port', String(port), '--host', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const deadline = Date.now() + 120_000;
      while (!output.includes('API on') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(output, output).toContain('API on');
      const n = ['--node', `http://127.0.0.1:${port}`];
      const key = join(data, 'identities', 'research-inst__res-jin.json');
      const run = medledger('--json', 'study', 'run', '--key', key, ...n, '--id', 'chronic-care', '--epsilon', '0.5', '--timeout', '15');
      expect(run.status, run.stderr + output).toBe(0);
      const released = JSON.parse(run.stdout) as { resultHash: string; result: { cells: { count: number | null }[]; mechanism: string } };
      expect(released.resultHash).toMatch(/^[0-9a-f]{64}$/);
      expect(released.result.mechanism).toBe('discrete-laplace');
      expect(released.result.cells).toHaveLength(1);
      const shown = JSON.parse(medledger('--json', 'study', 'show', 'chronic-care', ...n).stdout) as {
        study: { epsilonSpentMilli: number };
        rounds: { status: string }[];
      };
      expect(shown.study.epsilonSpentMilli).toBe(500);
      expect(shown.rounds.map((r) => r.status)).toEqual(['released']);
      const over = medledger('--json', 'study', 'run', '--key', key, ...n, '--id', 'chronic-care', '--epsilon', '2.6', '--timeout', '15');
      expect(over.status).not.toBe(0);
      expect(over.stdout + over.stderr).toContain('BUDGET_EXCEEDED');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
