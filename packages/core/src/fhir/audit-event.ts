/**
 * One entry of a patient's access log as a FHIR R4 AuditEvent (seed 002 §4: who, when, what,
 * why, served or refused): the requester and their institution as agents, the custodian as the
 * observing source, the patient, record and consent as entities, the HL7 purpose of use, and the
 * outcome with medledger's refusal code.
 */
import type { AuditEvent, AuditEventEntity } from '@medplum/fhirtypes';
import type { AccessLogEntry } from '../contracts/state.ts';
import { Purposes } from '../policy/purposes.ts';
import {
  Hl7Systems,
  MedledgerExtensions,
  MedledgerSystems,
  instantOf,
  institutionReference,
  patientReference,
  staffReference,
} from './systems.ts';

/** AuditEvent.outcome (R4 AuditEventOutcome): 0 success, 4 minor failure (a refusal is the system working). */
export const AuditOutcomeOf = {
  served: '0',
  'break-glass': '0',
  refused: '4',
  'break-glass-reviewed': '0',
  'guardian-appointed': '0',
  'guardian-revoked': '0',
  'guardian-acted': '0',
} as const satisfies Record<AccessLogEntry['outcome'], AuditEvent['outcome']>;

/**
 * AuditEvent.action (R4 AuditEventAction) of each entry, and the RESTful interaction it stands
 * for: a read served or refused, an emergency opening executed, a review closed (its record
 * updated), a guardianship created or ended, an act a guardian executed for the patient.
 */
export const AuditActionOf = {
  served: 'R',
  refused: 'R',
  'break-glass': 'E',
  'break-glass-reviewed': 'U',
  'guardian-appointed': 'C',
  'guardian-revoked': 'D',
  'guardian-acted': 'E',
} as const satisfies Record<AccessLogEntry['outcome'], NonNullable<AuditEvent['action']>>;

const InteractionOfAction = { R: 'read', U: 'update', C: 'create', D: 'delete', E: 'operation' } as const;

export function auditEventOf(e: AccessLogEntry): AuditEvent {
  const purpose = {
    coding: [{ system: Hl7Systems.actReason, code: e.purpose, display: Purposes[e.purpose] }],
    ...(e.reason === null ? {} : { text: e.reason }),
  };
  const breakGlass = e.outcome === 'break-glass';
  const action = AuditActionOf[e.outcome];
  const interaction = InteractionOfAction[action];
  const entities: AuditEventEntity[] = [
    {
      what: patientReference(e.patientCode),
      type: { system: Hl7Systems.auditEntityType, code: '1', display: 'Person' },
      role: { system: Hl7Systems.objectRole, code: '1', display: 'Patient' },
    },
  ];
  if (e.recordId !== null) {
    entities.push({
      what: { reference: `DocumentReference/${e.recordId}` },
      type: { system: Hl7Systems.auditEntityType, code: '2', display: 'System Object' },
    });
  }
  if (e.consentId !== null) {
    entities.push({
      what: { reference: `Consent/${e.consentId}` },
      type: { system: Hl7Systems.auditEntityType, code: '2', display: 'System Object' },
    });
  }
  return {
    resourceType: 'AuditEvent',
    id: e.entryId,
    extension: [
      { url: MedledgerExtensions.ledgerHeight, valueInteger: e.height },
      ...(e.study === undefined ? [] : [{ url: MedledgerExtensions.study, valueString: e.study }]),
    ],
    // DICOM 110110 Patient Record: an event about a patient's record.
    type: { system: Hl7Systems.dicom, code: '110110', display: 'Patient Record' },
    subtype: [
      breakGlass
        ? { system: Hl7Systems.actReason, code: 'BTG', display: Purposes.BTG }
        : { system: Hl7Systems.restfulInteraction, code: interaction, display: interaction },
    ],
    action,
    recorded: instantOf(e.time),
    outcome: AuditOutcomeOf[e.outcome],
    ...(e.code === null ? {} : { outcomeDesc: e.code }),
    purposeOfEvent: [purpose],
    agent: [
      {
        // A patient or their guardian acts under a patient code, staff under a staff id.
        who: e.actorRole === 'patient' || e.actorRole === 'guardian' ? patientReference(e.actor) : staffReference(e.actor),
        role: [{ coding: [{ system: MedledgerSystems.role, code: e.actorRole }] }],
        requestor: true,
        purposeOfUse: [purpose],
      },
      { who: institutionReference(e.institution), requestor: false },
    ],
    source: {
      site: 'medledger',
      // The custodian answered (served or refused); a break-glass is recorded by the ledger for the doctor's institution.
      observer: institutionReference(e.custodian ?? e.institution),
      type: [{ system: Hl7Systems.securitySourceType, code: '4', display: 'Application Server' }],
    },
    entity: entities,
  };
}
