/** Asking a patient for access to records another custodian keeps, and following the answer. */
import { AcceptedResourceTypes } from '@medledger/core/fhir/validate';
import { CategoryChecklist } from '../ui/category-checklist.tsx';
import { useState } from 'react';
import type { AccessRequest } from '@medledger/core/contracts/state';
import { Purposes, type Purpose } from '@medledger/core/policy/purposes';
import { MedledgerError } from '@medledger/core/errors';
import { getJson, submitTx } from '../ledger/node-api.ts';
import { useSession } from '../session.ts';
import { ErrorNotice } from '../ui/error-notice.tsx';
import { short, when } from '../ui/format.ts';
import { PATIENT_CODE, PatientCodeField } from '../ui/patient-code-field.tsx';
import { navigate, useQuery } from '../ui/router.tsx';
import { useAction, useLoad } from '../ui/use-async.ts';

const CARE_PURPOSES: Purpose[] = ['TREAT', 'ETREAT', 'CAREMGT', 'HOPERAT', 'PATRQT'];

export function AccessRequests() {
  const session = useSession()!;
  const me = session.owner?.staff?.staffId ?? '';
  const fromUrl = useQuery('patient') ?? '';
  const [code, setCode] = useState(fromUrl);
  const [purpose, setPurpose] = useState<Purpose>('TREAT');
  const [reason, setReason] = useState('');
  const [categories, setCategories] = useState<string[]>([]);
  const action = useAction();
  const requests = useLoad(
    () =>
      PATIENT_CODE.test(fromUrl) ? getJson<AccessRequest[]>(`/api/patients/${fromUrl}/access-requests?limit=200`) : Promise.resolve([]),
    [fromUrl, action.done],
  );
  const mine = (requests.data ?? []).filter((r) => r.requester === me);

  return (
    <main id="main" className="page">
      <h1>Request access</h1>
      <p className="lead">Ask the patient for their records kept by other institutions. The patient approves or denies in their portal.</p>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            if (!PATIENT_CODE.test(code))
              throw new MedledgerError('BAD_REQUEST', { details: 'A patient code is 64 hexadecimal characters.' });
            if (reason.trim() === '') throw new MedledgerError('BAD_REQUEST', { details: 'Say why you need the records.' });
            const { height } = await submitTx(session.identity, 'access.request', {
              patientCode: code,
              scope: categories.length === 0 ? { kind: 'all' } : { kind: 'categories', categories },
              purpose,
              deidentification: 'identified',
              reason: reason.trim(),
            });
            navigate(`/institution/access?patient=${code}`);
            return `Request sent (block ${height}). The patient decides.`;
          });
        }}
      >
        <PatientCodeField id="acc-patient" value={code} onChange={setCode} />
        <label htmlFor="acc-purpose">Purpose</label>
        <select id="acc-purpose" value={purpose} onChange={(e) => setPurpose(e.target.value as Purpose)}>
          {CARE_PURPOSES.map((p) => (
            <option key={p} value={p}>
              {Purposes[p]} ({p})
            </option>
          ))}
        </select>
        <CategoryChecklist
          legend="Which records (none ticked: all)"
          options={AcceptedResourceTypes}
          selected={categories}
          onChange={setCategories}
        />
        <label htmlFor="acc-reason">Reason (the patient reads this)</label>
        <input id="acc-reason" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} required />
        <button type="submit" disabled={action.busy}>
          Send request
        </button>
      </form>
      <ErrorNotice error={action.error ?? requests.error} />
      {action.done !== null && (
        <p role="status" className="notice ok">
          {action.done}
        </p>
      )}
      {PATIENT_CODE.test(fromUrl) && (
        <div className="table-wrap">
          <table>
            <caption>Your requests to this patient ({mine.length})</caption>
            <thead>
              <tr>
                <th scope="col">Asked</th>
                <th scope="col">Purpose</th>
                <th scope="col">Reason</th>
                <th scope="col">State</th>
                <th scope="col">Decided</th>
              </tr>
            </thead>
            <tbody>
              {mine.map((r) => (
                <tr key={r.requestId} data-request={r.requestId}>
                  <td>{when(r.createdAt)}</td>
                  <td>{r.purpose}</td>
                  <td>{r.reason}</td>
                  <td className={`state-${r.status}`}>{r.status}</td>
                  <td>{r.decidedAt === null ? '—' : when(r.decidedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {mine.some((r) => r.status === 'approved') && (
            <p>
              Approved: open the records from{' '}
              <a
                href={`/institution/records?patient=${fromUrl}`}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(`/institution/records?patient=${fromUrl}`);
                }}
              >
                the patient’s record list
              </a>
              . Request id {short(mine[0]?.requestId)}.
            </p>
          )}
        </div>
      )}
    </main>
  );
}
