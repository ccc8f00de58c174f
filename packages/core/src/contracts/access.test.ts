/**
 * Access: a custodian records a served access only under a consent that covers it at block
 * time; requests are approved or denied by the patient; a doctor may break the glass.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../codec/canonical-json.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { createCast, DAY, HOUR, recordBody, type Cast } from '../ledger/test-network.test-fixture.ts';
import { DEFAULT_APPROVAL_MS } from './access.ts';
import type { AccessLogEntry, AccessRequest, Consent, Review } from './state.ts';

let cast: Cast;
/** a Condition record of Alice, kept by hosp-a */
let recordId: string;

beforeEach(async () => {
  cast = await createCast();
  const { ledger, alice } = cast;
  recordId = (
    await ledger.ok(ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(alice.patientCode, { category: 'Condition' })))
  ).txId;
});

function served(requester: string, overrides: JsonObject = {}): JsonObject {
  return { recordId, requester, purpose: 'TREAT', deidentification: 'identified', ...overrides };
}

/** hosp-a (the custodian) records that it served the record. */
function recordServed(body: JsonObject, time?: number) {
  const { ledger } = cast;
  return ledger.code(ledger.tx(ledger.institution('hosp-a'), 'access.recordServed', body), time);
}

async function grant(overrides: JsonObject = {}): Promise<string> {
  const { ledger, alice } = cast;
  const body = {
    patientCode: alice.patientCode,
    grantee: { kind: 'institution', institution: 'hosp-b' },
    scope: { kind: 'all' },
    purposes: ['TREAT'],
    period: { from: ledger.time, to: ledger.time + 30 * DAY },
    deidentification: 'identified',
    ...overrides,
  };
  return (await ledger.ok(ledger.tx(alice.patient, 'consent.grant', body))).txId;
}

function accessRequest(overrides: JsonObject = {}): JsonObject {
  return {
    patientCode: cast.alice.patientCode,
    scope: { kind: 'all' },
    purpose: 'TREAT',
    deidentification: 'identified',
    reason: 'referral',
    ...overrides,
  };
}

