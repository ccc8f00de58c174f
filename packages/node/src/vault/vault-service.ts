/**
 * The custodian's vault (DESIGN §6; consortium paper §4): it keeps the records its institution
 * produces, encrypted, and hands one out only when the ledger says the patient agreed.
 *
 * - Storing: staff of the institution send a FHIR resource (and a DocumentReference's files);
 *   the vault validates it, encrypts it under a fresh data key, wraps the key with HPKE to the
 *   patient and the custodian (and under the author's role-group key), and answers the index
 *   fields the author then registers on the ledger.
 * - Serving: a request signed with HTTP Message Signatures (RFC 9421) by an enrolled requester;
 *   the vault checks the consent, writes `access.recordServed` to the ledger and waits until it
 *   is final (which it is only if the contract, re-checking the consent at block time, accepted
 *   it), then answers the ciphertext and the data key re-wrapped to the requester. A refusal is
 *   written to the ledger as `access.recordRefused` when the requester is authenticated, and to
 *   the vault's audit in every case.
 * - Erasure: when an erasure becomes part of the chain the vault destroys the record's data key
 *   and ciphertext (crypto-shredding); a restart finishes any erasure it missed.
 * - Group keys: when its staff change, the institution issues the next epoch of the affected
 *   role group, wrapped to each remaining member.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { fromBase64Url, toHex, utf8 } from '@medledger/core/codec/bytes';
import { canonicalBytes, type JsonObject } from '@medledger/core/codec/canonical-json';
import { Draft } from '@medledger/core/contracts/context';
import { patientConsents } from '@medledger/core/contracts/consent';
import { groupId, groupKeyIdOf, groupMembers } from '@medledger/core/contracts/groups';
import type { AccessLogEntry, GroupKey, KeyEntry, Member, Patient, RecordEntry, Staff } from '@medledger/core/contracts/state';
import { issueGroupEpoch, wrapForGroup } from '@medledger/core/client/group-keys';
import type { Identity } from '@medledger/core/client/identity';
import { recordAad } from '@medledger/core/client/seal-record';
import { attachmentAad, deidentifiedAad } from '@medledger/core/client/vault-client';
import { researchAccess } from '@medledger/core/contracts/research';
import { deidentify } from '@medledger/core/research/deidentify';
import { sha256Hex } from '@medledger/core/crypto/hash';
import { randomBytes } from '@medledger/core/crypto/random';
import { decryptWithDataKey, encryptWithDataKey, newDataKey, unwrapDataKey, wrapDataKey } from '@medledger/core/crypto/record-envelope';
import { decryptBytes, encryptBytes, encryptStream } from '@medledger/core/crypto/stream-aead';
import { describeAttachments, validateResource, MAX_ATTACHMENT_BYTES } from '@medledger/core/fhir/validate';
import { parseContentDigest } from '@medledger/core/http/content-digest';
import { verifyRequest } from '@medledger/core/http/message-signatures';
import { MedledgerError, isMedledgerError, type ErrorCode } from '@medledger/core/errors';
import type { TxType } from '@medledger/core/ledger/tx-types';
import { DeidentificationLevels, isPurpose, type DeidentificationLevel, type Purpose } from '@medledger/core/policy/purposes';
import { can, type StaffRole } from '@medledger/core/policy/roles';
import { evaluateConsent } from '@medledger/core/policy/consent-evaluation';
import type { CommittedBlock, Peer } from '../peer/peer.ts';
import type { FinalityTracker } from '../peer/finality-tracker.ts';
import type { GroupKeyring } from './group-keyring.ts';
import type { VaultAuditEntry, VaultRecord, VaultStore } from './vault-store.ts';
import { ResearchService } from './research-service.ts';

/** One institution whose vault this node keeps. */
export interface HostedVault {
  institution: string;
  /** the institution's own identity: signs its ledger writes, opens what is wrapped to it */
  identity: Identity;
  /** seals each record's data key at rest; kept outside the database */
  masterKey: Uint8Array;
  groupKeys: GroupKeyring;
}

export interface VaultServiceOptions {
  peer: Peer;
  finality: FinalityTracker | null;
  store: VaultStore;
  vaults: HostedVault[];
  /** wall clock for signature windows and audit times (tests may pass their own) */
  now?: () => number;
  /** accepted clock skew of a signed request, seconds */
  maxSkewSeconds?: number;
  /** how long a served-access entry lets its requester fetch the record's files */
  attachmentWindowMs?: number;
  /** how long to wait for the ledger to make an access final */
  finalTimeoutMs?: number;
}

/** What a signed request is, as the HTTP layer hands it over. */
export interface SignedRequest {
  method: string;
  protocol: 'http' | 'https';
  /** the request target exactly as received (path and query) */
  target: string;
  headers: Record<string, string | string[] | undefined>;
  /** a JSON body's bytes, checked against the signed Content-Digest */
  body?: Buffer | undefined;
}

const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;
const SIGNATURE_LIFETIME_MS = 300_000;

/** The authenticated principal behind a signed request. */
export type Requester =
  | { kind: 'staff'; keyId: string; staff: Staff; institution: Member }
  | { kind: 'patient'; keyId: string; patient: Patient }
  | { kind: 'institution'; keyId: string; institution: Member };

export interface StoreAnswer {
  objectId: string;
  /** the fields of `records.register` other than patientCode and registrationRequestId */
  index: JsonObject;
  attachments: { index: number; contentType: string; size: number; sha256: string }[];
}

