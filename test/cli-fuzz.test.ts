/**
 * Fuzzing the CLI's arguments (issue 9): argv vectors drawn from the real command tree (every
 * command, its arguments and options) with random and mutated values — unknown flags, missing
 * values, huge and unicode strings, paths that do not exist or are files where a directory is
 * wanted — parsed in-process, hundreds of them, then a handful through real processes. Every run
 * ends in success only where success is possible offline, otherwise in a commander usage error or
 * a coded MedledgerError; never another exception, a stack trace, a hang or a signal. The node the
 * commands talk to is a closed port.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { Identity } from '@medledger/core/client/identity';
import { isErrorCode, isMedledgerError } from '@medledger/core/errors';
import { DataDirFiles, readNodeConfig, writeJson } from '../packages/node/src/config/data-dir.ts';
import type * as ProgramModule from '../packages/node/src/cli/program.ts';
import { CLI, freePort, tempDir } from './test-network.ts';

// Locally every run draws new inputs; CI replays one seed (as the decoder fuzzers do).
if (process.env['CI'] === 'true') fc.configureGlobal({ seed: 20261121 });

/** No end within this long is a hang (generous: the machine is shared). */
const RUN_TIMEOUT_MS = 20_000;

let closedNode: string;
let work: string;
let program: typeof ProgramModule;
/** files and directories the path values are drawn from */
const pool: Record<string, string> = {};
let fresh = 0;

beforeAll(async () => {
  // A port nothing listens on: commands that need a node must fail there with a code. The env
  // variable is the default --node, read when the command modules load, so it is set first.
  closedNode = `http://127.0.0.1:${await freePort()}`;
  process.env['MEDLEDGER_NODE'] = closedNode;
  program = await import('../packages/node/src/cli/program.ts');
  work = tempDir('cli-fuzz');
  // Relative paths (and the demo's and the cluster's default directories) land in the work directory.
  process.chdir(work);
  const identity = await Identity.generate('hosp-a/dr-fuzz');
  pool['identity'] = join(work, 'identity.json');
  writeJson(pool['identity'], identity.file, true);
  pool['garbage'] = join(work, 'garbage.json');
  writeFileSync(pool['garbage'], '{"label": "x", "signing": [1, 2');
  pool['emptyJson'] = join(work, 'empty.json');
  writeFileSync(pool['emptyJson'], '{}');
  pool['emptyFile'] = join(work, 'empty');
  writeFileSync(pool['emptyFile'], '');
  pool['resource'] = join(work, 'observation.json');
  writeFileSync(pool['resource'], JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' } }));
  pool['query'] = join(work, 'query.json');
  writeFileSync(pool['query'], JSON.stringify({ cohort: { codes: ['E11'] }, measure: 'count', groupBy: [] }));
  pool['emptyDir'] = join(work, 'empty-dir');
  mkdirSync(pool['emptyDir']);
  pool['missing'] = join(work, 'missing', 'nothing-here');
  // A node data directory of a network that points at the closed port, and a broken one.
  pool['network'] = join(work, 'network');
  const init = await runInProcess([
    'init',
    '--dir',
    pool['network'],
    '--base-port',
    new URL(closedNode).port,
    '--institution',
    'hosp-a:hospital',
  ]);
  expect(init.kind, JSON.stringify(init)).toBe('ok');
  pool['dataDir'] = join(pool['network'], 'hosp-a');
  pool['brokenDataDir'] = join(work, 'broken-data');
  mkdirSync(pool['brokenDataDir']);
  writeFileSync(join(pool['brokenDataDir'], DataDirFiles.config), '{"institution": 1}');
  writeFileSync(join(pool['brokenDataDir'], DataDirFiles.chain), 'not a database');
});

const startedIn = process.cwd();
afterAll(() => {
  process.chdir(startedIn);
  delete process.env['MEDLEDGER_NODE'];
});

// ------------------------------------------------------------------ running argv in-process

type Outcome =
  | { kind: 'ok'; out: string; err: string }
  | { kind: 'usage'; exitCode: number; code: string; out: string; err: string }
  | { kind: 'failed'; error: unknown; out: string; err: string }
  | { kind: 'exit'; exitCode: number; out: string; err: string };

class ExitCalled extends Error {
  constructor(readonly exitCode: number) {
    super(`process.exit(${exitCode})`);
  }
}

function commandsOf(c: Command): Command[] {
  return [c, ...c.commands.flatMap(commandsOf)];
}

/**
 * Parses `argv` with a freshly built program, as `medledger ...argv` would, with commander's exits
 * turned into exceptions and everything printed captured.
 */
async function runInProcess(argv: string[]): Promise<Outcome> {
  const root = program.buildProgram();
  let out = '';
  let err = '';
  for (const c of commandsOf(root)) {
    c.exitOverride().configureOutput({
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
    });
  }
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  const exit = vi.spyOn(process, 'exit').mockImplementation((code?: string | number | null) => {
    throw new ExitCalled(Number(code ?? 0));
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      root.parseAsync(['node', 'medledger', ...argv]),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no end within ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
      }),
    ]);
    return { kind: 'ok', out, err };
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('no end within')) throw e;
    if (e instanceof ExitCalled) return { kind: 'exit', exitCode: e.exitCode, out, err };
    if (e instanceof CommanderError) return { kind: 'usage', exitCode: e.exitCode, code: e.code, out, err };
    return { kind: 'failed', error: e, out, err };
  } finally {
    clearTimeout(timer);
    stdout.mockRestore();
    stderr.mockRestore();
    exit.mockRestore();
  }
}

