/**
 * The one error type of medledger and its table of stable codes. Codes are part of the API:
 * the CLI, the HTTP API and the UI show them; the HTTP status is chosen only at the edge.
 */

/** Stable error and rejection codes, each with the sentence a person reads. */
export const ErrorCodes = {
  // envelope and transport
  TX_MALFORMED: 'The transaction is not a well-formed medledger envelope.',
  TX_BAD_SIGNATURE: 'The transaction signature does not verify against the author key.',
  TX_REPLAY: 'This transaction, or another one with the same author and nonce, was already recorded.',
  TX_UNKNOWN_TYPE: 'The transaction type is not one medledger knows.',
  TX_UNKNOWN_AUTHOR: 'The author key is not registered on this network.',
  TX_WRONG_NETWORK: 'The transaction was signed for another network.',
  TX_TOO_LARGE: 'The transaction is larger than the network allows.',
  TX_BODY_INVALID: 'The transaction body is missing a field or has a field of the wrong kind.',
  INVALID_JSON: 'The request body is not valid JSON.',
  BODY_TOO_LARGE: 'The request body is larger than this node accepts.',
  RATE_LIMITED: 'Too many requests; slow down and retry.',
  BAD_REQUEST: 'The request is missing a parameter or has one of the wrong kind.',
  NOT_FOUND: 'No such object.',
  NODE_UNAVAILABLE: 'The node is stopping or not ready.',
  STORAGE_FAILED: 'The node’s store cannot be written (disk full or I/O error).',
  INTERNAL: 'The node met an internal error; it is logged without patient data.',
  // identity and membership
  NOT_A_MEMBER: 'The author does not belong to an active member institution.',
  ROLE_FORBIDDEN: 'The author’s role does not allow this action.',
  IDENTITY_REVOKED: 'The author identity has been revoked.',
  ALREADY_EXISTS: 'An object with this identifier already exists.',
  ALREADY_VOTED: 'This member has already voted on the proposal.',
  PROPOSAL_CLOSED: 'The proposal has already been decided.',
  KEY_POSSESSION_INVALID: 'The proof that the patient holds the key does not verify.',
  PATIENT_UNKNOWN: 'No patient is registered under this patient code.',
  NOT_HOME_INSTITUTION: 'Only staff of the patient’s home institution may do this.',
  PATIENT_FROZEN: 'The patient’s keys are frozen after a reported loss; their home institution restores them with new keys.',
  MEMBER_KEY_POSSESSION_INVALID: 'The proof that the institution holds its new key does not verify.',
  // records
  RECORD_NOT_FOUND: 'No record with this identifier is in the index.',
  RECORD_NOT_CUSTODIAN: 'Only the custodian institution may change this record.',
  RECORD_INTEGRITY: 'The record does not decrypt or does not match its hash in the index.',
  RECORD_RETRACTED: 'The record has been retracted or superseded.',
  RECORD_ERASED: 'The patient had this record erased; its keys are destroyed and only its hashes remain.',
  RECORD_NOT_HERE: 'This node does not keep the vault of the record’s custodian.',
  RECORD_TOO_LARGE: 'The record or attachment is larger than the vault accepts.',
  RECORD_INCOMPLETE: 'The record’s upload is not complete.',
  FHIR_INVALID: 'The record is not a valid FHIR R4 resource of a kind the vault accepts.',
  // FHIR facade
  FHIR_SEARCH_UNSUPPORTED: 'The FHIR search uses a parameter, modifier or value this server does not support; it was refused, not ignored.',
  FHIR_CONSENT_INVALID: 'The FHIR Consent cannot be mapped onto a ledger consent.',
  FHIR_CONSENT_MISMATCH: 'The FHIR Consent and the signed consent.grant it carries do not say the same thing.',
  // signed requests (RFC 9421) to a vault
  SIGNATURE_MISSING: 'The request carries no HTTP message signature.',
  SIGNATURE_INVALID: 'The request’s HTTP message signature does not verify, or does not cover what it must.',
  SIGNATURE_EXPIRED: 'The request’s signature was created outside the accepted time window.',
  REQUEST_REPLAYED: 'A request with this signature nonce was already received.',
  DIGEST_MISMATCH: 'The request body does not match its Content-Digest.',
  // group keys
  GROUP_EPOCH_INVALID: 'The group key epoch is not the next one, or its envelopes do not match the group’s members.',
  GROUP_EPOCH_STALE: 'The group key epoch is not the group’s current one.',
  // consent
  CONSENT_REQUIRED: 'No consent of the patient covers this requester, record, purpose and time.',
  CONSENT_EXPIRED: 'The consent that would cover this has expired.',
  CONSENT_NOT_YET_VALID: 'The consent that would cover this is not valid yet.',
  CONSENT_REVOKED: 'The consent that would cover this was revoked by the patient.',
  CONSENT_PURPOSE_MISMATCH: 'A consent covers this requester and record, but not for this purpose.',
  DEIDENTIFICATION_REQUIRED: 'This requester may only receive de-identified data.',
  CONSENT_REFUSED: 'The patient refused this.',
  CONSENT_PENDING: 'The patient has not answered yet.',
  CONSENT_NOT_NARROWER: 'A narrowed consent must stay within the consent it narrows.',
  CONSENT_NOT_FOUND: 'No consent with this identifier exists for this patient.',
  REQUEST_NOT_FOUND: 'No request with this identifier exists.',
  REQUEST_CLOSED: 'The request has already been answered.',
  // research
  STUDY_NOT_FOUND: 'No study with this identifier is registered.',
  STUDY_CLOSED: 'The study is closed.',
  STUDY_REQUIRED: 'A researcher receives data only for a registered study.',
  STUDY_FORBIDDEN: 'The requester is not on this study’s team, or the data asked for is outside the study.',
  STUDY_KEY_MISSING: 'This custodian does not hold the study’s pseudonym key yet.',
  STUDY_QUERY_INVALID: 'The study’s query is not one the consortium can run.',
  BUDGET_EXCEEDED: 'The query would spend more privacy budget (ε) than the study has left.',
  ROUND_NOT_FOUND: 'No aggregation round with this identifier exists.',
  ROUND_CLOSED: 'The aggregation round no longer accepts this.',
  ROUND_OPEN: 'The aggregation round is still waiting for custodians; try again after its deadline.',
  ROUND_INCOMPLETE: 'The aggregation round lacks a custodian’s share or revealed seeds.',
  ROUND_TOO_FEW: 'Fewer than three custodians contributed, so no total can be released without exposing one of them.',
  // push subscriptions, break-glass review, guardians (issue 7)
  SUBSCRIPTION_NOT_FOUND: 'No subscription with this identifier exists.',
  SUBSCRIPTION_CLOSED: 'The subscription has already been cancelled.',
  REVIEW_NOT_FOUND: 'No break-glass review with this identifier exists.',
  REVIEW_CLOSED: 'The break-glass review has already been closed.',
  GUARDIANSHIP_NOT_FOUND: 'No guardianship with this identifier exists for this patient.',
  GUARDIANSHIP_REVOKED: 'The guardianship that would allow this was revoked.',
  GUARDIANSHIP_EXPIRED: 'The guardianship that would allow this has ended.',
  GUARDIANSHIP_NOT_YET_VALID: 'The guardianship that would allow this has not begun yet.',
  GUARDIAN_OUT_OF_SCOPE:
    'The guardian may not do this on the patient’s behalf: it is outside the guardianship’s actions, categories, purposes or period.',
  DELIVERY_NOT_FOUND: 'No dead-lettered delivery with this identifier exists.',
  // chain verification
  CHAIN_BROKEN: 'The stored chain does not verify.',
  STATE_MISMATCH: 'The stored world state differs from the state the chain produces.',
  GENESIS_INVALID: 'The genesis document is not valid.',
  FINALITY_INVALID: 'A stored finality vote, certificate or validator set does not verify against the chain and its validators.',
  VAULT_TAMPERED: 'The vault’s stored data differs from what was written: a seal, hash, chain link or the ledger’s index does not match.',
  DATA_DIR_TAMPERED: 'A file of the node’s data directory is damaged or disagrees with the ledger.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}

export interface MedledgerErrorOptions {
  /** A detail for operators; never patient-identifying data. */
  details?: string;
  /** A typed payload callers may act on (field names, heights, ids). */
  payload?: Record<string, unknown>;
  cause?: unknown;
}

/** The single error class: a stable `code`, the human `shortMessage`, optional details. */
export class MedledgerError extends Error {
  override readonly name = 'MedledgerError';
  readonly code: ErrorCode;
  readonly shortMessage: string;
  readonly details: string | undefined;
  readonly payload: Record<string, unknown>;

  constructor(code: ErrorCode, options: MedledgerErrorOptions = {}) {
    const shortMessage = ErrorCodes[code];
    const message = options.details ? `${shortMessage} ${options.details}` : shortMessage;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.shortMessage = shortMessage;
    this.details = options.details;
    this.payload = options.payload ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; payload?: Record<string, unknown> } {
    return Object.keys(this.payload).length > 0
      ? { code: this.code, message: this.message, payload: this.payload }
      : { code: this.code, message: this.message };
  }
}

export function isMedledgerError(e: unknown): e is MedledgerError {
  return e instanceof MedledgerError;
}