export interface ServedRecord {
  recordId: string;
  accessTx: string | null;
  keyEnvelope: string;
  ciphertext: Uint8Array;
  /** set when the record was de-identified for a study: its level, study and plaintext hash */
  deidentified?: { level: string; study: string; hash: string };
  attachments: { index: number; contentType: string; size: number; ciphertextHash: string | null; complete: boolean }[];
}

const DEFAULT_ATTACHMENT_WINDOW = 15 * 60_000;
/** The audit action of a stored record; its audit row vouches for the record's createdAt. */
export const STORE_RECORD_ACTION = 'POST /vault/:institution/records';

export class VaultService {
  private readonly vaults = new Map<string, HostedVault>();
  private readonly now: () => number;
  private readonly onBlock = (b: CommittedBlock): void => {
    this.work = this.work.then(() => this.afterBlock(b)).catch((e: unknown) => this.report(e));
  };
  /** ledger-driven work (registrations, erasures, rotations), one at a time, in block order */
  private work: Promise<void> = Promise.resolve();
  /** study keys and aggregation rounds */
  readonly research: ResearchService;

  constructor(private readonly o: VaultServiceOptions) {
    for (const v of o.vaults) this.vaults.set(v.institution, v);
    this.now = o.now ?? Date.now;
    this.research = new ResearchService({
      peer: o.peer,
      store: o.store,
      vaults: this.vaults,
      now: () => this.now(),
      submit: (vault, type, body) => this.submit(vault, type, body),
      committed: async (txId) => (await this.committed(txId)).code,
      plaintextOf: (vault, recordId) => this.plaintextOf(vault, recordId),
      audit: (entry) => this.auditEntry(entry),
      report: (e) => {
        this.report(e);
      },
    });
  }

  get institutions(): string[] {
    return [...this.vaults.keys()];
  }

  hosts(institution: string): boolean {
    return this.vaults.has(institution);
  }

  /** Catches up with the ledger (registrations, erasures, group epochs), then follows it. */
  async start(): Promise<void> {
    await this.o.store.init();
    this.o.peer.on('block', this.onBlock);
    this.work = this.work.then(() => this.reconcile());
    await this.work;
  }

  async stop(): Promise<void> {
    this.o.peer.off('block', this.onBlock);
    this.research.stop();
    await this.work.catch(() => undefined);
    await this.o.store.close();
  }

  /** Waits for the ledger-driven work queued so far (tests and the CLI use it). */
  idle(): Promise<void> {
    return this.work;
  }

  /** The custodian of a record in the index ('unknown' if none), to audit under. */
  custodianOf(recordId: string): string {
    return this.state.get<RecordEntry>('records', recordId)?.custodian ?? 'unknown';
  }

  private report(e: unknown): void {
    // Never patient data: codes and ids only.
    const what = isMedledgerError(e) ? e.code : e instanceof Error ? e.name : 'error';
    process.stderr.write(`medledger: vault: ${what}\n`);
  }

  private get state(): Draft {
    return new Draft(this.o.peer.store);
  }

  private vault(institution: string): HostedVault {
    const v = this.vaults.get(institution);
    if (v === undefined) throw new MedledgerError('RECORD_NOT_HERE');
    return v;
  }

  // ---------------------------------------------------------------- authentication

  /**
   * Verifies a signed request: signature, key, time window and nonce. Failures are audited here
   * (the requester is not authenticated, so nothing goes to the ledger) and thrown.
   */
  /**
   * The authorities (host[:port]) this vault answers as: the addresses its institutions published
   * on the ledger, and the node's own. A request naming another one in Host is refused, so a
   * signature made for another vault (or smuggled through a crafted Host) never verifies here.
   */
  private readonly ownAuthorities = new Set<string>();

  allowAuthority(authority: string): void {
    this.ownAuthorities.add(authority.toLowerCase());
  }

  private answersAs(host: string): boolean {
    if (this.ownAuthorities.has(host.toLowerCase())) return true;
    for (const id of this.vaults.keys()) {
      const url = this.state.get<Member>('members', id)?.vaultUrl;
      if (typeof url === 'string' && new URL(url).host.toLowerCase() === host.toLowerCase()) return true;
    }
    return false;
  }

  /** The absolute URL the client signed: this vault's own authority and the target as received. */
  private signedUrl(req: SignedRequest): string {
    const host = req.headers['host'];
    if (typeof host !== 'string' || !HOST.test(host) || !this.answersAs(host))
      throw new MedledgerError('SIGNATURE_INVALID', { details: 'The request names another authority than this vault’s.' });
    const url = new URL(req.target, `${req.protocol}://${host}`);
    if (!req.target.startsWith('/') || url.pathname + url.search !== req.target) throw new MedledgerError('SIGNATURE_INVALID');
    return url.toString();
  }

