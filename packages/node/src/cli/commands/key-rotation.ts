/**
 * Replacing keys from the command line (threat model, "Keys: loss and rotation"): `patient
 * rotate-keys | recover | freeze` and `institution rotate-key | new-key | propose-key | vote |
 * adopt-key`. A new identity file is written durably before its transaction is sent and takes the
 * old file's place only once the ledger took its key; the old file is kept as
 * `<file>.<keyId>.revoked`. A command cut off after sending finishes when run again: its nonce
 * comes from the new key, so a change already committed answers TX_REPLAY.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Identity, type IdentityFile } from '@medledger/core/client/identity';
import { toBase64Url } from '@medledger/core/codec/bytes';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import { patientRotationMessage } from '@medledger/core/contracts/identity';
import { memberKeyMessage } from '@medledger/core/contracts/membership';
import type { Member } from '@medledger/core/contracts/state';
import { sign } from '@medledger/core/crypto/ed25519';
import { MedledgerError, isErrorCode, isMedledgerError } from '@medledger/core/errors';
import { networkIdOf } from '@medledger/core/ledger/genesis';
import type { Tx } from '@medledger/core/ledger/tx';
import {
  DataDirFiles,
  adoptNextIdentity,
  keyFilePath,
  nextIdentityPath,
  readGenesis,
  readIdentityFile,
  readNodeConfig,
  writeJson,
  writeNextIdentity,
} from '../../config/data-dir.ts';
import { NodeClient } from '../node-client.ts';
import { printResult } from '../output.ts';

const DEFAULT_NODE = process.env['MEDLEDGER_NODE'] ?? 'http://localhost:8080';

function json(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ json?: boolean }>().json === true;
}

async function proof(holder: Identity, message: Uint8Array): Promise<string> {
  return toBase64Url(await sign(holder.file.signing.privateKey, message));
}

interface Committed {
  txId: string;
  height: number | null;
}

/** The ledger refused the change: the new keys will never be taken, so their file goes. */
class RefusedChange extends MedledgerError {}

/**
 * Sends a key change and waits for its commit. TX_REPLAY means a valid tx with this nonce is
 * already on the chain: the same change, sent by an earlier run that was cut off.
 */
async function sendKeyChange(client: NodeClient, tx: Tx, txId: string): Promise<Committed> {
  let answer: Awaited<ReturnType<NodeClient['submit']>>;
  try {
    answer = await client.submit(tx, true);
  } catch (e) {
    if (isMedledgerError(e) && e.code === 'TX_REPLAY') return { txId, height: null };
    throw e;
  }
  if (answer.status !== 'committed')
    throw new MedledgerError('NODE_UNAVAILABLE', { details: 'Accepted but not committed yet: run the same command again to finish.' });
  if (answer.code !== 'OK' && answer.code !== 'TX_REPLAY') {
    throw new RefusedChange(answer.code !== undefined && isErrorCode(answer.code) ? answer.code : 'INTERNAL');
  }
  return { txId, height: answer.height ?? null };
}

/** Runs a key change whose new identity is the `.next` file of `path`, then puts it in place. */
async function rotateFile(
  path: string,
  makeNext: (current: Identity) => Promise<IdentityFile>,
  send: (current: Identity, next: Identity) => Promise<Committed>,
): Promise<Committed & { keyId: string; previousKeyId: string | null; identityFile: string; revokedFile: string | null }> {
  const pending = nextIdentityPath(path);
  if (!existsSync(path) && existsSync(pending)) {
    // Cut off between the two renames: the ledger had taken the key already.
    const next = new Identity(readIdentityFile(pending));
    adoptNextIdentity(path, next.keyId);
    return { txId: '', height: null, keyId: next.keyId, previousKeyId: null, identityFile: path, revokedFile: null };
  }
  const current = new Identity(readIdentityFile(path));
  if (!existsSync(pending)) writeNextIdentity(path, await makeNext(current));
  const next = new Identity(readIdentityFile(pending));
  let done: Committed;
  try {
    done = await send(current, next);
  } catch (e) {
    if (e instanceof RefusedChange) rmSync(pending, { force: true });
    throw e;
  }
  const revokedFile = adoptNextIdentity(path, current.keyId);
  return { ...done, keyId: next.keyId, previousKeyId: current.keyId, identityFile: path, revokedFile };
}

function patientCode(code: string): string {
  if (!/^[0-9a-f]{64}$/.test(code)) throw new MedledgerError('BAD_REQUEST', { details: 'The patient code is 64 lower-case hex.' });
  return code;
}

function nodeOf(o: { node?: string }, dataDir?: string): NodeClient {
  if (o.node !== undefined) return new NodeClient(o.node);
  if (dataDir !== undefined) {
    const api = readNodeConfig(dataDir).api;
    if (api.port !== 0) return new NodeClient(`http://${api.host.includes(':') ? `[${api.host}]` : api.host}:${api.port}`);
  }
  return new NodeClient(DEFAULT_NODE);
}

