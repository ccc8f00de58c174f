/**
 * `medledger vault …`: store a record (with its files) in your institution's vault and register it,
 * fetch and decrypt a record from its custodian's vault, erase a record (as the patient), read a
 * vault's audit trail. Every vault request is signed here with the identity file given by `--key`.
 */
import { createWriteStream, mkdirSync, openAsBlob, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Identity } from '@medledger/core/client/identity';
import { VaultClient, type RecordIndex } from '@medledger/core/client/vault-client';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { Member, RecordEntry } from '@medledger/core/contracts/state';
import { MedledgerError } from '@medledger/core/errors';
import { isPurpose } from '@medledger/core/policy/purposes';
import { readIdentityFile } from '../../config/data-dir.ts';
import { streamingFetch } from '../../vault/streaming-fetch.ts';
import { NodeClient } from '../node-client.ts';
import { printResult } from '../output.ts';
import { readJsonFile } from '../json-file.ts';

const DEFAULT_NODE = process.env['MEDLEDGER_NODE'] ?? 'http://localhost:8080';

interface Common {
  key: string;
  node: string;
}

function json(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ json?: boolean }>().json === true;
}

function common(c: Command): Command {
  return c
    .requiredOption('--key <file>', 'your identity file (keys stay on this machine)')
    .option('--node <url>', 'your node’s API', DEFAULT_NODE);
}

async function vaultUrlOf(node: NodeClient, institution: string): Promise<string> {
  const members = await node.get<Member[]>('/api/members');
  const url = members.find((m) => m.id === institution)?.vaultUrl;
  if (typeof url !== 'string') throw new MedledgerError('RECORD_NOT_HERE', { details: `${institution} has published no vault address.` });
  return url;
}

export function registerVaultCommands(program: Command): void {
  const vault = program.command('vault').description('Store, fetch and erase records in institutions’ vaults (signed requests)');

  common(
    vault
      .command('store')
      .description('Store a FHIR R4 resource (and a DocumentReference’s files) in your institution’s vault and register it'),
  )
    .requiredOption('--patient <code>', 'the patient code')
    .requiredOption('--resource <file>', 'the FHIR R4 resource as JSON')
    .option('--file <path...>', 'files of a DocumentReference, in the order of its content[]')
    .option('--request <id>', 'the patient’s accepted registration request, when needed')
    .action(async (o: Common & { patient: string; resource: string; file?: string[]; request?: string }, cmd: Command) => {
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const node = new NodeClient(o.node);
      const institution = me.label.split('/')[0]!;
      const url = await vaultUrlOf(node, institution);
      const client = new VaultClient(me, { fetch: streamingFetch });
      const resource = readJsonFile(resolve(o.resource), 'resource');
      const stored = await client.store(url, institution, { patientCode: o.patient, resource });
      for (const [i, path] of (o.file ?? []).entries())
        await client.uploadAttachment(url, institution, stored.objectId, i, await openAsBlob(resolve(path)));
      const { tx } = await me.tx(await node.network(), 'records.register', {
        patientCode: o.patient,
        registrationRequestId: o.request ?? null,
        ...stored.index,
      });
      printResult({ ...(await node.submit(tx, true)), objectId: stored.objectId }, json(cmd));
    });

  common(vault.command('fetch').description('Fetch a record from its custodian’s vault, decrypt it and check it against the index'))
    .requiredOption('--record <id>', 'record id (from `records search`)')
    .requiredOption('--purpose <purpose>', 'HL7 purpose of use, e.g. TREAT')
    .option('--out <dir>', 'write resource.json and the files here', '.')
    .action(async (o: Common & { record: string; purpose: string; out: string }, cmd: Command) => {
      if (!isPurpose(o.purpose)) throw new MedledgerError('BAD_REQUEST', { details: `Unknown purpose "${o.purpose}".` });
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const node = new NodeClient(o.node);
      const entry = await node.get<RecordEntry>(`/api/records/${o.record}`);
      const url = await vaultUrlOf(node, entry.custodian);
      const client = new VaultClient(me, { fetch: streamingFetch });
      const index: RecordIndex = entry;
      const fetched = await client.fetchRecord(url, index, o.purpose);
      const out = resolve(o.out);
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'resource.json'), JSON.stringify(fetched.resource, null, 2) + '\n', { mode: 0o600 });
      const files: string[] = [];
      const content = (fetched.resource['content'] as { attachment?: JsonObject }[] | undefined) ?? [];
      for (const a of fetched.attachments) {
        const att = content[a.index]?.attachment ?? {};
        const sha = ((att['extension'] as { valueString?: string }[] | undefined) ?? [])[0]?.valueString ?? '';
        const name = join(out, basename(typeof att['title'] === 'string' ? att['title'] : `attachment-${a.index}`));
        const sink = createWriteStream(name, { mode: 0o600 });
        for await (const piece of client.fetchAttachment(url, fetched, entry.hash, a.index, sha)) {
          if (!sink.write(piece)) await new Promise<void>((r) => sink.once('drain', () => r()));
        }
        await new Promise<void>((r) => sink.end(() => r()));
        files.push(name);
      }
      printResult(
        { recordId: o.record, accessTx: fetched.accessTx, verified: true, resource: join(out, 'resource.json'), files },
        json(cmd),
      );
    });

  common(vault.command('erase').description('Erase one of your records (as the patient): the custodian destroys its keys'))
    .requiredOption('--record <id>', 'record id')
    .action(async (o: Common & { record: string }, cmd: Command) => {
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const node = new NodeClient(o.node);
      const { tx } = await me.tx(await node.network(), 'records.erase', { recordId: o.record });
      printResult(await node.submit(tx, true), json(cmd));
    });

  common(vault.command('audit').description('Read a vault’s audit trail: every answer, served or refused (as its institution’s auditor)'))
    .requiredOption('--institution <id>', 'whose vault')
    .option('--after <seq>', 'entries after this sequence number', '0')
    .option('--limit <n>', 'at most this many', '100')
    .action(async (o: Common & { institution: string; after: string; limit: string }, cmd: Command) => {
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const url = await vaultUrlOf(new NodeClient(o.node), o.institution);
      printResult(
        await new VaultClient(me, { fetch: streamingFetch }).audit(url, o.institution, Number(o.after), Number(o.limit)),
        json(cmd),
      );
    });
}