  async authenticate(req: SignedRequest, custodian: string, action: string, recordId: string | null): Promise<Requester> {
    const state = this.state;
    let keyId = '';
    try {
      const verified = await verifyRequest({
        method: req.method,
        url: this.signedUrl(req),
        headers: req.headers,
        now: this.now(),
        maxSkewSeconds: this.o.maxSkewSeconds ?? 60,
        lookupKey: (kid: string) => {
          keyId = kid;
          const key = state.get<KeyEntry>('keys', kid);
          return Promise.resolve(key !== undefined && key.status === 'active' ? key.publicKey : null);
        },
      });
      keyId = verified.keyId;
      // A nonce is kept as long as its signature could be accepted, however late `expires` claims.
      const keepUntil = Math.min(verified.expires * 1000, verified.created * 1000 + SIGNATURE_LIFETIME_MS) + 120_000;
      if (!(await this.o.store.claimNonce(verified.keyId, verified.nonce, keepUntil, this.now()))) {
        throw new MedledgerError('REQUEST_REPLAYED');
      }
      if (req.body !== undefined) checkBodyDigest(req.body, req.headers['content-digest']);
      return this.principalOf(state, verified.keyId);
    } catch (e) {
      const code: ErrorCode = isMedledgerError(e) ? e.code : 'SIGNATURE_INVALID';
      await this.auditEntry({
        custodian,
        // Unverified: the key id the request claimed, marked as such.
        requester: keyId === '' ? 'unknown' : `claimed:${keyId}`,
        recordId,
        objectId: null,
        action,
        outcome: 'refused',
        code,
        ledgerTx: null,
      });
      throw isMedledgerError(e) ? e : new MedledgerError('SIGNATURE_INVALID');
    }
  }

  private principalOf(state: Draft, keyId: string): Requester {
    const key = state.get<KeyEntry>('keys', keyId)!;
    const owner = key.owner;
    if (owner.kind === 'staff') {
      const staff = state.get<Staff>('staff', owner.staffId);
      const institution = state.get<Member>('members', owner.institution);
      if (staff === undefined || staff.status !== 'active') throw new MedledgerError('IDENTITY_REVOKED');
      if (institution === undefined || institution.status !== 'active') throw new MedledgerError('NOT_A_MEMBER');
      return { kind: 'staff', keyId, staff, institution };
    }
    if (owner.kind === 'patient') {
      const patient = state.get<Patient>('patients', owner.patientCode);
      if (patient === undefined) throw new MedledgerError('PATIENT_UNKNOWN');
      return { kind: 'patient', keyId, patient };
    }
    if (owner.kind === 'institution') {
      const institution = state.get<Member>('members', owner.institution);
      if (institution === undefined || institution.status !== 'active') throw new MedledgerError('NOT_A_MEMBER');
      return { kind: 'institution', keyId, institution };
    }
    throw new MedledgerError('ROLE_FORBIDDEN');
  }

  /**
   * Puts in `custodian`'s trail an answer this node decided outside the vault (the FHIR facade's
   * reads of the ledger) for a requester `authenticate` verified: served, or refused with a code.
   */
  async auditAnswer(r: Requester, custodian: string, action: string, outcome: 'served' | 'refused', code: string | null): Promise<void> {
    await this.auditEntry({
      custodian,
      requester: this.requesterLabel(r),
      recordId: null,
      objectId: null,
      action,
      outcome,
      code,
      ledgerTx: null,
    });
  }

  private async auditEntry(e: Omit<VaultAuditEntry, 'time'>, time = this.now()): Promise<void> {
    await this.o.store.audit({ ...e, time });
  }

  private requesterLabel(r: Requester): string {
    return r.kind === 'staff' ? r.staff.staffId : r.kind === 'patient' ? `patient:${r.keyId}` : r.institution.id;
  }

  // ---------------------------------------------------------------- storing

  /** Validates, encrypts and keeps a record sent by staff of `custodian`; answers its index fields. */
  async storeRecord(r: Requester, custodian: string, body: { patientCode?: unknown; resource?: unknown }): Promise<StoreAnswer> {
    const action = STORE_RECORD_ACTION;
    try {
      const vault = this.vault(custodian);
      if (r.kind !== 'staff' || r.staff.institution !== custodian)
        throw new MedledgerError('ROLE_FORBIDDEN', { details: 'Only the custodian’s staff store its records.' });
      if (!can({ role: r.staff.role, institutionKind: r.institution.kind }, 'records.register')) throw new MedledgerError('ROLE_FORBIDDEN');
      if (typeof body.patientCode !== 'string' || !/^[0-9a-f]{64}$/.test(body.patientCode))
        throw new MedledgerError('BAD_REQUEST', { details: 'patientCode is 64 lower-case hex.' });
      const patientCode = body.patientCode;
      const resource = validateResource(body.resource);
      const patient = this.state.get<Patient>('patients', patientCode);
      if (patient === undefined) throw new MedledgerError('PATIENT_UNKNOWN');
      const category = resource.resourceType;
      const plaintext = canonicalBytes(resource);
      const dataKey = newDataKey();
      const ciphertext = await encryptBytes(dataKey, recordAad(patientCode, category), plaintext);
      const objectId = toHex(randomBytes(16));
      const keyEnvelopes: Record<string, string> = {
        patient: await wrapDataKey(dataKey, patient.encryptionKey),
        custodian: await wrapDataKey(dataKey, vault.identity.encryptionKey),
      };
      // The author's role group can open it too, with the group's current epoch.
      let groupKeyId: string | null = null;
      const group = this.state.get<GroupKey>('groupKeys', groupId(custodian, r.staff.role));
      if (group !== undefined && !group.stale) {
        const id = groupKeyIdOf(custodian, r.staff.role, group.epoch);
        const key = await vault.groupKeys.get(id);
        if (key !== undefined) {
          keyEnvelopes['group'] = await wrapForGroup(dataKey, key, id);
          groupKeyId = id;
        }
      }
      const hash = sha256Hex(plaintext);
      const ciphertextHash = sha256Hex(ciphertext);
      const record: VaultRecord = {
        objectId,
        custodian,
        patientCode,
        category,
        state: 'pending',
        recordId: null,
        sealedDataKey: await this.sealKey(vault, objectId, dataKey),
        resourceCiphertext: ciphertext,
        hash,
        ciphertextHash,
        size: plaintext.length,
        createdAt: this.now(),
        erasedAt: null,
        erasureTx: null,
      };
      await this.o.store.putRecord(record);
      const attachments = describeAttachments(resource);
      for (const a of attachments) await this.o.store.addAttachment({ objectId, ...a });
      // Audited at the record's own createdAt: the hash-chained trail then vouches for that
      // column too, which nothing else covers (verify-vault.ts).
      await this.auditEntry(
        {
          custodian,
          requester: r.staff.staffId,
          recordId: null,
          objectId,
          action,
          outcome: 'stored',
          code: null,
          ledgerTx: null,
        },
        record.createdAt,
      );
      return {
        objectId,
        attachments,
        index: {
          category,
          groupKeyId,
          hashAlg: 'sha-256',
          hashLength: 32,
          hash,
          ciphertextHash,
          size: plaintext.length,
          storage: 'vault',
          pointer: `vault:${custodian}/${objectId}`,
          ciphertext: null,
          keyEnvelopes,
        },
      };
    } catch (e) {
      await this.auditEntry({
        custodian,
        requester: this.requesterLabel(r),
        recordId: null,
        objectId: null,
        action,
        outcome: 'refused',
        code: isMedledgerError(e) ? e.code : 'INTERNAL',
        ledgerTx: null,
      });
      throw e;
    }
  }

