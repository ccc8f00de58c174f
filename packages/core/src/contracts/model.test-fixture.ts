/**
 * The reference model of the model-based contract tests (issue 9): membership, identity, records,
 * consent and access, restated in plain TypeScript from DESIGN §1–4 and issues 2 and 4 without any
 * contract or policy code. Each rule answers the code the ledger must give a transaction and, when
 * that is OK, the change the transaction makes.
 */

export type Kind = 'hospital' | 'clinic' | 'laboratory' | 'research';
export type Role = 'doctor' | 'nurse' | 'operator' | 'researcher' | 'auditor';
export type Level = 'identified' | 'pseudonymised' | 'anonymised';
export type PurposeCode = 'TREAT' | 'CAREMGT' | 'HRESCH' | 'HPAYMT';
export type Grantee =
  | { kind: 'institution'; institution: string }
  | { kind: 'person'; staffId: string }
  | { kind: 'role'; role: Role; institution: string | null };
export type Scope = { kind: 'all' } | { kind: 'categories'; categories: string[] } | { kind: 'records'; recordIds: string[] };
export interface Period {
  from: number;
  to: number | null;
}

/** Who holds a key on the ledger. Keys are named by labels; the test maps each label to a real key pair. */
export type Holder =
  { kind: 'issuer' } | { kind: 'institution'; id: string } | { kind: 'staff'; staffId: string } | { kind: 'patient'; name: string };

export interface Member {
  kind: Kind;
  active: boolean;
  /** undefined until the member publishes one */
  vaultUrl?: string | null;
}
export interface StaffMember {
  institution: string;
  role: Role;
  active: boolean;
}
export interface Proposal {
  id: string;
  action: 'admit' | 'remove';
  target: string;
  /** for an admission: the newcomer's kind and key */
  newcomer: { kind: Kind; key: string } | null;
  votes: Map<string, boolean>;
  status: 'open' | 'accepted' | 'rejected';
}
export interface RecordVersion {
  id: string;
  patient: string;
  category: string;
  custodian: string;
  state: 'active' | 'superseded' | 'retracted' | 'erased';
  /** the first version's id, shared by every version */
  lineage: string;
  supersedes: string | null;
  supersededBy: string | null;
}
export interface RegistrationRequest {
  id: string;
  patient: string;
  custodian: string;
  /** the staff member who asked */
  requester: string;
  category: string;
  status: 'pending' | 'accepted' | 'refused' | 'used';
}
export interface Consent {
  id: string;
  patient: string;
  grantee: Grantee;
  scope: Scope;
  purposes: PurposeCode[];
  period: Period;
  level: Level;
  revoked: boolean;
  updatedAt: number;
}
export interface AccessRequest {
  id: string;
  patient: string;
  requester: string;
  scope: Scope;
  purpose: PurposeCode;
  level: Level;
  status: 'pending' | 'approved' | 'denied';
}

/** issue 7: what a guardian may do for a patient, and when. */
export type GuardianAction = 'consent.grant' | 'consent.narrow' | 'consent.revoke' | 'access.decide';
export interface Guardianship {
  id: string;
  patient: string;
  guardian: string;
  actions: GuardianAction[];
  categories: string[] | null;
  purposes: PurposeCode[];
  period: Period;
  revoked: boolean;
  appointedAt: number;
}

export interface Model {
  /** time of the last block */
  time: number;
  keys: Map<string, Holder>;
  members: Map<string, Member>;
  staff: Map<string, StaffMember>;
  /** registered patients by name, with their home institution */
  patients: Map<string, { home: string }>;
  proposals: Proposal[];
  records: RecordVersion[];
  regRequests: RegistrationRequest[];
  consents: Consent[];
  accessRequests: AccessRequest[];
  guardianships: Guardianship[];
}

/** The ledger's answer to one transaction: its code, and the change an accepted one makes. */
export interface Outcome {
  code: string;
  commit?: (txId: string) => void;
}
const refuse = (code: string): Outcome => ({ code });
const accept = (commit: (txId: string) => void = () => undefined): Outcome => ({ code: 'OK', commit });