describe('access.recordServed', () => {
  it('is accepted under a covering consent and logged in the patient’s access history', async () => {
    const { ledger, alice } = cast;
    const consentId = await grant();
    const entry = await ledger.ok(ledger.tx(ledger.institution('hosp-a'), 'access.recordServed', served('hosp-b/dr-park')));
    expect(ledger.get<AccessLogEntry>('accessLog', entry.txId)).toEqual({
      entryId: entry.txId,
      patientCode: alice.patientCode,
      recordId,
      actor: 'hosp-b/dr-park',
      actorRole: 'doctor',
      institution: 'hosp-b',
      custodian: 'hosp-a',
      purpose: 'TREAT',
      outcome: 'served',
      code: null,
      consentId,
      reason: null,
      time: ledger.time,
      height: ledger.height,
    });
  });

  it('may be recorded by the custodian’s operator too', async () => {
    const { ledger } = cast;
    await grant();
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'access.recordServed', served('hosp-b/dr-park')))).toBe('OK');
  });

  it('is refused with CONSENT_REQUIRED when no consent covers the requester', async () => {
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('CONSENT_REQUIRED');
    await grant({ grantee: { kind: 'institution', institution: 'clinic-c' } });
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('CONSENT_REQUIRED');
    await grant({ scope: { kind: 'categories', categories: ['Observation'] } });
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('CONSENT_REQUIRED');
  });

  it('is refused with CONSENT_REVOKED after the patient revoked the consent', async () => {
    const { ledger, alice } = cast;
    const consentId = await grant();
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('OK');
    await ledger.ok(ledger.tx(alice.patient, 'consent.revoke', { consentId }));
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('CONSENT_REVOKED');
  });

  it('is refused with CONSENT_EXPIRED once the block time reaches period.to', async () => {
    const { ledger } = cast;
    const to = ledger.time + 10 * DAY;
    await grant({ period: { from: ledger.time, to } });
    expect(await recordServed(served('hosp-b/dr-park'), to - 1)).toBe('OK');
    expect(await recordServed(served('hosp-b/dr-park'), to)).toBe('CONSENT_EXPIRED');
    expect(await recordServed(served('hosp-b/dr-park'), to + DAY)).toBe('CONSENT_EXPIRED');
  });

  it('is refused with CONSENT_NOT_YET_VALID before period.from', async () => {
    const { ledger } = cast;
    const from = ledger.time + DAY;
    await grant({ period: { from, to: null } });
    expect(await recordServed(served('hosp-b/dr-park'), from - 1)).toBe('CONSENT_NOT_YET_VALID');
    expect(await recordServed(served('hosp-b/dr-park'), from)).toBe('OK');
  });

  it('is refused with CONSENT_PURPOSE_MISMATCH for a purpose the consent does not list', async () => {
    await grant({ purposes: ['TREAT'] });
    expect(await recordServed(served('hosp-b/dr-park', { purpose: 'HRESCH' }))).toBe('CONSENT_PURPOSE_MISMATCH');
  });

  it('is refused with DEIDENTIFICATION_REQUIRED for identified data to a researcher', async () => {
    await grant({ grantee: { kind: 'institution', institution: 'res-e' }, purposes: ['HRESCH'] });
    expect(await recordServed(served('res-e/res-1', { purpose: 'HRESCH' }))).toBe('DEIDENTIFICATION_REQUIRED');
    // De-identified data goes to a researcher only within a study (contracts/research.test.ts).
    expect(await recordServed(served('res-e/res-1', { purpose: 'HRESCH', deidentification: 'pseudonymised' }))).toBe('STUDY_REQUIRED');
  });

  it('is refused with DEIDENTIFICATION_REQUIRED when the consent asks for stricter data', async () => {
    await grant({ deidentification: 'anonymised' });
    expect(await recordServed(served('hosp-b/dr-park', { deidentification: 'pseudonymised' }))).toBe('DEIDENTIFICATION_REQUIRED');
    expect(await recordServed(served('hosp-b/dr-park', { deidentification: 'anonymised' }))).toBe('OK');
  });

  it('needs no consent for the custodian’s own clinician treating the patient', async () => {
    const { ledger } = cast;
    const entry = await ledger.ok(ledger.tx(ledger.institution('hosp-a'), 'access.recordServed', served('hosp-a/nurse-lee')));
    expect(ledger.get<AccessLogEntry>('accessLog', entry.txId)).toMatchObject({
      outcome: 'served',
      consentId: null,
      actor: 'hosp-a/nurse-lee',
    });
    expect(await recordServed(served('hosp-a/dr-kim', { purpose: 'HRESCH' }))).toBe('CONSENT_REQUIRED');
  });

  it('is refused with ROLE_FORBIDDEN to an auditor, whatever consent covers them (they read audit trails only)', async () => {
    // Found by the model-based test: a consent to the custodian institution, or to the auditor
    // role, let a served access to an auditor through, identified or not.
    await grant({ grantee: { kind: 'institution', institution: 'hosp-a' }, purposes: ['TREAT', 'HPAYMT'] });
    await grant({ grantee: { kind: 'role', role: 'auditor', institution: null }, purposes: ['HPAYMT'], deidentification: 'anonymised' });
    const before = cast.ledger.snapshot();
    for (const purpose of ['TREAT', 'HPAYMT'])
      for (const deidentification of ['identified', 'anonymised'])
        expect(await recordServed(served('hosp-a/aud-a', { purpose, deidentification })), `${purpose} ${deidentification}`).toBe(
          'ROLE_FORBIDDEN',
        );
    expect(cast.ledger.snapshot()).toEqual(before);
    // The same consent still serves the custodian's clinicians.
    expect(await recordServed(served('hosp-a/dr-kim', { purpose: 'HPAYMT' }))).toBe('OK');
  });

  it('is refused with RECORD_NOT_CUSTODIAN when another institution records it', async () => {
    const { ledger } = cast;
    await grant();
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'access.recordServed', served('hosp-b/dr-park')))).toBe(
      'RECORD_NOT_CUSTODIAN',
    );
  });

  it('is refused for an unknown record, an unknown requester and a revoked requester', async () => {
    const { ledger } = cast;
    await grant();
    expect(await recordServed(served('hosp-b/dr-park', { recordId: 'e'.repeat(64) }))).toBe('RECORD_NOT_FOUND');
    expect(await recordServed(served('hosp-b/dr-nobody'))).toBe('NOT_FOUND');
    await ledger.ok(ledger.tx(ledger.institution('hosp-b'), 'identity.revokeStaff', { staffId: 'hosp-b/dr-park' }));
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('IDENTITY_REVOKED');
  });

  it('is not for staff who are not the custodian’s operators, nor for research institutes', async () => {
    const { ledger } = cast;
    await grant();
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'access.recordServed', served('hosp-b/dr-park')))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await ledger.code(ledger.tx(ledger.institution('res-e'), 'access.recordServed', served('hosp-b/dr-park')))).toBe(
      'ROLE_FORBIDDEN',
    );
  });

  it('writes nothing when refused', async () => {
    const before = cast.ledger.snapshot();
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('CONSENT_REQUIRED');
    expect(cast.ledger.snapshot()).toEqual(before);
  });
});

