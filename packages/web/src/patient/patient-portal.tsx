/**
 * The patient portal: requests waiting for an answer (to register a record, to read records),
 * active consents to narrow or revoke, the access history as a timeline, and the patient's own
 * records, opened with the keys in this browser, each erasable. It follows the ledger live.
 */
import { AcceptedResourceTypes } from '@medledger/core/fhir/validate';
import { CategoryChecklist } from '../ui/category-checklist.tsx';
import { useState } from 'react';
import type { AccessLogEntry, AccessRequest, Consent, RecordEntry, RegistrationRequest } from '@medledger/core/contracts/state';
import { Purposes, type Purpose } from '@medledger/core/policy/purposes';
import { getJson, submitTx } from '../ledger/node-api.ts';
import { useLedgerEvents } from '../ledger/events.ts';
import { useSession } from '../session.ts';
import { ErrorNotice } from '../ui/error-notice.tsx';
import { short, when } from '../ui/format.ts';
import { Link, usePath, useQuery, navigate } from '../ui/router.tsx';
import { useAction, useLoad } from '../ui/use-async.ts';
import { RecordList } from '../portal/patient-records.tsx';

function purposeText(p: string): string {
  return p in Purposes ? Purposes[p as Purpose] : p;
}

function granteeText(c: Consent): string {
  const g = c.grantee;
  switch (g.kind) {
    case 'institution':
      return `everyone at ${g.institution}`;
    case 'person':
      return g.staffId;
    case 'role':
      return `${g.role}s${g.institution === null ? '' : ` at ${g.institution}`}`;
    case 'study':
      return `the study ${g.studyId}`;
  }
}

function scopeText(s: Consent['scope']): string {
  return s.kind === 'all' ? 'all records' : s.kind === 'categories' ? s.categories.join(', ') : `${s.recordIds.length} record(s)`;
}

/** The two answers to a request; `answer(true)` for the first. Each is one transaction signed here. */
function Answer({ busy, yes, no, answer }: { busy: boolean; yes: string; no: string; answer: (yes: boolean) => void }) {
  return (
    <div className="actions">
      <button type="button" disabled={busy} onClick={() => answer(true)}>
        {yes}
      </button>
      <button type="button" className="danger" disabled={busy} onClick={() => answer(false)}>
        {no}
      </button>
    </div>
  );
}

function Requests({ code, tick }: { code: string; tick: number }) {
  const session = useSession()!;
  const action = useAction();
  const reg = useLoad(
    () => getJson<RegistrationRequest[]>(`/api/patients/${code}/registration-requests?limit=200`),
    [code, tick, action.done],
  );
  const acc = useLoad(() => getJson<AccessRequest[]>(`/api/patients/${code}/access-requests?limit=200`), [code, tick, action.done]);
  const pendingReg = (reg.data ?? []).filter((r) => r.status === 'pending');
  const pendingAcc = (acc.data ?? []).filter((r) => r.status === 'pending');
  return (
    <section aria-labelledby="req-h">
      <h2 id="req-h">Waiting for your answer</h2>
      <ErrorNotice error={action.error ?? reg.error ?? acc.error} />
      {action.done !== null && (
        <p role="status" className="notice ok">
          {action.done}
        </p>
      )}
      {pendingReg.length + pendingAcc.length === 0 && <p>Nothing is waiting for you.</p>}
      <ul className="cards">
        {pendingAcc.map((r) => (
          <li key={r.requestId} className="card request" data-request={r.requestId}>
            <h3>
              {r.requester} <span className="meta">at {r.institution}</span> asks to read {scopeText(r.scope)}
            </h3>
            <p>
              For {purposeText(r.purpose)}: “{r.reason}”
            </p>
            <p className="meta">Asked {when(r.createdAt)}</p>
            <Answer
              busy={action.busy}
              yes="Approve"
              no="Deny"
              answer={(approve) =>
                void action.run(async () => {
                  const { height } = await submitTx(session.identity, 'access.decide', {
                    requestId: r.requestId,
                    approve,
                    durationMs: null,
                  });
                  return `You ${approve ? 'approved' : 'denied'} ${r.requester} (block ${height}).`;
                })
              }
            />
          </li>
        ))}
        {pendingReg.map((r) => (
          <li key={r.requestId} className="card request" data-request={r.requestId}>
            <h3>
              {r.requester} <span className="meta">at {r.custodian}</span> asks to register a {r.category} record
            </h3>
            <p>For {purposeText(r.purpose)}.</p>
            <p className="meta">Asked {when(r.createdAt)}</p>
            <Answer
              busy={action.busy}
              yes="Accept"
              no="Refuse"
              answer={(accept) =>
                void action.run(async () => {
                  const { height } = await submitTx(session.identity, 'consent.answerRegistration', { requestId: r.requestId, accept });
                  return `You ${accept ? 'accepted' : 'refused'} the registration (block ${height}).`;
                })
              }
            />
          </li>
        ))}
      </ul>
    </section>
  );
}