export const LEVELS: readonly Level[] = ['identified', 'pseudonymised', 'anonymised'];
/** An approved access request lasts 30 days unless the patient says otherwise. */
export const DEFAULT_APPROVAL = 30 * 86_400_000;
const CARE: readonly Kind[] = ['hospital', 'clinic', 'laboratory'];
const CLINICAL: readonly Role[] = ['doctor', 'nurse', 'operator'];

// ------------------------------------------------------------------ who may send what

export type TxType =
  | 'membership.propose'
  | 'membership.vote'
  | 'membership.setEndpoint'
  | 'identity.enrolStaff'
  | 'identity.revokeStaff'
  | 'identity.registerPatient'
  | 'records.register'
  | 'records.amend'
  | 'records.retract'
  | 'records.erase'
  | 'consent.requestRegistration'
  | 'consent.answerRegistration'
  | 'consent.grant'
  | 'consent.narrow'
  | 'consent.revoke'
  | 'access.request'
  | 'access.decide'
  | 'access.recordServed'
  | 'identity.appointGuardian'
  | 'identity.revokeGuardian';

type Acting = 'issuer' | 'institution' | 'patient' | Role;
/** DESIGN §1: each action by role, and for some only at a care institution (not a research institute). */
const MAY: Record<TxType, { roles: readonly Acting[]; careOnly?: true }> = {
  'membership.propose': { roles: ['issuer', 'institution'] },
  'membership.vote': { roles: ['institution'] },
  'membership.setEndpoint': { roles: ['institution'] },
  'identity.enrolStaff': { roles: ['institution'] },
  'identity.revokeStaff': { roles: ['institution'] },
  'identity.registerPatient': { roles: CLINICAL, careOnly: true },
  'records.register': { roles: CLINICAL, careOnly: true },
  'records.amend': { roles: CLINICAL, careOnly: true },
  'records.retract': { roles: ['doctor', 'operator'], careOnly: true },
  'records.erase': { roles: ['patient'] },
  'consent.requestRegistration': { roles: CLINICAL, careOnly: true },
  'consent.answerRegistration': { roles: ['patient'] },
  'consent.grant': { roles: ['patient'] },
  'consent.narrow': { roles: ['patient'] },
  'consent.revoke': { roles: ['patient'] },
  'access.request': { roles: ['doctor', 'nurse', 'researcher'] },
  'access.decide': { roles: ['patient'] },
  'access.recordServed': { roles: ['institution', 'operator'], careOnly: true },
  'identity.appointGuardian': { roles: ['patient'] },
  'identity.revokeGuardian': { roles: ['patient'] },
};

/** The author as a contract sees it. */
interface Author {
  role: Acting;
  institution: string | null;
  staffId: string | null;
  patient: string | null;
}

function authorOf(m: Model, holder: Holder): Author {
  switch (holder.kind) {
    case 'issuer':
      return { role: 'issuer', institution: null, staffId: null, patient: null };
    case 'institution':
      return { role: 'institution', institution: holder.id, staffId: null, patient: null };
    case 'staff': {
      const s = m.staff.get(holder.staffId)!;
      return { role: s.role, institution: s.institution, staffId: holder.staffId, patient: null };
    }
    case 'patient':
      return { role: 'patient', institution: null, staffId: null, patient: holder.name };
  }
}

/**
 * The checks every transaction passes before its own rule: a known key, an institution that is
 * still a member (a removed institution's staff can no longer act), a member of staff not
 * revoked, and a role allowed to send this type.
 */
function act(m: Model, key: string, type: TxType, rule: (a: Author) => Outcome): Outcome {
  const holder = m.keys.get(key);
  if (holder === undefined) return refuse('TX_UNKNOWN_AUTHOR');
  const a = authorOf(m, holder);
  if (a.institution !== null && !m.members.get(a.institution)!.active) return refuse('NOT_A_MEMBER');
  if (a.staffId !== null && !m.staff.get(a.staffId)!.active) return refuse('IDENTITY_REVOKED');
  const may = MAY[type];
  if (!may.roles.includes(a.role)) return refuse('ROLE_FORBIDDEN');
  if (may.careOnly === true && (a.institution === null || !CARE.includes(m.members.get(a.institution)!.kind)))
    return refuse('ROLE_FORBIDDEN');
  return rule(a);
}

