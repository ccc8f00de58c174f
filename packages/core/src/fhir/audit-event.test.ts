/** Access-log entries as AuditEvent: who, what, when, why, outcome (seed 002 §4). */
import { describe, expect, it } from 'vitest';
import { auditEventOf } from './audit-event.ts';
import { accessLogEntry, hex } from './ledger-resources.test-fixture.ts';
import { Hl7Systems } from './systems.ts';

describe('auditEventOf', () => {
  it('names a served read, its requester, institution, custodian, record, consent and purpose', () => {
    const e = auditEventOf(accessLogEntry());
    expect(e).toMatchObject({
      id: hex('4'),
      action: 'R',
      outcome: '0',
      recorded: '2026-11-02T10:00:00.000Z',
      purposeOfEvent: [{ coding: [{ system: Hl7Systems.actReason, code: 'TREAT' }], text: 'referral' }],
      agent: [{ who: { identifier: { value: 'hosp-a/dr-kim' } }, requestor: true }, { who: { identifier: { value: 'hosp-a' } } }],
      source: { observer: { identifier: { value: 'hosp-b' } } },
    });
    expect(e.entity?.map((x) => x.what?.reference ?? x.what?.identifier?.value)).toEqual([
      hex('a'),
      `DocumentReference/${hex('1')}`,
      `Consent/${hex('5')}`,
    ]);
    expect(e.outcomeDesc).toBeUndefined();
  });

  it('gives a refusal its code and a break-glass its own action and subtype', () => {
    expect(auditEventOf(accessLogEntry({ outcome: 'refused', code: 'CONSENT_EXPIRED', consentId: null }))).toMatchObject({
      outcome: '4',
      outcomeDesc: 'CONSENT_EXPIRED',
    });
    const bg = auditEventOf(accessLogEntry({ outcome: 'break-glass', recordId: null, custodian: null, purpose: 'ETREAT' }));
    expect(bg).toMatchObject({
      action: 'E',
      outcome: '0',
      subtype: [{ code: 'BTG' }],
      source: { observer: { identifier: { value: 'hosp-a' } } },
    });
    expect(bg.entity).toHaveLength(2);
  });

  it('gives each other kind of entry its own action and RESTful interaction', () => {
    const kinds = [
      ['break-glass-reviewed', 'U', 'update'],
      ['guardian-appointed', 'C', 'create'],
      ['guardian-revoked', 'D', 'delete'],
      ['guardian-acted', 'E', 'operation'],
    ] as const;
    for (const [outcome, action, interaction] of kinds) {
      expect(auditEventOf(accessLogEntry({ outcome, recordId: null }))).toMatchObject({
        action,
        outcome: '0',
        subtype: [{ code: interaction }],
      });
    }
  });

  it('names a patient or guardian who acted as a Patient, not as staff', () => {
    const code = 'c'.repeat(64);
    for (const actorRole of ['patient', 'guardian']) {
      const e = auditEventOf(accessLogEntry({ outcome: 'guardian-acted', recordId: null, actor: code, actorRole }));
      expect(e.agent?.[0]?.who, actorRole).toMatchObject({ type: 'Patient', identifier: { value: code } });
    }
  });
});