/** Commands that may succeed with no node: they only make or read local files. */
const OFFLINE = new Set(['init', 'keys generate', 'keys show', 'institution new-key']);
const HELP = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);
const STACK = /\n\s+at /;

/** What every in-process run must end in; `path` is the command's name path. */
function judge(argv: string[], path: string, o: Outcome): void {
  const what = `medledger ${argv.map((a) => (a.length > 80 ? `${a.slice(0, 80)}…(${a.length})` : JSON.stringify(a))).join(' ')}`;
  expect(o.out + o.err, `stack trace: ${what}`).not.toMatch(STACK);
  switch (o.kind) {
    case 'ok':
      expect(OFFLINE.has(path), `succeeded without a node: ${what}\n${o.out.slice(0, 300)}`).toBe(true);
      return;
    case 'usage':
      // Help and version exit 0 (help for a command that does not exist exits 1); usage errors say so.
      if (o.exitCode === 0) expect(HELP.has(o.code), `${o.code}: ${what}`).toBe(true);
      if (!HELP.has(o.code)) {
        expect(o.exitCode, `${o.code}: ${what}`).not.toBe(0);
        expect(o.err, `${o.code}: ${what}`).toMatch(/^error: /m);
      }
      return;
    case 'exit':
      expect(o.exitCode, what).not.toBe(0);
      expect(o.err, what).toMatch(/^medledger: [A-Z_]+: /m);
      return;
    case 'failed': {
      const e = o.error;
      const detail = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
      const { error, exitCode } = program.cliFailure(e);
      // A coded error, or a file the user named that cannot be used: never INTERNAL from input.
      expect(isMedledgerError(e) || error.code !== 'INTERNAL', `uncoded ${detail}\n${what}`).toBe(true);
      expect(isErrorCode(error.code), what).toBe(true);
      expect(exitCode, what).not.toBe(0);
      expect(error.message, what).not.toMatch(STACK);
    }
  }
}

// ------------------------------------------------------------------ argv from the command tree

interface Leaf {
  path: string[];
  command: Command;
}

function leaves(c: Command, path: string[] = []): Leaf[] {
  return c.commands.flatMap((s) =>
    s.commands.length === 0 ? [{ path: [...path, s.name()], command: s }] : leaves(s, [...path, s.name()]),
  );
}

const text: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ maxLength: 8, unit: 'grapheme' }),
  fc.constantFrom('', ' ', '-', '--', '-x', '--json', '=', 'é', '😀', 'a\nb', '\u202e', 'hosp-a', 'hosp-a/dr-fuzz', 'TREAT'),
  fc.integer({ min: 1_000, max: 100_000 }).map((n) => 'x'.repeat(n)),
);
const number: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('abc', '', '-1', '0', '1', '3', '1.5', '1e3', 'NaN', 'Infinity', '99999999999999999999', '65536', '0x10', ' 8', '８'),
  fc.integer().map(String),
);
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const url: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constant('CLOSED') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'not a url',
      'ftp://127.0.0.1/',
      'http://127.0.0.1:0',
      'http://127.0.0.1:99999',
      '',
      'http://',
      'é',
      '//x',
      'file:///',
    ),
  },
);

/** A path: one of the prepared files and directories, a new name in the work directory, or wrong. */
function pathValue(kind: 'file' | 'dir' | 'write'): fc.Arbitrary<string> {
  const prepared = fc.constantFrom(
    'identity',
    'garbage',
    'emptyJson',
    'emptyFile',
    'resource',
    'query',
    'emptyDir',
    'missing',
    'dataDir',
    'brokenDataDir',
  );
  return fc.oneof(
    prepared.map((k) => `POOL:${k}`),
    fc.constantFrom('', '.', '-', 'é'),
    fc.string({ minLength: 1, maxLength: 12 }).map((s) => `NEW:${kind}:${s.replace(/[/\\.\0]/g, '_')}`),
    fc.constant(`NEW:${kind}:${'n'.repeat(300)}`),
    prepared.map((k) => `POOL:${k}/child`),
  );
}