// ------------------------------------------------------------------ membership

export function proposeAdmission(m: Model, key: string, newcomer: { id: string; kind: Kind; key: string }): Outcome {
  return act(m, key, 'membership.propose', () => {
    // An institution id is never reused, not even a removed member's; nor is a key.
    if (m.members.has(newcomer.id) || m.keys.has(newcomer.key)) return refuse('ALREADY_EXISTS');
    return accept((id) =>
      m.proposals.push({
        id,
        action: 'admit',
        target: newcomer.id,
        newcomer: { kind: newcomer.kind, key: newcomer.key },
        votes: new Map(),
        status: 'open',
      }),
    );
  });
}

export function proposeRemoval(m: Model, key: string, target: string): Outcome {
  return act(m, key, 'membership.propose', () => {
    if (m.members.get(target)?.active !== true) return refuse('NOT_A_MEMBER');
    return accept((id) => m.proposals.push({ id, action: 'remove', target, newcomer: null, votes: new Map(), status: 'open' }));
  });
}

/**
 * A vote decides when, counting only members active now, more than half approve (accepted) or so
 * many refuse that more than half can no longer approve (rejected). An admission whose id or key
 * was taken meanwhile is refused at its deciding vote.
 */
export function vote(m: Model, key: string, proposalId: string, approve: boolean): Outcome {
  return act(m, key, 'membership.vote', (a) => {
    const voter = a.institution!;
    const p = m.proposals.find((x) => x.id === proposalId);
    if (p === undefined) return refuse('NOT_FOUND');
    if (p.status !== 'open') return refuse('PROPOSAL_CLOSED');
    if (p.votes.has(voter)) return refuse('ALREADY_VOTED');
    const votes = new Map([...p.votes, [voter, approve]]);
    const active = [...m.members].filter(([, x]) => x.active).map(([id]) => id);
    const yes = active.filter((id) => votes.get(id) === true).length;
    const no = active.filter((id) => votes.get(id) === false).length;
    const needed = Math.floor(active.length / 2) + 1;
    const newcomer = yes >= needed ? p.newcomer : null;
    if (newcomer !== null && (m.members.has(p.target) || m.keys.has(newcomer.key))) return refuse('ALREADY_EXISTS');
    return accept(() => {
      p.votes = votes;
      if (yes >= needed) {
        p.status = 'accepted';
        if (newcomer !== null) {
          m.members.set(p.target, { kind: newcomer.kind, active: true });
          m.keys.set(newcomer.key, { kind: 'institution', id: p.target });
        } else m.members.get(p.target)!.active = false;
      } else if (active.length - no < needed) p.status = 'rejected';
    });
  });
}

