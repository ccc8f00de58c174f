/**
 * The custodian's side of research (DESIGN §7; consortium paper §4: each hospital computes
 * statistics over its own data and shares only results).
 *
 * - Study keys: a study's pseudonym key is made by the first care custodian that needs it and
 *   put on the ledger wrapped to every care custodian, so all of them give a patient the same
 *   pseudonym within the study; the researcher never sees it.
 * - Rounds: when a round names an institution this node keeps, the vault runs the study's query
 *   over the records whose patients consented to the study (or to research by researchers) at the
 *   round's opening time, masks the result vector with pairwise masks agreed with the other
 *   custodians, seals it to the releasing custodian and submits it. After the deadline it
 *   reveals its seeds with any custodian that did not contribute. The releasing custodian opens
 *   the shares, removes the masks, suppresses small cells, adds the noise the round paid for and
 *   releases the total with its hash.
 *
 * All of it is derived from the ledger and the vault, so a restart simply does it again: shares
 * and reveals are accepted once, and the masks are the same for the same round.
 */
import { canonicalBytes, type JsonObject } from '@medledger/core/codec/canonical-json';
import { fromBase64Url, toBase64Url, utf8 } from '@medledger/core/codec/bytes';
import { Draft } from '@medledger/core/contracts/context';
import { patientConsents } from '@medledger/core/contracts/consent';
import { careCustodians, roundComplete } from '@medledger/core/contracts/research';
import type { AggregationRound, Member, RecordEntry, Study } from '@medledger/core/contracts/state';
import { hmacSha256, sha256Hex } from '@medledger/core/crypto/hash';
import { randomBytes } from '@medledger/core/crypto/random';
import { openSealed, sealTo } from '@medledger/core/crypto/record-envelope';
import { MedledgerError, isMedledgerError } from '@medledger/core/errors';
import type { LedgerEvent } from '@medledger/core/contracts/context';
import { evaluateConsent } from '@medledger/core/policy/consent-evaluation';
import { releaseResult } from '@medledger/core/research/differential-privacy';
import {
  decodeSeeds,
  decodeVector,
  encodeSeeds,
  encodeVector,
  expandMask,
  maskVector,
  pairSeed,
  unmaskSum,
} from '@medledger/core/research/secure-aggregation';
import { evaluateQuery, vectorLength, type PatientData, type StudyQuery } from '@medledger/core/research/study-query';
import type { TxType } from '@medledger/core/ledger/tx-types';
import type { Peer } from '../peer/peer.ts';
import type { HostedVault } from './vault-service.ts';
import type { VaultAuditEntry, VaultStore } from './vault-store.ts';

export const SHARE_INFO = 'medledger/research/share/v1';
export const SEEDS_INFO = 'medledger/research/seeds/v1';
const STUDY_KEY_INFO = 'medledger/research/study-key/v1';
/** After a deadline, how long to wait before acting on it (block times come from the orderer). */
const AFTER_DEADLINE_MS = 300;
/** How long after a deadline a custodian keeps waiting for the others (then the round stays open). */
const GIVE_UP_MS = 10 * 60_000;
const MODULUS = 2n ** 64n;
const RETRY_MS = 1000;

/** What the research side needs from the vault it belongs to. */
export interface ResearchHost {
  peer: Peer;
  store: VaultStore;
  vaults: ReadonlyMap<string, HostedVault>;
  now(): number;
  submit(vault: HostedVault, type: TxType, body: JsonObject): Promise<{ txId: string }>;
  /** waits until the tx is committed; answers its validity code */
  committed(txId: string): Promise<string>;
  plaintextOf(vault: HostedVault, recordId: string): Promise<Uint8Array | null>;
  audit(entry: Omit<VaultAuditEntry, 'time'>): Promise<void>;
  report(e: unknown): void;
}

function with32(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 32) throw new MedledgerError('RECORD_INTEGRITY', { details: 'A study key is 32 bytes.' });
  return bytes;
}

export class ResearchService {
  private readonly studyKeys = new Map<string, Uint8Array>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly busy = new Set<string>();
  private readonly dirty = new Set<string>();
  private stopped = false;

  constructor(private readonly h: ResearchHost) {}