describe('access.recordRefused', () => {
  it('logs a refusal with its code', async () => {
    const { ledger, alice } = cast;
    const body = { patientCode: alice.patientCode, recordId, requester: 'hosp-b/dr-park', purpose: 'TREAT', code: 'CONSENT_REQUIRED' };
    const entry = await ledger.ok(ledger.tx(ledger.institution('hosp-a'), 'access.recordRefused', body));
    expect(ledger.get<AccessLogEntry>('accessLog', entry.txId)).toMatchObject({
      outcome: 'refused',
      code: 'CONSENT_REQUIRED',
      actor: 'hosp-b/dr-park',
      actorRole: 'doctor',
    });
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'access.recordRefused', { ...body, code: 'NOT_A_CODE' }))).toBe(
      'TX_BODY_INVALID',
    );
    expect(
      await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'access.recordRefused', { ...body, patientCode: cast.bob.patientCode })),
    ).toBe('TX_BODY_INVALID');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'access.recordRefused', body))).toBe('RECORD_NOT_CUSTODIAN');
  });
});

describe('access.request and access.decide', () => {
  it('approval creates a consent for the requester that lets the served access pass', async () => {
    const { ledger, alice } = cast;
    const park = cast.staff('hosp-b/dr-park');
    const request = await ledger.ok(ledger.tx(park, 'access.request', accessRequest()));
    expect(ledger.get<AccessRequest>('accessRequests', request.txId)).toEqual({
      requestId: request.txId,
      patientCode: alice.patientCode,
      requester: 'hosp-b/dr-park',
      institution: 'hosp-b',
      scope: { kind: 'all' },
      purpose: 'TREAT',
      deidentification: 'identified',
      reason: 'referral',
      status: 'pending',
      createdAt: ledger.time,
      decidedAt: null,
      consentId: null,
    });
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('CONSENT_REQUIRED');

    const decision = await ledger.ok(
      ledger.tx(alice.patient, 'access.decide', { requestId: request.txId, approve: true, durationMs: null }),
    );
    const decidedAt = ledger.time;
    expect(ledger.get<AccessRequest>('accessRequests', request.txId)).toMatchObject({
      status: 'approved',
      decidedAt,
      consentId: decision.txId,
    });
    expect(ledger.get<Consent>('consents', decision.txId)).toEqual({
      consentId: decision.txId,
      patientCode: alice.patientCode,
      grantee: { kind: 'person', staffId: 'hosp-b/dr-park' },
      scope: { kind: 'all' },
      purposes: ['TREAT'],
      period: { from: decidedAt, to: decidedAt + DEFAULT_APPROVAL_MS },
      deidentification: 'identified',
      status: 'active',
      version: 1,
      grantedAt: decidedAt,
      updatedAt: decidedAt,
      source: 'access-request',
      requestId: request.txId,
    });
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('OK');
    // The consent names the person, not their institution.
    expect(await recordServed(served('hosp-b/nurse-b'))).toBe('CONSENT_REQUIRED');
    expect(await recordServed(served('hosp-b/dr-park'), decidedAt + DEFAULT_APPROVAL_MS)).toBe('CONSENT_EXPIRED');
  });

  it('approval for a given duration ends then', async () => {
    const { ledger, alice } = cast;
    const request = await ledger.ok(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.request', accessRequest()));
    await ledger.ok(ledger.tx(alice.patient, 'access.decide', { requestId: request.txId, approve: true, durationMs: HOUR }));
    const decidedAt = ledger.time;
    expect(await recordServed(served('hosp-b/dr-park'), decidedAt + HOUR - 1)).toBe('OK');
    expect(await recordServed(served('hosp-b/dr-park'), decidedAt + HOUR)).toBe('CONSENT_EXPIRED');
  });

  it('denial creates no consent', async () => {
    const { ledger, alice } = cast;
    const request = await ledger.ok(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.request', accessRequest()));
    await ledger.ok(ledger.tx(alice.patient, 'access.decide', { requestId: request.txId, approve: false, durationMs: null }));
    expect(ledger.get<AccessRequest>('accessRequests', request.txId)).toMatchObject({ status: 'denied', consentId: null });
    expect(ledger.get('patientConsents', alice.patientCode)).toBeUndefined();
    expect(await recordServed(served('hosp-b/dr-park'))).toBe('CONSENT_REQUIRED');
  });

  it('only the patient decides, once', async () => {
    const { ledger, alice, bob } = cast;
    const request = await ledger.ok(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.request', accessRequest()));
    const approve = { requestId: request.txId, approve: true, durationMs: null };
    expect(await ledger.code(ledger.tx(bob.patient, 'access.decide', approve))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'access.decide', approve))).toBe('ROLE_FORBIDDEN');
    expect(ledger.get<AccessRequest>('accessRequests', request.txId)?.status).toBe('pending');
    expect(ledger.get('patientConsents', alice.patientCode)).toBeUndefined();
    expect(await ledger.code(ledger.tx(alice.patient, 'access.decide', { ...approve, approve: false }))).toBe('OK');
    expect(await ledger.code(ledger.tx(alice.patient, 'access.decide', approve))).toBe('REQUEST_CLOSED');
    expect(await ledger.code(ledger.tx(alice.patient, 'access.decide', { ...approve, requestId: 'f'.repeat(64) }))).toBe(
      'REQUEST_NOT_FOUND',
    );
  });

  it('a researcher may ask only for de-identified data', async () => {
    const { ledger } = cast;
    const res = cast.staff('res-e/res-1');
    expect(await ledger.code(ledger.tx(res, 'access.request', accessRequest({ purpose: 'HRESCH' })))).toBe('DEIDENTIFICATION_REQUIRED');
    expect(
      await ledger.code(ledger.tx(res, 'access.request', accessRequest({ purpose: 'HRESCH', deidentification: 'pseudonymised' }))),
    ).toBe('OK');
  });

  it('refuses a request about an unknown patient, and from roles that may not ask', async () => {
    const { ledger } = cast;
    expect(
      await ledger.code(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.request', accessRequest({ patientCode: sha256Hex('x') }))),
    ).toBe('PATIENT_UNKNOWN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/op-a'), 'access.request', accessRequest()))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/aud-a'), 'access.request', accessRequest()))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'access.request', accessRequest()))).toBe('ROLE_FORBIDDEN');
  });
});

