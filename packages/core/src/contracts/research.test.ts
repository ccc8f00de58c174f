/**
 * Research contracts: who may register a study and open rounds, the privacy budget refusing a
 * round it cannot pay for, the order of a round (shares before the deadline, seeds after it,
 * a release only when complete and from the releaser), the study key wrapped to exactly the care
 * custodians, and a researcher served only within a study, at its level, under a consent that
 * names the study or research.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createCast, recordBody, DAY, type Cast } from '../ledger/test-network.test-fixture.ts';
import { canonicalBytes, type JsonObject } from '../codec/canonical-json.ts';
import { sha256Hex } from '../crypto/hash.ts';
import type { AccessLogEntry, AggregationRound, Study } from './state.ts';

let cast: Cast;
beforeEach(async () => {
  cast = await createCast();
});

const QUERY = {
  cohort: { codes: [{ system: 'http://snomed.info/sct', code: '44054006' }] },
  measure: { kind: 'count' },
  groupBy: ['sex'],
};

function studyBody(overrides: JsonObject = {}): JsonObject {
  return {
    studyId: 'diabetes-2026',
    title: 'Type 2 diabetes by sex',
    purpose: 'HRESCH',
    categories: ['Patient', 'Condition'],
    query: QUERY,
    deidentification: 'pseudonymised',
    k: 5,
    epsilonBudgetMilli: 1000,
    ...overrides,
  };
}

const researcher = () => cast.staff('res-e/res-1');
const CUSTODIANS = ['hosp-a', 'hosp-b', 'clinic-c'];

async function register(overrides: JsonObject = {}): Promise<string> {
  return cast.ledger.code(cast.ledger.tx(researcher(), 'research.registerStudy', studyBody(overrides)));
}

async function open(epsilonMilli: number | null, custodians = CUSTODIANS, timeoutMs = 60_000): Promise<{ code: string; txId: string }> {
  const entry = await cast.ledger.tx(researcher(), 'research.openRound', { studyId: 'diabetes-2026', custodians, epsilonMilli, timeoutMs });
  return { code: await cast.ledger.code(entry), txId: entry.txId };
}

const share = (inst: string, roundId: string) =>
  cast.ledger.tx(cast.ledger.institution(inst), 'research.submitShare', { roundId, share: 'AAAA' });

describe('research.registerStudy', () => {
  it('lets a researcher of a research institute register a study, and no one else', async () => {
    expect(await cast.ledger.code(cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'research.registerStudy', studyBody()))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await register()).toBe('OK');
    expect(cast.ledger.get<Study>('studies', 'diabetes-2026')).toMatchObject({
      institution: 'res-e',
      researcher: 'res-e/res-1',
      epsilonSpentMilli: 0,
      status: 'active',
      keyEnvelopes: null,
      exactRounds: 0,
    });
    expect(await register()).toBe('ALREADY_EXISTS');
  });

  it('refuses a query it cannot run and a k under 5', async () => {
    expect(await register({ query: { ...QUERY, groupBy: ['year'] } })).toBe('STUDY_QUERY_INVALID');
    expect(await register({ query: { ...QUERY, measure: { kind: 'sum', code: QUERY.cohort.codes[0]!, lower: 5, upper: 1 } } })).toBe(
      'STUDY_QUERY_INVALID',
    );
    expect(await register({ k: 3 })).toBe('TX_BODY_INVALID');
    expect(await register({ deidentification: 'identified' })).toBe('TX_BODY_INVALID');
  });
});

describe('research rounds', () => {
  beforeEach(async () => {
    expect(await register()).toBe('OK');
  });

  it('spends the budget when a round opens and refuses a round it cannot pay for', async () => {
    expect((await open(600)).code).toBe('OK');
    expect((await open(600)).code).toBe('BUDGET_EXCEEDED');
    expect(cast.ledger.get<Study>('studies', 'diabetes-2026')!.epsilonSpentMilli).toBe(600);
    expect((await open(400)).code).toBe('OK');
    expect((await open(1)).code).toBe('BUDGET_EXCEEDED');
    expect(cast.ledger.get<Study>('studies', 'diabetes-2026')!.epsilonSpentMilli).toBe(1000);
  });

  it('lets a study without a budget release one exact table, again only if that round failed', async () => {
    expect(await register({ studyId: 'exact', epsilonBudgetMilli: null })).toBe('OK');
    const openExact = async () =>
      cast.ledger.tx(researcher(), 'research.openRound', {
        studyId: 'exact',
        custodians: CUSTODIANS,
        epsilonMilli: null,
        timeoutMs: 60_000,
      });
    const first = await openExact();
    expect(await cast.ledger.code(first)).toBe('OK');
    expect(await cast.ledger.code(openExact())).toBe('BUDGET_EXCEEDED');
    // nobody answers: the round fails when its shares close, and the study may try again
    expect(
      await cast.ledger.code(
        cast.ledger.tx(cast.ledger.institution('clinic-c'), 'research.closeShares', { roundId: first.txId }),
        cast.ledger.time + 61_000,
      ),
    ).toBe('OK');
    expect(cast.ledger.get<Study>('studies', 'exact')!.exactRounds).toBe(0);
    expect(await cast.ledger.code(openExact())).toBe('OK');
  });

  it('asks at least three care custodians, by the study’s team only, with ε when the study has a budget', async () => {
    expect((await open(100, ['hosp-a', 'hosp-b'])).code).toBe('TX_BODY_INVALID');
    expect((await open(100, ['hosp-a', 'hosp-b', 'res-e'])).code).toBe('NOT_A_MEMBER');
    expect((await open(null)).code).toBe('TX_BODY_INVALID');
    const byDoctor = await cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'research.openRound', {
      studyId: 'diabetes-2026',
      custodians: CUSTODIANS,
      epsilonMilli: 100,
      timeoutMs: 60_000,
    });
    expect(await cast.ledger.code(byDoctor)).toBe('ROLE_FORBIDDEN');
  });

  it('takes shares from its custodians before the deadline, once each', async () => {
    const { txId: roundId } = await open(100);
    expect(cast.ledger.get<AggregationRound>('rounds', roundId)).toMatchObject({
      releaser: 'clinic-c',
      custodians: ['clinic-c', 'hosp-a', 'hosp-b'],
    });
    expect(await cast.ledger.code(share('lab-d', roundId))).toBe('ROLE_FORBIDDEN');
    expect(await cast.ledger.code(share('hosp-a', roundId))).toBe('OK');
    expect(await cast.ledger.code(share('hosp-a', roundId))).toBe('ALREADY_EXISTS');
    expect(await cast.ledger.code(share('hosp-b', roundId), cast.ledger.time + 61_000)).toBe('ROUND_CLOSED');
  });

  const close = (inst: string, roundId: string, time?: number) =>
    cast.ledger.code(cast.ledger.tx(cast.ledger.institution(inst), 'research.closeShares', { roundId }), time);
  const reveal = (inst: string, roundId: string, dropped: string[], time?: number) =>
    cast.ledger.code(cast.ledger.tx(cast.ledger.institution(inst), 'research.revealSeeds', { roundId, dropped, seeds: 'AAAA' }), time);
  const released = (epsilon: number | null, count: number | null) => ({
    cells: [{ key: { sex: 'female' }, count }],
    k: 5,
    epsilon,
    mechanism: epsilon === null ? 'none' : 'discrete-laplace',
    suppressed: count === null ? 1 : 0,
  });
  const releaseBy = (inst: string, roundId: string, result: JsonObject, hash = sha256Hex(canonicalBytes(result))) =>
    cast.ledger.code(
      cast.ledger.tx(cast.ledger.institution(inst), 'research.release', { roundId, result, resultHash: hash, failure: null }),
    );

  it('releases a complete round from the releaser only: shares closed, every contributor’s seeds, the result’s hash', async () => {
    const { txId: roundId } = await open(100);
    for (const c of CUSTODIANS) expect(await cast.ledger.code(share(c, roundId))).toBe('OK');
    const result = released(0.1, 12);
    expect(await reveal('hosp-a', roundId, [])).toBe('ROUND_OPEN');
    expect(await releaseBy('clinic-c', roundId, result)).toBe('ROUND_OPEN');
    expect(await close('hosp-a', roundId)).toBe('ROLE_FORBIDDEN');
    // every share is in: the releaser may close before the deadline
    expect(await close('clinic-c', roundId)).toBe('OK');
    expect(await cast.ledger.code(share('hosp-a', roundId))).toBe('ROUND_CLOSED');
    expect(await reveal('hosp-a', roundId, [])).toBe('OK');
    expect(await reveal('hosp-a', roundId, [])).toBe('ALREADY_EXISTS');
    expect(await reveal('hosp-b', roundId, [])).toBe('OK');
    expect(await releaseBy('clinic-c', roundId, result)).toBe('ROUND_INCOMPLETE');
    expect(await reveal('clinic-c', roundId, [])).toBe('OK');
    expect(await releaseBy('hosp-a', roundId, result)).toBe('ROLE_FORBIDDEN');
    expect(await releaseBy('clinic-c', roundId, result, '0'.repeat(64))).toBe('TX_BODY_INVALID');
    expect(await releaseBy('clinic-c', roundId, { ...result, k: 2 })).toBe('TX_BODY_INVALID');
    expect(await releaseBy('clinic-c', roundId, released(null, 12))).toBe('TX_BODY_INVALID');
    expect(await releaseBy('clinic-c', roundId, released(0.2, 12))).toBe('TX_BODY_INVALID');
    expect(await releaseBy('clinic-c', roundId, result)).toBe('OK');
    expect(cast.ledger.get<AggregationRound>('rounds', roundId)).toMatchObject({
      status: 'released',
      resultHash: sha256Hex(canonicalBytes(result)),
      result,
    });
    expect(await reveal('hosp-a', roundId, [])).toBe('ROUND_CLOSED');
  });

  it('handles a custodian that drops out: closed after the deadline, its late share refused, seeds from the contributors', async () => {
    const { txId: roundId } = await open(100, ['hosp-a', 'hosp-b', 'clinic-c', 'lab-d']);
    for (const c of ['hosp-a', 'hosp-b', 'clinic-c']) expect(await cast.ledger.code(share(c, roundId))).toBe('OK');
    expect(await close('clinic-c', roundId)).toBe('ROUND_OPEN');
    const after = cast.ledger.time + 61_000;
    expect(await cast.ledger.code(share('lab-d', roundId), after)).toBe('ROUND_CLOSED');
    expect(await reveal('hosp-a', roundId, ['lab-d'])).toBe('ROUND_OPEN');
    expect(await close('clinic-c', roundId)).toBe('OK');
    expect(cast.ledger.get<AggregationRound>('rounds', roundId)).toMatchObject({ dropped: ['lab-d'] });
    expect(await reveal('hosp-a', roundId, ['hosp-b'])).toBe('TX_BODY_INVALID');
    expect(await reveal('hosp-a', roundId, [])).toBe('TX_BODY_INVALID');
    expect(await reveal('lab-d', roundId, ['lab-d'])).toBe('ROLE_FORBIDDEN');
    const result = released(0.1, null);
    expect(await reveal('hosp-a', roundId, ['lab-d'])).toBe('OK');
    expect(await releaseBy('clinic-c', roundId, result)).toBe('ROUND_INCOMPLETE');
    expect(await reveal('hosp-b', roundId, ['lab-d'])).toBe('OK');
    expect(await reveal('clinic-c', roundId, ['lab-d'])).toBe('OK');
    expect(await releaseBy('clinic-c', roundId, result)).toBe('OK');
    expect(cast.ledger.get<AggregationRound>('rounds', roundId)).toMatchObject({ status: 'released', dropped: ['lab-d'] });
  });

  it('fails a round with fewer than three contributors when its shares close, before any seed is revealed', async () => {
    const { txId: roundId } = await open(100);
    for (const c of ['hosp-a', 'clinic-c']) expect(await cast.ledger.code(share(c, roundId))).toBe('OK');
    expect(await close('clinic-c', roundId)).toBe('ROUND_OPEN');
    expect(await close('clinic-c', roundId, cast.ledger.time + 61_000)).toBe('OK');
    expect(cast.ledger.get<AggregationRound>('rounds', roundId)).toMatchObject({ status: 'failed', failure: 'ROUND_TOO_FEW' });
    expect(await reveal('hosp-a', roundId, ['hosp-b'])).toBe('ROUND_CLOSED');
  });
});

describe('research.shareStudyKey', () => {
  it('takes the key wrapped to exactly the active care custodians, once', async () => {
    expect(await register()).toBe('OK');
    const body = (ids: string[]) => ({ studyId: 'diabetes-2026', envelopes: Object.fromEntries(ids.map((i) => [i, 'AAAA'])) });
    const care = ['clinic-c', 'hosp-a', 'hosp-b', 'lab-d'];
    expect(
      await cast.ledger.code(cast.ledger.tx(cast.ledger.institution('hosp-a'), 'research.shareStudyKey', body(['hosp-a', 'hosp-b']))),
    ).toBe('TX_BODY_INVALID');
    expect(
      await cast.ledger.code(cast.ledger.tx(cast.ledger.institution('hosp-a'), 'research.shareStudyKey', body([...care, 'res-e']))),
    ).toBe('TX_BODY_INVALID');
    expect(await cast.ledger.code(cast.ledger.tx(cast.ledger.institution('res-e'), 'research.shareStudyKey', body(care)))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await cast.ledger.code(cast.ledger.tx(cast.ledger.institution('hosp-a'), 'research.shareStudyKey', body(care)))).toBe('OK');
    expect(await cast.ledger.code(cast.ledger.tx(cast.ledger.institution('hosp-b'), 'research.shareStudyKey', body(care)))).toBe(
      'ALREADY_EXISTS',
    );
  });
});

describe('access.recordServed for research', () => {
  let recordId: string;
  beforeEach(async () => {
    expect(await register()).toBe('OK');
    const reg = await cast.ledger.ok(
      cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(cast.alice.patientCode, { category: 'Condition' })),
    );
    recordId = reg.txId;
  });

  const served = (body: JsonObject) =>
    cast.ledger.code(
      cast.ledger.tx(cast.ledger.institution('hosp-a'), 'access.recordServed', {
        recordId,
        requester: 'res-e/res-1',
        purpose: 'HRESCH',
        ...body,
      }),
    );
  const grant = (grantee: JsonObject, deidentification = 'pseudonymised') =>
    cast.ledger.ok(
      cast.ledger.tx(cast.alice.patient, 'consent.grant', {
        patientCode: cast.alice.patientCode,
        grantee,
        scope: { kind: 'all' },
        purposes: ['HRESCH'],
        period: { from: cast.ledger.time - DAY, to: null },
        deidentification,
      }),
    );

  it('serves a researcher only within a study, at its level, under a consent naming the study', async () => {
    expect(await served({ deidentification: 'pseudonymised' })).toBe('STUDY_REQUIRED');
    expect(await served({ deidentification: 'pseudonymised', study: 'diabetes-2026' })).toBe('CONSENT_REQUIRED');
    await expect(grant({ kind: 'study', studyId: 'other-study' })).rejects.toThrow();
    expect(await register({ studyId: 'other-study' })).toBe('OK');
    await grant({ kind: 'study', studyId: 'other-study' });
    expect(await served({ deidentification: 'pseudonymised', study: 'diabetes-2026' })).toBe('CONSENT_REQUIRED');
    await grant({ kind: 'study', studyId: 'diabetes-2026' });
    expect(await served({ deidentification: 'identified', study: 'diabetes-2026' })).toBe('DEIDENTIFICATION_REQUIRED');
    expect(await served({ deidentification: 'anonymised', study: 'diabetes-2026' })).toBe('STUDY_FORBIDDEN');
    const entry = await cast.ledger.tx(cast.ledger.institution('hosp-a'), 'access.recordServed', {
      recordId,
      requester: 'res-e/res-1',
      purpose: 'HRESCH',
      deidentification: 'pseudonymised',
      study: 'diabetes-2026',
    });
    expect(await cast.ledger.code(entry)).toBe('OK');
    expect(cast.ledger.get<AccessLogEntry>('accessLog', entry.txId)).toMatchObject({
      actor: 'res-e/res-1',
      study: 'diabetes-2026',
      outcome: 'served',
    });
  });

  it('accepts a consent to research by researchers, and refuses a doctor naming a study', async () => {
    await grant({ kind: 'role', role: 'researcher', institution: null });
    expect(await served({ deidentification: 'pseudonymised', study: 'diabetes-2026' })).toBe('OK');
    const byDoctor = await cast.ledger.tx(cast.ledger.institution('hosp-a'), 'access.recordServed', {
      recordId,
      requester: 'hosp-b/dr-park',
      purpose: 'HRESCH',
      deidentification: 'pseudonymised',
      study: 'diabetes-2026',
    });
    expect(await cast.ledger.code(byDoctor)).toBe('STUDY_FORBIDDEN');
  });

  it('stops serving a closed study', async () => {
    await grant({ kind: 'study', studyId: 'diabetes-2026' });
    expect(await cast.ledger.code(cast.ledger.tx(researcher(), 'research.closeStudy', { studyId: 'diabetes-2026' }))).toBe('OK');
    expect(await served({ deidentification: 'pseudonymised', study: 'diabetes-2026' })).toBe('STUDY_CLOSED');
    expect((await open(100)).code).toBe('STUDY_CLOSED');
  });
});