  /**
   * Receives one attachment's bytes as a stream, encrypting chunk by chunk as they arrive; the
   * size, the declared SHA-256 and the request's Content-Digest must all match, or nothing stays.
   */
  async storeAttachment(
    r: Requester,
    custodian: string,
    objectId: string,
    index: number,
    source: AsyncIterable<Uint8Array>,
    digestHeader: string | undefined,
  ): Promise<{ ciphertextHash: string; size: number }> {
    const action = 'PUT /vault/:institution/objects/:objectId/attachments/:index';
    const audit = (outcome: 'stored' | 'refused', code: ErrorCode | null) =>
      this.auditEntry({ custodian, requester: this.requesterLabel(r), recordId: null, objectId, action, outcome, code, ledgerTx: null });
    try {
      const vault = this.vault(custodian);
      if (r.kind !== 'staff' || r.staff.institution !== custodian) throw new MedledgerError('ROLE_FORBIDDEN');
      if (digestHeader === undefined)
        throw new MedledgerError('SIGNATURE_INVALID', { details: 'A file upload carries a signed Content-Digest.' });
      const expectedDigest = parseContentDigest(digestHeader);
      const record = await this.o.store.getRecord(objectId);
      if (record === undefined || record.custodian !== custodian) throw new MedledgerError('RECORD_NOT_FOUND');
      if (record.state === 'erased') throw new MedledgerError('RECORD_ERASED');
      const declared = (await this.o.store.attachments(objectId)).find((a) => a.index === index);
      if (declared === undefined) throw new MedledgerError('NOT_FOUND', { details: 'The resource declares no file at this index.' });
      if (declared.complete) throw new MedledgerError('ALREADY_EXISTS', { details: 'This file is already stored.' });
      const dataKey = await this.unsealKey(vault, record);
      await this.o.store.resetAttachment(objectId, index);
      // The body is the file itself: one SHA-256 checks both the Content-Digest and the declared hash.
      const plainHash = createHash('sha256');
      let size = 0;
      const counted = async function* (): AsyncGenerator<Uint8Array> {
        for await (const piece of source) {
          size += piece.length;
          if (size > Math.min(declared.size, MAX_ATTACHMENT_BYTES)) throw new MedledgerError('RECORD_TOO_LARGE');
          plainHash.update(piece);
          yield piece;
        }
      };
      const ctHash = createHash('sha256');
      let seq = 0;
      try {
        for await (const chunk of encryptStream(dataKey, attachmentAad(record.hash, index), counted())) {
          ctHash.update(chunk);
          await this.o.store.putAttachmentChunk(objectId, index, seq++, chunk);
        }
        if (size !== declared.size)
          throw new MedledgerError('DIGEST_MISMATCH', { details: 'The file’s size differs from the resource’s.' });
        const digest = plainHash.digest();
        if (!digestMatches(expectedDigest, digest)) throw new MedledgerError('DIGEST_MISMATCH');
        if (digest.toString('hex') !== declared.sha256)
          throw new MedledgerError('DIGEST_MISMATCH', { details: 'The file’s SHA-256 differs from the resource’s.' });
      } catch (e) {
        await this.o.store.resetAttachment(objectId, index);
        throw e;
      }
      const ciphertextHash = ctHash.digest('hex');
      await this.o.store.completeAttachment(objectId, index, { ciphertextHash, chunks: seq });
      await audit('stored', null);
      return { ciphertextHash, size };
    } catch (e) {
      await audit('refused', isMedledgerError(e) ? e.code : 'INTERNAL');
      throw e;
    }
  }

  // ---------------------------------------------------------------- serving

