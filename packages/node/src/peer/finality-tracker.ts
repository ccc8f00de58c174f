/**
 * Finality on a consortium (DESIGN §2): after each committed block this validator signs
 * `(height, blockHash, stateRoot)` and publishes the vote to the votes stream (a stream, so a
 * late node reads every vote); every node collects the votes, checks each signature against the
 * validator set in force at that height, and stores a certificate once a quorum agrees. A node
 * that sees a quorum for another block than its own stops committing and reports DIVERGENCE,
 * naming which validators signed what (safety before liveness).
 *
 * The validator set in force at height h is that of the state after block h-1: an admission or
 * removal committed in block k changes the set from height k+1 on.
 */
import { EventEmitter } from 'node:events';
import type { Statement } from 'better-sqlite3';
import type { NatsConnection } from '@nats-io/nats-core';
import { follow, openStream, type Follower } from '../ordering/jetstream-stream.ts';
import { isStorageFailure } from '../store/storage-failure.ts';
import { StorageType, type JetStreamClient } from '@nats-io/jetstream';
import { MedledgerError } from '@medledger/core/errors';
import type { Signer } from '@medledger/core/ledger/tx';
import { keyId } from '@medledger/core/crypto/ed25519';
import {
  quorumSize,
  signVote,
  validatorsAt,
  verifyVote,
  type FinalityCertificate,
  type Validator,
  type Vote,
} from '@medledger/core/ledger/finality';
import type { QuorumRule } from '@medledger/core/ledger/genesis';
import type { CommittedBlock, Peer } from './peer.ts';