/** Resolves the markers a value carries: the closed node URL, prepared paths, new paths. */
function resolveValue(v: string): string {
  const inline = /^(--[a-z-]+=)(.*)$/s.exec(v);
  if (inline !== null) return `${inline[1]!}${inline[2]!.split(',').map(resolveValue).join(',')}`;
  if (v === 'CLOSED') return closedNode;
  if (v.startsWith('POOL:')) {
    const [k, ...rest] = v.slice(5).split('/');
    return [pool[k!]!, ...rest].join('/');
  }
  if (v.startsWith('NEW:')) return join(work, `new-${fresh++}-${v.split(':').slice(2).join(':')}`);
  return v;
}

/** A value for an argument or option, chosen by what its placeholder names. */
function valueFor(placeholder: string, command: string): fc.Arbitrary<string> {
  // `start` never gets a whole data directory: it would start a node in this process.
  if (command === 'start' && placeholder === 'dir')
    return fc.constantFrom('POOL:emptyFile', 'POOL:missing', 'POOL:emptyDir', 'POOL:brokenDataDir', 'POOL:identity');
  const any = fc.oneof({ weight: 1, arbitrary: text }, { weight: 1, arbitrary: number });
  switch (placeholder) {
    case 'file':
    case 'path':
    case 'data-dir':
      return fc.oneof({ weight: 4, arbitrary: pathValue('file') }, { weight: 1, arbitrary: any });
    case 'dir':
      return fc.oneof({ weight: 4, arbitrary: pathValue('dir') }, { weight: 1, arbitrary: any });
    case 'url':
      return url;
    case 'port':
    case 'n':
    case 'seq':
    case 'epsilon':
    case 'seconds':
      return fc.oneof({ weight: 3, arbitrary: number }, { weight: 1, arbitrary: text });
    case 'code':
    case 'txId':
    case 'recordId':
    case 'requestId':
    case 'consentId':
    case 'proposalId':
    case 'id':
      return fc.oneof(hex64, any);
    case 'json':
      return fc.oneof(fc.json({ maxDepth: 2 }), fc.constantFrom('{', '[]', '{"a":', 'null', '{"__proto__":{"x":1}}'), text);
    case 'spec':
      return fc.oneof(
        fc.constantFrom('hosp-a:hospital', 'hosp-a:hospital:A', 'x', 'HOSP:hospital', 'a:castle', ':hospital', 'hosp-a'),
        text,
      );
    default:
      return any;
  }
}

function placeholderOf(flags: string): string {
  return /[<[]([^>\]]+?)(?:\.\.\.)?[>\]]/.exec(flags)?.[1] ?? '';
}

/** argv for one command: its path, arguments and options with values, some left out or repeated. */
function argvFor(leaf: Leaf): fc.Arbitrary<string[]> {
  const name = leaf.path.join(' ');
  const args = leaf.command.registeredArguments.map((a) =>
    fc.oneof({ weight: 5, arbitrary: valueFor(a.name(), name).map((v) => [v]) }, { weight: 1, arbitrary: fc.constant<string[]>([]) }),
  );
  const options = leaf.command.options.map((o) => {
    const flag = o.long ?? o.short ?? o.flags;
    const takesValue = o.required || o.optional;
    const values = takesValue
      ? fc.array(valueFor(placeholderOf(o.flags), name), { minLength: 1, maxLength: o.variadic ? 3 : 1 }).map((vs) => [flag, ...vs])
      : fc.constant([flag]);
    return fc.oneof(
      { weight: o.mandatory ? 8 : 3, arbitrary: values },
      { weight: 2, arbitrary: fc.constant<string[]>([]) },
      { weight: 1, arbitrary: fc.tuple(values, values).map(([a, b]) => [...a, ...b]) },
      { weight: takesValue ? 1 : 0, arbitrary: values.map((v) => [`${v[0]}=${v.slice(1).join(',')}`]) },
    );
  });
  return fc
    .tuple(fc.tuple(...args), fc.shuffledSubarray(options, { minLength: options.length, maxLength: options.length }), fc.boolean())
    .chain(([a, opts, json]) => fc.tuple(fc.constant(a), fc.tuple(...opts), fc.constant(json)))
    .map(([a, opts, json]) => [...(json ? ['--json'] : []), ...leaf.path, ...a.flat(), ...opts.flat()]);
}

