/**
 * The world state: named tables of JSON values keyed by string, read through `StateReader` and
 * changed only by contract write sets. The value shapes below are what every table holds.
 */
import type { JsonValue } from '../codec/canonical-json.ts';
import type { InstitutionKind, Qualification, StaffRole } from '../policy/roles.ts';
import type { DeidentificationLevel, Purpose } from '../policy/purposes.ts';

export const StateTables = [
  'keys',
  'members',
  'proposals',
  'staff',
  'patients',
  'records',
  'regRequests',
  'consents',
  'patientConsents',
  'accessRequests',
  'accessLog',
  'reviews',
  'groupKeys',
  'studies',
  'rounds',
  'meta',
  // issue 7
  'subscriptions',
  'guardianships',
] as const;
export type StateTable = (typeof StateTables)[number];

export interface StateReader {
  /** The value, as a fresh object the caller may keep or change without effect on the state. */
  get(table: StateTable, key: string): JsonValue | undefined;
}

/** One change: `value: null` deletes the key. */
export interface StateWrite {
  table: StateTable;
  key: string;
  value: JsonValue | null;
}

export type KeyOwner =
  | { kind: 'issuer' }
  | { kind: 'institution'; institution: string }
  | { kind: 'staff'; staffId: string; institution: string }
  | { kind: 'patient'; patientCode: string };

export interface KeyEntry {
  keyId: string;
  publicKey: string;
  owner: KeyOwner;
  status: 'active' | 'revoked';
}

export interface Member {
  id: string;
  name: string;
  kind: InstitutionKind;
  signingKey: string;
  encryptionKey: string | null;
  validator: boolean;
  status: 'active' | 'removed';
  admittedAt: number;
  admittedAtHeight: number;
  removedAtHeight?: number;
  /** where the institution's vault answers signed requests */
  vaultUrl?: string | null;
  /**
   * Signing keys the institution had before its current one, oldest first, each with the last
   * height whose finality votes it signs (the block that replaced it): a certificate of an older
   * height is checked against the key in force then.
   */
  previousKeys?: { publicKey: string; untilHeight: number }[];
}

export interface InstitutionDescriptor {
  id: string;
  name: string;
  kind: InstitutionKind;
  signingKey: string;
  encryptionKey: string | null;
  validator: boolean;
}

export interface Proposal {
  id: string;
  action: 'admit' | 'remove' | 'replaceKey';
  institution: InstitutionDescriptor | null;
  institutionId: string;
  /** for `replaceKey`: the keys the institution takes once the other members agree */
  replacement?: { signingKey: string; encryptionKey: string | null };
  proposer: string;
  votes: Record<string, boolean>;
  status: 'open' | 'accepted' | 'rejected';
  createdAt: number;
  decidedAtHeight?: number;
}

export interface Staff {
  staffId: string;
  institution: string;
  role: StaffRole;
  signingKey: string;
  encryptionKey: string | null;
  displayName: string;
  status: 'active' | 'revoked';
  enrolledAt: number;
  /** set by the institution (e.g. `emergency`: may break the glass); absent: none */
  qualifications?: Qualification[];
}

export interface Patient {
  patientCode: string;
  signingKey: string;
  encryptionKey: string;
  keyId: string;
  home: string;
  registeredAt: number;
  /** key ids the patient had before the current one, oldest first (all revoked) */
  previousKeyIds?: string[];
  keysRotatedAt?: number;
  /** set while the patient's key is revoked with no new one (a lost or stolen device) */
  frozenAt?: number;
}

export type RecordState = 'active' | 'superseded' | 'retracted' | 'erased';

/** The record index entry: the TMSMD block fields (figure 5) plus the consortium's. */
export interface RecordEntry {
  recordId: string;
  state: RecordState;
  patientCode: string;
  groupKeyId: string | null;
  hashAlg: 'sha-256';
  hashLength: 32;
  hash: string;
  custodian: string;
  category: string;
  ciphertextHash: string;
  size: number;
  storage: 'vault' | 'chain';
  pointer: string | null;
  ciphertext: string | null;
  /** null once the patient had the record erased */
  keyEnvelopes: { patient: string; custodian: string; group?: string } | null;
  author: string;
  registeredAt: number;
  height: number;
  version: number;
  lineage: string;
  supersedes: string | null;
  supersededBy: string | null;
  registrationRequestId: string | null;
  erasedAt?: number;
  erasureTx?: string;
}

export interface RegistrationRequest {
  requestId: string;
  patientCode: string;
  custodian: string;
  requester: string;
  category: string;
  purpose: Purpose;
  status: 'pending' | 'accepted' | 'refused' | 'used';
  createdAt: number;
  answeredAt: number | null;
  recordId: string | null;
}

export type Grantee =
  | { kind: 'institution'; institution: string }
  | { kind: 'person'; staffId: string }
  | { kind: 'role'; role: StaffRole; institution: string | null }
  /** a registered research study: its team's researchers, for the study's purpose only */
  | { kind: 'study'; studyId: string };

export type ConsentScope = { kind: 'all' } | { kind: 'categories'; categories: string[] } | { kind: 'records'; recordIds: string[] };

export interface Consent {
  consentId: string;
  patientCode: string;
  grantee: Grantee;
  scope: ConsentScope;
  purposes: Purpose[];
  period: { from: number; to: number | null };
  deidentification: DeidentificationLevel;
  status: 'active' | 'revoked';
  version: number;
  grantedAt: number;
  updatedAt: number;
  source: 'grant' | 'access-request' | 'break-glass';
  requestId: string | null;
  /** present when a guardian granted it on the patient's behalf */
  grantedBy?: { guardian: string; guardianshipId: string };
}