export interface FinalityOptions {
  servers: string[];
  /** the votes stream's name */
  stream: string;
  replicas: number;
  quorum: QuorumRule;
  /** this node's validator key; absent on a node that only follows */
  signer: Signer | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The tracker's tables in the ledger store (`verify` checks the stored schema against them). */
export const FINALITY_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS votes (height INTEGER NOT NULL, validator TEXT NOT NULL, block_hash TEXT NOT NULL, state_root TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (height, validator)) WITHOUT ROWID`,
  'CREATE TABLE IF NOT EXISTS finality (height INTEGER PRIMARY KEY, block_hash TEXT NOT NULL, certificate TEXT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS validator_sets (from_height INTEGER PRIMARY KEY, validators TEXT NOT NULL)',
] as const;

export interface FinalityEvents {
  final: [{ height: number; blockHash: string }];
}

export class FinalityTracker extends EventEmitter<FinalityEvents> {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private follower: Follower | null = null;
  private divergence: { height: number; ours: string; certified: string; signers: Record<string, string> } | null = null;
  /** validators seen signing a different block or state root than this node computed */
  private readonly dissents: { height: number; validator: string; institution: string; blockHash: string; stateRoot: string }[] = [];
  /** votes for heights whose validator set this node does not know yet */
  private early: Vote[] = [];
  private readonly onBlock = (b: CommittedBlock): void => {
    void this.vote(b);
  };

  constructor(
    private readonly peer: Peer,
    private readonly o: FinalityOptions,
  ) {
    super();
    for (const s of FINALITY_SCHEMA) peer.store.db.exec(s);
  }

  private readonly statements = new Map<string, Statement>();

  /** Prepared once per SQL text: votes arrive several per block, on the hot path. */
  private stmt(sql: string): Statement {
    let st = this.statements.get(sql);
    if (st === undefined) {
      st = this.peer.store.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /**
   * Validators of the current state, recorded as the set for the next height when it changed (a
   * member's new key signs from the height after the block that gave it).
   */
  private recordValidatorSet(afterHeight: number): void {
    const text = JSON.stringify(validatorsAt(this.peer.store, afterHeight + 1));
    const last = this.stmt('SELECT validators FROM validator_sets ORDER BY from_height DESC LIMIT 1').pluck().get() as string | undefined;
    if (last !== text) this.stmt('INSERT OR REPLACE INTO validator_sets(from_height, validators) VALUES (?, ?)').run(afterHeight + 1, text);
  }

  validatorsAt(height: number): Validator[] {
    const text = this.stmt('SELECT validators FROM validator_sets WHERE from_height <= ? ORDER BY from_height DESC LIMIT 1')
      .pluck()
      .get(height) as string | undefined;
    return text === undefined ? [] : (JSON.parse(text) as Validator[]);
  }

  async start(): Promise<void> {
    this.peer.store.initialise(this.peer.genesis);
    const head = this.peer.store.head();
    if (this.validatorsAt(head.height + 1).length === 0) this.recordValidatorSet(head.height);
    const { nc, js } = await openStream(this.o.servers, 'medledger-votes', {
      name: this.o.stream,
      subjects: [`${this.o.stream}.vote`],
      storage: StorageType.File,
      num_replicas: this.o.replicas,
    });
    this.nc = nc;
    this.js = js;
    this.peer.on('block', this.onBlock);
    this.follower = await follow(js, this.o.stream, 1, async (m) => {
      let v: Vote;
      try {
        v = JSON.parse(decoder.decode(m.data)) as Vote;
      } catch {
        return; // not JSON: not a vote
      }
      await this.take(v);
    });
    // Blocks committed while this node was down may lack its vote: sign them now (the msg id
    // makes a repeat harmless).
    if (this.o.signer !== null) {
      const mine = keyId(this.o.signer.publicKey);
      const last = (this.stmt('SELECT MAX(height) FROM votes WHERE validator = ?').pluck().get(mine) as number | null) ?? 0;
      for (let h = last + 1; h <= head.height; h++) await this.vote({ height: h });
    }
  }

  private async vote(b: Pick<CommittedBlock, 'height'>): Promise<void> {
    this.recordValidatorSet(b.height);
    const ready = this.early.filter((v) => v.height <= b.height + 1);
    this.early = this.early.filter((v) => v.height > b.height + 1);
    for (const v of ready) await this.take(v);
    const signer = this.o.signer;
    if (signer === null || this.js === null) return;
    if (!this.validatorsAt(b.height).some((v) => v.publicKey === signer.publicKey)) return;
    const head = this.peer.store.blockHeader(b.height)!;
    const stateRoot = this.corruptVotes ? 'f'.repeat(64) : head.header.stateRoot;
    const vote = await signVote({ network: this.peer.network, height: b.height, blockHash: head.hash, stateRoot }, signer);
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        await this.js.publish(`${this.o.stream}.vote`, encoder.encode(JSON.stringify(vote)), {
          msgID: `vote-${b.height}-${vote.validator}`,
        });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Counts a vote from the stream, which anyone may publish to: a malformed vote or a bad signature
   * never counts and never stops the node. A store that cannot be written halts the peer (and a
   * node run by `medledger start` exits to be restarted).
   */
  private async take(v: Vote): Promise<void> {
    try {
      await this.onVote(v);
    } catch (e) {
      if (isStorageFailure(e)) this.peer.halt(e);
    }
  }

  private async onVote(v: Vote): Promise<void> {
    if (typeof v !== 'object' || v === null) return;
    if (v.network !== this.peer.network || !Number.isSafeInteger(v.height) || v.height < 1) return;
    if (v.height > this.peer.store.head().height + 1) {
      if (this.early.length < 100_000) this.early.push(v);
      return;
    }
    const validators = this.validatorsAt(v.height);
    if (!(await verifyVote(v, validators))) return;
    this.stmt('INSERT OR IGNORE INTO votes(height, validator, block_hash, state_root, signature) VALUES (?, ?, ?, ?, ?)').run(
      v.height,
      v.validator,
      v.blockHash,
      v.stateRoot,
      v.signature,
    );
    const mine = this.peer.store.blockHeader(v.height);
    if (mine !== undefined && (mine.hash !== v.blockHash || mine.header.stateRoot !== v.stateRoot)) {
      const institution = validators.find((x) => x.keyId === v.validator)?.institution ?? 'unknown';
      this.dissents.push({ height: v.height, validator: v.validator, institution, blockHash: v.blockHash, stateRoot: v.stateRoot });
      process.stderr.write(`medledger: validator ${institution} (${v.validator}) signed a different block at height ${v.height}\n`);
    }
    if (this.stmt('SELECT 1 FROM finality WHERE height = ?').get(v.height) !== undefined) return;
    const votes = this.stmt('SELECT validator, block_hash, state_root, signature FROM votes WHERE height = ?').all(v.height) as {
      validator: string;
      block_hash: string;
      state_root: string;
      signature: string;
    }[];
    const agreeing = votes.filter((x) => x.block_hash === v.blockHash && x.state_root === v.stateRoot);
    if (agreeing.length < quorumSize(this.o.quorum, validators.length)) return;
    const cert: FinalityCertificate = {
      network: v.network,
      height: v.height,
      blockHash: v.blockHash,
      stateRoot: v.stateRoot,
      votes: agreeing.map((x) => ({ validator: x.validator, signature: x.signature })),
    };
    this.stmt('INSERT OR IGNORE INTO finality(height, block_hash, certificate) VALUES (?, ?, ?)').run(
      v.height,
      v.blockHash,
      JSON.stringify(cert),
    );
    this.emit('final', { height: v.height, blockHash: v.blockHash });
    if (mine !== undefined && mine.hash !== v.blockHash) this.diverge(v.height, mine.hash, v.blockHash, votes);
  }

  private diverge(height: number, ours: string, certified: string, votes: { validator: string; block_hash: string }[]): void {
    const signers: Record<string, string> = {};
    for (const x of votes) signers[x.validator] = x.block_hash;
    this.divergence = { height, ours, certified, signers };
    this.peer.halt(
      new MedledgerError('CHAIN_BROKEN', {
        details: `DIVERGENCE at height ${height}: a quorum certified ${certified}, this node has ${ours}.`,
        payload: { height, signers },
      }),
    );
  }

  get status(): { finalHeight: number; divergence: FinalityTracker['divergence']; dissents: FinalityTracker['dissents'] } {
    const h = this.stmt('SELECT MAX(height) FROM finality').pluck().get() as number | null;
    return { finalHeight: h ?? 0, divergence: this.divergence, dissents: this.dissents.slice(-100) };
  }

  /** For tests of the others' detection: sign votes with a corrupted state root. */
  corruptVotes = false;

  certificate(height: number): FinalityCertificate | null {
    const text = this.stmt('SELECT certificate FROM finality WHERE height = ?').pluck().get(height) as string | undefined;
    return text === undefined ? null : (JSON.parse(text) as FinalityCertificate);
  }

  async stop(): Promise<void> {
    this.peer.off('block', this.onBlock);
    this.follower?.stop();
    await this.follower?.done.catch(() => undefined);
    await this.nc?.close();
  }
}

/** What `verifyFinalityTables` needs of the (verified) chain. */
export interface FinalityChainView {
  network: string;
  quorum: QuorumRule;
  /** the height of the last stored block */
  top: number;
  /** the validator set in force at `height` by the re-executed chain, as the tracker records it (JSON) */
  validatorSet(height: number): string;
  /** heights h in (from, to] whose validator set differs from that of h - 1 */
  setChanges(from: number, to: number): number[];
  /** this node's block hash and state root at `height`, if it has the block */
  block(height: number): { hash: string; stateRoot: string } | undefined;
}

type Db = { prepare(sql: string): Statement };

function finalityBroken(table: string, height: number, what: string, key?: string): never {
  throw new MedledgerError('FINALITY_INVALID', {
    details: `${table} at height ${height}${key === undefined ? '' : ` (${key})`}: ${what}.`,
    payload: { table, height, ...(key === undefined ? {} : { key }), what },
  });
}

function validatorsOf(chain: FinalityChainView, height: number): Validator[] {
  return JSON.parse(chain.validatorSet(height)) as Validator[];
}

/**
 * `medledger verify` for what this tracker stored (read-only): each validator set equals the
 * one the re-executed chain puts in force from its height, and no change of the set lacks its
 * row; each vote verifies against the set in force at its height; each certificate is for this
 * node's block and state root, and every vote in it verifies — stricter than
 * `verifyCertificate`, which ignores votes past the quorum: the tracker keeps only votes it
 * verified, so any vote that does not is damage.
 */
export async function verifyFinalityTables(
  db: Db,
  chain: FinalityChainView,
): Promise<{ validatorSets: number; votes: number; certificates: number }> {
  const tables = new Set(
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('votes', 'finality', 'validator_sets')")
      .pluck()
      .all() as string[],
  );
  const out = { validatorSets: 0, votes: 0, certificates: 0 };
  const inRange = (h: unknown, top: number): h is number => Number.isSafeInteger(h) && (h as number) >= 1 && (h as number) <= top;
  const PAGE = 1000;

  // The tracker stores a vote or certificate only once it knows the set in force at its height:
  // none lies below the first set it recorded.
  let firstSet = Number.POSITIVE_INFINITY;
  const known = (table: string, height: number, key?: string): void => {
    if (height < firstSet) {
      if (Number.isFinite(firstSet)) finalityBroken('validator_sets', firstSet, 'starts after heights the tracker holds votes for');
      finalityBroken(table, height, 'has no validator set recorded for its height', key);
    }
  };
  if (tables.has('validator_sets')) {
    const sets = db.prepare('SELECT from_height AS h, validators AS v FROM validator_sets ORDER BY from_height').all() as {
      h: unknown;
      v: unknown;
    }[];
    let prev: unknown = null;
    for (const [i, row] of sets.entries()) {
      if (!inRange(row.h, chain.top + 1)) finalityBroken('validator_sets', Number(row.h), 'is no height of this chain');
      if (row.v !== chain.validatorSet(row.h)) finalityBroken('validator_sets', row.h, 'differs from the set the chain puts in force');
      if (row.v === prev) finalityBroken('validator_sets', row.h, 'repeats the set before it');
      const next = sets[i + 1]?.h;
      const until = typeof next === 'number' ? next - 1 : chain.top + 1;
      const missed = chain.setChanges(row.h, until)[0];
      if (missed !== undefined) finalityBroken('validator_sets', missed, 'the set changes here but no row records it');
      prev = row.v;
      firstSet = Math.min(firstSet, row.h);
      out.validatorSets++;
    }
  }

  if (tables.has('votes')) {
    const page = db.prepare(
      'SELECT height, validator, block_hash, state_root, signature FROM votes WHERE (height, validator) > (?, ?) ORDER BY height, validator LIMIT ?',
    );
    let after: [number, string] = [0, ''];
    for (;;) {
      const rows = page.all(...after, PAGE) as Record<string, unknown>[];
      const verdicts = await Promise.all(
        rows.map(async (r) => {
          if (!inRange(r['height'], chain.top + 1)) finalityBroken('votes', Number(r['height']), 'is no height of this chain');
          known('votes', r['height'], String(r['validator']));
          const vote = {
            network: chain.network,
            height: r['height'],
            validator: String(r['validator']),
            blockHash: String(r['block_hash']),
            stateRoot: String(r['state_root']),
            signature: String(r['signature']),
          };
          return (await verifyVote(vote, validatorsOf(chain, r['height']))) ? null : vote;
        }),
      );
      const bad = verdicts.find((v) => v !== null) ?? null;
      if (bad !== null) finalityBroken('votes', bad.height, 'does not verify against the validator set in force', bad.validator);
      out.votes += rows.length;
      if (rows.length < PAGE) break;
      const last = rows[rows.length - 1]!;
      after = [last['height'] as number, String(last['validator'])];
    }
  }

  if (tables.has('finality')) {
    const page = db.prepare('SELECT height, block_hash, certificate FROM finality WHERE height > ? ORDER BY height LIMIT ?');
    let after = 0;
    for (;;) {
      const rows = page.all(after, PAGE) as { height: number; block_hash: unknown; certificate: unknown }[];
      for (const r of rows) {
        const h = r.height;
        if (!inRange(h, chain.top + 1)) finalityBroken('finality', h, 'is no height of this chain');
        known('finality', h);
        let cert: FinalityCertificate;
        try {
          cert = JSON.parse(String(r.certificate)) as FinalityCertificate;
        } catch {
          finalityBroken('finality', h, 'certificate is not valid JSON');
        }
        if (typeof cert !== 'object' || cert === null || JSON.stringify(cert) !== r.certificate || !Array.isArray(cert.votes)) {
          finalityBroken('finality', h, 'certificate is not in the form the node writes');
        }
        if (cert.network !== chain.network || cert.height !== h || cert.blockHash !== r.block_hash) {
          finalityBroken('finality', h, 'certificate names another network, height or block than its row');
        }
        const mine = chain.block(h);
        if (mine !== undefined && (mine.hash !== cert.blockHash || mine.stateRoot !== cert.stateRoot)) {
          finalityBroken('finality', h, 'certifies another block or state root than this node’s');
        }
        const validators = validatorsOf(chain, h);
        const seen = new Set<string>();
        for (const v of cert.votes) {
          const vote = { ...v, network: cert.network, height: h, blockHash: cert.blockHash, stateRoot: cert.stateRoot };
          if (seen.has(v.validator) || !(await verifyVote(vote, validators))) {
            finalityBroken('finality', h, 'holds a vote that does not verify against the validator set in force', v.validator);
          }
          seen.add(v.validator);
        }
        if (seen.size < quorumSize(chain.quorum, validators.length))
          finalityBroken('finality', h, 'certificate has fewer votes than a quorum');
        out.certificates++;
      }
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.height;
    }
  }
  return out;
}