function NarrowForm({ consent, onDone }: { consent: Consent; onDone: (m: string) => void }) {
  const session = useSession()!;
  const action = useAction();
  const current = consent.scope.kind === 'categories' ? consent.scope.categories : AcceptedResourceTypes;
  const [categories, setCategories] = useState<string[]>([...current]);
  const [until, setUntil] = useState(consent.period.to === null ? '' : new Date(consent.period.to).toISOString().slice(0, 10));
  return (
    <form
      className="narrow"
      onSubmit={(e) => {
        e.preventDefault();
        void action.run(async () => {
          const to =
            until === ''
              ? consent.period.to
              : Math.min(new Date(`${until}T23:59:59`).getTime(), consent.period.to ?? Number.MAX_SAFE_INTEGER);
          const scope = consent.scope.kind === 'records' ? consent.scope : { kind: 'categories', categories };
          const { height } = await submitTx(session.identity, 'consent.narrow', {
            consentId: consent.consentId,
            scope,
            purposes: consent.purposes,
            period: { from: consent.period.from, to },
            deidentification: consent.deidentification,
          });
          onDone(`Narrowed (block ${height}).`);
          return null;
        });
      }}
    >
      {consent.scope.kind !== 'records' && (
        <CategoryChecklist legend="Keep only these kinds of record" options={current} selected={categories} onChange={setCategories} />
      )}
      <label htmlFor={`until-${consent.consentId}`}>Ends on</label>
      <input id={`until-${consent.consentId}`} type="date" value={until} onChange={(e) => setUntil(e.target.value)} />
      <button type="submit" disabled={action.busy}>
        Save narrower consent
      </button>
      <ErrorNotice error={action.error} />
    </form>
  );
}