describe('access.breakGlass', () => {
  const justification = 'Unconscious patient in the emergency room';

  // issue 7: only a doctor the institution qualified for emergencies breaks the glass.
  beforeEach(async () => {
    const { ledger } = cast;
    await ledger.ok(
      ledger.tx(ledger.institution('hosp-b'), 'identity.setQualifications', { staffId: 'hosp-b/dr-park', qualifications: ['emergency'] }),
    );
  });

  it('lets a doctor open the records for a limited time, logged and queued for review', async () => {
    const { ledger, alice } = cast;
    const body = { patientCode: alice.patientCode, reason: 'ETREAT', justification, durationMs: 2 * HOUR };
    const entry = await ledger.ok(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.breakGlass', body));
    const t = ledger.time;
    expect(ledger.get<Review>('reviews', entry.txId)).toEqual({
      reviewId: entry.txId,
      patientCode: alice.patientCode,
      doctor: 'hosp-b/dr-park',
      institution: 'hosp-b',
      reason: 'ETREAT',
      justification,
      openedAt: t,
      expiresAt: t + 2 * HOUR,
      status: 'open',
    });
    expect(ledger.get<AccessLogEntry>('accessLog', entry.txId)).toMatchObject({
      patientCode: alice.patientCode,
      recordId: null,
      actor: 'hosp-b/dr-park',
      actorRole: 'doctor',
      institution: 'hosp-b',
      outcome: 'break-glass',
      purpose: 'ETREAT',
      consentId: entry.txId,
      reason: justification,
      time: t,
    });
    expect(ledger.get<Consent>('consents', entry.txId)).toMatchObject({
      grantee: { kind: 'person', staffId: 'hosp-b/dr-park' },
      scope: { kind: 'all' },
      purposes: ['ETREAT', 'BTG'],
      period: { from: t, to: t + 2 * HOUR },
      source: 'break-glass',
    });
    expect(await recordServed(served('hosp-b/dr-park', { purpose: 'ETREAT' }))).toBe('OK');
    expect(await recordServed(served('hosp-b/dr-park', { purpose: 'TREAT' }))).toBe('CONSENT_PURPOSE_MISMATCH');
    expect(await recordServed(served('hosp-b/dr-park', { purpose: 'ETREAT' }), t + 2 * HOUR)).toBe('CONSENT_EXPIRED');
  });

  it('is refused to a nurse, a laboratory’s doctor, a research institute’s operator and a hospital operator, with ROLE_FORBIDDEN', async () => {
    const { ledger, alice } = cast;
    const body = { patientCode: alice.patientCode, reason: 'ETREAT', justification, durationMs: HOUR };
    for (const staffId of ['hosp-b/nurse-b', 'lab-d/dr-d', 'res-e/op-e', 'hosp-a/op-a']) {
      expect(await ledger.code(ledger.tx(cast.staff(staffId), 'access.breakGlass', body)), staffId).toBe('ROLE_FORBIDDEN');
    }
    expect(ledger.get('patientConsents', alice.patientCode)).toBeUndefined();
  });

  it('lasts at most four hours and needs a justification', async () => {
    const { ledger, alice } = cast;
    const park = cast.staff('hosp-b/dr-park');
    const body = { patientCode: alice.patientCode, reason: 'BTG', justification, durationMs: 4 * HOUR };
    expect(await ledger.code(ledger.tx(park, 'access.breakGlass', { ...body, durationMs: 4 * HOUR + 1 }))).toBe('TX_BODY_INVALID');
    expect(await ledger.code(ledger.tx(park, 'access.breakGlass', { ...body, justification: 'urgent' }))).toBe('TX_BODY_INVALID');
    expect(await ledger.code(ledger.tx(park, 'access.breakGlass', { ...body, reason: 'TREAT' }))).toBe('TX_BODY_INVALID');
    expect(await ledger.code(ledger.tx(park, 'access.breakGlass', { ...body, patientCode: sha256Hex('x') }))).toBe('PATIENT_UNKNOWN');
    expect(await ledger.code(ledger.tx(park, 'access.breakGlass', body))).toBe('OK');
  });
});

describe('access.reviewBreakGlass (issue 7)', () => {
  const justification = 'Unconscious patient in the emergency room';

  async function breakGlass(): Promise<string> {
    const { ledger, alice } = cast;
    await ledger.ok(
      ledger.tx(ledger.institution('hosp-b'), 'identity.setQualifications', { staffId: 'hosp-b/dr-park', qualifications: ['emergency'] }),
    );
    const body = { patientCode: alice.patientCode, reason: 'BTG', justification, durationMs: HOUR };
    return (await ledger.ok(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.breakGlass', body))).txId;
  }

  it('lists the records opened under it, and lets an auditor of the doctor’s institution close it once, with a finding', async () => {
    const { ledger, alice } = cast;
    const reviewId = await breakGlass();
    expect(await recordServed(served('hosp-b/dr-park', { purpose: 'BTG' }))).toBe('OK');
    expect(ledger.get<Review>('reviews', reviewId)?.accessed).toEqual([recordId]);
    const audB = await ledger.enrol('hosp-b', 'aud-b', 'auditor');
    const review = { reviewId, finding: 'justified', note: 'Emergency admission confirmed by the ward log' };
    // hosp-a's auditor does not review hosp-b's doctors; a doctor is no auditor
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/aud-a'), 'access.reviewBreakGlass', review))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.reviewBreakGlass', review))).toBe('ROLE_FORBIDDEN');
    expect(await ledger.code(ledger.tx(audB, 'access.reviewBreakGlass', { ...review, finding: 'maybe' }))).toBe('TX_BODY_INVALID');
    expect(await ledger.code(ledger.tx(audB, 'access.reviewBreakGlass', { ...review, reviewId: recordId }))).toBe('REVIEW_NOT_FOUND');
    const closed = await ledger.ok(ledger.tx(audB, 'access.reviewBreakGlass', review));
    expect(ledger.get<Review>('reviews', reviewId)).toMatchObject({
      status: 'closed',
      closure: { reviewer: 'hosp-b/aud-b', finding: 'justified', closedAt: ledger.time },
    });
    expect(ledger.get<AccessLogEntry>('accessLog', closed.txId)).toMatchObject({
      patientCode: alice.patientCode,
      outcome: 'break-glass-reviewed',
      consentId: reviewId,
      reason: 'justified',
    });
    expect(await ledger.code(ledger.tx(audB, 'access.reviewBreakGlass', review))).toBe('REVIEW_CLOSED');
    // Closed before its hour was up: the access ends with it, so no read escapes the review.
    expect(ledger.get<Consent>('consents', reviewId)?.status).toBe('revoked');
    expect(await recordServed(served('hosp-b/dr-park', { purpose: 'BTG' }))).not.toBe('OK');
  });

  it('refuses a doctor without the emergency qualification, and one whose qualification was withdrawn', async () => {
    const { ledger, alice } = cast;
    const body = { patientCode: alice.patientCode, reason: 'BTG', justification, durationMs: HOUR };
    expect(await ledger.code(ledger.tx(cast.staff('hosp-a/dr-kim'), 'access.breakGlass', body))).toBe('ROLE_FORBIDDEN');
    await breakGlass();
    await ledger.ok(
      ledger.tx(ledger.institution('hosp-b'), 'identity.setQualifications', { staffId: 'hosp-b/dr-park', qualifications: [] }),
    );
    expect(await ledger.code(ledger.tx(cast.staff('hosp-b/dr-park'), 'access.breakGlass', body))).toBe('ROLE_FORBIDDEN');
    // an institution qualifies only its own doctors, and only doctors for emergencies
    const set = (staffId: string) => ({ staffId, qualifications: ['emergency'] });
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-a'), 'identity.setQualifications', set('hosp-b/dr-park')))).toBe(
      'ROLE_FORBIDDEN',
    );
    expect(await ledger.code(ledger.tx(ledger.institution('hosp-b'), 'identity.setQualifications', set('hosp-b/nurse-b')))).toBe(
      'ROLE_FORBIDDEN',
    );
  });
});