export interface AccessRequest {
  requestId: string;
  patientCode: string;
  requester: string;
  institution: string;
  scope: ConsentScope;
  purpose: Purpose;
  deidentification: DeidentificationLevel;
  reason: string;
  status: 'pending' | 'approved' | 'denied';
  createdAt: number;
  decidedAt: number | null;
  consentId: string | null;
}

export interface AccessLogEntry {
  entryId: string;
  patientCode: string;
  recordId: string | null;
  actor: string;
  actorRole: string;
  institution: string;
  custodian: string | null;
  purpose: Purpose;
  outcome: 'served' | 'refused' | 'break-glass' | 'break-glass-reviewed' | 'guardian-appointed' | 'guardian-revoked' | 'guardian-acted';
  code: string | null;
  consentId: string | null;
  reason: string | null;
  /** the study a de-identified record was served for */
  study?: string;
  time: number;
  height: number;
}

export interface Review {
  reviewId: string;
  patientCode: string;
  doctor: string;
  institution: string;
  reason: Purpose;
  justification: string;
  openedAt: number;
  expiresAt: number;
  status: 'open' | 'closed';
  /** records served under this break-glass access, in order */
  accessed?: string[];
  /** set when an auditor closed it */
  closure?: { reviewer: string; finding: BreakGlassFinding; note: string; closedAt: number; height: number };
}

export type BreakGlassFinding = 'justified' | 'unjustified';

/** A doctor follows a patient's new records (issue 7): allowed only under a consent covering them. */
export interface Subscription {
  subscriptionId: string;
  patientCode: string;
  subscriber: string;
  institution: string;
  /** record categories followed; null: all the consent covers */
  categories: string[] | null;
  purpose: Purpose;
  /** the consent that covered it when it was made; delivery re-checks coverage every time */
  consentId: string;
  status: 'active' | 'cancelled';
  createdAt: number;
  cancelledAt: number | null;
  cancelledBy: string | null;
}

/** What a guardian may do on a patient's behalf. */
export interface GuardianScope {
  actions: GuardianAction[];
  /** record categories the guardian's consents may cover; null: any */
  categories: string[] | null;
  /** purposes the guardian's consents may name */
  purposes: Purpose[];
}
export type GuardianAction = 'consent.grant' | 'consent.narrow' | 'consent.revoke' | 'access.decide';

/** A patient appoints another registered person (by patient code) as their guardian (issue 7). */
export interface Guardianship {
  guardianshipId: string;
  patientCode: string;
  guardian: string;
  scope: GuardianScope;
  period: { from: number; to: number | null };
  status: 'active' | 'revoked';
  appointedAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
}

/**
 * A role group's key (TMSMD): one row per group (`<institution>/<role>`) naming its current
 * epoch, and one row per epoch (`<institution>/<role>:<epoch>`) with the key wrapped to each
 * member. A change of the group's members marks it stale until the next epoch is issued.
 */
export interface GroupKey {
  groupId: string;
  institution: string;
  role: StaffRole;
  epoch: number;
  stale: boolean;
  rotatedAt: number;
  height: number;
}

export interface GroupEpoch {
  groupKeyId: string;
  groupId: string;
  epoch: number;
  /** staff id -> the group key wrapped (HPKE) to that member's encryption key */
  envelopes: Record<string, string>;
  issuedAt: number;
  height: number;
}

/** A research study (TMSMD §4.2; consortium paper §4): what it may use, and how. */
export interface Study {
  studyId: string;
  title: string;
  institution: string;
  /** the researcher who registered it; the institution's researchers form its team */
  researcher: string;
  purpose: 'HRESCH' | 'PUBHLTH';
  /** the record categories (FHIR resource types) it may use */
  categories: string[];
  query: JsonValue;
  deidentification: Exclude<DeidentificationLevel, 'identified'>;
  /** smallest released cell count */
  k: number;
  /** privacy budget in thousandths of ε; null: releases carry no noise */
  epsilonBudgetMilli: number | null;
  epsilonSpentMilli: number;
  /** rounds without noise opened and not failed: a study without a budget releases one exact table */
  exactRounds: number;
  status: 'active' | 'closed';
  registeredAt: number;
  height: number;
  /** the study's pseudonym key wrapped (HPKE) to each care custodian; null until one asks for it */
  keyEnvelopes: Record<string, string> | null;
}

/** One run of a study's query across custodians, combined by secure aggregation. */
export interface AggregationRound {
  roundId: string;
  studyId: string;
  requester: string;
  custodians: string[];
  /** the custodian that sums the masked shares, suppresses, adds noise and releases */
  releaser: string;
  epsilonMilli: number | null;
  openedAt: number;
  deadline: number;
  status: 'open' | 'released' | 'failed';
  /** when the releaser closed the shares (after which seeds are revealed); null while open */
  sharesClosedAt: number | null;
  /** custodian -> its masked vector, encrypted to the releaser */
  shares: Record<string, string>;
  /** contributor -> its self-mask seed and its seeds with the dropped ones, encrypted to the releaser */
  reveals: Record<string, string>;
  dropped: string[];
  result: JsonValue | null;
  resultHash: string | null;
  failure: string | null;
  closedAt: number | null;
  height: number;
}
