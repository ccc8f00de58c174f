/**
 * Commands that act as an identity against a running node: `keys`, `tx`, `records`, `consent`
 * and `access`. Every transaction is signed here, with the identity file given by `--key`.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Identity } from '@medledger/core/client/identity';
import { parseJson, type JsonObject } from '@medledger/core/codec/canonical-json';
import { isTxType } from '@medledger/core/ledger/tx-types';
import { isPurpose } from '@medledger/core/policy/purposes';
import { MedledgerError } from '@medledger/core/errors';
import { readIdentityFile, writeJson } from '../../config/data-dir.ts';
import { NodeClient } from '../node-client.ts';
import { printResult } from '../output.ts';

const DEFAULT_NODE = process.env['MEDLEDGER_NODE'] ?? 'http://localhost:8080';
const DAY = 86_400_000;

function json(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ json?: boolean }>().json === true;
}

async function act(cmd: Command, o: { key: string; node: string; wait: boolean }, type: string, body: JsonObject): Promise<void> {
  if (!isTxType(type)) throw new MedledgerError('TX_UNKNOWN_TYPE');
  const identity = new Identity(readIdentityFile(resolve(o.key)));
  const client = new NodeClient(o.node);
  const { tx } = await identity.tx(await client.network(), type, body);
  printResult(await client.submit(tx, o.wait), json(cmd));
}

function withActor(c: Command): Command {
  return c
    .requiredOption('--key <file>', 'identity file of the author (keys stay on this machine)')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .option('--no-wait', 'answer once accepted instead of once committed');
}

function purpose(p: string): string {
  if (!isPurpose(p)) throw new MedledgerError('BAD_REQUEST', { details: `Unknown purpose "${p}" (HL7 ActReason, e.g. TREAT, HRESCH).` });
  return p;
}

function scopeOf(o: { category?: string[]; record?: string[] }): JsonObject {
  if (o.record !== undefined && o.record.length > 0) return { kind: 'records', recordIds: o.record };
  if (o.category !== undefined && o.category.length > 0) return { kind: 'categories', categories: o.category };
  return { kind: 'all' };
}

export function registerIdentityCommands(program: Command): void {
  const keys = program.command('keys').description('Make and inspect identity files (signing and encryption keys)');
  keys
    .command('generate')
    .description('Generate a new identity file (Ed25519 signing key, X25519 encryption key), mode 0600')
    .requiredOption('--label <label>', 'who this identity is')
    .requiredOption('--out <file>', 'where to write it')
    .action(async (o: { label: string; out: string }, cmd: Command) => {
      const identity = await Identity.generate(o.label);
      writeJson(resolve(o.out), identity.file, true);
      printResult(
        { label: o.label, keyId: identity.keyId, signingKey: identity.signingKey, encryptionKey: identity.encryptionKey },
        json(cmd),
      );
    });
  keys
    .command('show')
    .description('Show the public part of an identity file')
    .argument('<file>', 'identity file')
    .action((file: string, _o: unknown, cmd: Command) => {
      const identity = new Identity(readIdentityFile(resolve(file)));
      printResult(
        { label: identity.label, keyId: identity.keyId, signingKey: identity.signingKey, encryptionKey: identity.encryptionKey },
        json(cmd),
      );
    });

  const tx = program.command('tx').description('Submit any signed transaction, or read one’s status and receipt');
  withActor(tx.command('submit').description('Sign and submit a transaction of any type'))
    .requiredOption('--type <type>', 'transaction type, e.g. consent.grant')
    .requiredOption('--body <json>', 'the transaction body as JSON')
    .action(async (o: { key: string; node: string; wait: boolean; type: string; body: string }, cmd: Command) => {
      const body = parseJson(o.body);
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new MedledgerError('TX_BODY_INVALID', { details: 'The body is a JSON object.' });
      await act(cmd, o, o.type, body);
    });
  tx.command('status')
    .description('Status, validity code and receipt of a transaction')
    .argument('<txId>')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (id: string, o: { node: string }, cmd: Command) =>
      printResult(await new NodeClient(o.node).get(`/api/tx/${id}`), json(cmd)),
    );

  const records = program.command('records').description('Search the record index');
  records
    .command('search')
    .description('Records of a patient or custodian, newest first')
    .option('--patient-code <code>', 'patient code (hex)')
    .option('--category <type>', 'FHIR resource type')
    .option('--custodian <id>', 'custodian institution')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { patientCode?: string; category?: string; custodian?: string; node: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.patientCode) q.set('patientCode', o.patientCode);
      if (o.category) q.set('category', o.category);
      if (o.custodian) q.set('custodian', o.custodian);
      const rows = await new NodeClient(o.node).get<Record<string, unknown>[]>(`/api/records?${q.toString()}`);
      printResult(
        json(cmd)
          ? rows
          : rows.map((r) => ({
              recordId: r['recordId'],
              category: r['category'],
              custodian: r['custodian'],
              state: r['state'],
              registeredAt: new Date(r['registeredAt'] as number).toISOString(),
            })),
        json(cmd),
      );
    });
  records
    .command('show')
    .description('One record index entry')
    .argument('<recordId>')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (id: string, o: { node: string }, cmd: Command) =>
      printResult(await new NodeClient(o.node).get(`/api/records/${id}`), json(cmd)),
    );

  const consent = program.command('consent').description('Grant, narrow, revoke and list a patient’s consents (as the patient)');
  withActor(consent.command('grant').description('Grant consent to an institution, a person or a role'))
    .requiredOption('--patient-code <code>', 'your patient code')
    .option('--institution <id>', 'grantee: an institution')
    .option('--person <staffId>', 'grantee: a member of staff (institution/local-id)')
    .option('--role <role>', 'grantee: a role (with --institution to limit it to one institution)')
    .option('--study <id>', 'grantee: a research study (its team, de-identified, for its purpose)')
    .option('--category <type...>', 'only these FHIR resource types')
    .option('--record <id...>', 'only these records')
    .option('--purpose <code...>', 'purposes (HL7 ActReason)', ['TREAT'])
    .option('--days <n>', 'valid for this many days (omit for no end)')
    .option('--deidentification <level>', 'identified | pseudonymised | anonymised', 'identified')
    .action(
      async (
        o: {
          key: string;
          node: string;
          wait: boolean;
          patientCode: string;
          institution?: string;
          person?: string;
          role?: string;
          study?: string;
          category?: string[];
          record?: string[];
          purpose: string[];
          days?: string;
          deidentification: string;
        },
        cmd: Command,
      ) => {
        const grantee = o.study
          ? { kind: 'study', studyId: o.study }
          : o.person
            ? { kind: 'person', staffId: o.person }
            : o.role
              ? { kind: 'role', role: o.role, institution: o.institution ?? null }
              : o.institution
                ? { kind: 'institution', institution: o.institution }
                : null;
        if (grantee === null)
          throw new MedledgerError('BAD_REQUEST', { details: 'Name a grantee: --institution, --person, --role or --study.' });
        const now = Date.now();
        await act(cmd, o, 'consent.grant', {
          patientCode: o.patientCode,
          grantee,
          scope: scopeOf(o),
          purposes: o.purpose.map(purpose),
          period: { from: now, to: o.days === undefined ? null : now + Number(o.days) * DAY },
          deidentification: o.deidentification,
        });
      },
    );
  withActor(consent.command('revoke').description('Revoke a consent'))
    .argument('<consentId>')
    .action(async (id: string, o: { key: string; node: string; wait: boolean }, cmd: Command) =>
      act(cmd, o, 'consent.revoke', { consentId: id }),
    );
  consent
    .command('list')
    .description('A patient’s consents')
    .requiredOption('--patient-code <code>')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { patientCode: string; node: string }, cmd: Command) =>
      printResult(await new NodeClient(o.node).get(`/api/patients/${o.patientCode}/consents`), json(cmd)),
    );

  const access = program.command('access').description('Request access to a patient’s records, answer requests, read the access log');
  withActor(access.command('request').description('Ask a patient for access (as a doctor, nurse or researcher)'))
    .requiredOption('--patient-code <code>')
    .option('--category <type...>', 'only these FHIR resource types')
    .option('--record <id...>', 'only these records')
    .option('--purpose <code>', 'purpose (HL7 ActReason)', 'TREAT')
    .option('--deidentification <level>', 'identified | pseudonymised | anonymised', 'identified')
    .requiredOption('--reason <text>', 'why, in words the patient reads')
    .action(
      async (
        o: {
          key: string;
          node: string;
          wait: boolean;
          patientCode: string;
          category?: string[];
          record?: string[];
          purpose: string;
          deidentification: string;
          reason: string;
        },
        cmd: Command,
      ) =>
        act(cmd, o, 'access.request', {
          patientCode: o.patientCode,
          scope: scopeOf(o),
          purpose: purpose(o.purpose),
          deidentification: o.deidentification,
          reason: o.reason,
        }),
    );
  for (const [name, approve] of [
    ['approve', true],
    ['deny', false],
  ] as const) {
    withActor(access.command(name).description(`${approve ? 'Approve' : 'Deny'} an access request (as the patient)`))
      .argument('<requestId>')
      .option('--days <n>', 'how long an approval lasts', '30')
      .action(async (id: string, o: { key: string; node: string; wait: boolean; days: string }, cmd: Command) =>
        act(cmd, o, 'access.decide', { requestId: id, approve, durationMs: approve ? Number(o.days) * DAY : null }),
      );
  }
  access
    .command('requests')
    .description('Access requests made to a patient')
    .requiredOption('--patient-code <code>')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { patientCode: string; node: string }, cmd: Command) =>
      printResult(await new NodeClient(o.node).get(`/api/patients/${o.patientCode}/access-requests`), json(cmd)),
    );
  access
    .command('log')
    .description('A patient’s access history: who, when, what, why, served or refused')
    .requiredOption('--patient-code <code>')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { patientCode: string; node: string }, cmd: Command) =>
      printResult(await new NodeClient(o.node).get(`/api/patients/${o.patientCode}/access-log`), json(cmd)),
    );
}
