/** A patient's records in the index, searched by patient code; one opens in the record view. */
import { useState } from 'react';
import type { RecordEntry } from '@medledger/core/contracts/state';
import { getJson } from '../ledger/node-api.ts';
import { ErrorNotice } from '../ui/error-notice.tsx';
import { short, when } from '../ui/format.ts';
import { PATIENT_CODE, PatientCodeField } from '../ui/patient-code-field.tsx';
import { navigate, useQuery } from '../ui/router.tsx';
import { useLoad } from '../ui/use-async.ts';
import { RecordView } from './record-view.tsx';

export function RecordList({
  patientCode,
  selected,
  onSelect,
  asPatient,
}: {
  patientCode: string;
  selected: string | null;
  onSelect: (id: string) => void;
  asPatient: boolean;
}) {
  const records = useLoad(() => getJson<RecordEntry[]>(`/api/records?patientCode=${patientCode}&limit=200`), [patientCode]);
  const chosen = records.data?.find((r) => r.recordId === selected) ?? null;
  return (
    <>
      <ErrorNotice error={records.error} />
      {records.data !== null && records.data.length === 0 && <p>No records are indexed for this patient.</p>}
      {records.data !== null && records.data.length > 0 && (
        <div className="table-wrap">
          <table className="stack-on-phone">
            <caption>Records in the index ({records.data.length})</caption>
            <thead>
              <tr>
                <th scope="col">Category</th>
                <th scope="col">Custodian</th>
                <th scope="col">Registered</th>
                <th scope="col">State</th>
                <th scope="col">Record</th>
              </tr>
            </thead>
            <tbody>
              {records.data.map((r) => (
                <tr key={r.recordId} aria-selected={r.recordId === selected}>
                  <td data-label="Category">{r.category}</td>
                  <td data-label="Custodian">{r.custodian}</td>
                  <td data-label="Registered">{when(r.registeredAt)}</td>
                  <td data-label="State">{r.state}</td>
                  <td data-label="Record">
                    <button
                      type="button"
                      className="link"
                      onClick={() => onSelect(r.recordId)}
                      aria-label={`View ${r.category} record ${short(r.recordId, 8)}`}
                    >
                      View <span className="mono">{short(r.recordId, 8)}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {chosen !== null && <RecordView key={chosen.recordId} entry={chosen} asPatient={asPatient} />}
    </>
  );
}

export function PatientRecords() {
  const fromUrl = useQuery('patient') ?? '';
  const selected = useQuery('record');
  const [code, setCode] = useState(fromUrl);
  const valid = PATIENT_CODE.test(fromUrl);
  return (
    <main id="main" className="page">
      <h1>Patient records</h1>
      <form
        className="card search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/institution/records?patient=${code}`);
        }}
      >
        <PatientCodeField id="records-patient" value={code} onChange={setCode} />
        <button type="submit">Search</button>
      </form>
      {valid && (
        <RecordList
          patientCode={fromUrl}
          selected={selected}
          asPatient={false}
          onSelect={(id) => navigate(`/institution/records?patient=${fromUrl}&record=${id}`)}
        />
      )}
    </main>
  );
}
