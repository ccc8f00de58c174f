/**
 * Research without identities (TMSMD §4.2: researchers see data with identifying information
 * removed; consortium paper §4: statistics computed at each hospital, only results shared).
 *
 * - A researcher registers a study: its purpose, the record categories it may use, its query, the
 *   de-identification level its records are served at, the smallest cell it may see (k) and its
 *   privacy budget (ε). Patients' research consents name the study (grantee `study`) or the
 *   purpose (grantee role `researcher`).
 * - The first care custodian that needs the study's pseudonym key posts one, wrapped to every
 *   active care custodian, so a study links a patient's records across hospitals and two
 *   studies cannot link theirs; the researcher never holds it.
 * - A round runs the query at N ≥ 3 custodians. Each submits its result masked with pairwise
 *   masks and encrypted to the releasing custodian; after the deadline no share is accepted and
 *   the survivors reveal their seeds with any custodian that dropped out; the releaser posts the
 *   total, suppressed and noised, with its hash. ε is spent when the round opens, so a query the
 *   budget cannot pay for is refused before any custodian computes anything.
 */
import { Type, type Static } from '@sinclair/typebox';
import { reject, type ContractInput, type Draft } from './context.ts';
import { Category, Hex64, Id, TxRef } from './schemas.ts';
import type { AggregationRound, Member, Study } from './state.ts';
import { canonicalBytes } from '../codec/canonical-json.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { isErrorCode, isMedledgerError } from '../errors.ts';
import { StudyQuerySchema, checkQuery, vectorLength, type StudyQuery } from '../research/study-query.ts';

const B64 = '^[A-Za-z0-9_-]*$';
/** A study's result vector is at most this long, so a share fits a transaction. */
export const MAX_VECTOR_LENGTH = 1024;
export const MIN_ROUND_CUSTODIANS = 3;
export const MAX_ROUND_CUSTODIANS = 16;
/** ε is counted in thousandths, so budgets add up exactly on every validator. */
export const MAX_EPSILON_MILLI = 100_000;
const CARE_KINDS = ['hospital', 'clinic', 'laboratory'];