  /**
   * Serves a record to an authenticated requester, or refuses with a code. Every answer is
   * audited; a staff request is decided by the ledger: served only once `access.recordServed` is
   * final with code OK.
   */
  async serveRecord(
    r: Requester,
    recordId: string,
    q: { purpose?: unknown; deidentification?: unknown; study?: unknown },
  ): Promise<ServedRecord> {
    const action = 'GET /vault/records/:recordId';
    const entry = this.state.get<RecordEntry>('records', recordId);
    const custodian = entry?.custodian ?? 'unknown';
    let ledgerTx: string | null = null;
    try {
      if (entry === undefined) throw new MedledgerError('RECORD_NOT_FOUND');
      const vault = this.vault(entry.custodian);
      if (typeof q.purpose !== 'string' || !isPurpose(q.purpose))
        throw new MedledgerError('BAD_REQUEST', { details: 'purpose is an HL7 purpose of use.' });
      const asked = q.deidentification ?? 'identified';
      if (typeof asked !== 'string' || !(DeidentificationLevels as readonly string[]).includes(asked))
        throw new MedledgerError('BAD_REQUEST', { details: `deidentification is one of ${DeidentificationLevels.join(', ')}.` });
      let deidentification = asked as DeidentificationLevel;
      if (q.study !== undefined && (typeof q.study !== 'string' || !/^[a-z0-9][a-z0-9-]{0,47}$/.test(q.study)))
        throw new MedledgerError('BAD_REQUEST', { details: 'study is a study id.' });
      const studyId = q.study;
      const purpose: Purpose = q.purpose;
      if (r.kind === 'patient') {
        // A patient reads all of their own records with their own envelope.
        if (r.patient.patientCode !== entry.patientCode)
          throw new MedledgerError('ROLE_FORBIDDEN', { details: 'A patient reads only their own records.' });
      } else if (r.kind !== 'staff') {
        throw new MedledgerError('ROLE_FORBIDDEN', { details: 'Records are served to staff and to their patient.' });
      }
      if (entry.state === 'erased') throw new MedledgerError('RECORD_ERASED');
      if (entry.state !== 'active') throw new MedledgerError('RECORD_RETRACTED');
      const held = await this.o.store.getRecordByRecordId(recordId);
      if (held === undefined || held.state === 'erased' || held.sealedDataKey === null || held.resourceCiphertext === null) {
        throw new MedledgerError(held?.state === 'erased' ? 'RECORD_ERASED' : 'RECORD_NOT_FOUND');
      }
      let keyEnvelope: string;
      if (r.kind === 'staff') {
        // TMSMD §4.2: the contract's research gate, decided now (no deidentification asked: the study's level).
        const study = researchAccess(this.state, r.staff, {
          study: studyId,
          purpose,
          deidentification: q.deidentification === undefined ? undefined : deidentification,
          category: entry.category,
        });
        let studyKey: Uint8Array | null = null;
        if (study !== null) {
          deidentification = study.deidentification;
        } else if (deidentification !== 'identified') {
          throw new MedledgerError('BAD_REQUEST', { details: 'De-identified records are served for a study (study=<id>).' });
        }
        // Decide now, as the contract will: a refusal needs no round through the ledger to be final.
        const decision = evaluateConsent(
          {
            requester: { staffId: r.staff.staffId, institution: r.staff.institution, role: r.staff.role, study: studyId ?? null },
            record: { recordId, category: entry.category, custodian: entry.custodian, patientCode: entry.patientCode },
            purpose,
            deidentification,
            time: this.now(),
          },
          patientConsents(this.state, entry.patientCode),
        );
        if (!decision.allowed) throw new MedledgerError(decision.code);
        if (r.staff.encryptionKey === null) throw new MedledgerError('BAD_REQUEST', { details: 'The requester has no encryption key.' });
        // The study's key first: an access is written to the ledger only when it can be served.
        if (studyId !== undefined) studyKey = await this.research.studyKey(vault, studyId);
        const served = await this.submit(vault, 'access.recordServed', {
          recordId,
          requester: r.staff.staffId,
          purpose,
          deidentification,
          ...(studyId === undefined ? {} : { study: studyId }),
        });
        ledgerTx = served.txId;
        const code = await this.final(served.txId);
        if (code !== 'OK') {
          ledgerTx = null; // the rejected tx is itself the ledger's record of this refusal
          throw new MedledgerError(code as ErrorCode);
        }
        // Read again: an erasure may have shredded the record while the access became final.
        const now = await this.o.store.getRecordByRecordId(recordId);
        if (now === undefined || now.state === 'erased') throw new MedledgerError('RECORD_ERASED');
        const dataKey = await this.unsealKey(vault, now);
        if (studyId !== undefined) {
          // Never fall through to the identified answer for a study.
          if (studyKey === null) throw new MedledgerError('STUDY_KEY_MISSING');
          return await this.serveDeidentified(r, vault, entry, now, dataKey, {
            studyId,
            studyKey,
            level: deidentification,
            ledgerTx,
            action,
          });
        }
        keyEnvelope = await wrapDataKey(dataKey, r.staff.encryptionKey);
      } else {
        // Wrapped now to the patient's current key: the envelope on the ledger was made for the
        // key they had when the record was registered, which a key rotation has since replaced.
        keyEnvelope = await wrapDataKey(await this.unsealKey(vault, held), r.patient.encryptionKey);
      }
      const attachments = (await this.o.store.attachments(held.objectId)).map((a) => ({
        index: a.index,
        contentType: a.contentType,
        size: a.size,
        ciphertextHash: a.ciphertextHash,
        complete: a.complete,
      }));
      await this.auditEntry({
        custodian,
        requester: this.requesterLabel(r),
        recordId,
        objectId: held.objectId,
        action,
        outcome: 'served',
        code: null,
        ledgerTx,
      });
      return { recordId, accessTx: ledgerTx, keyEnvelope, ciphertext: held.resourceCiphertext, attachments };
    } catch (e) {
      const code: ErrorCode = isMedledgerError(e) ? e.code : 'INTERNAL';
      await this.refuse(r, entry, custodian, action, code, q.purpose, ledgerTx);
      throw e;
    }
  }

