/**
 * The diagnosis page (TMSMD figure 8): one record, fetched from its custodian, decrypted in this
 * browser and checked against the index hashes, with its ledger receipt verified here.
 */
import { useState } from 'react';
import type { JsonObject } from '@medledger/core/codec/canonical-json';
import type { RecordEntry } from '@medledger/core/contracts/state';
import type { Purpose } from '@medledger/core/policy/purposes';
import { checkTx, finalityOf, type CheckedTx } from '../ledger/proof.ts';
import { fileOf, openRecordHere, type OpenedRecord } from '../ledger/vault.ts';
import { useSession } from '../session.ts';
import { ErrorNotice } from '../ui/error-notice.tsx';
import { short, summaryOf, when } from '../ui/format.ts';
import { useAction, useLoad } from '../ui/use-async.ts';

function ProofPanel({ title, txId }: { title: string; txId: string }) {
  const proof = useLoad(() => checkTx(txId), [txId]);
  return (
    <section className="proof" aria-label={title}>
      <h3>{title}</h3>
      <ErrorNotice error={proof.error} />
      {proof.data === null ? <p>Checking the receipt…</p> : <ProofFacts checked={proof.data} />}
    </section>
  );
}

function ProofFacts({ checked }: { checked: CheckedTx }) {
  const s = checked.status;
  return (
    <>
      <p className={checked.verified ? 'verified' : 'unverified'} data-verified={checked.verified}>
        {checked.verified ? '✔ Verified in this browser' : `✘ Not verified: ${checked.problem ?? ''}`}
      </p>
      <dl className="facts">
        <dt>Transaction</dt>
        <dd className="mono">{s.txId}</dd>
        <dt>Block</dt>
        <dd>{s.height ?? '—'}</dd>
        <dt>Validity code</dt>
        <dd>{s.code ?? '—'}</dd>
        <dt>Finality</dt>
        <dd>{finalityOf(checked)}</dd>
        <dt>Merkle proof</dt>
        <dd>
          {s.receipt === undefined
            ? '—'
            : `${s.receipt.proof.length} hashes to the txRoot of a block of ${s.receipt.treeSize} transactions`}
        </dd>
        <dt>Block time</dt>
        <dd>{when(s.receipt?.header.time)}</dd>
      </dl>
    </>
  );
}

interface Attachment {
  index: number;
  title: string;
  contentType: string;
  sha256: string;
}

function attachmentsOf(resource: JsonObject): Attachment[] {
  const content = resource['content'];
  if (!Array.isArray(content)) return [];
  return content.flatMap((c, index): Attachment[] => {
    const a = (c as JsonObject)['attachment'] as JsonObject | undefined;
    const sha256 = (a?.['extension'] as JsonObject[] | undefined)?.map((x) => x['valueString']).find((v) => typeof v === 'string');
    if (a === undefined || sha256 === undefined) return [];
    const title = a['title'];
    const contentType = a['contentType'];
    return [
      {
        index,
        title: typeof title === 'string' ? title : `file ${index + 1}`,
        contentType: typeof contentType === 'string' ? contentType : 'application/octet-stream',
        sha256,
      },
    ];
  });
}

export function RecordView({ entry, asPatient, purpose }: { entry: RecordEntry; asPatient: boolean; purpose?: Purpose }) {
  // A patient reads their own records as "patient requested"; staff, for treatment unless told.
  const why: Purpose = purpose ?? (asPatient ? 'PATRQT' : 'TREAT');
  const session = useSession()!;
  const [opened, setOpened] = useState<OpenedRecord | null>(null);
  const open = useAction();
  const download = useAction();

  return (
    <article className="card record-view" aria-labelledby={`rec-${entry.recordId}`}>
      <h2 id={`rec-${entry.recordId}`}>
        {entry.category} <span className="meta">kept by {entry.custodian}</span>
      </h2>
      <dl className="facts">
        <dt>Record id</dt>
        <dd className="mono">{entry.recordId}</dd>
        <dt>State</dt>
        <dd>{entry.state}</dd>
        <dt>Registered</dt>
        <dd>
          {when(entry.registeredAt)} by {entry.author}
        </dd>
        <dt>Hash (SHA-256 of the plaintext)</dt>
        <dd className="mono">{short(entry.hash, 24)}</dd>
        <dt>Stored</dt>
        <dd>{entry.storage === 'vault' ? 'in the custodian’s vault' : 'on the chain'}</dd>
      </dl>
      {entry.storage === 'chain' && !asPatient && (
        <p className="notice">
          This record is kept on the chain (the TMSMD mode), sealed to the patient and to {entry.custodian} itself, not to its staff; the
          vault serves only records it keeps, so it opens for the patient alone.
        </p>
      )}
      <button
        type="button"
        hidden={entry.storage === 'chain' && !asPatient}
        disabled={open.busy}
        onClick={() =>
          void open.run(async () => {
            setOpened(null);
            const o = await openRecordHere(session.identity, entry, why, asPatient);
            setOpened(o);
            return 'Decrypted in this browser; its hash matches the ledger.';
          })
        }
      >
        {opened === null ? 'Open and decrypt' : 'Open again'}
      </button>
      {open.busy && <p role="status">Asking the custodian…</p>}
      <ErrorNotice error={open.error} />
      {opened !== null && (
        <section className="decrypted" aria-label="Decrypted record">
          <p role="status" className="notice ok" data-decrypted="true">
            {open.done}
          </p>
          <dl className="facts">
            {summaryOf(opened.resource).map(([k, v]) => (
              <div key={k} className="fact">
                <dt>{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
          {attachmentsOf(opened.resource).length > 0 && opened.fetched !== null && (
            <ul className="files" aria-label="Evidence files">
              {attachmentsOf(opened.resource).map((a) => (
                <li key={a.index}>
                  {a.title}{' '}
                  <button
                    type="button"
                    className="link"
                    onClick={() =>
                      void download.run(async () => {
                        const blob = await fileOf(session.identity, entry, opened.fetched!, a.index, a.sha256, a.contentType);
                        const url = URL.createObjectURL(blob);
                        const link = document.createElement('a');
                        link.href = url;
                        link.download = a.title;
                        link.click();
                        setTimeout(() => URL.revokeObjectURL(url), 10_000);
                        return `${a.title}: ${blob.size.toLocaleString()} bytes, checked against its SHA-256.`;
                      })
                    }
                  >
                    Download
                  </button>
                </li>
              ))}
            </ul>
          )}
          {download.done !== null && <p role="status">{download.done}</p>}
          <ErrorNotice error={download.error} />
          <details>
            <summary>FHIR resource</summary>
            <pre>{JSON.stringify(opened.resource, null, 2)}</pre>
          </details>
          {opened.accessTx !== null && <ProofPanel title="This access on the ledger" txId={opened.accessTx} />}
        </section>
      )}
      <ProofPanel title="Ledger proof of the registration" txId={entry.recordId} />
    </article>
  );
}
