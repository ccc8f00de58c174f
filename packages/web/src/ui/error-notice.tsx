/** Shows a failure as its stable code and a sentence a person understands. */
import { isMedledgerError } from '@medledger/core/errors';

export interface Shown {
  code: string;
  sentence: string;
  detail: string | null;
}

export function describeError(e: unknown): Shown {
  if (isMedledgerError(e)) {
    const rest =
      e.details === undefined ? null : e.details.startsWith(e.shortMessage) ? e.details.slice(e.shortMessage.length).trim() : e.details;
    return { code: e.code, sentence: e.shortMessage, detail: rest === null || rest === '' ? null : rest };
  }
  if (e instanceof TypeError) return { code: 'CLIENT_ERROR', sentence: 'This browser could not do that.', detail: e.message };
  return { code: 'INTERNAL', sentence: 'Something went wrong in the app.', detail: e instanceof Error ? e.message : null };
}

export function ErrorNotice({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const shown = describeError(error);
  return (
    <div className="notice error" role="alert" data-code={shown.code}>
      <strong className="code">{shown.code}</strong> <span>{shown.sentence}</span>
      {shown.detail !== null && <span className="detail"> {shown.detail}</span>}
    </div>
  );
}