  /** De-identifies a record for a study in the custodian's vault: identified data never leaves for research. */
  private async serveDeidentified(
    r: Requester & { kind: 'staff' },
    vault: HostedVault,
    entry: RecordEntry,
    held: VaultRecord,
    dataKey: Uint8Array,
    o: { studyId: string; studyKey: Uint8Array; level: DeidentificationLevel; ledgerTx: string | null; action: string },
  ): Promise<ServedRecord> {
    const plaintext = await decryptBytes(dataKey, recordAad(entry.patientCode, entry.category), held.resourceCiphertext!);
    const { resource, applied } = deidentify(JSON.parse(new TextDecoder().decode(plaintext)) as JsonObject, {
      level: o.level === 'anonymised' ? 'anonymised' : 'pseudonymised',
      studyKey: o.studyKey,
      // Anonymised: no link between records, so each record gets a pseudonym of its own.
      patientCode: o.level === 'anonymised' ? sha256Hex(`medledger/anonymised-record/v1 ${entry.recordId}`) : entry.patientCode,
      referenceTime: this.now(),
    });
    const clean = canonicalBytes(resource);
    const freshKey = newDataKey();
    const ciphertext = await encryptBytes(freshKey, deidentifiedAad(entry.recordId, o.studyId), clean);
    const keyEnvelope = await wrapDataKey(freshKey, r.staff.encryptionKey!);
    await this.auditEntry({
      custodian: vault.institution,
      requester: r.staff.staffId,
      recordId: entry.recordId,
      objectId: held.objectId,
      // Which kinds of identifier were removed, never their values.
      action: `${o.action} de-identified (${[...new Set(applied.map((a) => a.kind))].sort().join(',')})`.slice(0, 500),
      outcome: 'served',
      code: null,
      ledgerTx: o.ledgerTx,
    });
    // A study gets the resource, never its files: they cannot be de-identified by rule.
    return {
      recordId: entry.recordId,
      accessTx: o.ledgerTx,
      keyEnvelope,
      ciphertext,
      attachments: [],
      deidentified: { level: o.level, study: o.studyId, hash: sha256Hex(clean) },
    };
  }

  /** Audits a refusal; an authenticated staff refusal also goes to the patient's access log. */
  private async refuse(
    r: Requester,
    entry: RecordEntry | undefined,
    custodian: string,
    action: string,
    code: ErrorCode,
    purpose: unknown,
    decided: string | null,
  ): Promise<void> {
    let ledgerTx = decided;
    const vault = this.vaults.get(custodian);
    if (
      ledgerTx === null &&
      vault !== undefined &&
      entry !== undefined &&
      r.kind === 'staff' &&
      typeof purpose === 'string' &&
      isPurpose(purpose) &&
      code !== 'INTERNAL'
    ) {
      try {
        const refused = await this.submit(vault, 'access.recordRefused', {
          patientCode: entry.patientCode,
          recordId: entry.recordId,
          requester: r.staff.staffId,
          purpose,
          code,
        });
        ledgerTx = refused.txId;
      } catch (e) {
        this.report(e);
      }
    }
    await this.auditEntry({
      custodian,
      requester: this.requesterLabel(r),
      recordId: entry?.recordId ?? null,
      objectId: null,
      action,
      outcome: 'refused',
      code,
      ledgerTx,
    });
  }

  /**
   * Streams one file of a record to a requester the ledger recorded as served that record
   * (`access` = the served entry's id) within the attachment window; the patient needs none.
   */
  async serveAttachment(
    r: Requester,
    recordId: string,
    index: number,
    access: string | undefined,
  ): Promise<{ size: number; ciphertextHash: string; chunks: AsyncIterable<Uint8Array> }> {
    const action = 'GET /vault/records/:recordId/attachments/:index';
    const entry = this.state.get<RecordEntry>('records', recordId);
    const custodian = entry?.custodian ?? 'unknown';
    try {
      if (entry === undefined) throw new MedledgerError('RECORD_NOT_FOUND');
      this.vault(entry.custodian);
      if (entry.state === 'erased') throw new MedledgerError('RECORD_ERASED');
      if (r.kind === 'staff') {
        const log = access === undefined ? undefined : this.state.get<AccessLogEntry>('accessLog', access);
        if (r.staff.role === 'researcher' || log?.study !== undefined)
          throw new MedledgerError('DEIDENTIFICATION_REQUIRED', {
            details: 'Files are not served for research: they cannot be de-identified.',
          });
        if (log === undefined || log.outcome !== 'served' || log.recordId !== recordId || log.actor !== r.staff.staffId)
          throw new MedledgerError('CONSENT_REQUIRED', { details: 'Name the served access (access=<entry id>) of this record.' });
        if (this.now() - log.time > (this.o.attachmentWindowMs ?? DEFAULT_ATTACHMENT_WINDOW))
          throw new MedledgerError('CONSENT_EXPIRED', { details: 'Fetch the record again to fetch its files.' });
      } else if (r.kind !== 'patient' || r.patient.patientCode !== entry.patientCode) {
        throw new MedledgerError('ROLE_FORBIDDEN');
      }
      const held = await this.o.store.getRecordByRecordId(recordId);
      if (held === undefined) throw new MedledgerError('RECORD_NOT_FOUND');
      if (held.state === 'erased') throw new MedledgerError('RECORD_ERASED');
      const a = (await this.o.store.attachments(held.objectId)).find((x) => x.index === index);
      if (a === undefined) throw new MedledgerError('NOT_FOUND');
      if (!a.complete || a.ciphertextHash === null) throw new MedledgerError('RECORD_INCOMPLETE');
      await this.auditEntry({
        custodian,
        requester: this.requesterLabel(r),
        recordId,
        objectId: held.objectId,
        action,
        outcome: 'served',
        code: null,
        ledgerTx: access ?? null,
      });
      return { size: a.size, ciphertextHash: a.ciphertextHash, chunks: this.o.store.readAttachment(held.objectId, index) };
    } catch (e) {
      await this.auditEntry({
        custodian,
        requester: this.requesterLabel(r),
        recordId,
        objectId: null,
        action,
        outcome: 'refused',
        code: isMedledgerError(e) ? e.code : 'INTERNAL',
        ledgerTx: null,
      });
      throw e;
    }
  }

