/**
 * The FHIR R4 facade (`/fhir`, application/fhir+json): the record index as DocumentReference
 * (IHE MHD ITI-67) with content through the custodian vault's own consent check (ITI-68, as
 * Binary), the patient's consents as Consent (and a signed grant posted as one), the access log
 * as AuditEvent, registrations and amendments as Provenance, and a CapabilityStatement at
 * `/fhir/metadata`. Requests are authenticated by the vault's RFC 9421 check; who sees what is
 * decided by the role table (`can`) and the consent rules of `core/policy`; errors leave here
 * as OperationOutcome. The ledger → FHIR mappings are pure and live in `core/fhir`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Binary, OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { AccessLogEntry, Consent, Member, RecordEntry } from '@medledger/core/contracts/state';
import { MedledgerError } from '@medledger/core/errors';
import { auditEventOf } from '@medledger/core/fhir/audit-event';
import { searchBundle } from '@medledger/core/fhir/bundle';
import { capabilityStatement, SearchParameters } from '@medledger/core/fhir/capability-statement';
import { fhirConsentOf, grantBodyOf, sameGrant, signedGrantOf } from '@medledger/core/fhir/consent';
import { documentReferenceOf } from '@medledger/core/fhir/document-reference';
import { provenanceOf } from '@medledger/core/fhir/provenance';
import { dateRange, parseSearch, referenceId, single, tokenCode, type ParsedSearch } from '@medledger/core/fhir/search';
import { Hl7Systems, MedledgerSystems, toBase64 } from '@medledger/core/fhir/systems';
import { toBase64Url, utf8 } from '@medledger/core/codec/bytes';
import { MAX_RESOURCE_BYTES } from '@medledger/core/fhir/validate';
import { decodeTx } from '@medledger/core/ledger/tx';
import { granteeCovers } from '@medledger/core/policy/consent-evaluation';
import { can } from '@medledger/core/policy/roles';
import type { Peer } from '../peer/peer.ts';
import type { Requester, VaultService } from '../vault/vault-service.ts';
import { toHttpError } from './http-errors.ts';
import { signedRequest } from './vault-routes.ts';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
/** Binary.contentType of a record's content as served: the vault's sealed answer, opened by the requester. */
export const SEALED_RECORD = 'application/vnd.medledger.sealed-record+json';
/** The date the CapabilityStatement's content last changed. */
const CAPABILITY_DATE = '2026-11-22';
/** Per-patient lists (consents, access log, provenance) are read whole up to this many rows. */
const PER_PATIENT_ROWS = 10_000;
const HEX64 = /^[0-9a-f]{64}$/;

export interface FhirRoutesOptions {
  peer: Peer;
  /** authenticates signed requests and serves content; without it only /fhir/metadata answers */
  vault: VaultService | null;
  institution: string;
  /** the software version the CapabilityStatement names */
  version?: string;
}

/** R4 IssueType of each HTTP status medledger answers. */
const ISSUE_OF_STATUS: Record<number, string> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  409: 'conflict',
  410: 'deleted',
  413: 'too-costly',
  422: 'invalid',
  429: 'throttled',
  503: 'transient',
};

/** A coded error as an OperationOutcome: the stable code in `details.coding`, its sentence as text. */
export function operationOutcomeOf(status: number, body: { code: string; message: string }): OperationOutcome {
  const code = body.code === 'FHIR_SEARCH_UNSUPPORTED' ? 'not-supported' : (ISSUE_OF_STATUS[status] ?? 'exception');
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: code as NonNullable<OperationOutcome['issue']>[number]['code'],
        details: { coding: [{ system: MedledgerSystems.errorCode, code: body.code }], text: body.message },
      },
    ],
  };
}

function send(reply: FastifyReply, status: number, resource: Resource): FastifyReply {
  return reply.status(status).type(FHIR_JSON).send(JSON.stringify(resource));
}

