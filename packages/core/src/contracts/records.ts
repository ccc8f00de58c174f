/**
 * Records: the custodian registers an index entry (TMSMD figure 5 fields — state, patient code,
 * group key, hash length, hash — plus the consortium's custodian, category, ciphertext hash,
 * size, pointer and key envelopes); an amendment is a new version linked to the old, nothing is
 * rewritten; a retraction marks the entry. The plaintext never comes here.
 *
 * A hospital may register a record of its own patients (those whose home it is) without asking
 * (TMSMD §4.2: general hospitals may transfer patient information without consent); any other
 * registration needs the patient's accepted registration request.
 */
import { Type, type Static } from '@sinclair/typebox';
import { reject, type ContractInput, type Draft } from './context.ts';
import { groupId, parseGroupKeyId } from './groups.ts';
import { Category, Hex64, PatientCode, Text, TxRef } from './schemas.ts';
import type { GroupKey, Patient, RecordEntry, RegistrationRequest } from './state.ts';

/** On-chain ciphertext (storage "chain") is for small records only. */
export const MAX_CHAIN_CIPHERTEXT = 65536;
const B64 = '^[A-Za-z0-9_-]*$';

const RecordFields = {
  category: Category,
  groupKeyId: Type.Union([Type.String({ pattern: '^[a-z0-9:/.-]{1,96}$' }), Type.Null()]),
  hashAlg: Type.Literal('sha-256'),
  hashLength: Type.Literal(32),
  hash: Hex64,
  ciphertextHash: Hex64,
  size: Type.Integer({ minimum: 0, maximum: 2 ** 40 }),
  storage: Type.Union([Type.Literal('vault'), Type.Literal('chain')]),
  pointer: Type.Union([Type.String({ minLength: 1, maxLength: 512 }), Type.Null()]),
  ciphertext: Type.Union([Type.String({ pattern: B64, maxLength: Math.ceil((MAX_CHAIN_CIPHERTEXT * 4) / 3) }), Type.Null()]),
  keyEnvelopes: Type.Object(
    {
      patient: Type.String({ pattern: B64, maxLength: 1024 }),
      custodian: Type.String({ pattern: B64, maxLength: 1024 }),
      /** the data key wrapped under the group key named by `groupKeyId` (TMSMD group keys) */
      group: Type.Optional(Type.String({ pattern: B64, maxLength: 1024 })),
    },
    { additionalProperties: false },
  ),
};

export const RegisterBody = Type.Object(
  { patientCode: PatientCode, ...RecordFields, registrationRequestId: Type.Union([TxRef, Type.Null()]) },
  { additionalProperties: false },
);
export const AmendBody = Type.Object({ recordId: TxRef, ...RecordFields }, { additionalProperties: false });
export const RetractBody = Type.Object({ recordId: TxRef, reason: Text(500) }, { additionalProperties: false });
export const EraseBody = Type.Object({ recordId: TxRef }, { additionalProperties: false });

type Fields = Static<ReturnType<typeof Type.Object<typeof RecordFields>>>;

function checkStorage(body: Pick<Fields, 'storage' | 'pointer' | 'ciphertext'>): void {
  if (body.storage === 'vault' && body.pointer !== null && !body.pointer.startsWith('vault:')) {
    reject('TX_BODY_INVALID', 'A vault pointer has the form vault:<custodian>/<object id>.');
  }
  if (body.storage === 'vault' && (body.pointer === null || body.ciphertext !== null)) {
    reject('TX_BODY_INVALID', 'A vault record has a pointer and no ciphertext.');
  }
  if (body.storage === 'chain' && (body.ciphertext === null || body.pointer !== null)) {
    reject('TX_BODY_INVALID', 'An on-chain record has its ciphertext and no pointer.');
  }
}

function entryOf(
  input: ContractInput<Fields>,
  patientCode: string,
  extra: Pick<RecordEntry, 'version' | 'lineage' | 'supersedes' | 'registrationRequestId'>,
): RecordEntry {
  const { body, txId, ctx, principal } = input;
  return {
    recordId: txId,
    state: 'active',
    patientCode,
    groupKeyId: body.groupKeyId,
    hashAlg: body.hashAlg,
    hashLength: body.hashLength,
    hash: body.hash,
    custodian: principal.institution!.id,
    category: body.category,
    ciphertextHash: body.ciphertextHash,
    size: body.size,
    storage: body.storage,
    pointer: body.pointer,
    ciphertext: body.ciphertext,
    keyEnvelopes: body.keyEnvelopes,
    author: principal.staff!.staffId,
    registeredAt: ctx.time,
    height: ctx.height,
    supersededBy: null,
    ...extra,
  };
}

/** A record that names a group key names its custodian's group and that group's current epoch. */
function checkGroupKey(draft: Draft, body: Pick<Fields, 'groupKeyId' | 'keyEnvelopes'>, custodian: string): void {
  if (body.groupKeyId === null) {
    if (body.keyEnvelopes.group !== undefined) reject('TX_BODY_INVALID', 'A group envelope needs a groupKeyId.');
    return;
  }
  if (body.keyEnvelopes.group === undefined) reject('TX_BODY_INVALID', 'A groupKeyId needs a group envelope.');
  const ref = parseGroupKeyId(body.groupKeyId);
  if (ref === null || ref.institution !== custodian) reject('GROUP_EPOCH_STALE', 'The group key must be one of the custodian’s groups.');
  const group = draft.get<GroupKey>('groupKeys', groupId(ref.institution, ref.role));
  if (group === undefined || group.epoch !== ref.epoch || group.stale) reject('GROUP_EPOCH_STALE');
}