  /** The vault's own audit, for the institution's auditors (and its key). */
  async auditLog(r: Requester, custodian: string, after: number, limit: number): Promise<VaultAuditEntry[]> {
    this.vault(custodian);
    const allowed =
      (r.kind === 'staff' && r.staff.institution === custodian && can({ role: r.staff.role }, 'audit.read')) ||
      (r.kind === 'institution' && r.institution.id === custodian);
    const action = 'GET /vault/:institution/audit';
    const entry = { custodian, requester: this.requesterLabel(r), recordId: null, objectId: null, action, ledgerTx: null };
    if (!allowed) {
      await this.auditEntry({ ...entry, outcome: 'refused', code: 'ROLE_FORBIDDEN' });
      throw new MedledgerError('ROLE_FORBIDDEN', { details: 'The vault’s audit is for its institution’s auditors.' });
    }
    const entries = await this.o.store.auditEntries(custodian, after, limit);
    await this.auditEntry({ ...entry, outcome: 'served', code: null });
    return entries;
  }

  // ---------------------------------------------------------------- ledger plumbing

  private async submit(vault: HostedVault, type: TxType, body: JsonObject): Promise<{ txId: string }> {
    const { tx } = await vault.identity.tx(this.o.peer.network, type, body, { createdAt: this.now() });
    return this.o.peer.submit(tx);
  }

  /** Waits until the tx is in a final block; answers its validity code. */
  /** Waits until the tx is in a block; answers its height and validity code. */
  private async committed(txId: string): Promise<{ height: number; code: string }> {
    const status = await this.o.peer.waitForCommit(txId, this.o.finalTimeoutMs ?? 30_000);
    if (status.status !== 'committed') throw new MedledgerError('NODE_UNAVAILABLE', { details: 'The transaction did not commit in time.' });
    return status;
  }

  private async final(txId: string): Promise<string> {
    const timeout = this.o.finalTimeoutMs ?? 30_000;
    const status = await this.committed(txId);
    const finality = this.o.finality;
    if (finality !== null && finality.status.finalHeight < status.height) {
      await new Promise<void>((resolve, reject) => {
        const onFinal = (): void => {
          if (finality.status.finalHeight >= status.height) done(null);
        };
        const timer = setTimeout(
          () => done(new MedledgerError('NODE_UNAVAILABLE', { details: 'The access did not become final in time.' })),
          timeout,
        );
        const done = (e: MedledgerError | null): void => {
          clearTimeout(timer);
          finality.off('final', onFinal);
          if (e === null) resolve();
          else reject(e);
        };
        finality.on('final', onFinal);
        onFinal();
      });
    }
    return status.code;
  }

  private sealKey(vault: HostedVault, objectId: string, dataKey: Uint8Array): Promise<Uint8Array> {
    return encryptWithDataKey(vault.masterKey, dataKey, utf8(`medledger/vault-key/v1 ${vault.institution} ${objectId}`));
  }

  private async unsealKey(vault: HostedVault, record: VaultRecord): Promise<Uint8Array> {
    if (record.sealedDataKey === null) throw new MedledgerError('RECORD_ERASED');
    return decryptWithDataKey(
      vault.masterKey,
      record.sealedDataKey,
      utf8(`medledger/vault-key/v1 ${vault.institution} ${record.objectId}`),
    );
  }

  /** A registered record's FHIR JSON, for the custodian's own computations; null once erased. */
  private async plaintextOf(vault: HostedVault, recordId: string): Promise<Uint8Array | null> {
    const entry = this.state.get<RecordEntry>('records', recordId);
    if (entry === undefined || entry.state === 'erased') return null;
    if (entry.storage === 'chain' && entry.ciphertext !== null && entry.keyEnvelopes !== null) {
      // A small record kept on the chain (TMSMD's mode): its key is wrapped to the custodian.
      const dataKey = await unwrapDataKey(entry.keyEnvelopes.custodian, vault.identity.file.encryption.privateKey);
      return decryptWithDataKey(dataKey, fromBase64Url(entry.ciphertext), recordAad(entry.patientCode, entry.category));
    }
    const held = await this.o.store.getRecordByRecordId(recordId);
    if (held === undefined || held.state === 'erased' || held.resourceCiphertext === null) return null;
    const dataKey = await this.unsealKey(vault, held);
    return decryptBytes(dataKey, recordAad(entry.patientCode, entry.category), held.resourceCiphertext);
  }