/** Mutations of a whole argv vector: an unknown flag, a value dropped, tokens repeated or swapped. */
function mutatedArgv(argv: fc.Arbitrary<string[]>): fc.Arbitrary<string[]> {
  const edit = fc.oneof(
    fc
      .tuple(fc.nat(), fc.constantFrom('--bogus', '-z', '--json=1', '--no-such', '--', '---x', '-', '--help', '--version', '-V', '-h'))
      .map(([at, t]) => (v: string[]) => [...v.slice(0, at % (v.length + 1)), t, ...v.slice(at % (v.length + 1))]),
    fc.nat().map((at) => (v: string[]) => v.filter((_x, i) => i !== at % Math.max(v.length, 1))),
    fc.nat().map((at) => (v: string[]) => v.slice(0, Math.max(1, at % (v.length + 1)))),
    fc.nat().map((at) => (v: string[]) => [...v, v[at % v.length]!]),
    fc.tuple(fc.nat(), fc.nat()).map(([i, j]) => (v: string[]) => {
      const c = [...v];
      [c[i % c.length], c[j % c.length]] = [c[j % c.length]!, c[i % c.length]!];
      return c;
    }),
    fc.constantFrom('vaultt', 'keys', 'help', 'Init', '').map((t) => (v: string[]) => [t, ...v.slice(1)]),
  );
  return fc.tuple(argv, fc.array(edit, { maxLength: 2 })).map(([v, edits]) => edits.reduce((acc, f) => f(acc), v));
}

// ------------------------------------------------------------------ the fuzzers

describe('fuzzing the CLI: every argv ends in success offline, a usage error or a coded error', () => {
  it('walks every command of the real tree', () => {
    const names = leaves(program.buildProgram()).map((l) => l.path.join(' '));
    expect(names).toEqual(expect.arrayContaining(['init', 'start', 'tx submit', 'vault store', 'study run', 'verify', 'cluster up']));
  });

  it('hundreds of argv vectors from the command tree, mutated, parsed in-process', async () => {
    const all = leaves(program.buildProgram());
    const cases = fc
      .constantFrom(...all)
      .chain((leaf) => fc.record({ path: fc.constant(leaf.path.join(' ')), argv: fc.oneof(argvFor(leaf), mutatedArgv(argvFor(leaf))) }));
    await fc.assert(
      fc.asyncProperty(cases, async ({ path, argv }) => {
        // The demo and a local cluster would start servers: whatever else they get, their
        // directory is a file (the last value of an option wins), so they stop before that.
        const contained =
          path === 'demo' ? [...argv, '--data', 'POOL:emptyFile'] : path === 'cluster up' ? [...argv, '--dir', 'POOL:emptyFile'] : argv;
        const resolved = contained.map(resolveValue);
        const o = await runInProcess(resolved);
        judge(resolved, path, o);
        // A network made from the command line is one a node can start from.
        if (o.kind === 'ok' && path === 'init') {
          for (const line of o.out.split('\n').filter((l) => l.includes('medledger start --data '))) {
            expect(() => readNodeConfig(line.split('medledger start --data ')[1]!), `${resolved.join(' ')}: ${line}`).not.toThrow();
          }
        }
      }),
      { numRuns: 800 },
    );
  });

  it('regression: a number that is no port or count is refused before anything is made or started (init used to write port 65536)', async () => {
    const fresh = join(work, 'regression-init');
    for (const [argv, option] of [
      [['init', '--dir', fresh, '--base-port', '65536'], '--base-port'],
      [['init', '--dir', fresh, '--base-port', 'abc', '--institution', 'hosp-a:hospital'], '--base-port'],
      [['start', '--data', pool['emptyFile']!, '--port', 'abc'], '--port'],
      [['demo', '--data', pool['emptyFile']!, '--port', '1e3'], '--port'],
      [['cluster', 'up', '--dir', join(pool['emptyFile']!, 'c'), '--nats', 'NaN'], '--nats'],
      [['cluster', 'up', '--dir', join(pool['emptyFile']!, 'c'), '--validators', '2.5'], '--validators'],
    ] as const) {
      const o = await runInProcess([...argv]);
      expect(o.kind, argv.join(' ')).toBe('failed');
      const error = (o as { error: { code?: string; message?: string } }).error;
      expect([error.code, error.message?.includes(option)], argv.join(' ')).toEqual(['BAD_REQUEST', true]);
    }
    expect(existsSync(fresh)).toBe(false);
  });

  it('regression: files named on the command line fail with a code, not a bare exception quoting them', async () => {
    // A study query that is not JSON: a SyntaxError quoting the file's text, before.
    const query = await runInProcess([
      'study',
      'register',
      '--key',
      pool['identity']!,
      '--id',
      's',
      '--title',
      't',
      '--query',
      pool['garbage']!,
    ]);
    expect(query.kind).toBe('failed');
    const error = (query as { error: { code?: string; message?: string } }).error;
    expect(error.code).toBe('INVALID_JSON');
    expect(error.message).not.toContain('signing');
    // A directory where a file goes: `medledger: EISDIR: …` with no code, before.
    const dir = join(work, 'a-directory');
    mkdirSync(dir);
    const out = await runInProcess(['keys', 'generate', '--label', 'x', '--out', dir]);
    expect(out.kind).toBe('failed');
    expect(program.cliFailure((out as { error: unknown }).error)).toMatchObject({ error: { code: 'BAD_REQUEST' }, exitCode: 2 });
  });

  it('a command that needs a node fails with NODE_UNAVAILABLE at a closed port', async () => {
    const hex = 'ab'.repeat(32);
    for (const argv of [
      ['tx', 'status', hex],
      ['records', 'show', hex],
      ['consent', 'list', '--patient-code', hex],
      ['access', 'log', '--patient-code', hex],
      ['study', 'list'],
      ['tx', 'submit', '--key', pool['identity']!, '--type', 'consent.revoke', '--body', '{"consentId":"x"}'],
      ['vault', 'audit', '--key', pool['identity']!, '--institution', 'hosp-a'],
    ]) {
      const o = await runInProcess(argv);
      expect(o.kind, argv.join(' ')).toBe('failed');
      expect((o as { error: { code?: string } }).error.code, argv.join(' ')).toBe('NODE_UNAVAILABLE');
    }
  });
});

