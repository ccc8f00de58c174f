/**
 * `medledger study …`: a researcher registers a study, runs its query across custodians (secure
 * aggregation; the answer is the released total, suppressed and noised), and fetches a record
 * de-identified for the study. Patients consent to a study with `consent grant --study <id>`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { Identity } from '@medledger/core/client/identity';
import { VaultClient } from '@medledger/core/client/vault-client';
import type { AggregationRound, Member, RecordEntry } from '@medledger/core/contracts/state';
import { MedledgerError } from '@medledger/core/errors';
import { isPurpose } from '@medledger/core/policy/purposes';
import { readIdentityFile } from '../../config/data-dir.ts';
import { streamingFetch } from '../../vault/streaming-fetch.ts';
import { NodeClient } from '../node-client.ts';
import { printResult } from '../output.ts';
import { readJsonFile } from '../json-file.ts';

const DEFAULT_NODE = process.env['MEDLEDGER_NODE'] ?? 'http://localhost:8080';

function json(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ json?: boolean }>().json === true;
}

/** ε as the ledger counts it: whole thousandths. */
function milli(value: string, what: string): number {
  const n = Number(value);
  const m = Math.round(n * 1000);
  if (!Number.isFinite(n) || m < 1 || Math.abs(n * 1000 - m) > 1e-6)
    throw new MedledgerError('BAD_REQUEST', { details: `${what} is a positive number with at most three decimals.` });
  return m;
}

async function signAndSubmit(o: { key: string; node: string }, type: 'research.registerStudy' | 'research.openRound', body: object) {
  const me = new Identity(readIdentityFile(resolve(o.key)));
  const node = new NodeClient(o.node);
  const { tx, txId } = await me.tx(await node.network(), type, body as never);
  return { node, txId, answer: await node.submit(tx, true) };
}