export function register(input: ContractInput<Static<typeof RegisterBody>>): void {
  const { draft, body, txId, principal } = input;
  checkStorage(body);
  checkGroupKey(draft, body, principal.institution!.id);
  const patient = draft.get<Patient>('patients', body.patientCode);
  if (patient === undefined) reject('PATIENT_UNKNOWN');
  const custodian = principal.institution!;
  let requestId: string | null = null;
  if (body.registrationRequestId !== null) {
    const request = draft.get<RegistrationRequest>('regRequests', body.registrationRequestId);
    if (request === undefined) reject('REQUEST_NOT_FOUND');
    if (request.patientCode !== body.patientCode || request.custodian !== custodian.id || request.category !== body.category) {
      reject('CONSENT_REQUIRED', 'The registration request is for another patient, custodian or category.');
    }
    if (request.status === 'pending') reject('CONSENT_PENDING');
    if (request.status === 'refused') reject('CONSENT_REFUSED');
    if (request.status === 'used') reject('REQUEST_CLOSED');
    draft.put('regRequests', request.requestId, { ...request, status: 'used', recordId: txId });
    requestId = request.requestId;
  } else if (!(custodian.kind === 'hospital' && patient.home === custodian.id)) {
    reject('CONSENT_REQUIRED', 'Registering for a patient of another institution needs their accepted request.');
  }
  const entry = entryOf(input, body.patientCode, { version: 1, lineage: txId, supersedes: null, registrationRequestId: requestId });
  draft.put('records', txId, entry);
  input.events.push({
    type: 'record.registered',
    patientCode: body.patientCode,
    data: { recordId: txId, custodian: entry.custodian, category: entry.category },
  });
}

export function amend(input: ContractInput<Static<typeof AmendBody>>): void {
  const { draft, body, txId, principal } = input;
  checkStorage(body);
  checkGroupKey(draft, body, principal.institution!.id);
  const old = draft.get<RecordEntry>('records', body.recordId);
  if (old === undefined) reject('RECORD_NOT_FOUND');
  if (old.custodian !== principal.institution!.id) reject('RECORD_NOT_CUSTODIAN');
  if (old.state === 'erased') reject('RECORD_ERASED');
  if (old.state !== 'active') reject('RECORD_RETRACTED');
  // The category is what consents and registration requests are about: an amendment keeps it.
  if (body.category !== old.category) reject('TX_BODY_INVALID', 'An amendment keeps the record’s category.');
  const entry = entryOf(input, old.patientCode, {
    version: old.version + 1,
    lineage: old.lineage,
    supersedes: old.recordId,
    registrationRequestId: old.registrationRequestId,
  });
  draft.put('records', old.recordId, { ...old, state: 'superseded', supersededBy: txId });
  draft.put('records', txId, entry);
  input.events.push({ type: 'record.amended', patientCode: old.patientCode, data: { recordId: txId, supersedes: old.recordId } });
}

export function retract(input: ContractInput<Static<typeof RetractBody>>): void {
  const { draft, body, principal } = input;
  const old = draft.get<RecordEntry>('records', body.recordId);
  if (old === undefined) reject('RECORD_NOT_FOUND');
  if (old.custodian !== principal.institution!.id) reject('RECORD_NOT_CUSTODIAN');
  if (old.state === 'erased') reject('RECORD_ERASED');
  if (old.state !== 'active') reject('RECORD_RETRACTED');
  draft.put('records', old.recordId, { ...old, state: 'retracted' });
  input.events.push({ type: 'record.retracted', patientCode: old.patientCode, data: { recordId: old.recordId } });
}

/**
 * Erasure, asked by the patient: every version of the record's lineage is marked erased and its
 * key envelopes and on-chain ciphertext leave the world state; the custodian's vault destroys
 * the data keys and ciphertext when it sees this (crypto-shredding). The index keeps the hashes,
 * and the chain's history is untouched, so the chain still verifies.
 */
export function erase(input: ContractInput<Static<typeof EraseBody>>): void {
  const { draft, body, txId, ctx, principal } = input;
  const named = draft.get<RecordEntry>('records', body.recordId);
  if (named === undefined) reject('RECORD_NOT_FOUND');
  if (principal.patient?.patientCode !== named.patientCode) reject('ROLE_FORBIDDEN', 'A patient erases only their own records.');
  if (named.state === 'erased') reject('RECORD_ERASED');
  let head = named;
  while (head.supersededBy !== null) head = draft.get<RecordEntry>('records', head.supersededBy)!;
  const erased: string[] = [];
  for (
    let r: RecordEntry | undefined = head;
    r !== undefined;
    r = r.supersedes === null ? undefined : draft.get<RecordEntry>('records', r.supersedes)
  ) {
    draft.put('records', r.recordId, { ...r, state: 'erased', ciphertext: null, keyEnvelopes: null, erasedAt: ctx.time, erasureTx: txId });
    erased.push(r.recordId);
  }
  input.events.push({
    type: 'record.erased',
    patientCode: named.patientCode,
    data: { recordIds: erased, custodian: named.custodian, erasureTx: txId },
  });
}
