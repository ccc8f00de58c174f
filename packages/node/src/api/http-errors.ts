/** The edge mapping from stable error codes to HTTP statuses; nowhere else knows HTTP. */
import { STATUS_CODES } from 'node:http';
import { MedledgerError, type ErrorCode } from '@medledger/core/errors';
import { isStorageFailure } from '../store/storage-failure.ts';

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
  STORAGE_FAILED: 503,
  TX_REPLAY: 409,
  ALREADY_EXISTS: 409,
  RECORD_ERASED: 410,
  RECORD_NOT_HERE: 404,
  RECORD_TOO_LARGE: 413,
  RECORD_INCOMPLETE: 409,
  FHIR_INVALID: 422,
  FHIR_SEARCH_UNSUPPORTED: 400,
  FHIR_CONSENT_INVALID: 422,
  FHIR_CONSENT_MISMATCH: 422,
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
  else if (isStorageFailure(e)) err = new MedledgerError('STORAGE_FAILED');
  else err = new MedledgerError('INTERNAL');
  return { status: httpStatusOf(err.code), body: err.toJSON() };
}

/** A whole raw HTTP/1.1 answer carrying a coded body, for sockets Fastify does not answer on. */
export function rawAnswer(status: number, error: MedledgerError): string {
  const body = JSON.stringify(error.toJSON());
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/**
 * The answer to a request Node's HTTP parser refused before Fastify saw it (a malformed request
 * line or header, a head too large, a client too slow): the same coded body as every other
 * refusal; the connection then closes, since the rest of its bytes cannot be trusted.
 */
export function rawErrorAnswer(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  const [status, details] =
    code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'The request line and headers are too large.']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request did not arrive in time.']
        : [400, 'The request is not well-formed HTTP/1.1.'];
  return rawAnswer(status, new MedledgerError('BAD_REQUEST', { details }));
}