/** The query's (name, value) pairs in order, repeats kept. */
function queryPairs(req: FastifyRequest): [string, string][] {
  const q = req.url.indexOf('?');
  return q < 0 ? [] : [...new URLSearchParams(req.url.slice(q + 1)).entries()];
}

function noQuery(req: FastifyRequest): void {
  const [first] = queryPairs(req);
  if (first !== undefined)
    throw new MedledgerError('FHIR_SEARCH_UNSUPPORTED', {
      details: 'A read takes no parameters.',
      payload: { parameter: first[0].slice(0, 64) },
    });
}

function idParam(req: FastifyRequest): string {
  const { id } = req.params as { id: string };
  if (!HEX64.test(id)) throw new MedledgerError('NOT_FOUND');
  return id;
}

function forbidden(details: string): MedledgerError {
  return new MedledgerError('ROLE_FORBIDDEN', { details });
}

/** A patient code from a `patient` parameter (Patient/<code> or <code>). */
function patientOf(s: ParsedSearch): string | undefined {
  const v = single(s, 'patient');
  // IHE MHD ITI-67 names the patient by identifier as often as by reference.
  const byIdentifier = s.params.has('patient.identifier') ? single(s, 'patient.identifier') : undefined;
  if (v !== undefined && byIdentifier !== undefined)
    throw new MedledgerError('FHIR_SEARCH_UNSUPPORTED', {
      details: 'Name the patient once.',
      payload: { parameter: 'patient.identifier' },
    });
  if (v === undefined && byIdentifier === undefined) return undefined;
  const code =
    v !== undefined ? referenceId('patient', v, 'Patient') : tokenCode('patient.identifier', byIdentifier!, MedledgerSystems.patientCode);
  if (!HEX64.test(code))
    throw new MedledgerError('FHIR_SEARCH_UNSUPPORTED', {
      details: 'The patient is named by patient code.',
      payload: { parameter: 'patient' },
    });
  return code;
}

/** Staff who may read records (the role table's records.readIdentified) see the index, as /api/records shows it. */
function readsIndex(r: Requester): boolean {
  return r.kind === 'staff' && can({ role: r.staff.role, institutionKind: r.institution.kind }, 'records.readIdentified');
}

/**
 * The patient whose data a search reads: a patient reads only their own; staff name one.
 * `staffMay` is the role table's answer for this kind of data.
 */
function patientScope(r: Requester, asked: string | undefined, staffMay: boolean, what: string): string {
  if (r.kind === 'patient') {
    if (asked !== undefined && asked !== r.patient.patientCode) throw forbidden(`A patient reads only their own ${what}.`);
    return r.patient.patientCode;
  }
  if (r.kind !== 'staff' || !staffMay) throw forbidden(`This role does not read ${what}.`);
  if (asked === undefined) throw new MedledgerError('BAD_REQUEST', { details: 'Name the patient.' });
  return asked;
}

/** One page of an in-memory list already in date order. */
function pageOf<T>(rows: readonly T[], s: ParsedSearch): T[] {
  return rows.slice(s.offset, s.offset + s.count);
}

function byTime<T>(rows: T[], time: (t: T) => number, id: (t: T) => string, descending: boolean): T[] {
  const sign = descending ? -1 : 1;
  return rows.sort((a, b) => sign * (time(a) - time(b) || (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0)));
}

function inRange(t: number, range: { from?: number; to?: number }): boolean {
  return (range.from === undefined || t >= range.from) && (range.to === undefined || t < range.to);
}

