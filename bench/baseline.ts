/**
 * `npm run bench:baseline`: the seed stack as the suite's baseline. TMSMD built its medical-data
 * sharing on Ethereum with Solidity contracts; this runs the same workload as medledger on a
 * local EVM node (Foundry's anvil in automine mode: a block as soon as transactions arrive, the
 * Ethereum dev default and the seed stack's most favourable mode) so the two throughputs can be
 * compared as a ratio measured in the same run.
 *
 * Workload: `bench/evm/RecordLedger.sol`, compiled at run time with solcjs (optimizer on). Each
 * case is three dependent transactions from three accounts: a doctor registers a record index
 * entry, the patient grants a consent to a second doctor for that record, and that doctor records
 * an access (admitted only under an unexpired consent); so the stream is a third of each, and a
 * reverted transaction fails the benchmark. Many lanes run cases concurrently (one transaction in
 * flight per lane, each account with its own nonce sequence); every transaction is signed before
 * the clock starts, with explicit nonces and gas limits estimated once per operation in setup.
 * Mined = its block announced on a `newHeads` subscription (blocks are watched and their receipts
 * read, never a transaction polled). A fresh anvil (no state kept) per run; lone latency is
 * measured after the load, as in `bench/embedded.ts`. anvil can leave transactions pending in
 * automine mode: when no block comes for a while and the pool holds pending transactions, the
 * bench mines one with `evm_mine` and reports how often it had to (`baseline.nudges`).
 *
 *   npm run bench:baseline -- [--txs 6000] [--runs 3] [--lanes 64] [--quick]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import solc from 'solc';
import {
  createPublicClient,
  createTestClient,
  encodeFunctionData,
  http,
  keccak256,
  publicActions,
  stringToHex,
  type Abi,
  type Address,
  type Hex,
  type TransactionReceipt,
  webSocket,
} from 'viem';
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { freePort } from '../test/test-network.ts';
import { percentile, progress, report, summarise } from './bench-report.ts';

const { values: args } = parseArgs({
  options: {
    txs: { type: 'string', default: '6000' },
    runs: { type: 'string', default: '3' },
    lanes: { type: 'string', default: '64' },
    quick: { type: 'boolean', default: false },
  },
});
const OPS_PER_CASE = 3;
const CASES = Math.ceil((args.quick ? 1500 : Number(args.txs)) / OPS_PER_CASE);
const TXS = CASES * OPS_PER_CASE;
const RUNS = args.quick ? 1 : Number(args.runs);
const LANES = Math.min(Number(args.lanes), CASES);
const WINDOW = Math.min(1000, TXS);
const LONE_CASES = 7;

const ANVIL_PACKAGE = '@foundry-rs/anvil-linux-amd64';
/**
 * `--prune-history`: no historical states, in memory or on disk (by default anvil writes old states
 * to a temporary directory), like a full node keeping its latest state. anvil's cost per block grows
 * with the number of blocks, even empty ones; measured here, about twice as fast without this flag.
 * `--silent`: no log line per transaction.
 */
const ANVIL_FLAGS = ['--accounts', '0', '--silent', '--prune-history'];
const READY_TIMEOUT_MS = 15_000;
const RPC_TIMEOUT_MS = 30_000;
const TX_TIMEOUT_MS = 60_000;
/** No new block for this long while transactions are outstanding and pending: nudge. */
const STALL_MS = 1_000;
/** How often the head is polled besides the subscription, and stalls are checked. */
const CHECK_MS = 200;
const RECEIPT_BATCH = 100;
const MAX_FEE = 100_000_000_000n;
const TIP = 1_000_000_000n;
const BALANCE = 10n ** 24n;
const EXPIRY = BigInt(Math.floor(Date.now() / 1000) + 365 * 24 * 3600);
const PURPOSE = stringToHex('treatment', { size: 32 });
const RECORD_TYPE = stringToHex('Observation', { size: 32 });

// --- toolchain ---------------------------------------------------------------------------------

