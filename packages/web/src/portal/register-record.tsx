/**
 * The registration page (TMSMD figure 7): a doctor or operator registers a patient's record with
 * evidence files. The record is stored encrypted in the institution's vault, the files are
 * uploaded beside it, and the index entry is signed here and registered on the ledger. A record
 * of someone who is not the institution's own patient waits for the patient's consent first.
 */
import { useState } from 'react';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { RegistrationRequest } from '@medledger/core/contracts/state';
import { ATTACHMENT_SHA256_EXTENSION } from '@medledger/core/fhir/validate';
import { MedledgerError } from '@medledger/core/errors';
import { getJson, submitTx } from '../ledger/node-api.ts';
import { VaultClient, sha256Of, uploadFile, vaultUrlOf } from '../ledger/vault.ts';
import { useSession } from '../session.ts';
import { ErrorNotice } from '../ui/error-notice.tsx';
import { PATIENT_CODE, PatientCodeField } from '../ui/patient-code-field.tsx';
import { useAction } from '../ui/use-async.ts';
import { navigate } from '../ui/router.tsx';

export function RegisterRecord() {
  const session = useSession()!;
  const institution = session.owner?.staff?.institution ?? '';
  const [patientCode, setPatientCode] = useState('');
  const [diagnosis, setDiagnosis] = useState('');
  const [snomed, setSnomed] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const action = useAction();
  const [registered, setRegistered] = useState<string | null>(null);

  const checkCode = (): void => {
    if (!PATIENT_CODE.test(patientCode))
      throw new MedledgerError('BAD_REQUEST', { details: 'A patient code is 64 hexadecimal characters.' });
  };

  const register = async (): Promise<string> => {
    checkCode();
    if (diagnosis.trim() === '') throw new MedledgerError('BAD_REQUEST', { details: 'Write the diagnosis.' });
    const me = session.identity;
    const subject = { reference: `Patient/${patientCode.slice(0, 16)}` };
    const coding = snomed.trim() === '' ? [] : [{ system: 'http://snomed.info/sct', code: snomed.trim(), display: diagnosis.trim() }];
    const hashes = await Promise.all(files.map(sha256Of));
    const resource: JsonObject =
      files.length === 0
        ? {
            resourceType: 'Condition',
            clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
            code: { ...(coding.length > 0 ? { coding } : {}), text: diagnosis.trim() },
            subject,
            recordedDate: new Date().toISOString().slice(0, 10),
          }
        : {
            resourceType: 'DocumentReference',
            status: 'current',
            description: diagnosis.trim(),
            subject,
            date: new Date().toISOString(),
            content: files.map((f, i) => ({
              attachment: {
                contentType: f.type === '' ? 'application/octet-stream' : f.type,
                size: f.size,
                url: `attachment:${i}`,
                title: f.name,
                extension: [{ url: ATTACHMENT_SHA256_EXTENSION, valueString: hashes[i]! }],
              },
            })),
          };
    const category = resource['resourceType'] as string;
    // A consent the patient gave for this registration, if one waits (TMSMD: consent before the chain).
    const requests = await getJson<RegistrationRequest[]>(`/api/patients/${patientCode}/registration-requests`);
    const accepted = requests.find((r) => r.status === 'accepted' && r.custodian === institution && r.category === category);
    const vaultUrl = await vaultUrlOf(institution);
    const client = new VaultClient(me);
    const stored = await client.store(vaultUrl, institution, { patientCode, resource });
    for (const [i, f] of files.entries()) await uploadFile(me, vaultUrl, institution, stored.objectId, i, f);
    const { txId, height } = await submitTx(me, 'records.register', {
      patientCode,
      registrationRequestId: accepted?.requestId ?? null,
      ...stored.index,
    });
    setRegistered(txId);
    return `Registered in block ${height}: record ${txId.slice(0, 12)}…`;
  };

  const askConsent = async (): Promise<string> => {
    checkCode();
    const category = files.length === 0 ? 'Condition' : 'DocumentReference';
    const { height } = await submitTx(session.identity, 'consent.requestRegistration', {
      patientCode,
      category,
      purpose: 'TREAT',
      note: diagnosis.trim() === '' ? 'Registration of a new record' : `Registration of: ${diagnosis.trim().slice(0, 400)}`,
    });
    return `Asked the patient (block ${height}). Register once they accept.`;
  };

  return (
    <main id="main" className="page">
      <h1>Register a record</h1>
      <p className="lead">
        The record is encrypted for the patient and for {institution || 'your institution'}, kept in the vault, and indexed on the ledger
        with its hash. Your institution may register records of its own patients; for anyone else, ask the patient first.
      </p>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(register);
        }}
      >
        <PatientCodeField id="reg-patient" value={patientCode} onChange={setPatientCode} />
        <label htmlFor="reg-diagnosis">Diagnosis</label>
        <input id="reg-diagnosis" value={diagnosis} onChange={(e) => setDiagnosis(e.target.value)} required maxLength={400} />
        <label htmlFor="reg-snomed">SNOMED CT code (optional)</label>
        <input id="reg-snomed" value={snomed} onChange={(e) => setSnomed(e.target.value)} inputMode="numeric" pattern="[0-9]{6,18}" />
        <label htmlFor="reg-files">Evidence files (optional, up to 8, 20 MiB each)</label>
        <input id="reg-files" type="file" multiple onChange={(e) => setFiles([...(e.target.files ?? [])].slice(0, 8))} />
        {files.length > 0 && (
          <ul className="files">
            {files.map((f) => (
              <li key={f.name}>
                {f.name} <span className="meta">({f.size.toLocaleString()} bytes)</span>
              </li>
            ))}
          </ul>
        )}
        <div className="actions">
          <button type="submit" disabled={action.busy}>
            Register record
          </button>
          <button type="button" className="secondary" disabled={action.busy} onClick={() => void action.run(askConsent)}>
            Ask the patient first
          </button>
        </div>
      </form>
      {action.busy && (
        <p role="status" className="notice">
          Encrypting, storing and registering…
        </p>
      )}
      <ErrorNotice error={action.error} />
      {action.done !== null && (
        <p role="status" className="notice ok">
          {action.done}{' '}
          {registered !== null && (
            <button
              type="button"
              className="link"
              onClick={() => navigate(`/institution/records?patient=${patientCode}&record=${registered}`)}
            >
              Open it
            </button>
          )}
        </p>
      )}
    </main>
  );
}