  private get state(): Draft {
    return new Draft(this.h.peer.store);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ---------------------------------------------------------------- study keys

  /**
   * The study's pseudonym key as `vault` holds it: unwrapped from the ledger, or made, wrapped to
   * every care custodian and put on the ledger when no custodian did so yet.
   */
  async studyKey(vault: HostedVault, studyId: string): Promise<Uint8Array> {
    const cached = this.studyKeys.get(`${vault.institution} ${studyId}`);
    if (cached !== undefined) return cached;
    for (let attempt = 0; attempt < 2; attempt++) {
      const study = this.state.get<Study>('studies', studyId);
      if (study === undefined) throw new MedledgerError('STUDY_NOT_FOUND');
      if (study.keyEnvelopes !== null) {
        const envelope = study.keyEnvelopes[vault.institution];
        if (envelope === undefined) throw new MedledgerError('STUDY_KEY_MISSING');
        const key = with32(await openSealed(envelope, vault.identity.file.encryption.privateKey, `${STUDY_KEY_INFO} ${studyId}`));
        this.studyKeys.set(`${vault.institution} ${studyId}`, key);
        return key;
      }
      const key = randomBytes(32);
      const envelopes: Record<string, string> = {};
      for (const m of careCustodians(this.state)) envelopes[m.id] = await sealTo(key, m.encryptionKey!, `${STUDY_KEY_INFO} ${studyId}`);
      const { txId } = await this.h.submit(vault, 'research.shareStudyKey', { studyId, envelopes });
      const code = await this.h.committed(txId);
      // Another custodian may have shared one first: then read theirs.
      if (code !== 'OK' && code !== 'ALREADY_EXISTS') throw new MedledgerError('STUDY_KEY_MISSING', { details: code });
    }
    throw new MedledgerError('STUDY_KEY_MISSING');
  }

  // ---------------------------------------------------------------- rounds

  /** Called for each ledger event, in block order. */
  onEvent(event: LedgerEvent): void {
    if (!event.type.startsWith('research.')) return;
    const roundId = event.data['roundId'];
    if (typeof roundId === 'string') this.schedule(roundId, 0);
  }

  /** After a restart: take up every open round this node has a part in. */
  reconcile(): void {
    for (const value of this.h.peer.store.query('rounds', {}, null, null, 100_000)) {
      const round = value as unknown as AggregationRound;
      if (round.status === 'open' && round.custodians.some((c) => this.h.vaults.has(c))) this.schedule(round.roundId, 0);
    }
  }

  private schedule(roundId: string, delayMs: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.advance(roundId);
    }, delayMs);
    this.timers.add(t);
  }

  /** Does this node's next step in a round, if any, and schedules the one after the deadline. */
  private async advance(roundId: string): Promise<void> {
    if (this.stopped) return;
    if (this.busy.has(roundId)) {
      // Woken while working: look again when done, so no step is missed.
      this.dirty.add(roundId);
      return;
    }
    this.busy.add(roundId);
    try {
      do {
        this.dirty.delete(roundId);
        for (const institution of this.h.vaults.keys()) {
          const round = this.state.get<AggregationRound>('rounds', roundId);
          if (round?.status !== 'open' || !round.custodians.includes(institution)) continue;
          try {
            await this.step(this.h.vaults.get(institution)!, round);
          } catch (e) {
            this.h.report(e);
          }
        }
      } while (this.dirty.has(roundId) && !this.stopped);
      const round = this.state.get<AggregationRound>('rounds', roundId);
      if (round?.status === 'open' && round.custodians.some((c) => this.h.vaults.has(c))) {
        const now = this.h.now();
        // A share that failed (the node was busy, a commit timed out) is tried again while there is time.
        const owed = round.custodians.some((c) => this.h.vaults.has(c) && round.shares[c] === undefined);
        if (now < round.deadline) this.schedule(roundId, Math.min(owed ? RETRY_MS : Infinity, round.deadline + AFTER_DEADLINE_MS - now));
        else if (now < round.deadline + GIVE_UP_MS) this.schedule(roundId, AFTER_DEADLINE_MS);
      }
    } finally {
      this.busy.delete(roundId);
    }
  }

  /** One custodian's next step: contribute; as releaser close the shares; reveal its seeds; as releaser release. */
  private async step(vault: HostedVault, round: AggregationRound): Promise<void> {
    const me = vault.institution;
    const now = this.h.now();
    const closed = round.sharesClosedAt !== null;
    const allIn = round.custodians.every((c) => round.shares[c] !== undefined);
    if (!closed && round.shares[me] === undefined && now < round.deadline) await this.contribute(vault, round);
    else if (!closed && round.releaser === me && (allIn || now >= round.deadline))
      await this.submitted(vault, 'research.closeShares', { roundId: round.roundId });
    else if (closed && round.shares[me] !== undefined && round.reveals[me] === undefined) await this.reveal(vault, round);
    else if (closed && round.releaser === me && roundComplete(round)) await this.release(vault, round);
  }

  private async submitted(vault: HostedVault, type: TxType, body: JsonObject): Promise<string> {
    const { txId } = await this.h.submit(vault, type, body);
    return this.h.committed(txId);
  }

  /**
   * The custodian's own mask for a round (the outer layer of the double mask): derived from its
   * vault's secret, so a restart makes the same one, and revealed only once its share is accepted.
   */
  private selfSeed(vault: HostedVault, roundId: string): Uint8Array {
    return hmacSha256(vault.masterKey, utf8(`medledger/research/self-mask/v1 ${vault.institution} ${roundId}`));
  }

  private peersOf(round: AggregationRound, me: string): { id: string; publicKey: string }[] {
    return round.custodians
      .filter((c) => c !== me)
      .map((c) => ({ id: c, publicKey: this.state.get<Member>('members', c)!.encryptionKey! }));
  }

  /** What `institution` contributes (unmasked) to a round: for its own auditors and for tests. */
  async contributionOf(institution: string, roundId: string): Promise<bigint[]> {
    const vault = this.h.vaults.get(institution);
    const round = this.state.get<AggregationRound>('rounds', roundId);
    if (vault === undefined) throw new MedledgerError('RECORD_NOT_HERE');
    if (round === undefined) throw new MedledgerError('ROUND_NOT_FOUND');
    return this.resultVector(vault, round);
  }

  /** This custodian's result for the round, over the records its consenting patients allow. */
  async resultVector(vault: HostedVault, round: AggregationRound): Promise<bigint[]> {
    const study = this.state.get<Study>('studies', round.studyId);
    if (study === undefined) throw new MedledgerError('STUDY_NOT_FOUND');
    const query = study.query as unknown as StudyQuery;
    const patients = new Map<string, PatientData>();
    const state = this.state;
    const consents = new Map<string, ReturnType<typeof patientConsents>>();
    for (const value of this.h.peer.store.query('records', { custodian: vault.institution }, null, null, 10_000_000)) {
      const entry = value as unknown as RecordEntry;
      // The data as it stood when the round opened, so a restart computes the same vector.
      if (entry.state !== 'active' || entry.registeredAt > round.openedAt || !study.categories.includes(entry.category)) continue;
      let theirs = consents.get(entry.patientCode);
      if (theirs === undefined) consents.set(entry.patientCode, (theirs = patientConsents(state, entry.patientCode)));
      // Aggregates leave anonymised; the consent is judged as it stood when the round opened.
      const decision = evaluateConsent(
        {
          requester: { staffId: round.requester, institution: study.institution, role: 'researcher', study: study.studyId },
          record: { recordId: entry.recordId, category: entry.category, custodian: entry.custodian, patientCode: entry.patientCode },
          purpose: study.purpose,
          deidentification: 'anonymised',
          time: round.openedAt,
        },
        theirs,
      );
      if (!decision.allowed) continue;
      const plaintext = await this.h.plaintextOf(vault, entry.recordId);
      if (plaintext === null) continue;
      const resource = JSON.parse(new TextDecoder().decode(plaintext)) as JsonObject;
      let p = patients.get(entry.patientCode);
      if (p === undefined) patients.set(entry.patientCode, (p = { patientCode: entry.patientCode, resources: [] }));
      p.resources.push(resource);
    }
    return evaluateQuery(query, [...patients.values()], round.openedAt);
  }

  private async contribute(vault: HostedVault, round: AggregationRound): Promise<void> {
    const me = vault.institution;
    const vector = await this.resultVector(vault, round);
    const paired = await maskVector(vector, {
      ownId: me,
      ownPrivateKey: vault.identity.file.encryption.privateKey,
      peers: this.peersOf(round, me),
      roundId: round.roundId,
    });
    const self = expandMask(this.selfSeed(vault, round.roundId), paired.length);
    const masked = paired.map((v, i) => (v + self[i]!) % MODULUS);
    const releaser = this.state.get<Member>('members', round.releaser)!;
    const share = await sealTo(utf8(encodeVector(masked)), releaser.encryptionKey!, `${SHARE_INFO} ${round.roundId} ${me}`);
    const { txId } = await this.h.submit(vault, 'research.submitShare', { roundId: round.roundId, share });
    const code = await this.h.committed(txId);
    await this.h.audit({
      custodian: me,
      requester: round.requester,
      recordId: null,
      objectId: null,
      action: 'research.submitShare',
      outcome: code === 'OK' ? 'served' : 'refused',
      code: code === 'OK' ? null : code,
      ledgerTx: txId,
    });
  }

  private async reveal(vault: HostedVault, round: AggregationRound): Promise<void> {
    const me = vault.institution;
    const dropped = round.dropped;
    const seeds = new Map<string, Uint8Array>();
    for (const d of dropped) {
      const peer = this.state.get<Member>('members', d)!;
      seeds.set(
        d,
        await pairSeed({
          ownId: me,
          ownPrivateKey: vault.identity.file.encryption.privateKey,
          peerId: d,
          peerPublicKey: peer.encryptionKey!,
          roundId: round.roundId,
        }),
      );
    }
    const releaser = this.state.get<Member>('members', round.releaser)!;
    const message = { self: toBase64Url(this.selfSeed(vault, round.roundId)), pairs: encodeSeeds(seeds) };
    const sealed = await sealTo(utf8(JSON.stringify(message)), releaser.encryptionKey!, `${SEEDS_INFO} ${round.roundId} ${me}`);
    await this.submitted(vault, 'research.revealSeeds', { roundId: round.roundId, dropped, seeds: sealed });
  }

  private async release(vault: HostedVault, round: AggregationRound): Promise<void> {
    const study = this.state.get<Study>('studies', round.studyId)!;
    const query = study.query as unknown as StudyQuery;
    const length = vectorLength(query);
    const key = vault.identity.file.encryption.privateKey;
    const masked = new Map<string, bigint[]>();
    const revealed = new Map<string, ReadonlyMap<string, Uint8Array>>();
    try {
      for (const [c, sealed] of Object.entries(round.reveals)) {
        const text = new TextDecoder().decode(await openSealed(sealed, key, `${SEEDS_INFO} ${round.roundId} ${c}`));
        const message = JSON.parse(text) as { self?: unknown; pairs?: unknown };
        if (typeof message.self !== 'string') throw new MedledgerError('RECORD_INTEGRITY');
        const self = expandMask(fromBase64Url(message.self), length);
        const share = round.shares[c]!;
        const vector = decodeVector(new TextDecoder().decode(await openSealed(share, key, `${SHARE_INFO} ${round.roundId} ${c}`)), length);
        masked.set(
          c,
          vector.map((v, i) => (v - self[i]! + MODULUS) % MODULUS),
        );
        revealed.set(c, decodeSeeds(message.pairs));
      }
    } catch (e) {
      // A share that does not open cannot be summed; the round fails and says why.
      await this.fail(vault, round, isMedledgerError(e) ? e.code : 'RECORD_INTEGRITY');
      return;
    }
    const sum = unmaskSum({ participants: round.custodians, masked, revealed, length });
    // A patient appears at most once per custodian, so at most once per contributor: the noise covers that many.
    const result = releaseResult(query, sum, {
      k: study.k,
      epsilon: round.epsilonMilli === null ? null : round.epsilonMilli / 1000,
      contributionsPerPatient: masked.size,
    });
    const resultHash = sha256Hex(canonicalBytes(result));
    await this.submitted(vault, 'research.release', {
      roundId: round.roundId,
      result: result as unknown as JsonObject,
      resultHash,
      failure: null,
    });
  }

  private async fail(vault: HostedVault, round: AggregationRound, failure: string): Promise<void> {
    await this.submitted(vault, 'research.release', { roundId: round.roundId, result: null, resultHash: null, failure });
  }
}