export async function registerFhirRoutes(app: FastifyInstance, o: FhirRoutesOptions): Promise<void> {
  const store = o.peer.store;
  /**
   * Requests whose answer the facade decides itself, once their signature is verified: each is
   * audited in the vault's trail, served or refused, before the answer leaves (onSend). Binary is
   * decided and audited by the vault's serveRecord; a refused signature by `authenticate`.
   */
  const decided = new WeakMap<FastifyRequest, { requester: Requester; auditAs: string; action: string; code: string | null }>();

  const authenticate = async (
    req: FastifyRequest,
    action: string,
    custodian?: string,
    recordId: string | null = null,
  ): Promise<Requester> => {
    const vault = o.vault;
    if (vault === null)
      throw new MedledgerError('NODE_UNAVAILABLE', { details: 'This node keeps no vault, so it cannot check signed requests.' });
    // Refused signatures are audited in the vault's trail: this node's institution's when it keeps it.
    const auditAs = custodian ?? (vault.hosts(o.institution) ? o.institution : (vault.institutions[0] ?? o.institution));
    const requester = await vault.authenticate(signedRequest(req), auditAs, action, recordId);
    if (custodian === undefined) decided.set(req, { requester, auditAs, action, code: null });
    return requester;
  };

  const baseOf = (req: FastifyRequest): string => `${req.protocol}://${req.headers.host ?? 'localhost'}/fhir`;

  const contentUrl = (base: string, r: RecordEntry): string => {
    const member = store.get('members', r.custodian) as Member | undefined;
    const vaultUrl = typeof member?.vaultUrl === 'string' ? member.vaultUrl.replace(/\/$/, '') : null;
    return `${vaultUrl === null ? base : `${vaultUrl}/fhir`}/Binary/${r.recordId}`;
  };

  const record = (id: string): RecordEntry => {
    const r = store.get('records', id) as RecordEntry | undefined;
    if (r === undefined) throw new MedledgerError('RECORD_NOT_FOUND');
    return r;
  };

  const mayReadRecord = (r: Requester, entry: RecordEntry): void => {
    if (r.kind === 'patient' ? r.patient.patientCode !== entry.patientCode : !readsIndex(r))
      throw forbidden('The index entry is its patient’s and their care staff’s.');
  };

  const provenance = (entry: RecordEntry): Resource => {
    const at = store.txLocation(entry.recordId);
    const tx = at === undefined ? undefined : store.block(at.height)?.block.txs[at.index];
    if (tx === undefined) throw new MedledgerError('INTERNAL', { details: 'The record’s transaction is missing.' });
    return provenanceOf(entry, { txId: entry.recordId, author: tx.author, signature: tx.signature });
  };

  /** Auditors see the entries of their own institution (as requester or custodian), as the vault's audit. */
  const auditVisible = (r: Requester): ((e: AccessLogEntry) => boolean) => {
    if (r.kind === 'patient') return () => true;
    // A guardianship is between two people: its entries name the acting person's home
    // institution, which has no care relationship to show its auditors.
    if (r.kind === 'staff' && can({ role: r.staff.role }, 'audit.read'))
      return (e) => !e.outcome.startsWith('guardian-') && (e.institution === r.staff.institution || e.custodian === r.staff.institution);
    return () => false;
  };

  /** Staff see the consents that name them (as person, role, institution), by the consent rules' own test. */
  const consentVisible = (r: Requester): ((c: Consent) => boolean) => {
    if (r.kind === 'patient') return (c) => c.patientCode === r.patient.patientCode;
    if (r.kind === 'staff')
      return (c) =>
        granteeCovers(c.grantee, { staffId: r.staff.staffId, institution: r.staff.institution, role: r.staff.role, study: null });
    return () => false;
  };

  const perPatient = (table: 'consents' | 'accessLog' | 'records', patientCode: string, range: { from?: number; to?: number } | null) => {
    const column = table === 'accessLog' ? 'time' : 'registered_at';
    const rows = store.query(
      table,
      { patient_code: patientCode },
      table === 'consents' ? null : { column, ...range },
      null,
      PER_PATIENT_ROWS + 1,
    );
    if (rows.length > PER_PATIENT_ROWS)
      throw new MedledgerError('FHIR_SEARCH_UNSUPPORTED', {
        details: `More than ${PER_PATIENT_ROWS} entries match: narrow the search by date.`,
        payload: { parameter: 'date' },
      });
    return rows;
  };

  const SIGNED = 'Signed with RFC 9421 HTTP Message Signatures, as vault requests (see /fhir/metadata).';
  const search = (resource: string, params: Record<string, string>) => ({
    summary: `Search ${resource} (FHIR R4 searchset Bundle)`,
    description: `${SIGNED} Paging with _count (≤ 100) and _offset, _sort=date or -date; any other parameter is refused (400 OperationOutcome, not-supported).`,
    tags: ['fhir'],
    querystring: Type.Object(
      Object.fromEntries([
        ...Object.entries(params).map(([k, d]) => [k, Type.Optional(Type.String({ description: d }))]),
        ['_count', Type.Optional(Type.Integer({ minimum: 0, maximum: 100 }))],
        ['_offset', Type.Optional(Type.Integer({ minimum: 0, maximum: 10000 }))],
        ['_sort', Type.Optional(Type.Union([Type.Literal('date'), Type.Literal('-date')]))],
      ]),
    ),
  });
  const read = (resource: string) => ({
    summary: `Read one ${resource}`,
    description: SIGNED,
    tags: ['fhir'],
    params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
  });
  // Queries are checked by core/fhir/search (refused, not dropped or coerced); the schemas only describe them.
  const described = { validatorCompiler: () => () => true };

  await app.register(
    (scope, _opts, done) => {
      // Bodies are kept as bytes too, to check them against their signed Content-Digest.
      scope.addContentTypeParser(
        ['application/fhir+json', 'application/json'],
        { parseAs: 'buffer', bodyLimit: MAX_RESOURCE_BYTES },
        (req, body, next) => {
          (req as FastifyRequest & { rawBody?: Buffer }).rawBody = body as Buffer;
          try {
            next(null, JSON.parse((body as Buffer).toString('utf8')));
          } catch {
            next(new MedledgerError('INVALID_JSON'), undefined);
          }
        },
      );
      scope.setErrorHandler((error, req, reply) => {
        const { status, body } = toHttpError(error);
        const answer = decided.get(req);
        if (answer !== undefined) answer.code = body.code;
        if (status >= 500) app.log.error({ code: body.code, err: error instanceof Error ? error.name : 'error' }, 'fhir request failed');
        return send(reply, status, operationOutcomeOf(status, body));
      });
      scope.addHook('onSend', async (req, reply, payload) => {
        const answer = decided.get(req);
        if (answer === undefined || o.vault === null) return payload;
        decided.delete(req);
        const served = reply.statusCode < 400;
        await o.vault.auditAnswer(
          answer.requester,
          answer.auditAs,
          answer.action,
          served ? 'served' : 'refused',
          served ? null : answer.code,
        );
        return payload;
      });
      scope.setNotFoundHandler((_req, reply) =>
        send(reply, 404, operationOutcomeOf(404, new MedledgerError('NOT_FOUND', { details: 'No such FHIR interaction here.' }).toJSON())),
      );

      scope.get('/metadata', { schema: { summary: 'The FHIR R4 CapabilityStatement (unsigned)', tags: ['fhir'] } }, (req, reply) =>
        send(reply, 200, capabilityStatement({ version: o.version ?? '0.1.0', date: CAPABILITY_DATE, url: baseOf(req) })),
      );

      // ------------------------------------------------------------ DocumentReference (ITI-67)
      scope.get(
        '/DocumentReference',
        {
          ...described,
          schema: search('DocumentReference', {
            patient: 'Patient/<patient code> or <patient code>',
            'patient.identifier': 'https://medledger.dev/fhir/sid/patient-code|<patient code>',
            category: 'FHIR resource type of the record',
            type: 'FHIR resource type of the record',
            custodian: 'Organization/<institution> or <institution>',
            date: '[ge|gt|le|lt|eq]<date>, registration time',
          }),
        },
        async (req, reply) => {
          const r = await authenticate(req, 'GET /fhir/DocumentReference');
          const s = parseSearch(queryPairs(req), SearchParameters.DocumentReference);
          const asked = patientOf(s);
          const custodianValue = single(s, 'custodian');
          const custodian = custodianValue === undefined ? undefined : referenceId('custodian', custodianValue, 'Organization');
          let patientCode: string | undefined;
          if (r.kind === 'patient') patientCode = patientScope(r, asked, false, 'records');
          else {
            if (!readsIndex(r)) throw forbidden('This role does not read the record index.');
            if (asked === undefined && custodian === undefined)
              throw new MedledgerError('BAD_REQUEST', { details: 'Name the patient or the custodian.' });
            patientCode = asked;
          }
          const kinds = new Set([
            ...(s.params.get('category') ?? []).map((v) => tokenCode('category', v, Hl7Systems.resourceTypes)),
            ...(s.params.get('type') ?? []).map((v) => tokenCode('type', v, Hl7Systems.resourceTypes)),
          ]);
          const base = baseOf(req);
          // Two different categories asked together match nothing (a record has one).
          if (kinds.size > 1) return send(reply, 200, searchBundle(`${base}/DocumentReference`, s, 0, []));
          const where = { patient_code: patientCode, category: [...kinds][0], custodian };
          const range = { column: 'registered_at', ...dateRange('date', s.params.get('date') ?? []) };
          const total = store.count('records', where, range);
          const texts =
            s.count === 0
              ? []
              : store.queryTexts('records', where, range, { column: 'registered_at', desc: s.descending }, s.count, s.offset);
          const docs = texts.map((t) => {
            const entry = JSON.parse(t) as RecordEntry;
            return documentReferenceOf(entry, { contentUrl: contentUrl(base, entry) });
          });
          return send(reply, 200, searchBundle(`${base}/DocumentReference`, s, total, docs));
        },
      );
      scope.get('/DocumentReference/:id', { ...described, schema: read('DocumentReference') }, async (req, reply) => {
        const r = await authenticate(req, 'GET /fhir/DocumentReference/:id');
        noQuery(req);
        const entry = record(idParam(req));
        mayReadRecord(r, entry);
        return send(reply, 200, documentReferenceOf(entry, { contentUrl: contentUrl(baseOf(req), entry) }));
      });

      // ------------------------------------------------------------ Binary (ITI-68)
      scope.get(
        '/Binary/:id',
        {
          ...described,
          schema: {
            ...read('Binary'),
            summary: 'Retrieve a record’s content from its custodian’s vault, through the vault’s consent check (IHE MHD ITI-68)',
            description: `${SIGNED} The vault decides and audits exactly as GET /vault/records/:recordId: a served access is written to the ledger (access.recordServed) and final before the answer; a refusal is written as access.recordRefused. The Binary (application/vnd.medledger.sealed-record+json) carries the vault’s answer: the ciphertext, its data key wrapped (HPKE) to the requester, and the access tx.`,
            querystring: Type.Object({ purpose: Type.String({ description: 'HL7 purpose of use, e.g. TREAT' }) }),
          },
        },
        async (req, reply) => {
          const id = idParam(req);
          const vault = o.vault;
          const custodian = vault?.custodianOf(id);
          const r = await authenticate(req, 'GET /fhir/Binary/:id', custodian, id);
          const pairs = queryPairs(req);
          const other = pairs.find(([k]) => k !== 'purpose');
          if (other !== undefined)
            throw new MedledgerError('FHIR_SEARCH_UNSUPPORTED', {
              details: 'Binary takes purpose only.',
              payload: { parameter: other[0].slice(0, 64) },
            });
          const purposes = pairs.filter(([k]) => k === 'purpose');
          if (purposes.length !== 1) throw new MedledgerError('BAD_REQUEST', { details: 'Give one purpose (an HL7 purpose of use).' });
          // The vault's own decision, audit and ledger writes; nothing here decides.
          const served = await vault!.serveRecord(r, id, { purpose: purposes[0]![1] });
          // R4 Binary has no extensions: its data is the vault's own answer (ciphertext, the data key
          // wrapped to the requester, the access tx), so the plaintext never leaves the custodian unencrypted.
          const sealed = { ...served, ciphertext: toBase64Url(served.ciphertext) };
          const binary: Binary = {
            resourceType: 'Binary',
            id,
            contentType: SEALED_RECORD,
            securityContext: { reference: `DocumentReference/${id}` },
            data: toBase64(utf8(JSON.stringify(sealed))),
          };
          return send(reply, 200, binary);
        },
      );

      // ------------------------------------------------------------ Consent
      scope.get(
        '/Consent',
        { ...described, schema: search('Consent', { patient: 'Patient/<patient code> or <patient code>', date: 'when it was granted' }) },
        async (req, reply) => {
          const r = await authenticate(req, 'GET /fhir/Consent');
          const s = parseSearch(queryPairs(req), SearchParameters.Consent);
          const patientCode = patientScope(r, patientOf(s), r.kind === 'staff' && readsIndex(r), 'consents');
          const range = dateRange('date', s.params.get('date') ?? []);
          const visible = consentVisible(r);
          const rows = (perPatient('consents', patientCode, null) as unknown as Consent[]).filter(
            (c) => visible(c) && inRange(c.grantedAt, range),
          );
          const ordered = byTime(
            rows,
            (c) => c.grantedAt,
            (c) => c.consentId,
            s.descending,
          );
          return send(reply, 200, searchBundle(`${baseOf(req)}/Consent`, s, ordered.length, pageOf(ordered, s).map(fhirConsentOf)));
        },
      );
      scope.get('/Consent/:id', { ...described, schema: read('Consent') }, async (req, reply) => {
        const r = await authenticate(req, 'GET /fhir/Consent/:id');
        noQuery(req);
        const c = store.get('consents', idParam(req)) as Consent | undefined;
        if (c === undefined) throw new MedledgerError('CONSENT_NOT_FOUND');
        if (!consentVisible(r)(c)) throw forbidden('A consent is its patient’s and its grantee’s.');
        return send(reply, 200, fhirConsentOf(c));
      });
      scope.post(
        '/Consent',
        {
          ...described,
          schema: {
            summary: 'Grant a consent: a FHIR Consent carrying the patient’s signed consent.grant transaction (sourceAttachment)',
            description: `${SIGNED} The request is signed by the patient; the Consent (provision actor, purpose, period, class or data, securityLabel) must map onto exactly the body of the consent.grant transaction it carries (application/json, base64), signed by the same patient. The server submits that transaction unchanged and answers 201 with the Consent read back from the ledger.`,
            tags: ['fhir'],
            body: Type.Object({ resourceType: Type.Literal('Consent') }, { additionalProperties: true }),
          },
        },
        async (req, reply) => {
          const r = await authenticate(req, 'POST /fhir/Consent');
          noQuery(req);
          if (r.kind !== 'patient') throw forbidden('Only the patient grants their consent.');
          const grant = grantBodyOf(req.body);
          if (grant.patientCode !== r.patient.patientCode) throw forbidden('A patient grants consents on their own data only.');
          const { tx, txId } = decodeTx(signedGrantOf(req.body), o.peer.genesis.config.maxTxBytes);
          if (tx.type !== 'consent.grant' || tx.author !== r.keyId || !sameGrant(tx.body, grant))
            throw new MedledgerError('FHIR_CONSENT_MISMATCH', {
              details:
                'The attached transaction must be a consent.grant, signed by the requesting patient, with exactly the Consent’s terms.',
            });
          const submitted = await o.peer.submit(tx);
          const status = submitted.status.status === 'committed' ? submitted.status : await o.peer.waitForCommit(txId, 30_000);
          if (status.status !== 'committed') throw new MedledgerError('NODE_UNAVAILABLE', { details: 'The grant did not commit in time.' });
          if (status.code !== 'OK') throw new MedledgerError(status.code);
          const c = store.get('consents', txId) as Consent | undefined;
          if (c === undefined) throw new MedledgerError('INTERNAL', { details: 'The committed grant is not in the state.' });
          void reply.header('location', `${baseOf(req)}/Consent/${txId}`);
          // A retry of a grant already on the ledger answers what it made, without a second one.
          return send(reply, submitted.status.status === 'accepted' ? 201 : 200, fhirConsentOf(c));
        },
      );

      // ------------------------------------------------------------ AuditEvent
      scope.get(
        '/AuditEvent',
        {
          ...described,
          schema: search('AuditEvent', { patient: 'Patient/<patient code> or <patient code>', date: 'when it was recorded' }),
        },
        async (req, reply) => {
          const r = await authenticate(req, 'GET /fhir/AuditEvent');
          const s = parseSearch(queryPairs(req), SearchParameters.AuditEvent);
          const staffMay = r.kind === 'staff' && can({ role: r.staff.role }, 'audit.read');
          const patientCode = patientScope(r, patientOf(s), staffMay, 'access log');
          const visible = auditVisible(r);
          const rows = (
            perPatient('accessLog', patientCode, dateRange('date', s.params.get('date') ?? [])) as unknown as AccessLogEntry[]
          ).filter(visible);
          const ordered = byTime(
            rows,
            (e) => e.time,
            (e) => e.entryId,
            s.descending,
          );
          return send(reply, 200, searchBundle(`${baseOf(req)}/AuditEvent`, s, ordered.length, pageOf(ordered, s).map(auditEventOf)));
        },
      );
      scope.get('/AuditEvent/:id', { ...described, schema: read('AuditEvent') }, async (req, reply) => {
        const r = await authenticate(req, 'GET /fhir/AuditEvent/:id');
        noQuery(req);
        const e = store.get('accessLog', idParam(req)) as AccessLogEntry | undefined;
        if (e === undefined) throw new MedledgerError('NOT_FOUND');
        const own = r.kind === 'patient' && r.patient.patientCode === e.patientCode;
        if (!own && !(r.kind === 'staff' && can({ role: r.staff.role }, 'audit.read') && auditVisible(r)(e)))
          throw forbidden('An access log entry is its patient’s and their institutions’ auditors’.');
        return send(reply, 200, auditEventOf(e));
      });

      // ------------------------------------------------------------ Provenance
      scope.get(
        '/Provenance',
        {
          ...described,
          schema: search('Provenance', { patient: 'Patient/<patient code> or <patient code>', target: 'DocumentReference/<record id>' }),
        },
        async (req, reply) => {
          const r = await authenticate(req, 'GET /fhir/Provenance');
          const s = parseSearch(queryPairs(req), SearchParameters.Provenance);
          const targetValue = single(s, 'target');
          const target = targetValue === undefined ? undefined : referenceId('target', targetValue, 'DocumentReference');
          const asked = patientOf(s);
          let entries: RecordEntry[];
          if (target !== undefined) {
            const entry = HEX64.test(target) ? (store.get('records', target) as RecordEntry | undefined) : undefined;
            if (entry !== undefined) mayReadRecord(r, entry);
            entries = entry === undefined || (asked !== undefined && entry.patientCode !== asked) ? [] : [entry];
          } else {
            const patientCode = patientScope(r, asked, readsIndex(r), 'records');
            entries = perPatient('records', patientCode, null) as unknown as RecordEntry[];
          }
          const ordered = byTime(
            entries,
            (e) => e.registeredAt,
            (e) => e.recordId,
            s.descending,
          );
          return send(reply, 200, searchBundle(`${baseOf(req)}/Provenance`, s, ordered.length, pageOf(ordered, s).map(provenance)));
        },
      );
      scope.get('/Provenance/:id', { ...described, schema: read('Provenance') }, async (req, reply) => {
        const r = await authenticate(req, 'GET /fhir/Provenance/:id');
        noQuery(req);
        const entry = record(idParam(req));
        mayReadRecord(r, entry);
        return send(reply, 200, provenance(entry));
      });
      done();
    },
    { prefix: '/fhir' },
  );
}
