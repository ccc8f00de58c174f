/**
 * The network view: member institutions and which of them validate, the node's height and last
 * final block, recent blocks and the transactions of the newest, live through the event stream.
 */
import { useState } from 'react';
import type { Member } from '@medledger/core/contracts/state';
import type { Tx } from '@medledger/core/ledger/tx';
import { getJson, type Health } from '../ledger/node-api.ts';
import type { BlockSummary } from '../ledger/ledger-types.ts';
import { useLedgerEvents } from '../ledger/events.ts';
import { ErrorNotice } from '../ui/error-notice.tsx';
import { short, when } from '../ui/format.ts';
import { useLoad } from '../ui/use-async.ts';

interface BlockDetail {
  hash: string;
  header: { height: number; time: number };
  txs: { txId: string; code: string; tx: Tx }[];
}

export function NetworkView() {
  const [tick, setTick] = useState(0);
  const [live, setLive] = useState<string>('connecting…');
  useLedgerEvents({
    block: (b) => {
      setLive(`block ${b.height} at ${new Date(b.time).toLocaleTimeString()}`);
      setTick((t) => t + 1);
    },
    final: () => setTick((t) => t + 1),
  });
  const health = useLoad(() => getJson<Health>('/api/health'), [tick]);
  const members = useLoad(() => getJson<Member[]>('/api/members'), [tick]);
  const blocks = useLoad(() => getJson<BlockSummary[]>('/api/blocks?limit=12'), [tick]);
  const newest = blocks.data?.find((b) => b.txCount > 0)?.height ?? null;
  const detail = useLoad(() => (newest === null ? Promise.resolve(null) : getJson<BlockDetail>(`/api/blocks/${newest}`)), [newest]);
  const h = health.data;

  return (
    <main id="main" className="page">
      <h1>Network</h1>
      <ErrorNotice error={health.error ?? members.error ?? blocks.error} />
      {h !== null && h.status !== 'ok' && (
        <div className="notice error" role="alert" data-code={h.status}>
          <strong className="code">{h.status}</strong>{' '}
          {h.status === 'DIVERGENCE'
            ? 'A quorum of validators certified a different block than this node: it has stopped committing until an operator looks.'
            : 'This node has stopped applying blocks; its operator must look at its log.'}
          {h.dissentingValidators.length > 0 && <> Validators that signed something else: {h.dissentingValidators.join(', ')}.</>}
        </div>
      )}
      <section aria-labelledby="status-h" className="card">
        <h2 id="status-h">This node</h2>
        <dl className="facts">
          <dt>Status</dt>
          <dd data-status={h?.status}>{h?.status ?? '…'}</dd>
          <dt>Height</dt>
          <dd data-height={h?.height}>{h?.height ?? '…'}</dd>
          <dt>Last final block</dt>
          <dd>
            {h === null ? '…' : h.finalHeight === null ? `${h.height} (${h.ordering} ordering: final once committed)` : h.finalHeight}
          </dd>
          <dt>Ordering</dt>
          <dd>{h?.ordering ?? '…'}</dd>
          <dt>Head</dt>
          <dd className="mono">{short(h?.headHash, 20)}</dd>
          <dt>Live</dt>
          <dd aria-live="polite">{live}</dd>
        </dl>
      </section>
      <section aria-labelledby="members-h">
        <h2 id="members-h">Institutions</h2>
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Institution</th>
                <th scope="col">Kind</th>
                <th scope="col">Validator</th>
                <th scope="col">Status</th>
                <th scope="col">Joined at block</th>
              </tr>
            </thead>
            <tbody>
              {(members.data ?? []).map((m) => (
                <tr key={m.id}>
                  <td>
                    {m.name} <span className="meta">({m.id})</span>
                  </td>
                  <td>{m.kind}</td>
                  <td>{m.validator ? 'yes' : 'no'}</td>
                  <td>{m.status}</td>
                  <td>{m.admittedAtHeight}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="blocks-h">
        <h2 id="blocks-h">Recent blocks</h2>
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Height</th>
                <th scope="col">Hash</th>
                <th scope="col">Time</th>
                <th scope="col">Transactions</th>
              </tr>
            </thead>
            <tbody>
              {(blocks.data ?? []).map((b) => (
                <tr key={b.height}>
                  <td>{b.height}</td>
                  <td className="mono">{short(b.hash, 16)}</td>
                  <td>{when(b.header.time)}</td>
                  <td>{b.txCount}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      {detail.data !== null && (
        <section aria-labelledby="txs-h">
          <h2 id="txs-h">Transactions in block {detail.data.header.height}</h2>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Transaction</th>
                  <th scope="col">Type</th>
                  <th scope="col">Author key</th>
                  <th scope="col">Validity code</th>
                </tr>
              </thead>
              <tbody>
                {detail.data.txs.map((t) => (
                  <tr key={t.txId}>
                    <td className="mono">{short(t.txId, 12)}</td>
                    <td>{t.tx.type}</td>
                    <td className="mono">{short(t.tx.author, 12)}</td>
                    <td className={t.code === 'OK' ? 'ok' : 'refused'}>{t.code}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </main>
  );
}