// ------------------------------------------------------------------ a few real processes

function medledger(argv: string[]): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: work,
      env: { ...process.env, MEDLEDGER_NODE: closedNode },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`medledger ${argv.join(' ')}: no end within ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

describe('the CLI as a process: exit status and one line on stderr', () => {
  it('help and version exit 0; usage errors and coded failures exit non-zero with one clear line', async () => {
    const hex = 'cd'.repeat(32);
    // Paths of their own: the in-process fuzzer may have written to the prepared ones.
    const dir = join(work, 'spawned-dir');
    mkdirSync(dir);
    const file = join(work, 'spawned-file');
    writeFileSync(file, 'x');
    const network = join(work, 'spawned-network');
    const made = await runInProcess([
      'init',
      '--dir',
      network,
      '--base-port',
      new URL(closedNode).port,
      '--institution',
      'hosp-a:hospital',
    ]);
    expect(made.kind).toBe('ok');
    // status: 'zero', 'usage' (commander's), or the code of the one line on stderr
    const cases: { argv: string[]; status: string }[] = [
      { argv: ['--version'], status: 'zero' },
      { argv: ['vault', 'store', '--help'], status: 'zero' },
      { argv: ['no-such-command'], status: 'usage' },
      { argv: ['tx', 'submit', '--key'], status: 'usage' },
      { argv: ['tx', 'status', hex], status: 'NODE_UNAVAILABLE' },
      { argv: ['tx', 'status', hex, '--node', 'not a url'], status: 'NODE_UNAVAILABLE' },
      { argv: ['keys', 'show', dir], status: 'INVALID_JSON' },
      { argv: ['start', '--data', file], status: 'NOT_FOUND' },
      // It used to start the node, then fail to listen on port NaN with an uncoded RangeError.
      { argv: ['start', '--data', join(network, 'hosp-a'), '--port', 'abc'], status: 'BAD_REQUEST' },
    ];
    // Four at a time: the machine is shared.
    const runs: Awaited<ReturnType<typeof medledger>>[] = [];
    for (let i = 0; i < cases.length; i += 4) runs.push(...(await Promise.all(cases.slice(i, i + 4).map((c) => medledger(c.argv)))));
    for (const [i, r] of runs.entries()) {
      const { argv, status } = cases[i]!;
      const what = `medledger ${argv.join(' ')}: ${r.stderr}`;
      expect(r.signal, what).toBeNull();
      expect(r.stdout + r.stderr, what).not.toMatch(STACK);
      if (status === 'zero') {
        expect(r.status, what).toBe(0);
        continue;
      }
      expect(r.status, what).not.toBe(0);
      if (status === 'usage') expect(r.stderr, what).toMatch(/^error: /);
      else expect(r.stderr.split('\n')[0], what).toMatch(new RegExp(`^medledger: ${status}: `));
    }
  });
});