/** The anvil binary shipped inside the npm package, or undefined on other platforms. */
function anvilBinary(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  try {
    const manifest = createRequire(import.meta.url).resolve(`${ANVIL_PACKAGE}/package.json`);
    const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin: { anvil: string } };
    const path = join(dirname(manifest), bin.anvil);
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

interface Compiled {
  abi: Abi;
  bytecode: Hex;
  solcVersion: string;
  ms: number;
}

interface SolcOutput {
  errors?: { severity: 'error' | 'warning' | 'info'; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
}

interface Solc {
  compile(input: string): string;
  version(): string;
}

function compileLedger(): Compiled {
  const started = performance.now();
  const source = readFileSync(join(import.meta.dirname, 'evm', 'RecordLedger.sol'), 'utf8');
  const input = {
    language: 'Solidity',
    sources: { 'RecordLedger.sol': { content: source } },
    settings: { optimizer: { enabled: true, runs: 200 }, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  };
  const compiler = solc as unknown as Solc;
  const out = JSON.parse(compiler.compile(JSON.stringify(input))) as SolcOutput;
  const problems = (out.errors ?? []).filter((e) => e.severity !== 'info');
  if (problems.length > 0) throw new Error(`RecordLedger.sol:\n${problems.map((e) => e.formattedMessage).join('\n')}`);
  const contract = out.contracts?.['RecordLedger.sol']?.['RecordLedger'];
  if (contract === undefined) throw new Error('solc produced no RecordLedger');
  return {
    abi: contract.abi,
    bytecode: `0x${contract.evm.bytecode.object}`,
    solcVersion: compiler.version(),
    ms: performance.now() - started,
  };
}

// --- the node ----------------------------------------------------------------------------------

function makeClient(url: string, batch: boolean) {
  return createTestClient({ mode: 'anvil', transport: http(url, { batch, timeout: RPC_TIMEOUT_MS, retryCount: 0 }) }).extend(publicActions);
}
type Rpc = ReturnType<typeof makeClient>;

/** A WebSocket client on the same port, for the `newHeads` subscription. */
function headsClient(url: string) {
  return createPublicClient({
    transport: webSocket(url.replace(/^http/, 'ws'), { timeout: RPC_TIMEOUT_MS, retryCount: 0, reconnect: false, keepAlive: false }),
  });
}

/** The block number of a `newHeads` notification. */
function headNumber(data: unknown): bigint | undefined {
  const header = typeof data === 'object' && data !== null && 'result' in data ? data.result : undefined;
  if (typeof header !== 'object' || header === null || !('number' in header) || typeof header.number !== 'string') return undefined;
  return BigInt(header.number);
}

const toError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

interface Anvil {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The anvil process of the run in progress, killed on SIGINT/SIGTERM and at exit. */
let live: Anvil | undefined;

/** Starts anvil on a free port; tries another port if the one found was taken meanwhile. */
async function startAnvil(bin: string): Promise<Anvil> {
  for (let attempt = 1; ; attempt++) {
    const { anvil, ready } = spawnAnvil(bin, await freePort());
    live = anvil;
    try {
      await ready;
      return anvil;
    } catch (err) {
      await anvil.stop();
      if (attempt === 3) throw err;
    }
  }
}

function spawnAnvil(bin: string, port: number): { anvil: Anvil; ready: Promise<void> } {
  const child = spawn(bin, ['--host', '127.0.0.1', '--port', String(port), ...ANVIL_FLAGS], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
  child.once('error', (err) => (output += String(err)));
  const exited = new Promise<boolean>((resolve) => child.once('close', () => resolve(true)));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    child.kill('SIGTERM');
    if (!(await Promise.race([exited, sleep(5_000, false, { ref: false })]))) child.kill('SIGKILL');
  };
  const anvil = { url: `http://127.0.0.1:${port}`, child, stop };
  return { anvil, ready: waitReady(anvil, () => output) };
}

async function waitReady(anvil: Anvil, output: () => string): Promise<void> {
  const probe = makeClient(anvil.url, false);
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (anvil.child.exitCode !== null || anvil.child.pid === undefined) throw new Error(`anvil did not start: ${output()}`);
    try {
      await probe.getChainId();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`anvil did not answer on ${anvil.url} within ${READY_TIMEOUT_MS} ms: ${output()}`);
}

// --- watching blocks ---------------------------------------------------------------------------

interface Waiter {
  label: string;
  resolve: (minedAt: number) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Follows the chain head (pushed over a `newHeads` subscription, with a slow poll as a safety net)
 * and settles each tracked transaction when its receipt appears in a new block, at the time that
 * block was announced; a reverted one rejects. Nudges a stalled automine with `evm_mine` and
 * counts the nudges.
 */
class BlockWatcher {
  nudges = 0;
  blocks = 0;
  readonly #rpc: Rpc;
  readonly #heads: ReturnType<typeof headsClient>;
  readonly #waiters = new Map<Hex, Waiter>();
  readonly #announcedAt = new Map<bigint, number>();
  #next: bigint;
  #head: bigint;
  #lastBlockAt = performance.now();
  #draining: Promise<void> | undefined;
  #ticking = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<unknown>) | undefined;

  private constructor(rpc: Rpc, heads: ReturnType<typeof headsClient>, head: bigint) {
    this.#rpc = rpc;
    this.#heads = heads;
    this.#head = head;
    this.#next = head + 1n;
  }

  /** Watches blocks after the current head; resolves once the subscription is live. */
  static async start(url: string): Promise<BlockWatcher> {
    const rpc = makeClient(url, true);
    const watcher = new BlockWatcher(rpc, headsClient(url), await rpc.getBlockNumber({ cacheTime: 0 }));
    const { unsubscribe } = await watcher.#heads.transport.subscribe({
      params: ['newHeads'],
      onData: (data: unknown) => {
        const head = headNumber(data);
        if (head !== undefined) watcher.#onHead(head);
      },
      onError: (err: unknown) => watcher.#failAll(err),
    });
    watcher.#unsubscribe = unsubscribe;
    watcher.#timer = setInterval(() => void watcher.#tick(), CHECK_MS);
    return watcher;
  }

  /** Sends a transaction and resolves with the time its block was announced. */
  track(hash: Hex, label: string, send: () => Promise<unknown>): Promise<number> {
    if (this.#stopped) return Promise.reject(new Error(`${label}: block watcher stopped`));
    const mined = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(hash, new Error(`${label}: not mined within ${TX_TIMEOUT_MS} ms`)), TX_TIMEOUT_MS);
      this.#waiters.set(hash, { label, resolve, reject, timer });
    });
    send().catch((err: unknown) => this.#settle(hash, toError(err)));
    return mined;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#unsubscribe?.().catch(() => undefined);
    (await this.#heads.transport.getRpcClient()).close();
    await this.#draining;
    this.#failAll(new Error('block watcher stopped'));
  }

  #settle(hash: Hex, outcome: number | Error): void {
    const waiter = this.#waiters.get(hash);
    if (waiter === undefined) return;
    this.#waiters.delete(hash);
    clearTimeout(waiter.timer);
    if (typeof outcome === 'number') waiter.resolve(outcome);
    else waiter.reject(outcome);
  }

  #failAll(err: unknown): void {
    for (const hash of [...this.#waiters.keys()]) this.#settle(hash, new Error(`block watcher: ${toError(err).message}`));
  }

  #onHead(head: bigint): void {
    const now = performance.now();
    for (let n = this.#head + 1n; n <= head; n++) this.#announcedAt.set(n, now);
    if (head > this.#head) this.#head = head;
    this.#lastBlockAt = now;
    this.#drain();
  }

  /** Fetches the receipts of every announced block not yet read, one drain at a time. */
  #drain(): void {
    if (this.#draining !== undefined) return;
    this.#draining = this.#readUpToHead()
      .catch((err: unknown) => this.#failAll(err))
      .finally(() => {
        this.#draining = undefined;
        if (this.#next <= this.#head) this.#drain();
      });
  }

  async #readUpToHead(): Promise<void> {
    while (this.#next <= this.#head) {
      const numbers: bigint[] = [];
      for (let n = this.#next; n <= this.#head && numbers.length < RECEIPT_BATCH; n++) numbers.push(n);
      const blocks = await Promise.all(numbers.map((blockNumber) => this.#rpc.getBlockReceipts({ blockNumber })));
      blocks.forEach((receipts, i) => {
        const at = this.#announcedAt.get(numbers[i]!) ?? performance.now();
        this.#announcedAt.delete(numbers[i]!);
        for (const r of receipts) this.#seen(r, at);
      });
      this.blocks += numbers.length;
      this.#next += BigInt(numbers.length);
    }
  }

  #seen(receipt: TransactionReceipt, at: number): void {
    const waiter = this.#waiters.get(receipt.transactionHash);
    if (waiter === undefined) return;
    this.#settle(receipt.transactionHash, receipt.status === 'success' ? at : new Error(`${waiter.label} reverted`));
  }

  /** The safety net: a head the subscription missed, or a stall with pending transactions. */
  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const head = await this.#rpc.getBlockNumber({ cacheTime: 0 });
      if (head > this.#head) this.#onHead(head);
      else await this.#nudgeIfStalled();
    } catch (err) {
      this.#failAll(err);
    } finally {
      this.#ticking = false;
    }
  }

  async #nudgeIfStalled(): Promise<void> {
    if (this.#waiters.size === 0 || performance.now() - this.#lastBlockAt < STALL_MS) return;
    this.#lastBlockAt = performance.now();
    const { pending } = await this.#rpc.getTxpoolStatus();
    if (pending === 0) return;
    await this.#rpc.request({ method: 'evm_mine', params: undefined });
    this.nudges++;
    progress(`baseline: no block for ${STALL_MS} ms with ${pending} pending: evm_mine (nudge ${this.nudges})`);
  }
}

// --- accounts, setup and signing ---------------------------------------------------------------

/** The three accounts of one lane: a doctor who registers, the patient, a doctor who reads. */
interface Lane {
  author: PrivateKeyAccount;
  patient: PrivateKeyAccount;
  reader: PrivateKeyAccount;
  patientCode: Hex;
  institution: Hex;
}

interface Ledger {
  rpc: Rpc;
  chainId: number;
  ledger: Address;
  abi: Abi;
}

interface GasLimits {
  register: bigint;
  grant: bigint;
  access: bigint;
}

interface SignedTx {
  label: string;
  hash: Hex;
  raw: Hex;
}

/** Deterministic keys, so a run is reproducible; they fund nothing outside the local chain. */
function account(run: number, name: string): PrivateKeyAccount {
  return privateKeyToAccount(keccak256(stringToHex(`medledger-baseline/${run}/${name}`)));
}

function makeLane(run: number, name: string, index: number): Lane {
  return {
    author: account(run, `${name}/author`),
    patient: account(run, `${name}/patient`),
    reader: account(run, `${name}/reader`),
    patientCode: keccak256(stringToHex(`patient-code/${run}/${name}`)),
    institution: stringToHex(index % 2 === 0 ? 'hosp-a' : 'hosp-b', { size: 32 }),
  };
}

async function fund(rpc: Rpc, accounts: PrivateKeyAccount[]): Promise<void> {
  await Promise.all(accounts.map((a) => rpc.setBalance({ address: a.address, value: BALANCE })));
}

async function signTx(chain: Ledger, from: PrivateKeyAccount, nonce: number, data: Hex, gas: bigint, label: string): Promise<SignedTx> {
  const raw = await from.signTransaction({
    type: 'eip1559',
    chainId: chain.chainId,
    to: chain.ledger,
    data,
    gas,
    nonce,
    maxFeePerGas: MAX_FEE,
    maxPriorityFeePerGas: TIP,
  });
  return { label, hash: keccak256(raw), raw };
}

const recordIdOf = (label: string): Hex => keccak256(stringToHex(`record/${label}`));

function calls(abi: Abi, lane: Lane, recordId: Hex): { register: Hex; grant: Hex; access: Hex } {
  const contentHash = keccak256(recordId);
  return {
    register: encodeFunctionData({
      abi,
      functionName: 'register',
      args: [recordId, lane.patientCode, lane.patient.address, lane.institution, RECORD_TYPE, contentHash],
    }),
    grant: encodeFunctionData({ abi, functionName: 'grant', args: [lane.patientCode, lane.reader.address, recordId, PURPOSE, EXPIRY] }),
    access: encodeFunctionData({ abi, functionName: 'recordAccess', args: [recordId, PURPOSE] }),
  };
}

/** The three signed transactions of a lane's `k`-th case (its accounts' nonce `k`). */
async function signCase(chain: Ledger, gas: GasLimits, lane: Lane, k: number, label: string): Promise<SignedTx[]> {
  const data = calls(chain.abi, lane, recordIdOf(label));
  return [
    await signTx(chain, lane.author, k, data.register, gas.register, `register ${label}`),
    await signTx(chain, lane.patient, k, data.grant, gas.grant, `grant ${label}`),
    await signTx(chain, lane.reader, k, data.access, gas.access, `access ${label}`),
  ];
}

/** A setup transaction: estimated, signed, sent and waited for; returns its receipt and estimate. */
async function setupTx(rpc: Rpc, chainId: number, from: PrivateKeyAccount, to: Address | undefined, data: Hex) {
  const gas = await rpc.estimateGas({ account: from.address, ...(to === undefined ? {} : { to }), data });
  const nonce = await rpc.getTransactionCount({ address: from.address });
  const raw = await from.signTransaction({
    type: 'eip1559',
    chainId,
    ...(to === undefined ? {} : { to }),
    data,
    gas,
    nonce,
    maxFeePerGas: MAX_FEE,
    maxPriorityFeePerGas: TIP,
  });
  const hash = await rpc.sendRawTransaction({ serializedTransaction: raw });
  const receipt = await rpc.waitForTransactionReceipt({ hash, timeout: TX_TIMEOUT_MS, pollingInterval: 20 });
  if (receipt.status !== 'success') throw new Error(`setup transaction ${hash} reverted`);
  return { receipt, gas };
}

/** Deploys the ledger and runs one case with gas estimates: the limits every later case uses. */
async function deploy(rpc: Rpc, compiled: Compiled, run: number): Promise<{ chain: Ledger; gas: GasLimits }> {
  const chainId = await rpc.getChainId();
  const deployer = account(run, 'deployer');
  const probe = makeLane(run, 'probe', 0);
  await fund(rpc, [deployer, probe.author, probe.patient, probe.reader]);
  const { receipt } = await setupTx(rpc, chainId, deployer, undefined, compiled.bytecode);
  if (receipt.contractAddress == null) throw new Error('deployment produced no contract');
  const chain = { rpc, chainId, ledger: receipt.contractAddress, abi: compiled.abi };
  const data = calls(compiled.abi, probe, recordIdOf(`probe/${run}`));
  // Limits with a margin over the estimates, which are taken on the costliest path (a new patient code).
  const margin = (g: bigint): bigint => (g * 5n) / 4n;
  const register = margin((await setupTx(rpc, chainId, probe.author, chain.ledger, data.register)).gas);
  const grant = margin((await setupTx(rpc, chainId, probe.patient, chain.ledger, data.grant)).gas);
  const access = margin((await setupTx(rpc, chainId, probe.reader, chain.ledger, data.access)).gas);
  return { chain, gas: { register, grant, access } };
}

// --- measuring ---------------------------------------------------------------------------------

interface Load {
  latencies: number[];
  minedAt: number[];
  seconds: number;
  t0: number;
}

/** Sends one transaction; resolves with its submit→mined latency and the time it was seen mined. */
async function submit(chain: Ledger, watcher: BlockWatcher, tx: SignedTx): Promise<{ latency: number; minedAt: number }> {
  const sentAt = performance.now();
  const minedAt = await watcher.track(tx.hash, tx.label, () => chain.rpc.sendRawTransaction({ serializedTransaction: tx.raw }));
  return { latency: minedAt - sentAt, minedAt };
}

/** Every lane sends its transactions one after another; the lanes run side by side. */
async function runLoad(chain: Ledger, watcher: BlockWatcher, lanes: SignedTx[][], run: number): Promise<Load> {
  const latencies: number[] = [];
  const minedAt: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    lanes.map(async (txs) => {
      for (const tx of txs) {
        const m = await submit(chain, watcher, tx);
        latencies.push(m.latency);
        minedAt.push(m.minedAt);
        if (minedAt.length % 300 === 0) {
          const rate = minedAt.length / ((performance.now() - t0) / 1000);
          progress(`baseline run ${run}: ${minedAt.length}/${TXS} mined, ${Math.round(rate)} tx/s, ${watcher.nudges} nudges`);
        }
      }
    }),
  );
  minedAt.sort((a, b) => a - b);
  return { latencies, minedAt, seconds: (minedAt[minedAt.length - 1]! - t0) / 1000, t0 };
}

/** Transactions one at a time on the chain without load: whole cases, so all three kinds. */
async function runLone(chain: Ledger, watcher: BlockWatcher, gas: GasLimits, run: number): Promise<number[]> {
  const lane = makeLane(run, 'lone', 0);
  await fund(chain.rpc, [lane.author, lane.patient, lane.reader]);
  const latencies: number[] = [];
  for (let k = 0; k < LONE_CASES; k++) {
    for (const tx of await signCase(chain, gas, lane, k, `lone/${run}/${k}`)) latencies.push((await submit(chain, watcher, tx)).latency);
  }
  return latencies;
}

/** Each lane's transactions in order: its cases, each register → grant → access. */
async function signLanes(chain: Ledger, gas: GasLimits, lanes: Lane[], run: number): Promise<SignedTx[][]> {
  const signed: SignedTx[][] = lanes.map(() => []);
  for (let c = 0; c < CASES; c++) {
    const l = c % lanes.length;
    signed[l]!.push(...(await signCase(chain, gas, lanes[l]!, Math.floor(c / lanes.length), `${run}/${c}`)));
  }
  return signed;
}

interface RunResult {
  tps: number;
  first: number;
  last: number;
  p50: number;
  p99: number;
  lone50: number;
  nudges: number;
  blocks: number;
  leftPending: number;
  gas: GasLimits;
}

/** Throughput of the first and of the last `WINDOW` mined transactions. */
function windows(load: Load): { first: number; last: number } {
  const n = load.minedAt.length;
  const first = WINDOW / ((load.minedAt[WINDOW - 1]! - load.t0) / 1000);
  const lastStart = n > WINDOW ? load.minedAt[n - WINDOW - 1]! : load.t0;
  return { first, last: WINDOW / ((load.minedAt[n - 1]! - lastStart) / 1000) };
}

async function measure(anvil: Anvil, compiled: Compiled, run: number): Promise<RunResult> {
  const rpc = makeClient(anvil.url, false);
  progress(`baseline run ${run}: deploying, funding ${LANES * 3} accounts`);
  const { chain, gas } = await deploy(rpc, compiled, run);
  const lanes = Array.from({ length: LANES }, (_, i) => makeLane(run, `lane${i}`, i));
  await fund(
    makeClient(anvil.url, true),
    lanes.flatMap((l) => [l.author, l.patient, l.reader]),
  );
  progress(`baseline run ${run}: signing ${TXS} transactions`);
  const signed = await signLanes(chain, gas, lanes, run);
  const watcher = await BlockWatcher.start(anvil.url);
  try {
    progress(`baseline run ${run}: sending ${TXS} transactions over ${LANES} lanes`);
    const load = await runLoad(chain, watcher, signed, run);
    const loadBlocks = watcher.blocks;
    const { pending } = await rpc.getTxpoolStatus();
    progress(`baseline run ${run}: lone transactions`);
    const lone = await runLone(chain, watcher, gas, run);
    return {
      tps: TXS / load.seconds,
      ...windows(load),
      p50: percentile(load.latencies, 50),
      p99: percentile(load.latencies, 99),
      lone50: percentile(lone, 50),
      nudges: watcher.nudges,
      blocks: loadBlocks,
      leftPending: pending,
      gas,
    };
  } finally {
    await watcher.stop();
  }
}

async function oneRun(bin: string, compiled: Compiled, run: number): Promise<RunResult> {
  progress(`baseline run ${run}: starting anvil`);
  const anvil = await startAnvil(bin);
  try {
    return await measure(anvil, compiled, run);
  } finally {
    await anvil.stop();
    live = undefined;
  }
}

// --- main --------------------------------------------------------------------------------------

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    live?.child.kill('SIGKILL');
    process.exit(code);
  });
}
process.once('exit', () => live?.child.kill('SIGKILL'));

const bin = anvilBinary();
if (bin === undefined) {
  const why = `no anvil binary on ${process.platform}-${process.arch}: ${ANVIL_PACKAGE} is an optional dependency, for linux-x64 only`;
  process.stderr.write(`baseline: skipped: ${why}\n`);
  report('baseline', [], { unavailable: why });
  process.exit(0);
}

progress('baseline: compiling RecordLedger.sol with solcjs');
const compiled = compileLedger();
const anvilVersion = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!;
const runs: RunResult[] = [];
for (let r = 1; r <= RUNS; r++) runs.push(await oneRun(bin, compiled, r));

const fig = (id: string, name: string, unit: string, pick: (r: RunResult) => number, note?: string) =>
  summarise(name, unit, runs.map(pick), note === undefined ? { id } : { id, note });
report(
  'baseline',
  [
    fig('baseline.tps', 'EVM mined tx/s (register + grant + access, automine)', 'tx/s', (r) => r.tps),
    fig('baseline.tps_first1k', `EVM mined tx/s, first ${WINDOW.toLocaleString('en-US')}`, 'tx/s', (r) => r.first),
    fig('baseline.tps_last1k', `EVM mined tx/s, last ${WINDOW.toLocaleString('en-US')}`, 'tx/s', (r) => r.last),
    fig('baseline.p50_ms', `EVM submit→mined p50 under load (${LANES} in flight)`, 'ms', (r) => r.p50),
    fig('baseline.p99_ms', `EVM submit→mined p99 under load (${LANES} in flight)`, 'ms', (r) => r.p99),
    fig('baseline.lone_p50_ms', 'EVM lone tx submit→mined p50', 'ms', (r) => r.lone50, `${LONE_CASES * OPS_PER_CASE} txs after the load`),
    fig('baseline.nudges', 'evm_mine nudges (stalled automine)', 'count', (r) => r.nudges, `no block for ${STALL_MS} ms with txs pending`),
  ],
  {
    seedStack: 'TMSMD: Ethereum + Solidity; here anvil + bench/evm/RecordLedger.sol',
    node: anvilVersion,
    anvilFlags: ANVIL_FLAGS.join(' '),
    mining: 'automine (a block per arriving transaction batch), the Ethereum dev default',
    solc: compiled.solcVersion,
    optimizer: { enabled: true, runs: 200 },
    compileMs: Math.round(compiled.ms),
    txsPerRun: TXS,
    runs: RUNS,
    lanes: LANES,
    inFlight: `${LANES} (one per lane; a case's three transactions wait for each other)`,
    accounts: LANES * 3,
    mix: 'register, grant, access: one third each',
    signing: 'pre-signed before the clock starts, explicit nonces, fixed gas limits (estimate + 25 %)',
    gasLimits: Object.fromEntries(Object.entries(runs[0]!.gas).map(([k, v]) => [k, Number(v)])),
    mined: `its block announced on a newHeads subscription (receipts read per block; head also polled every ${CHECK_MS} ms)`,
    blocksDuringLoad: runs.map((r) => r.blocks),
    pendingAfterLoad: runs.map((r) => r.leftPending),
  },
);