export function registerKeyRotationCommands(program: Command): void {
  const patient = program.command('patient').description('Replace or freeze a patient’s keys (a new device, a lost or stolen one)');

  patient
    .command('rotate-keys')
    .description('Replace your keys, signing with your current identity file: the old key is revoked, your data stays yours')
    .requiredOption('--key <file>', 'your identity file: replaced by the new one, the old kept as <file>.<keyId>.revoked')
    .requiredOption('--patient-code <code>', 'your patient code')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { key: string; patientCode: string; node: string }, cmd: Command) => {
      const code = patientCode(o.patientCode);
      const client = new NodeClient(o.node);
      const result = await rotateFile(
        resolve(o.key),
        async (current) => (await Identity.generate(current.label)).file,
        async (current, next) => {
          const network = await client.network();
          const possession = await proof(next, patientRotationMessage(network, code, next.signingKey, next.encryptionKey));
          const body = { patientCode: code, signingKey: next.signingKey, encryptionKey: next.encryptionKey, possession };
          const { tx, txId } = await current.tx(network, 'identity.rotatePatientKeys', body, { nonce: `rot-${next.keyId}` });
          return sendKeyChange(client, tx, txId);
        },
      );
      printResult(result, json(cmd));
    });

  patient
    .command('recover')
    .description(
      'Give a patient who lost their device new keys (as staff of their home institution, after checking who they are in person)',
    )
    .requiredOption('--key <file>', 'your staff identity file')
    .requiredOption('--patient-code <code>', 'the patient’s code')
    .requiredOption(
      '--out <file>',
      'the patient’s new identity file (mode 0600); if it exists (made on their new device), its keys are used',
    )
    .option('--label <label>', 'label of a new identity file', 'patient')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { key: string; patientCode: string; out: string; label: string; node: string }, cmd: Command) => {
      const code = patientCode(o.patientCode);
      const staff = new Identity(readIdentityFile(resolve(o.key)));
      const out = resolve(o.out);
      const made = !existsSync(out);
      if (made) writeJson(out, (await Identity.generate(o.label)).file, true);
      const next = new Identity(readIdentityFile(out));
      const client = new NodeClient(o.node);
      try {
        const network = await client.network();
        const possession = await proof(next, patientRotationMessage(network, code, next.signingKey, next.encryptionKey));
        const body = { patientCode: code, signingKey: next.signingKey, encryptionKey: next.encryptionKey, possession };
        const { tx, txId } = await staff.tx(network, 'identity.rotatePatientKeys', body, { nonce: `rec-${next.keyId}` });
        printResult({ ...(await sendKeyChange(client, tx, txId)), keyId: next.keyId, identityFile: out }, json(cmd));
      } catch (e) {
        if (e instanceof RefusedChange && made) rmSync(out, { force: true });
        throw e;
      }
    });

  patient
    .command('freeze')
    .description('Revoke a patient’s key with no new one, e.g. a stolen device (as the patient, or staff of their home institution)')
    .requiredOption('--key <file>', 'your identity file (the patient’s, or a staff member’s)')
    .requiredOption('--patient-code <code>', 'the patient’s code')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { key: string; patientCode: string; node: string }, cmd: Command) => {
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const client = new NodeClient(o.node);
      const { tx, txId } = await me.tx(await client.network(), 'identity.freezePatient', { patientCode: patientCode(o.patientCode) });
      printResult(await sendKeyChange(client, tx, txId), json(cmd));
    });

  const institution = program
    .command('institution')
    .description('Replace an institution’s key: by itself, or by the other members’ vote after a loss or theft');

  institution
    .command('rotate-key')
    .description('Replace this institution’s signing key, signing with the current one; restart the node afterwards')
    .requiredOption('--data <dir>', 'the node’s data directory: keys/<institution>.json is replaced, the old kept as .revoked')
    .option('--node <url>', 'node API (default: the address in node.json)')
    .option('--new-encryption-key', 'replace the encryption key too (by default it is kept: records on the chain are wrapped to it)')
    .action(async (o: { data: string; node?: string; newEncryptionKey?: boolean }, cmd: Command) => {
      const dir = resolve(o.data);
      const id = readNodeConfig(dir).institution;
      const client = nodeOf(o, dir);
      const result = await rotateFile(
        keyFilePath(dir, id),
        async (current) => {
          const fresh = await Identity.generate(current.label);
          return o.newEncryptionKey === true ? fresh.file : { ...fresh.file, encryption: current.file.encryption };
        },
        async (current, next) => {
          const network = await client.network();
          const possession = await proof(next, memberKeyMessage(network, id, next.signingKey, next.encryptionKey));
          const body = { signingKey: next.signingKey, encryptionKey: next.encryptionKey, possession };
          const { tx, txId } = await current.tx(network, 'membership.rotateKey', body, { nonce: `rot-${next.keyId}` });
          return sendKeyChange(client, tx, txId);
        },
      );
      printResult({ institution: id, ...result, restart: `medledger start --data ${dir}` }, json(cmd));
    });

  institution
    .command('new-key')
    .description('After losing the institution’s key: make new keys and the request another member proposes (`institution propose-key`)')
    .requiredOption('--data <dir>', 'the node’s data directory: the new keys wait in keys/<institution>.json.next')
    .option('--out <file>', 'write the request here instead of printing it')
    .action(async (o: { data: string; out?: string }, cmd: Command) => {
      const dir = resolve(o.data);
      const id = readNodeConfig(dir).institution;
      const path = keyFilePath(dir, id);
      const pending = nextIdentityPath(path);
      if (!existsSync(pending)) writeNextIdentity(path, (await Identity.generate(id)).file);
      const next = new Identity(readIdentityFile(pending));
      const network = networkIdOf(readGenesis(join(dir, DataDirFiles.genesis)));
      const request: JsonObject = {
        institutionId: id,
        signingKey: next.signingKey,
        encryptionKey: next.encryptionKey,
        possession: await proof(next, memberKeyMessage(network, id, next.signingKey, next.encryptionKey)),
      };
      if (o.out !== undefined) writeJson(resolve(o.out), request);
      printResult(o.out === undefined ? request : { institutionId: id, keyId: next.keyId, request: resolve(o.out) }, json(cmd));
    });

  institution
    .command('propose-key')
    .description('Propose that the members give an institution the keys of its request (as another member or the Issuer)')
    .requiredOption('--key <file>', 'your identity file (a member institution’s or the Issuer’s)')
    .requiredOption('--request <file>', 'the request made by `institution new-key`')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { key: string; request: string; node: string }, cmd: Command) => {
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const request = readIdentityRequest(resolve(o.request));
      const client = new NodeClient(o.node);
      const { tx } = await me.tx(await client.network(), 'membership.propose', { action: 'replaceKey', ...request });
      const answer = await client.submit(tx, true);
      printResult({ ...answer, proposalId: answer.txId }, json(cmd));
    });

  institution
    .command('vote')
    .description('Vote on a membership proposal (as a member institution): admission, removal or a key replacement')
    .argument('<proposalId>', 'the txId of the proposal')
    .requiredOption('--key <file>', 'your institution’s identity file')
    .option('--reject', 'vote no (default: yes)')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (proposalId: string, o: { key: string; reject?: boolean; node: string }, cmd: Command) => {
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const client = new NodeClient(o.node);
      const { tx } = await me.tx(await client.network(), 'membership.vote', { proposalId, approve: o.reject !== true });
      printResult(await client.submit(tx, true), json(cmd));
    });

  institution
    .command('adopt-key')
    .description(
      'Once the members gave this institution its new key: put keys/<institution>.json.next in place; restart the node afterwards',
    )
    .requiredOption('--data <dir>', 'the node’s data directory')
    .option('--node <url>', 'node API (default: the address in node.json)')
    .action(async (o: { data: string; node?: string }, cmd: Command) => {
      const dir = resolve(o.data);
      const id = readNodeConfig(dir).institution;
      const path = keyFilePath(dir, id);
      const pending = nextIdentityPath(path);
      if (!existsSync(pending)) throw new MedledgerError('NOT_FOUND', { details: `No pending key in ${dirname(pending)}.` });
      const next = new Identity(readIdentityFile(pending));
      const members = await nodeOf(o, dir).get<Member[]>('/api/members');
      if (members.find((m) => m.id === id)?.signingKey !== next.signingKey)
        throw new MedledgerError('NOT_FOUND', { details: 'The ledger has not given this institution the pending key (yet).' });
      const previousKeyId = existsSync(path) ? new Identity(readIdentityFile(path)).keyId : null;
      const revokedFile = adoptNextIdentity(path, previousKeyId ?? 'lost');
      printResult(
        { institution: id, keyId: next.keyId, previousKeyId, identityFile: path, revokedFile, restart: `medledger start --data ${dir}` },
        json(cmd),
      );
    });
}

/** A key request as `institution new-key` writes it. */
function readIdentityRequest(path: string): JsonObject {
  let request: unknown;
  try {
    request = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new MedledgerError('BAD_REQUEST', { details: `Cannot read ${path} as JSON.`, cause });
  }
  const fields = ['institutionId', 'signingKey', 'encryptionKey', 'possession'];
  if (typeof request !== 'object' || request === null || Array.isArray(request) || !fields.every((f) => f in request))
    throw new MedledgerError('BAD_REQUEST', { details: `${path} is not a key request of \`institution new-key\`.` });
  const r = request as JsonObject;
  return Object.fromEntries(fields.map((f) => [f, r[f]!]));
}
