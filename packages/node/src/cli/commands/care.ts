/**
 * Issue 7 commands: `subscriptions` (follow a patient's new records under a consent), `push` (an
 * institution's webhook outbox: dead letters and re-driving them, signed requests), `break-glass`
 * (open in an emergency, list the review queue, close a review), `guardian` (appoint, revoke, list)
 * and `staff qualify` (the emergency qualification). Transactions and requests are signed here
 * with the identity file given by `--key`.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Identity } from '@medledger/core/client/identity';
import { VaultClient } from '@medledger/core/client/vault-client';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import { MedledgerError } from '@medledger/core/errors';
import type { TxType } from '@medledger/core/ledger/tx-types';
import { isPurpose } from '@medledger/core/policy/purposes';
import { readIdentityFile } from '../../config/data-dir.ts';
import { integerOption } from '../integer-option.ts';
import { NodeClient } from '../node-client.ts';
import { printResult } from '../output.ts';

const DEFAULT_NODE = process.env['MEDLEDGER_NODE'] ?? 'http://localhost:8080';
const DAY = 86_400_000;

interface Actor {
  key: string;
  node: string;
  wait: boolean;
}

function json(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ json?: boolean }>().json === true;
}

function withActor(c: Command): Command {
  return c
    .requiredOption('--key <file>', 'identity file of the author (keys stay on this machine)')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .option('--no-wait', 'answer once accepted instead of once committed');
}

function withReader(c: Command): Command {
  return c.option('--node <url>', 'node API', DEFAULT_NODE);
}

async function act(cmd: Command, o: Actor, type: TxType, body: JsonObject): Promise<void> {
  const identity = new Identity(readIdentityFile(resolve(o.key)));
  const client = new NodeClient(o.node);
  const { tx } = await identity.tx(await client.network(), type, body);
  printResult(await client.submit(tx, o.wait), json(cmd));
}

function purposes(list: string[]): string[] {
  for (const p of list)
    if (!isPurpose(p)) throw new MedledgerError('BAD_REQUEST', { details: `Unknown purpose "${p}" (HL7 ActReason, e.g. TREAT).` });
  return list;
}

function hex64(value: string, what: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new MedledgerError('BAD_REQUEST', { details: `${what} is 64 lower-case hex.` });
  return value;
}

export function registerCareCommands(program: Command): void {
  // ---------------------------------------------------------------- subscriptions
  const subs = program
    .command('subscriptions')
    .description('Follow a patient’s new records (as a doctor, under a consent that covers you); cancel; list');
  withActor(subs.command('subscribe').description('Subscribe to a patient’s new records; refused unless a consent covers you'))
    .requiredOption('--patient-code <code>', 'the patient')
    .option('--category <type...>', 'only these FHIR resource types (default: all the consent covers)')
    .option('--purpose <code>', 'purpose (HL7 ActReason)', 'TREAT')
    .action(async (o: Actor & { patientCode: string; category?: string[]; purpose: string }, cmd: Command) =>
      act(cmd, o, 'subscriptions.subscribe', {
        patientCode: hex64(o.patientCode, '--patient-code'),
        categories: o.category ?? null,
        purpose: purposes([o.purpose])[0]!,
      }),
    );
  withActor(subs.command('cancel').description('Cancel a subscription (as its subscriber or as the patient)'))
    .argument('<subscriptionId>')
    .action(async (id: string, o: Actor, cmd: Command) =>
      act(cmd, o, 'subscriptions.cancel', { subscriptionId: hex64(id, 'subscriptionId') }),
    );
  withReader(subs.command('list').description('Subscriptions to a patient’s records, active and cancelled'))
    .requiredOption('--patient-code <code>', 'the patient')
    .action(async (o: { node: string; patientCode: string }, cmd: Command) =>
      printResult(await new NodeClient(o.node).get(`/api/patients/${hex64(o.patientCode, '--patient-code')}/subscriptions`), json(cmd)),
    );

  // ---------------------------------------------------------------- push outbox
  const push = program
    .command('push')
    .description('An institution’s webhook deliveries (as its operator or with its key): list dead letters, re-drive them');
  const outbox = (c: Command): Command =>
    c
      .requiredOption('--key <file>', 'the institution’s identity file, or one of its operators’')
      .requiredOption('--institution <id>', 'the institution')
      .option('--node <url>', 'the node that delivers for it', DEFAULT_NODE);
  outbox(push.command('deliveries').description('List deliveries by status; dead ones form the dead-letter list'))
    .option('--status <status>', 'dead | pending | delivered | dropped', 'dead')
    .action(async (o: { key: string; institution: string; node: string; status: string }, cmd: Command) => {
      const client = new VaultClient(new Identity(readIdentityFile(resolve(o.key))));
      const url = new URL(`/api/push/${encodeURIComponent(o.institution)}/deliveries?status=${encodeURIComponent(o.status)}`, o.node);
      printResult(((await client.get(url.toString())) as { deliveries: unknown[] }).deliveries, json(cmd));
    });
  outbox(push.command('redrive').description('Put a dead-lettered delivery back in the queue with fresh attempts'))
    .argument('<deliveryId>')
    .action(async (id: string, o: { key: string; institution: string; node: string }, cmd: Command) => {
      const client = new VaultClient(new Identity(readIdentityFile(resolve(o.key))));
      const url = new URL(`/api/push/${encodeURIComponent(o.institution)}/deliveries/${hex64(id, 'deliveryId')}/redrive`, o.node);
      printResult(await client.post(url.toString(), {}), json(cmd));
    });

  // ---------------------------------------------------------------- break-glass
  const bg = program
    .command('break-glass')
    .description('Emergency access without prior consent (doctors with the emergency qualification); the review queue');
  withActor(bg.command('open').description('Open a patient’s records in an emergency: time-limited, logged, notified, queued for review'))
    .requiredOption('--patient-code <code>', 'the patient')
    .requiredOption('--justification <text>', 'why (at least 10 characters); the patient and the auditors read it')
    .option('--reason <code>', 'HL7 ActReason: BTG (break the glass) or ETREAT (emergency treatment)', 'BTG')
    .option('--minutes <n>', 'how long it lasts (1 to 240)', '60')
    .action(async (o: Actor & { patientCode: string; justification: string; reason: string; minutes: string }, cmd: Command) => {
      if (o.reason !== 'BTG' && o.reason !== 'ETREAT') throw new MedledgerError('BAD_REQUEST', { details: '--reason is BTG or ETREAT.' });
      await act(cmd, o, 'access.breakGlass', {
        patientCode: hex64(o.patientCode, '--patient-code'),
        reason: o.reason,
        justification: o.justification,
        durationMs: integerOption(o.minutes, '--minutes', 1, 240) * 60_000,
      });
    });
  withReader(bg.command('queue').description('Break-glass accesses awaiting review (or reviewed, with --status closed)'))
    .option('--institution <id>', 'only this institution’s doctors')
    .option('--status <status>', 'open | closed', 'open')
    .action(async (o: { node: string; institution?: string; status: string }, cmd: Command) => {
      const q = new URLSearchParams({ status: o.status });
      if (o.institution !== undefined) q.set('institution', o.institution);
      printResult(await new NodeClient(o.node).get(`/api/break-glass/reviews?${q.toString()}`), json(cmd));
    });
  withActor(bg.command('review').description('Close a break-glass review with a finding (as an auditor of the doctor’s institution)'))
    .argument('<reviewId>')
    .requiredOption('--finding <finding>', 'justified | unjustified')
    .requiredOption('--note <text>', 'what the review found')
    .action(async (id: string, o: Actor & { finding: string; note: string }, cmd: Command) =>
      act(cmd, o, 'access.reviewBreakGlass', { reviewId: hex64(id, 'reviewId'), finding: o.finding, note: o.note }),
    );

  // ---------------------------------------------------------------- guardians
  const g = program
    .command('guardian')
    .description('Appoint a guardian who consents on your behalf within a scope and period; revoke; list');
  withActor(g.command('appoint').description('Appoint a registered person (by their patient code) as your guardian (as the patient)'))
    .requiredOption('--patient-code <code>', 'your patient code')
    .requiredOption('--guardian <code>', 'the guardian’s patient code')
    .option('--action <action...>', 'consent.grant consent.narrow consent.revoke access.decide', [
      'consent.grant',
      'consent.revoke',
      'access.decide',
    ])
    .option('--category <type...>', 'only consents over these FHIR resource types (default: any)')
    .option('--purpose <code...>', 'only consents for these purposes', ['TREAT'])
    .option('--days <n>', 'for this many days (omit for no end)')
    .action(
      async (
        o: Actor & { patientCode: string; guardian: string; action: string[]; category?: string[]; purpose: string[]; days?: string },
        cmd: Command,
      ) => {
        const from = Date.now() - 60_000;
        await act(cmd, o, 'identity.appointGuardian', {
          patientCode: hex64(o.patientCode, '--patient-code'),
          guardian: hex64(o.guardian, '--guardian'),
          scope: { actions: o.action, categories: o.category ?? null, purposes: purposes(o.purpose) },
          period: { from, to: o.days === undefined ? null : from + integerOption(o.days, '--days', 1, 36_500) * DAY },
        });
      },
    );
  withActor(g.command('revoke').description('End a guardianship (as the patient, or as the guardian resigning)'))
    .argument('<guardianshipId>')
    .action(async (id: string, o: Actor, cmd: Command) =>
      act(cmd, o, 'identity.revokeGuardian', { guardianshipId: hex64(id, 'guardianshipId') }),
    );
  withReader(g.command('list').description('A patient’s guardians (or, with --wards, whom they are guardian of)'))
    .requiredOption('--patient-code <code>', 'the patient')
    .option('--wards', 'list the patients this person is guardian of')
    .action(async (o: { node: string; patientCode: string; wards?: boolean }, cmd: Command) =>
      printResult(
        await new NodeClient(o.node).get(
          `/api/patients/${hex64(o.patientCode, '--patient-code')}/${o.wards === true ? 'wards' : 'guardians'}`,
        ),
        json(cmd),
      ),
    );

  // ---------------------------------------------------------------- qualifications
  const staff = program.command('staff').description('An institution’s staff (with the institution’s key)');
  withActor(staff.command('qualify').description('Set a member of staff’s qualifications, e.g. emergency (may break the glass)'))
    .requiredOption('--staff <staffId>', 'institution/local-id')
    .option('--emergency', 'grant the emergency qualification (doctors only)')
    .option('--none', 'withdraw every qualification')
    .action(async (o: Actor & { staff: string; emergency?: boolean; none?: boolean }, cmd: Command) => {
      if ((o.emergency === true) === (o.none === true)) throw new MedledgerError('BAD_REQUEST', { details: 'Give --emergency or --none.' });
      await act(cmd, o, 'identity.setQualifications', { staffId: o.staff, qualifications: o.emergency === true ? ['emergency'] : [] });
    });
}
