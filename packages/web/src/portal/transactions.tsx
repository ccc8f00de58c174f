/**
 * The transaction page (TMSMD figure 9), searchable by a patient's code: every transaction the
 * ledger links to the patient (records, consents, requests, accesses), each with its block,
 * validity code and finality, its receipt checked in this browser.
 */
import { useState } from 'react';
import type { AccessLogEntry, AccessRequest, Consent, RecordEntry, RegistrationRequest } from '@medledger/core/contracts/state';
import { getJson } from '../ledger/node-api.ts';
import { checkTx, finalityOf, type CheckedTx } from '../ledger/proof.ts';
import { ErrorNotice } from '../ui/error-notice.tsx';
import { short, when } from '../ui/format.ts';
import { PATIENT_CODE, PatientCodeField } from '../ui/patient-code-field.tsx';
import { navigate, useQuery } from '../ui/router.tsx';
import { useLoad } from '../ui/use-async.ts';

const RECENT_BLOCKS = 100;

async function patientTransactions(code: string): Promise<CheckedTx[]> {
  const [records, consents, log, access, registration] = await Promise.all([
    getJson<RecordEntry[]>(`/api/records?patientCode=${code}&limit=200`),
    getJson<Consent[]>(`/api/patients/${code}/consents?limit=200`),
    getJson<AccessLogEntry[]>(`/api/patients/${code}/access-log?limit=200`),
    getJson<AccessRequest[]>(`/api/patients/${code}/access-requests?limit=200`),
    getJson<RegistrationRequest[]>(`/api/patients/${code}/registration-requests?limit=200`),
  ]);
  const ids = new Set<string>([
    ...records.map((r) => r.recordId),
    ...consents.flatMap((c) => [c.consentId, ...(c.requestId === null ? [] : [c.requestId])]),
    ...log.map((e) => e.entryId),
    ...access.flatMap((r) => [r.requestId, ...(r.consentId === null ? [] : [r.consentId])]),
    ...registration.map((r) => r.requestId),
  ]);
  // Revocations and narrowings name only the consent; the state keeps no row for them, so the
  // recent blocks are read for transactions that name one of this patient's objects.
  const recent = await getJson<{ height: number; txCount: number }[]>(`/api/blocks?limit=${RECENT_BLOCKS}`);
  const blocks = await Promise.all(
    recent
      .filter((b) => b.txCount > 0)
      .map((b) => getJson<{ txs: { txId: string; tx: { body: Record<string, unknown> } }[] }>(`/api/blocks/${b.height}`)),
  );
  for (const b of blocks) {
    for (const { txId, tx } of b.txs) {
      const body = tx.body;
      const names = [body['patientCode'], body['consentId'], body['requestId'], body['recordId']];
      if (names.some((n) => typeof n === 'string' && (n === code || ids.has(n)))) ids.add(txId);
    }
  }
  const checked = await Promise.all([...ids].filter((id) => /^[0-9a-f]{64}$/.test(id)).map((id) => checkTx(id).catch(() => null)));
  return checked.filter((c): c is CheckedTx => c !== null).sort((a, b) => (b.status.height ?? 0) - (a.status.height ?? 0));
}

export function TransactionTable({ patientCode }: { patientCode: string }) {
  const txs = useLoad(() => patientTransactions(patientCode), [patientCode]);
  return (
    <>
      <ErrorNotice error={txs.error} />
      {txs.data === null && txs.error === null && <p role="status">Looking up the ledger…</p>}
      {txs.data !== null && (
        <div className="table-wrap">
          <table>
            <caption>Transactions for this patient ({txs.data.length})</caption>
            <thead>
              <tr>
                <th scope="col">Transaction</th>
                <th scope="col">Type</th>
                <th scope="col">Block</th>
                <th scope="col">Time</th>
                <th scope="col">Validity code</th>
                <th scope="col">Finality</th>
                <th scope="col">Proof</th>
              </tr>
            </thead>
            <tbody>
              {txs.data.map((t) => (
                <tr key={t.status.txId}>
                  <td className="mono" title={t.status.txId}>
                    {short(t.status.txId, 12)}
                  </td>
                  <td>{t.status.receipt?.tx.type ?? '—'}</td>
                  <td>{t.status.height ?? '—'}</td>
                  <td>{when(t.status.receipt?.header.time)}</td>
                  <td className={t.status.code === 'OK' ? 'ok' : 'refused'}>{t.status.code ?? '—'}</td>
                  <td>{finalityOf(t)}</td>
                  <td>{t.verified ? '✔ verified' : `✘ ${t.problem ?? ''}`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export function Transactions() {
  const fromUrl = useQuery('patient') ?? '';
  const [code, setCode] = useState(fromUrl);
  return (
    <main id="main" className="page">
      <h1>Transactions</h1>
      <form
        className="card search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/institution/transactions?patient=${code}`);
        }}
      >
        <PatientCodeField id="tx-patient" value={code} onChange={setCode} />
        <button type="submit">Search</button>
      </form>
      {PATIENT_CODE.test(fromUrl) && <TransactionTable patientCode={fromUrl} />}
    </main>
  );
}
