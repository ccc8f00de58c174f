/** The edge mapping from stable error codes to HTTP statuses; nowhere else knows HTTP. */
import { MedledgerError, type ErrorCode } from '@medledger/core/errors';

const STATUS: Partial<Record<ErrorCode, number>> = {
  NOT_FOUND: 404,
  RECORD_NOT_FOUND: 404,
  REQUEST_NOT_FOUND: 404,
  CONSENT_NOT_FOUND: 404,
  PATIENT_UNKNOWN: 404,
  STUDY_NOT_FOUND: 404,
  ROUND_NOT_FOUND: 404,
  ROUND_OPEN: 409,
  ROUND_INCOMPLETE: 409,
  STUDY_QUERY_INVALID: 400,
  BODY_TOO_LARGE: 413,
  TX_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  NODE_UNAVAILABLE: 503,
  TX_REPLAY: 409,
  ALREADY_EXISTS: 409,
  RECORD_ERASED: 410,
  RECORD_NOT_HERE: 404,
  RECORD_TOO_LARGE: 413,
  RECORD_INCOMPLETE: 409,
  FHIR_INVALID: 422,
  DIGEST_MISMATCH: 400,
  SIGNATURE_MISSING: 401,
  SIGNATURE_INVALID: 401,
  SIGNATURE_EXPIRED: 401,
  REQUEST_REPLAYED: 401,
  CHAIN_BROKEN: 500,
  STATE_MISMATCH: 500,
  INTERNAL: 500,
};

export function httpStatusOf(code: ErrorCode): number {
  const s = STATUS[code];
  if (s !== undefined) return s;
  if (code.startsWith('TX_') || code === 'INVALID_JSON' || code === 'BAD_REQUEST' || code === 'GENESIS_INVALID') return 400;
  return 403;
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  validation?: unknown;
  message?: string;
}

/** Turns anything thrown in a handler into `{ status, body: { code, message } }`. */
export function toHttpError(e: unknown): { status: number; body: ReturnType<MedledgerError['toJSON']> } {
  if (e instanceof MedledgerError) return { status: httpStatusOf(e.code), body: e.toJSON() };
  const f = (typeof e === 'object' && e !== null ? e : {}) as FastifyLikeError;
  let err: MedledgerError;
  if (f.code === 'FST_ERR_CTP_BODY_TOO_LARGE') err = new MedledgerError('BODY_TOO_LARGE');
  else if (
    f.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
    f.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    (f.statusCode === 400 && /JSON/i.test(f.message ?? ''))
  ) {
    err = new MedledgerError('INVALID_JSON');
  } else if (f.validation !== undefined) err = new MedledgerError('BAD_REQUEST', { details: f.message ?? '' });
  else if (f.statusCode === 429) err = new MedledgerError('RATE_LIMITED');
  else if (f.statusCode === 415 || f.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    err = new MedledgerError('BAD_REQUEST', { details: 'Send application/json.' });
  else if (f.statusCode === 404) err = new MedledgerError('NOT_FOUND');
  else err = new MedledgerError('INTERNAL');
  return { status: httpStatusOf(err.code), body: err.toJSON() };
}