/** Only an http(s) address with a host and no query (the vault's base URL), or null to withdraw it. */
export function setEndpoint(m: Model, key: string, vaultUrl: string | null): Outcome {
  return act(m, key, 'membership.setEndpoint', (a) => {
    if (vaultUrl !== null && !/^https?:\/\/[^/\s?#]+(\/[^\s?#]*)?$/.test(vaultUrl)) return refuse('TX_BODY_INVALID');
    return accept(() => (m.members.get(a.institution!)!.vaultUrl = vaultUrl));
  });
}

// ------------------------------------------------------------------ identity

export function enrolStaff(m: Model, key: string, localId: string, role: Role, staffKey: string): Outcome {
  return act(m, key, 'identity.enrolStaff', (a) => {
    const inst = a.institution!;
    // A research institute has no clinical staff who could be granted identified data for treatment.
    if (m.members.get(inst)!.kind === 'research' && (role === 'doctor' || role === 'nurse')) return refuse('ROLE_FORBIDDEN');
    const staffId = `${inst}/${localId}`;
    // A staff id is never reused, so a consent to a person cannot pass to someone enrolled later.
    if (m.staff.has(staffId) || m.keys.has(staffKey)) return refuse('ALREADY_EXISTS');
    return accept(() => {
      m.staff.set(staffId, { institution: inst, role, active: true });
      m.keys.set(staffKey, { kind: 'staff', staffId });
    });
  });
}

export function revokeStaff(m: Model, key: string, staffId: string): Outcome {
  return act(m, key, 'identity.revokeStaff', (a) => {
    const s = m.staff.get(staffId);
    if (s === undefined) return refuse('NOT_FOUND');
    if (s.institution !== a.institution) return refuse('ROLE_FORBIDDEN');
    if (!s.active) return refuse('IDENTITY_REVOKED');
    return accept(() => (s.active = false));
  });
}

/** `provedFor`: the institution the patient's proof of key possession names. */
export function registerPatient(m: Model, key: string, patient: string, patientKey: string, provedFor: string): Outcome {
  return act(m, key, 'identity.registerPatient', (a) => {
    if (m.patients.has(patient) || m.keys.has(patientKey)) return refuse('ALREADY_EXISTS');
    if (provedFor !== a.institution) return refuse('KEY_POSSESSION_INVALID');
    return accept(() => {
      m.patients.set(patient, { home: a.institution! });
      m.keys.set(patientKey, { kind: 'patient', name: patient });
    });
  });
}

// ------------------------------------------------------------------ records

/**
 * A hospital registers its own patients' records without asking (TMSMD §4.2); anyone else needs
 * the patient's accepted registration request for this patient, custodian and category, used once.
 */
export function registerRecord(m: Model, key: string, patient: string, category: string, requestId: string | null): Outcome {
  return act(m, key, 'records.register', (a) => {
    const custodian = a.institution!;
    const home = m.patients.get(patient)?.home;
    if (home === undefined) return refuse('PATIENT_UNKNOWN');
    let request: RegistrationRequest | undefined;
    if (requestId !== null) {
      request = m.regRequests.find((r) => r.id === requestId);
      if (request === undefined) return refuse('REQUEST_NOT_FOUND');
      if (request.patient !== patient || request.custodian !== custodian || request.category !== category)
        return refuse('CONSENT_REQUIRED');
      if (request.status !== 'accepted')
        return refuse({ pending: 'CONSENT_PENDING', refused: 'CONSENT_REFUSED', used: 'REQUEST_CLOSED' }[request.status]);
    } else if (!(m.members.get(custodian)!.kind === 'hospital' && home === custodian)) return refuse('CONSENT_REQUIRED');
    return accept((id) => {
      if (request !== undefined) request.status = 'used';
      m.records.push({ id, patient, category, custodian, state: 'active', lineage: id, supersedes: null, supersededBy: null });
    });
  });
}

/** Only the active version of a record is changed, and only by its custodian. */
function changeable(r: RecordVersion | undefined, institution: string | null): string | null {
  if (r === undefined) return 'RECORD_NOT_FOUND';
  if (r.custodian !== institution) return 'RECORD_NOT_CUSTODIAN';
  if (r.state === 'erased') return 'RECORD_ERASED';
  if (r.state !== 'active') return 'RECORD_RETRACTED';
  return null;
}

/** An amendment is a new version linked to the old; it keeps the category consents refer to. */
export function amend(m: Model, key: string, recordId: string, category: string): Outcome {
  return act(m, key, 'records.amend', (a) => {
    const old = m.records.find((r) => r.id === recordId);
    const why = changeable(old, a.institution);
    if (why !== null) return refuse(why);
    if (old!.category !== category) return refuse('TX_BODY_INVALID');
    return accept((id) => {
      old!.state = 'superseded';
      old!.supersededBy = id;
      m.records.push({ ...old!, id, state: 'active', supersedes: old!.id, supersededBy: null });
    });
  });
}

export function retract(m: Model, key: string, recordId: string): Outcome {
  return act(m, key, 'records.retract', (a) => {
    const r = m.records.find((x) => x.id === recordId);
    const why = changeable(r, a.institution);
    if (why !== null) return refuse(why);
    return accept(() => (r!.state = 'retracted'));
  });
}

/** The patient erases a record: every version of it, whatever its state. */
export function erase(m: Model, key: string, recordId: string): Outcome {
  return act(m, key, 'records.erase', (a) => {
    const r = m.records.find((x) => x.id === recordId);
    if (r === undefined) return refuse('RECORD_NOT_FOUND');
    if (r.patient !== a.patient) return refuse('ROLE_FORBIDDEN');
    if (r.state === 'erased') return refuse('RECORD_ERASED');
    return accept(() => m.records.filter((x) => x.lineage === r.lineage).forEach((x) => (x.state = 'erased')));
  });
}

// ------------------------------------------------------------------ consent

export function requestRegistration(m: Model, key: string, patient: string, category: string): Outcome {
  return act(m, key, 'consent.requestRegistration', (a) => {
    if (!m.patients.has(patient)) return refuse('PATIENT_UNKNOWN');
    return accept((id) =>
      m.regRequests.push({ id, patient, custodian: a.institution!, requester: a.staffId!, category, status: 'pending' }),
    );
  });
}

export function answerRegistration(m: Model, key: string, requestId: string, yes: boolean): Outcome {
  return act(m, key, 'consent.answerRegistration', (a) => {
    const r = m.regRequests.find((x) => x.id === requestId);
    if (r === undefined) return refuse('REQUEST_NOT_FOUND');
    if (r.patient !== a.patient) return refuse('ROLE_FORBIDDEN');
    if (r.status !== 'pending') return refuse('REQUEST_CLOSED');
    return accept(() => (r.status = yes ? 'accepted' : 'refused'));
  });
}

export function grant(m: Model, key: string, c: Omit<Consent, 'id' | 'revoked' | 'updatedAt'>): Outcome {
  return act(m, key, 'consent.grant', (a) => {
    const why = onBehalf(m, a, c.patient, { action: 'consent.grant', purposes: c.purposes, scope: c.scope, until: c.period.to });
    if (why !== null) return refuse(why);
    if (c.period.to !== null && c.period.to <= c.period.from) return refuse('TX_BODY_INVALID');
    return accept((id) => m.consents.push({ ...c, id, revoked: false, updatedAt: m.time }));
  });
}

const strictness = (l: Level): number => LEVELS.indexOf(l);

/** A scope inside another: anything inside "all"; otherwise only a subset of the same kind. */
function scopeWithin(inner: Scope, outer: Scope): boolean {
  if (outer.kind === 'all') return true;
  if (inner.kind === 'categories' && outer.kind === 'categories') return inner.categories.every((x) => outer.categories.includes(x));
  if (inner.kind === 'records' && outer.kind === 'records') return inner.recordIds.every((x) => outer.recordIds.includes(x));
  return false;
}

/** The patient narrows a consent: never wider in scope, purposes, period or identification. */
export function narrow(m: Model, key: string, consentId: string, next: Pick<Consent, 'scope' | 'purposes' | 'period' | 'level'>): Outcome {
  return act(m, key, 'consent.narrow', (a) => {
    const c = m.consents.find((x) => x.id === consentId);
    if (c === undefined) return refuse('CONSENT_NOT_FOUND');
    const why = onBehalf(m, a, c.patient, { action: 'consent.narrow', purposes: c.purposes, scope: c.scope });
    if (why !== null) return refuse(why);
    if (c.revoked) return refuse('CONSENT_REVOKED');
    const { from, to } = next.period;
    const within =
      scopeWithin(next.scope, c.scope) &&
      next.purposes.every((p) => c.purposes.includes(p)) &&
      from >= c.period.from &&
      (c.period.to === null || (to !== null && to <= c.period.to)) &&
      (to === null || to > from) &&
      strictness(next.level) >= strictness(c.level);
    if (!within) return refuse('CONSENT_NOT_NARROWER');
    return accept(() => Object.assign(c, next, { updatedAt: m.time }));
  });
}

export function revokeConsent(m: Model, key: string, consentId: string): Outcome {
  return act(m, key, 'consent.revoke', (a) => {
    const c = m.consents.find((x) => x.id === consentId);
    if (c === undefined) return refuse('CONSENT_NOT_FOUND');
    const why = onBehalf(m, a, c.patient, { action: 'consent.revoke', purposes: c.purposes, scope: c.scope });
    if (why !== null) return refuse(why);
    if (c.revoked) return refuse('CONSENT_REVOKED');
    return accept(() => Object.assign(c, { revoked: true, updatedAt: m.time }));
  });
}

// ------------------------------------------------------------------ guardians (issue 7)

/**
 * A patient appoints another registered patient as their guardian for some consent actions,
 * categories, purposes and a period; the patient or the guardian ends it.
 */
export function appointGuardian(m: Model, key: string, g: Omit<Guardianship, 'id' | 'revoked' | 'appointedAt'>): Outcome {
  return act(m, key, 'identity.appointGuardian', (a) => {
    if (g.patient !== a.patient) return refuse('ROLE_FORBIDDEN');
    if (g.guardian === g.patient) return refuse('TX_BODY_INVALID');
    if (!m.patients.has(g.guardian)) return refuse('PATIENT_UNKNOWN');
    if (g.period.to !== null && g.period.to <= g.period.from) return refuse('TX_BODY_INVALID');
    return accept((id) => m.guardianships.push({ ...g, id, revoked: false, appointedAt: m.time }));
  });
}

export function revokeGuardian(m: Model, key: string, id: string): Outcome {
  return act(m, key, 'identity.revokeGuardian', (a) => {
    const g = m.guardianships.find((x) => x.id === id);
    if (g === undefined) return refuse('GUARDIANSHIP_NOT_FOUND');
    if (a.patient !== g.patient && a.patient !== g.guardian) return refuse('ROLE_FORBIDDEN');
    if (g.revoked) return refuse('GUARDIANSHIP_REVOKED');
    return accept(() => (g.revoked = true));
  });
}

interface GuardianAct {
  action: GuardianAction;
  purposes?: readonly PurposeCode[];
  scope?: Scope;
  until?: number | null;
}

/** A new consent's scope inside a guardianship's categories: never "all"; named records must be the ward's, of those categories. */
function inCategories(m: Model, patient: string, scope: Scope, categories: readonly string[]): boolean {
  if (scope.kind === 'all') return false;
  if (scope.kind === 'categories') return scope.categories.every((c) => categories.includes(c));
  return scope.recordIds.every((id) => {
    const r = m.records.find((x) => x.id === id);
    return r !== undefined && r.patient === patient && categories.includes(r.category);
  });
}

/**
 * Null when the author may act for `patient`: it is the patient, or a guardian whose guardianship
 * allows the act now. Otherwise the refusal: ROLE_FORBIDDEN for anyone else, or the reason of the
 * last of the guardian's guardianships (oldest first) that does not allow it.
 */
function onBehalf(m: Model, a: Author, patient: string, act: GuardianAct): string | null {
  if (a.patient === patient) return null;
  const mine = m.guardianships
    .filter((g) => g.patient === patient && g.guardian === a.patient)
    .sort((x, y) => x.appointedAt - y.appointedAt || (x.id < y.id ? -1 : 1));
  if (mine.length === 0) return 'ROLE_FORBIDDEN';
  let miss = 'GUARDIAN_OUT_OF_SCOPE';
  for (const g of mine) {
    const within =
      g.actions.includes(act.action) &&
      (act.purposes === undefined || act.purposes.every((p) => g.purposes.includes(p))) &&
      (act.scope === undefined || g.categories === null || inCategories(m, patient, act.scope, g.categories)) &&
      (act.until === undefined || g.period.to === null || (act.until !== null && act.until <= g.period.to));
    if (g.revoked) miss = 'GUARDIANSHIP_REVOKED';
    else if (m.time < g.period.from) miss = 'GUARDIANSHIP_NOT_YET_VALID';
    else if (g.period.to !== null && m.time >= g.period.to) miss = 'GUARDIANSHIP_EXPIRED';
    else if (!within) miss = 'GUARDIAN_OUT_OF_SCOPE';
    else return null;
  }
  return miss;
}

// ------------------------------------------------------------------ access

export function requestAccess(m: Model, key: string, ask: Omit<AccessRequest, 'id' | 'requester' | 'status'>): Outcome {
  return act(m, key, 'access.request', (a) => {
    if (!m.patients.has(ask.patient)) return refuse('PATIENT_UNKNOWN');
    // TMSMD §4.2: researchers only ever see data with identifying information removed.
    if (a.role === 'researcher' && ask.level === 'identified') return refuse('DEIDENTIFICATION_REQUIRED');
    return accept((id) => m.accessRequests.push({ ...ask, id, requester: a.staffId!, status: 'pending' }));
  });
}

/** An approval is a consent to the person who asked, for what they asked, from now for `durationMs`. */
export function decide(m: Model, key: string, requestId: string, approve: boolean, durationMs: number | null): Outcome {
  return act(m, key, 'access.decide', (a) => {
    const r = m.accessRequests.find((x) => x.id === requestId);
    if (r === undefined) return refuse('REQUEST_NOT_FOUND');
    const until = m.time + (durationMs ?? DEFAULT_APPROVAL);
    const why = onBehalf(m, a, r.patient, {
      action: 'access.decide',
      purposes: [r.purpose],
      scope: r.scope,
      ...(approve ? { until } : {}),
    });
    if (why !== null) return refuse(why);
    if (r.status !== 'pending') return refuse('REQUEST_CLOSED');
    return accept((id) => {
      r.status = approve ? 'approved' : 'denied';
      if (approve)
        m.consents.push({
          id,
          patient: r.patient,
          grantee: { kind: 'person', staffId: r.requester },
          scope: r.scope,
          purposes: [r.purpose],
          period: { from: m.time, to: m.time + (durationMs ?? DEFAULT_APPROVAL) },
          level: r.level,
          revoked: false,
          updatedAt: m.time,
        });
    });
  });
}

function covers(g: Grantee, staffId: string, s: StaffMember): boolean {
  if (g.kind === 'institution') return g.institution === s.institution;
  if (g.kind === 'person') return g.staffId === staffId;
  return g.role === s.role && (g.institution === null || g.institution === s.institution);
}

function inScope(scope: Scope, r: RecordVersion): boolean {
  if (scope.kind === 'all') return true;
  if (scope.kind === 'categories') return scope.categories.includes(r.category);
  return scope.recordIds.includes(r.id);
}

/**
 * The custodian records that it served a record, which the ledger admits only for an active
 * record, an active requester of a member institution, a role that may read records at all, and
 * under a consent that covers requester, record, purpose, time and level — or to the custodian's
 * own clinicians for treatment. A refusal names the most recently changed consent's reason.
 */
export function served(m: Model, key: string, recordId: string, requester: string, purpose: PurposeCode, level: Level): Outcome {
  return act(m, key, 'access.recordServed', (a) => {
    const r = m.records.find((x) => x.id === recordId);
    if (r === undefined) return refuse('RECORD_NOT_FOUND');
    if (r.custodian !== a.institution) return refuse('RECORD_NOT_CUSTODIAN');
    if (r.state === 'erased') return refuse('RECORD_ERASED');
    if (r.state !== 'active') return refuse('RECORD_RETRACTED');
    const s = m.staff.get(requester);
    if (s === undefined) return refuse('NOT_FOUND');
    if (!s.active) return refuse('IDENTITY_REVOKED');
    if (!m.members.get(s.institution)!.active) return refuse('NOT_A_MEMBER');
    // A researcher receives only de-identified data, and only for a study (none is modelled here).
    if (s.role === 'researcher') return refuse(level === 'identified' ? 'DEIDENTIFICATION_REQUIRED' : 'STUDY_REQUIRED');
    // DESIGN §1: an auditor reads audit trails only, never records, whatever a consent says.
    if (s.role === 'auditor') return refuse('ROLE_FORBIDDEN');
    if (s.institution === r.custodian && (purpose === 'TREAT' || purpose === 'CAREMGT')) return accept();
    let miss = { code: 'CONSENT_REQUIRED', at: -1 };
    for (const c of [...m.consents].sort((x, y) => (x.id < y.id ? -1 : 1))) {
      if (c.patient !== r.patient || !covers(c.grantee, requester, s) || !inScope(c.scope, r)) continue;
      const why = c.revoked
        ? 'CONSENT_REVOKED'
        : !c.purposes.includes(purpose)
          ? 'CONSENT_PURPOSE_MISMATCH'
          : m.time < c.period.from
            ? 'CONSENT_NOT_YET_VALID'
            : c.period.to !== null && m.time >= c.period.to
              ? 'CONSENT_EXPIRED'
              : strictness(level) < strictness(c.level)
                ? 'DEIDENTIFICATION_REQUIRED'
                : null;
      if (why === null) return accept();
      if (c.updatedAt >= miss.at) miss = { code: why, at: c.updatedAt };
    }
    return refuse(miss.code);
  });
}