export function registerResearchCommands(program: Command): void {
  const study = program.command('study').description('Research studies: register, run federated statistics, fetch de-identified records');

  study
    .command('register')
    .description('Register a study (as a researcher of a research institute)')
    .requiredOption('--key <file>', 'your identity file (keys stay on this machine)')
    .option('--node <url>', 'your node’s API', DEFAULT_NODE)
    .requiredOption('--id <studyId>', 'a lower-case slug, e.g. diabetes-2026')
    .requiredOption('--title <text>', 'what the study is for, as patients will read it')
    .requiredOption('--query <file>', 'the study’s query as JSON (cohort codes, measure, groupBy)')
    .option('--categories <types...>', 'the FHIR resource types it may use', ['Patient', 'Condition', 'Observation'])
    .option('--purpose <code>', 'HRESCH (research) or PUBHLTH (public health)', 'HRESCH')
    .option('--level <level>', 'de-identification of served records: pseudonymised | anonymised', 'pseudonymised')
    .option('--k <n>', 'smallest cell count released (≥ 5)', '5')
    .option('--budget <epsilon>', 'privacy budget ε for all its releases (omit for releases without noise)')
    .action(
      async (
        o: {
          key: string;
          node: string;
          id: string;
          title: string;
          query: string;
          categories: string[];
          purpose: string;
          level: string;
          k: string;
          budget?: string;
        },
        cmd: Command,
      ) => {
        const query = readJsonFile(resolve(o.query), 'study query');
        const { txId, answer } = await signAndSubmit(o, 'research.registerStudy', {
          studyId: o.id,
          title: o.title,
          purpose: o.purpose,
          categories: o.categories,
          query,
          deidentification: o.level,
          k: Number(o.k),
          epsilonBudgetMilli: o.budget === undefined ? null : milli(o.budget, '--budget'),
        });
        printResult({ ...answer, txId, studyId: o.id }, json(cmd));
      },
    );

  study
    .command('list')
    .description('Registered studies, newest first')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (o: { node: string }, cmd: Command) => printResult(await new NodeClient(o.node).get('/api/studies'), json(cmd)));

  study
    .command('show')
    .description('A study, its budget and its rounds with their released results')
    .argument('<studyId>')
    .option('--node <url>', 'node API', DEFAULT_NODE)
    .action(async (id: string, o: { node: string }, cmd: Command) =>
      printResult(await new NodeClient(o.node).get(`/api/studies/${id}`), json(cmd)),
    );

  study
    .command('run')
    .description('Run the study’s query at the custodians and wait for the released total (spends ε)')
    .requiredOption('--key <file>', 'your identity file')
    .option('--node <url>', 'your node’s API', DEFAULT_NODE)
    .requiredOption('--id <studyId>', 'the study')
    .option('--custodians <ids...>', 'the custodians to ask (at least 3; default: every care institution)')
    .option('--epsilon <epsilon>', 'ε this release spends (required when the study has a budget)')
    .option('--timeout <seconds>', 'how long custodians have to answer', '60')
    .action(
      async (o: { key: string; node: string; id: string; custodians?: string[]; epsilon?: string; timeout: string }, cmd: Command) => {
        const node = new NodeClient(o.node);
        const custodians =
          o.custodians ??
          (await node.get<Member[]>('/api/members'))
            .filter((m) => m.status === 'active' && m.kind !== 'research' && m.encryptionKey !== null)
            .map((m) => m.id);
        const timeoutMs = Math.round(Number(o.timeout) * 1000);
        const { txId, answer } = await signAndSubmit(o, 'research.openRound', {
          studyId: o.id,
          custodians,
          epsilonMilli: o.epsilon === undefined ? null : milli(o.epsilon, '--epsilon'),
          timeoutMs,
        });
        if (answer.code !== undefined && answer.code !== 'OK') throw new MedledgerError(answer.code as never);
        const until = Date.now() + timeoutMs + 60_000;
        let round = await node.get<AggregationRound>(`/api/rounds/${txId}`);
        while (round.status === 'open' && Date.now() < until) {
          if (!json(cmd))
            process.stderr.write(`round ${txId.slice(0, 12)}: ${Object.keys(round.shares).length}/${custodians.length} shares\r`);
          await new Promise((r) => setTimeout(r, 500));
          round = await node.get<AggregationRound>(`/api/rounds/${txId}`);
        }
        if (!json(cmd)) process.stderr.write('\n');
        if (round.status === 'failed') throw new MedledgerError((round.failure ?? 'ROUND_INCOMPLETE') as never);
        if (round.status === 'open') throw new MedledgerError('ROUND_OPEN');
        printResult({ roundId: txId, resultHash: round.resultHash, dropped: round.dropped, result: round.result }, json(cmd));
      },
    );

  study
    .command('fetch')
    .description('Fetch one record de-identified for the study (from its custodian’s vault; no files)')
    .requiredOption('--key <file>', 'your identity file')
    .option('--node <url>', 'your node’s API', DEFAULT_NODE)
    .requiredOption('--id <studyId>', 'the study')
    .requiredOption('--record <id>', 'record id')
    .option('--purpose <code>', 'the study’s purpose', 'HRESCH')
    .option('--out <dir>', 'write resource.json here', '.')
    .action(async (o: { key: string; node: string; id: string; record: string; purpose: string; out: string }, cmd: Command) => {
      if (!isPurpose(o.purpose)) throw new MedledgerError('BAD_REQUEST', { details: `Unknown purpose "${o.purpose}".` });
      const me = new Identity(readIdentityFile(resolve(o.key)));
      const node = new NodeClient(o.node);
      const entry = await node.get<RecordEntry>(`/api/records/${o.record}`);
      const custodian = (await node.get<Member[]>('/api/members')).find((m) => m.id === entry.custodian);
      if (typeof custodian?.vaultUrl !== 'string') throw new MedledgerError('RECORD_NOT_HERE');
      const fetched = await new VaultClient(me, { fetch: streamingFetch }).fetchDeidentified(custodian.vaultUrl, o.record, o.id, o.purpose);
      const out = resolve(o.out);
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'resource.json'), JSON.stringify(fetched.resource, null, 2) + '\n', { mode: 0o600 });
      printResult(
        { recordId: o.record, study: o.id, level: fetched.level, accessTx: fetched.accessTx, resource: join(out, 'resource.json') },
        json(cmd),
      );
    });
}