function Consents({ code, tick }: { code: string; tick: number }) {
  const session = useSession()!;
  const action = useAction();
  const [narrowing, setNarrowing] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const consents = useLoad(() => getJson<Consent[]>(`/api/patients/${code}/consents?limit=200`), [code, tick, action.done, note]);
  const active = (consents.data ?? []).filter((c) => c.status === 'active');
  const revoked = (consents.data ?? []).filter((c) => c.status === 'revoked');
  return (
    <section aria-labelledby="consents-h">
      <h2 id="consents-h">Your consents</h2>
      <ErrorNotice error={action.error ?? consents.error} />
      {(action.done ?? note) !== null && (
        <p role="status" className="notice ok">
          {action.done ?? note}
        </p>
      )}
      {active.length === 0 && <p>No active consents.</p>}
      <ul className="cards">
        {active.map((c) => (
          <li key={c.consentId} className="card consent" data-consent={c.consentId}>
            <h3>{granteeText(c)}</h3>
            <p>
              may read {scopeText(c.scope)} for {c.purposes.map(purposeText).join(', ')} ({c.deidentification})
            </p>
            <p className="meta">
              From {when(c.period.from)} {c.period.to === null ? 'with no end' : `until ${when(c.period.to)}`} ·{' '}
              {c.source === 'access-request' ? 'you approved a request' : c.source}
            </p>
            <div className="actions">
              <button
                type="button"
                className="secondary"
                onClick={() => setNarrowing(narrowing === c.consentId ? null : c.consentId)}
                aria-expanded={narrowing === c.consentId}
              >
                Narrow
              </button>
              <button
                type="button"
                className="danger"
                disabled={action.busy}
                onClick={() =>
                  void action.run(async () => {
                    const { height } = await submitTx(session.identity, 'consent.revoke', { consentId: c.consentId });
                    return `Revoked: ${granteeText(c)} can no longer read these records (block ${height}).`;
                  })
                }
              >
                Revoke
              </button>
            </div>
            {narrowing === c.consentId && (
              <NarrowForm
                consent={c}
                onDone={(m) => {
                  setNarrowing(null);
                  setNote(m);
                }}
              />
            )}
          </li>
        ))}
      </ul>
      {revoked.length > 0 && (
        <details>
          <summary>Revoked consents ({revoked.length})</summary>
          <ul>
            {revoked.map((c) => (
              <li key={c.consentId}>
                {granteeText(c)}: {scopeText(c.scope)} (revoked {when(c.updatedAt)})
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}

function History({ code, tick }: { code: string; tick: number }) {
  const log = useLoad(() => getJson<AccessLogEntry[]>(`/api/patients/${code}/access-log?limit=200`), [code, tick]);
  const records = useLoad(() => getJson<RecordEntry[]>(`/api/records?patientCode=${code}&limit=200`), [code, tick]);
  const category = (id: string | null): string =>
    id === null ? 'your records' : `${records.data?.find((r) => r.recordId === id)?.category ?? 'a'} record ${short(id, 8)}`;
  return (
    <section aria-labelledby="history-h">
      <h2 id="history-h">Who looked at your records</h2>
      <ErrorNotice error={log.error} />
      {log.data?.length === 0 && <p>No one has asked for your records yet.</p>}
      <ol className="timeline">
        {(log.data ?? []).map((e) => (
          <li key={e.entryId} className={`event ${e.outcome}`} data-outcome={e.outcome}>
            <time dateTime={new Date(e.time).toISOString()}>{when(e.time)}</time>
            <p>
              <strong>{e.actor}</strong> ({e.actorRole} at {e.institution}){' '}
              {e.outcome === 'served' ? 'was shown' : e.outcome === 'refused' ? 'was refused' : 'opened in an emergency'}{' '}
              {category(e.recordId)}
              {e.custodian !== null && <> kept by {e.custodian}</>}
            </p>
            <p className="meta">
              Why: {purposeText(e.purpose)}
              {e.reason !== null && <> — “{e.reason}”</>}
              {e.code !== null && <> · code {e.code}</>}
            </p>
          </li>
        ))}
      </ol>
    </section>
  );
}

function MyRecords({ code }: { code: string }) {
  const session = useSession()!;
  const selected = useQuery('record');
  const action = useAction();
  const records = useLoad(() => getJson<RecordEntry[]>(`/api/records?patientCode=${code}&limit=200`), [code, action.done]);
  const chosen = records.data?.find((r) => r.recordId === selected) ?? null;
  return (
    <section aria-labelledby="mine-h">
      <h2 id="mine-h">Your records</h2>
      <RecordList
        key={String(action.done)}
        patientCode={code}
        selected={selected}
        asPatient
        onSelect={(id) => navigate(`/patient/records?record=${id}`)}
      />
      {chosen !== null && chosen.state !== 'erased' && (
        <div className="card danger-zone">
          <h3>Erase this record</h3>
          <p>Its keys are destroyed at the custodian; the ledger keeps only its hash. This cannot be undone.</p>
          <button
            type="button"
            className="danger"
            disabled={action.busy}
            onClick={() =>
              void action.run(async () => {
                if (!window.confirm('Erase this record for good?')) return null;
                const { height } = await submitTx(session.identity, 'records.erase', { recordId: chosen.recordId });
                return `Erased (block ${height}).`;
              })
            }
          >
            Request erasure
          </button>
        </div>
      )}
      <ErrorNotice error={action.error} />
      {action.done !== null && (
        <p role="status" className="notice ok">
          {action.done}
        </p>
      )}
    </section>
  );
}

export function PatientPortal() {
  const session = useSession()!;
  const path = usePath();
  const [tick, setTick] = useState(0);
  const code = session.patientCode;
  useLedgerEvents({ ledger: () => setTick((t) => t + 1) }, code);
  if (code === null) {
    return (
      <main id="main" className="page">
        <h1>Not registered yet</h1>
        <p>
          The ledger does not know this key yet. Give its public keys (on the sign-in page) to your home hospital; once it registers you,
          sign in again.
        </p>
      </main>
    );
  }
  return (
    <main id="main" className="page patient">
      <h1>My health records</h1>
      <p className="meta">
        Patient code <span className="mono">{short(code, 16)}</span>
        {session.owner?.patient != null && <> · home institution {session.owner.patient.home}</>}
      </p>
      <nav aria-label="Patient portal" className="tabs">
        <Link to="/patient">Requests</Link>
        <Link to="/patient/consents">Consents</Link>
        <Link to="/patient/history">Access history</Link>
        <Link to="/patient/records">Records</Link>
      </nav>
      {path === '/patient' && <Requests code={code} tick={tick} />}
      {path === '/patient/consents' && <Consents code={code} tick={tick} />}
      {path === '/patient/history' && <History code={code} tick={tick} />}
      {path === '/patient/records' && <MyRecords code={code} />}
    </main>
  );
}
