/**
 * The transaction types of the ledger, one per contract operation (DESIGN §4). Each type is
 * also the name of the permission that the policy table grants for it.
 */
export const TxTypes = {
  'membership.propose': 'Propose to admit or remove an institution',
  'membership.vote': 'Vote on a membership proposal',
  'membership.setEndpoint': 'Publish where the institution’s vault answers',
  'membership.rotateKey': 'Replace the institution’s own keys (signed with its current key)',
  'identity.enrolStaff': 'Enrol a member of staff with a role',
  'identity.revokeStaff': 'Revoke a member of staff',
  'identity.registerPatient': 'Register a patient’s keys under their patient code',
  'identity.rotatePatientKeys': 'Replace a patient’s keys: by the patient, or by their home institution after a lost device',
  'identity.freezePatient': 'Revoke a patient’s key without a new one, until their home institution restores them',
  'records.register': 'Register a record in the index',
  'records.amend': 'Register a new version of a record',
  'records.retract': 'Retract a record',
  'records.erase': 'Erase a record at the patient’s request (its keys are destroyed)',
  'groups.rotate': 'Issue the next epoch of a role group’s key',
  'consent.requestRegistration': 'Ask a patient before registering a record',
  'consent.answerRegistration': 'Accept or refuse a registration request',
  'consent.grant': 'Grant consent',
  'consent.narrow': 'Narrow a consent',
  'consent.revoke': 'Revoke a consent',
  'access.request': 'Request access to a patient’s records',
  'access.decide': 'Approve or deny an access request',
  'access.recordServed': 'Record that a custodian served a record',
  'access.recordRefused': 'Record that a custodian refused to serve a record',
  'access.breakGlass': 'Open a patient’s records in an emergency, with a reason',
  'access.reviewBreakGlass': 'Close the review of a break-glass access with a finding (an auditor of the doctor’s institution)',
  'identity.setQualifications': 'Grant or withdraw a member of staff’s qualifications (e.g. emergency)',
  'identity.appointGuardian': 'Appoint a guardian who may consent on the patient’s behalf, within a scope and period',
  'identity.revokeGuardian': 'Revoke a guardianship (the patient, or the guardian resigning)',
  'subscriptions.subscribe': 'Follow a patient’s new records, under a consent that covers the subscriber',
  'subscriptions.cancel': 'Cancel a subscription (the subscriber or the patient)',
  'research.registerStudy': 'Register a research study: purpose, data, query, de-identification, privacy budget',
  'research.closeStudy': 'Close a research study',
  'research.shareStudyKey': 'Give the care custodians a study’s pseudonym key, wrapped to each',
  'research.openRound': 'Ask the custodians to run a study’s query (spends privacy budget)',
  'research.submitShare': 'A custodian’s masked result for an aggregation round',
  'research.closeShares': 'Close an aggregation round’s shares (all in, or after its deadline)',
  'research.revealSeeds': 'A contributor’s self-mask seed and its seeds with custodians that dropped out',
  'research.release': 'Release an aggregation round’s total, suppressed and noised',
} as const;

export type TxType = keyof typeof TxTypes;

export function isTxType(type: string): type is TxType {
  return Object.hasOwn(TxTypes, type);
}