export const RegisterStudyBody = Type.Object(
  {
    studyId: Id,
    title: Type.String({ minLength: 3, maxLength: 200 }),
    purpose: Type.Union([Type.Literal('HRESCH'), Type.Literal('PUBHLTH')]),
    categories: Type.Array(Category, { minItems: 1, maxItems: 16, uniqueItems: true }),
    query: StudyQuerySchema,
    deidentification: Type.Union([Type.Literal('pseudonymised'), Type.Literal('anonymised')]),
    k: Type.Integer({ minimum: 5, maximum: 1000 }),
    epsilonBudgetMilli: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_EPSILON_MILLI }), Type.Null()]),
  },
  { additionalProperties: false },
);
export const CloseStudyBody = Type.Object({ studyId: Id }, { additionalProperties: false });
export const ShareStudyKeyBody = Type.Object(
  {
    studyId: Id,
    envelopes: Type.Record(Id, Type.String({ pattern: B64, maxLength: 1024 }), { minProperties: 1, maxProperties: 256 }),
  },
  { additionalProperties: false },
);
export const OpenRoundBody = Type.Object(
  {
    studyId: Id,
    custodians: Type.Array(Id, { minItems: MIN_ROUND_CUSTODIANS, maxItems: MAX_ROUND_CUSTODIANS, uniqueItems: true }),
    epsilonMilli: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_EPSILON_MILLI }), Type.Null()]),
    timeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
  },
  { additionalProperties: false },
);
export const SubmitShareBody = Type.Object(
  { roundId: TxRef, share: Type.String({ pattern: B64, minLength: 1, maxLength: 24_576 }) },
  { additionalProperties: false },
);
export const CloseSharesBody = Type.Object({ roundId: TxRef }, { additionalProperties: false });
export const RevealSeedsBody = Type.Object(
  {
    roundId: TxRef,
    dropped: Type.Array(Id, { maxItems: MAX_ROUND_CUSTODIANS, uniqueItems: true }),
    seeds: Type.String({ pattern: B64, minLength: 1, maxLength: 8192 }),
  },
  { additionalProperties: false },
);
const Num = Type.Union([Type.Number(), Type.Null()]);
export const ReleasedResultSchema = Type.Object(
  {
    cells: Type.Array(
      Type.Object(
        {
          key: Type.Record(Type.String({ maxLength: 16 }), Type.Union([Type.String({ maxLength: 300 }), Type.Integer()]), {
            maxProperties: 4,
          }),
          count: Num,
          sum: Type.Optional(Num),
          mean: Type.Optional(Num),
        },
        { additionalProperties: false },
      ),
      { maxItems: MAX_VECTOR_LENGTH },
    ),
    k: Type.Integer({ minimum: 1 }),
    epsilon: Num,
    mechanism: Type.Union([Type.Literal('discrete-laplace'), Type.Literal('none')]),
    suppressed: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export const ReleaseBody = Type.Object(
  {
    roundId: TxRef,
    result: Type.Union([ReleasedResultSchema, Type.Null()]),
    resultHash: Type.Union([Hex64, Type.Null()]),
    failure: Type.Union([Type.String({ pattern: '^[A-Z][A-Z_]{2,63}$' }), Type.Null()]),
  },
  { additionalProperties: false },
);

export function getStudy(draft: Draft, studyId: string): Study {
  const study = draft.get<Study>('studies', studyId);
  if (study === undefined) reject('STUDY_NOT_FOUND');
  return study;
}

function getRound(draft: Draft, roundId: string): AggregationRound {
  const round = draft.get<AggregationRound>('rounds', roundId);
  if (round === undefined) reject('ROUND_NOT_FOUND');
  return round;
}

/** Active care institutions (they hold records) that can receive wrapped keys. */
export function careCustodians(draft: Draft): Member[] {
  return (draft.get<string[]>('meta', 'members') ?? [])
    .map((id) => draft.get<Member>('members', id))
    .filter((m): m is Member => m !== undefined && m.status === 'active' && CARE_KINDS.includes(m.kind) && m.encryptionKey !== null);
}

/** A researcher belongs to a study's team when they are a researcher of its institution. */
function assertTeam(input: ContractInput<unknown>, study: Study): void {
  const staff = input.principal.staff;
  if (staff?.role !== 'researcher' || staff.institution !== study.institution) reject('STUDY_FORBIDDEN');
}

export function registerStudy(input: ContractInput<Static<typeof RegisterStudyBody>>): void {
  const { draft, body, ctx, principal } = input;
  if (draft.get('studies', body.studyId) !== undefined) reject('ALREADY_EXISTS');
  let query: StudyQuery;
  try {
    query = checkQuery(body.query);
  } catch (e) {
    reject('STUDY_QUERY_INVALID', isMedledgerError(e) ? e.details : undefined);
  }
  if (vectorLength(query) > MAX_VECTOR_LENGTH) reject('STUDY_QUERY_INVALID', `The query has more than ${MAX_VECTOR_LENGTH} cells.`);
  const study: Study = {
    studyId: body.studyId,
    title: body.title,
    institution: principal.staff!.institution,
    researcher: principal.staff!.staffId,
    purpose: body.purpose,
    categories: body.categories,
    query: body.query,
    deidentification: body.deidentification,
    k: body.k,
    epsilonBudgetMilli: body.epsilonBudgetMilli,
    epsilonSpentMilli: 0,
    exactRounds: 0,
    status: 'active',
    registeredAt: ctx.time,
    height: ctx.height,
    keyEnvelopes: null,
  };
  draft.put('studies', study.studyId, study);
  input.events.push({ type: 'research.studyRegistered', data: { studyId: study.studyId, institution: study.institution } });
}

export function closeStudy(input: ContractInput<Static<typeof CloseStudyBody>>): void {
  const { draft, body } = input;
  const study = getStudy(draft, body.studyId);
  assertTeam(input, study);
  if (study.status === 'closed') reject('STUDY_CLOSED');
  draft.put('studies', study.studyId, { ...study, status: 'closed' });
  input.events.push({ type: 'research.studyClosed', data: { studyId: study.studyId } });
}

export function shareStudyKey(input: ContractInput<Static<typeof ShareStudyKeyBody>>): void {
  const { draft, body, principal } = input;
  const study = getStudy(draft, body.studyId);
  if (study.status === 'closed') reject('STUDY_CLOSED');
  if (study.keyEnvelopes !== null) reject('ALREADY_EXISTS', 'The study’s key was already shared.');
  const expected = careCustodians(draft)
    .map((m) => m.id)
    .sort();
  const given = Object.keys(body.envelopes).sort();
  if (!given.includes(principal.institution!.id) || given.length !== expected.length || given.some((id, i) => id !== expected[i])) {
    reject('TX_BODY_INVALID', 'The key must be wrapped to exactly the active care custodians.');
  }
  draft.put('studies', study.studyId, { ...study, keyEnvelopes: body.envelopes });
  input.events.push({ type: 'research.studyKeyShared', data: { studyId: study.studyId, custodians: given.length } });
}

export function openRound(input: ContractInput<Static<typeof OpenRoundBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  const study = getStudy(draft, body.studyId);
  assertTeam(input, study);
  if (study.status === 'closed') reject('STUDY_CLOSED');
  const care = new Set(careCustodians(draft).map((m) => m.id));
  for (const id of body.custodians) {
    if (!care.has(id)) reject('NOT_A_MEMBER', 'Every custodian of a round is an active care institution with an encryption key.');
  }
  let spent = study.epsilonSpentMilli;
  let exactRounds = study.exactRounds;
  if (study.epsilonBudgetMilli === null) {
    if (body.epsilonMilli !== null) reject('TX_BODY_INVALID', 'This study declared no privacy budget, so its rounds carry no noise.');
    // Two exact tables over different custodians or times differ by someone's numbers: without
    // noise a study releases one table (a round that fails gives its turn back).
    if (exactRounds >= 1) reject('BUDGET_EXCEEDED', 'A study without a privacy budget releases one exact table; more needs a budget (ε).');
    exactRounds += 1;
  } else {
    if (body.epsilonMilli === null) reject('TX_BODY_INVALID', 'This study has a privacy budget: each round names the ε it spends.');
    if (spent + body.epsilonMilli > study.epsilonBudgetMilli) reject('BUDGET_EXCEEDED');
    spent += body.epsilonMilli;
  }
  const custodians = [...body.custodians].sort();
  const round: AggregationRound = {
    roundId: txId,
    studyId: study.studyId,
    requester: principal.staff!.staffId,
    custodians,
    releaser: custodians[0]!,
    epsilonMilli: body.epsilonMilli,
    openedAt: ctx.time,
    deadline: ctx.time + body.timeoutMs,
    status: 'open',
    sharesClosedAt: null,
    shares: {},
    reveals: {},
    dropped: [],
    result: null,
    resultHash: null,
    failure: null,
    closedAt: null,
    height: ctx.height,
  };
  draft.put('studies', study.studyId, { ...study, epsilonSpentMilli: spent, exactRounds });
  draft.put('rounds', txId, round);
  input.events.push({
    type: 'research.roundOpened',
    data: { roundId: txId, studyId: study.studyId, custodians, releaser: round.releaser, deadline: round.deadline },
  });
}

function assertCustodian(input: ContractInput<unknown>, round: AggregationRound): string {
  const id = input.principal.institution!.id;
  if (!round.custodians.includes(id)) reject('ROLE_FORBIDDEN', 'Only the round’s custodians take part in it.');
  if (round.status !== 'open') reject('ROUND_CLOSED');
  return id;
}

/** A failed round released nothing: an exact round gives its study's turn back (ε stays spent). */
function failRound(draft: Draft, round: AggregationRound, failure: string, time: number, dropped = round.dropped): void {
  draft.put('rounds', round.roundId, { ...round, dropped, status: 'failed', failure, closedAt: time });
  const study = draft.get<Study>('studies', round.studyId);
  if (study !== undefined && round.epsilonMilli === null && study.exactRounds > 0) {
    draft.put('studies', study.studyId, { ...study, exactRounds: study.exactRounds - 1 });
  }
}

function missing(round: AggregationRound): string[] {
  return round.custodians.filter((c) => round.shares[c] === undefined);
}

function contributors(round: AggregationRound): string[] {
  return round.custodians.filter((c) => round.shares[c] !== undefined);
}

export function submitShare(input: ContractInput<Static<typeof SubmitShareBody>>): void {
  const { draft, body, ctx } = input;
  const round = getRound(draft, body.roundId);
  const id = assertCustodian(input, round);
  // Once shares are closed, seeds are revealed: no share is taken any more.
  if (round.sharesClosedAt !== null || ctx.time >= round.deadline) reject('ROUND_CLOSED', 'The round’s deadline has passed.');
  if (round.shares[id] !== undefined) reject('ALREADY_EXISTS');
  draft.put('rounds', round.roundId, { ...round, shares: { ...round.shares, [id]: body.share } });
  input.events.push({ type: 'research.shareSubmitted', data: { roundId: round.roundId, custodian: id } });
}

/**
 * The releaser closes the shares when every custodian has sent one, or after the deadline. The
 * custodians that sent none are dropped; with fewer than three contributors the round fails
 * here, before anyone reveals anything.
 */
export function closeShares(input: ContractInput<Static<typeof CloseSharesBody>>): void {
  const { draft, body, ctx } = input;
  const round = getRound(draft, body.roundId);
  const id = assertCustodian(input, round);
  if (id !== round.releaser) reject('ROLE_FORBIDDEN', 'Only the round’s releasing custodian closes its shares.');
  if (round.sharesClosedAt !== null) reject('ROUND_CLOSED');
  const dropped = missing(round);
  if (dropped.length > 0 && ctx.time < round.deadline) reject('ROUND_OPEN');
  if (contributors(round).length < MIN_ROUND_CUSTODIANS) {
    failRound(draft, round, 'ROUND_TOO_FEW', ctx.time, dropped);
    input.events.push({ type: 'research.released', data: { roundId: round.roundId, studyId: round.studyId, failure: 'ROUND_TOO_FEW' } });
    return;
  }
  draft.put('rounds', round.roundId, { ...round, dropped, sharesClosedAt: ctx.time });
  input.events.push({ type: 'research.sharesClosed', data: { roundId: round.roundId, dropped } });
}

/**
 * After the shares are closed, each contributor reveals to the releaser its own self-mask seed
 * and its pair seeds with the dropped custodians. A share that arrived late (rejected, but in its
 * block) stays hidden under its sender's self-mask, which only an accepted sender reveals.
 */
export function revealSeeds(input: ContractInput<Static<typeof RevealSeedsBody>>): void {
  const { draft, body } = input;
  const round = getRound(draft, body.roundId);
  const id = assertCustodian(input, round);
  if (round.sharesClosedAt === null) reject('ROUND_OPEN');
  if (round.shares[id] === undefined) reject('ROLE_FORBIDDEN', 'Only a custodian that contributed reveals seeds.');
  if (round.reveals[id] !== undefined) reject('ALREADY_EXISTS');
  const named = [...body.dropped].sort();
  if (named.length !== round.dropped.length || named.some((d, i) => d !== round.dropped[i])) {
    reject('TX_BODY_INVALID', 'The seeds must be those with exactly the custodians that did not contribute.');
  }
  draft.put('rounds', round.roundId, { ...round, reveals: { ...round.reveals, [id]: body.seeds } });
  input.events.push({ type: 'research.seedsRevealed', data: { roundId: round.roundId, custodian: id } });
}

/** True when the releaser has all it needs: shares closed and every contributor's seeds. */
export function roundComplete(round: AggregationRound): boolean {
  return round.sharesClosedAt !== null && contributors(round).every((c) => round.reveals[c] !== undefined);
}

export function release(input: ContractInput<Static<typeof ReleaseBody>>): void {
  const { draft, body, ctx } = input;
  const round = getRound(draft, body.roundId);
  const id = assertCustodian(input, round);
  if (id !== round.releaser) reject('ROLE_FORBIDDEN', 'Only the round’s releasing custodian releases its total.');
  if (round.sharesClosedAt === null) reject('ROUND_OPEN');
  if (body.failure !== null) {
    // A failure the releaser met (a share or seed that does not open), named by its code.
    if (!isErrorCode(body.failure) || body.result !== null || body.resultHash !== null) reject('TX_BODY_INVALID');
    failRound(draft, round, body.failure, ctx.time);
    input.events.push({ type: 'research.released', data: { roundId: round.roundId, studyId: round.studyId, failure: body.failure } });
    return;
  }
  if (!roundComplete(round)) reject('ROUND_INCOMPLETE');
  if (body.result === null || body.resultHash === null) reject('TX_BODY_INVALID', 'A release carries its result and its hash.');
  if (sha256Hex(canonicalBytes(body.result)) !== body.resultHash) reject('TX_BODY_INVALID', 'resultHash is not the result’s hash.');
  const study = getStudy(draft, round.studyId);
  const epsilon = round.epsilonMilli === null ? null : round.epsilonMilli / 1000;
  if (
    body.result.k !== study.k ||
    body.result.epsilon !== epsilon ||
    body.result.mechanism !== (epsilon === null ? 'none' : 'discrete-laplace')
  ) {
    reject('TX_BODY_INVALID', 'The result must be suppressed at the study’s k and noised with the round’s ε.');
  }
  draft.put('rounds', round.roundId, {
    ...round,
    status: 'released',
    result: body.result,
    resultHash: body.resultHash,
    closedAt: ctx.time,
  });
  input.events.push({
    type: 'research.released',
    data: { roundId: round.roundId, studyId: round.studyId, resultHash: body.resultHash, contributors: contributors(round).length },
  });
}

/**
 * The research gate of record serving, one decision for the contract and the vault alike: a
 * researcher is served de-identified only, only within a study of their institution, for its
 * purpose, level and categories. `deidentification` undefined asks for the study's level. Answers
 * the study, or null for an access outside research.
 */
export function researchAccess(
  draft: Draft,
  requester: { role: string; institution: string },
  ask: { study: string | undefined; purpose: string; deidentification: string | undefined; category: string },
): Study | null {
  if (requester.role === 'researcher' && ask.deidentification === 'identified') reject('DEIDENTIFICATION_REQUIRED');
  if (ask.study === undefined) {
    if (requester.role === 'researcher') reject('STUDY_REQUIRED');
    return null;
  }
  const study = getStudy(draft, ask.study);
  if (study.status === 'closed') reject('STUDY_CLOSED');
  if (requester.role !== 'researcher' || requester.institution !== study.institution) reject('STUDY_FORBIDDEN');
  const level = ask.deidentification ?? study.deidentification;
  if (ask.purpose !== study.purpose || level !== study.deidentification || !study.categories.includes(ask.category)) {
    reject('STUDY_FORBIDDEN');
  }
  return study;
}