  private async afterBlock(b: CommittedBlock): Promise<void> {
    const groups = new Set<string>();
    for (const { event } of b.events) {
      try {
        await this.afterEvent(event, b.time, groups);
      } catch (e) {
        // One event's failure must not skip the others (an erasure beside a failed rotation);
        // what failed is finished by reconcile() at the next start.
        this.report(e);
      }
    }
    for (const g of groups) await this.rotateIfNeeded(g).catch((e: unknown) => this.report(e));
  }

  private async afterEvent(event: CommittedBlock['events'][number]['event'], time: number, groups: Set<string>): Promise<void> {
    this.research.onEvent(event);
    if (event.type === 'record.registered' || event.type === 'record.amended') {
      await this.noteRegistration(event.data['recordId'] as string);
    } else if (event.type === 'record.erased') {
      for (const id of event.data['recordIds'] as string[]) await this.shredRecord(id, event.data['erasureTx'] as string, time);
    } else if (event.type === 'identity.staffEnrolled' || event.type === 'identity.staffRevoked') {
      const staff = this.state.get<Staff>('staff', event.data['staffId'] as string);
      if (staff !== undefined && this.vaults.has(staff.institution)) groups.add(groupId(staff.institution, staff.role));
    }
  }

  /** Links a pending upload to its index entry once the registration is on the ledger. */
  private async noteRegistration(recordId: string): Promise<void> {
    const entry = this.state.get<RecordEntry>('records', recordId);
    if (entry?.storage !== 'vault' || entry.pointer === null || !this.vaults.has(entry.custodian)) return;
    const prefix = `vault:${entry.custodian}/`;
    if (!entry.pointer.startsWith(prefix)) return;
    const held = await this.o.store.getRecord(entry.pointer.slice(prefix.length));
    if (
      held === undefined ||
      held.custodian !== entry.custodian ||
      held.hash !== entry.hash ||
      held.ciphertextHash !== entry.ciphertextHash
    )
      return;
    if (held.state === 'pending') await this.o.store.markRegistered(held.objectId, recordId);
  }

  private async shredRecord(recordId: string, erasureTx: string, time: number): Promise<void> {
    const held = await this.o.store.getRecordByRecordId(recordId);
    if (held === undefined || held.state === 'erased' || !this.vaults.has(held.custodian)) return;
    await this.o.store.shred(held.objectId, erasureTx, time);
    await this.auditEntry({
      custodian: held.custodian,
      requester: 'patient',
      recordId,
      objectId: held.objectId,
      action: 'records.erase',
      outcome: 'erased',
      code: null,
      ledgerTx: erasureTx,
    });
  }

  /** Issues the next epoch of a role group when its members changed (or it has none yet). */
  private async rotateIfNeeded(id: string): Promise<void> {
    const [institution, role] = id.split('/') as [string, StaffRole];
    const vault = this.vaults.get(institution);
    if (vault === undefined) return;
    const state = this.state;
    const group = state.get<GroupKey>('groupKeys', id);
    if (group !== undefined && !group.stale) return;
    const members = groupMembers(state, institution, role);
    if (members.length === 0) return;
    const epoch = (group?.epoch ?? 0) + 1;
    const keys = members.map((staffId) => ({ staffId, encryptionKey: state.get<Staff>('staff', staffId)!.encryptionKey! }));
    const issued = await issueGroupEpoch(keys);
    const groupKeyId = groupKeyIdOf(institution, role, epoch);
    // Kept before it is announced, so a crash cannot leave an epoch on the ledger without its key.
    await vault.groupKeys.put(groupKeyId, issued.groupKey);
    const { txId } = await this.submit(vault, 'groups.rotate', { role, epoch, envelopes: issued.envelopes });
    const status = await this.o.peer.waitForCommit(txId, this.o.finalTimeoutMs ?? 30_000);
    if (status.status === 'committed' && status.code !== 'OK') await vault.groupKeys.delete(groupKeyId);
  }

  /** After a restart: finish erasures and registrations the vault missed, refresh stale groups. */
  private async reconcile(): Promise<void> {
    const store = this.o.peer.store;
    for (const institution of this.vaults.keys()) {
      for (const value of store.query('records', { custodian: institution }, null, null, 1_000_000)) {
        const entry = value as unknown as RecordEntry;
        if (entry.storage !== 'vault') continue;
        if (entry.state === 'erased') await this.shredRecord(entry.recordId, entry.erasureTx ?? '', entry.erasedAt ?? 0);
        else await this.noteRegistration(entry.recordId);
      }
      for (const role of ['doctor', 'nurse', 'operator', 'researcher', 'auditor'] as const)
        await this.rotateIfNeeded(groupId(institution, role));
    }
    this.research.reconcile();
  }
}

/** Compares a body's SHA-256 with the one its Content-Digest declared. */
function digestMatches(expected: Uint8Array, actual: Uint8Array): boolean {
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** A body must be exactly what its signed Content-Digest says (RFC 9530, sha-256). */
function checkBodyDigest(body: Buffer, header: string | string[] | undefined): void {
  if (typeof header !== 'string') throw new MedledgerError('SIGNATURE_INVALID', { details: 'A body carries a signed Content-Digest.' });
  const expected = parseContentDigest(header);
  const actual = createHash('sha256').update(body).digest();
  if (!digestMatches(expected, actual)) throw new MedledgerError('DIGEST_MISMATCH');
}
