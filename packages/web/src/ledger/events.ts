/** The node's server-sent events (`block`, `ledger`, `final`), as a React hook. */
import { useEffect, useRef } from 'react';

export interface BlockEvent {
  height: number;
  hash: string;
  time: number;
  txCount: number;
  rejected: number;
}

export interface LedgerEvent {
  height: number;
  txId: string;
  type: string;
  patientCode: string | null;
}

export function useLedgerEvents(
  handlers: { block?: (e: BlockEvent) => void; ledger?: (e: LedgerEvent) => void; final?: (e: { height: number }) => void },
  patientCode: string | null = null,
): void {
  const latest = useRef(handlers);
  useEffect(() => {
    latest.current = handlers;
  });
  useEffect(() => {
    const source = new EventSource(patientCode === null ? '/api/events' : `/api/events?patientCode=${patientCode}`);
    const on = (name: 'block' | 'ledger' | 'final') => (m: MessageEvent<string>) => {
      const data = JSON.parse(m.data) as never;
      latest.current[name]?.(data);
    };
    const listeners = (['block', 'ledger', 'final'] as const).map((name) => [name, on(name)] as const);
    for (const [name, fn] of listeners) source.addEventListener(name, fn);
    return () => source.close();
  }, [patientCode]);
}
