/** Small display helpers: times, ids, FHIR resource summaries. */
import type { JsonObject, JsonValue } from '@medledger/core/codec/canonical-json';

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function short(id: string | null | undefined, n = 10): string {
  if (id === null || id === undefined) return '—';
  return id.length > n ? `${id.slice(0, n)}…` : id;
}

function text(v: JsonValue | undefined): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v))
    return (
      v
        .map(text)
        .filter((t) => t !== null)
        .join(', ') || null
    );
  const o = v;
  if (typeof o['text'] === 'string') return o['text'];
  if (typeof o['display'] === 'string') return o['display'];
  if (Array.isArray(o['coding'])) return text(o['coding']);
  if (o['value'] !== undefined) return `${text(o['value']) ?? ''} ${text(o['unit']) ?? ''}`.trim();
  return null;
}

/** The lines a clinician reads first: what, status, value, when. */
export function summaryOf(r: JsonObject): [string, string][] {
  const rows: [string, string][] = [['Type', typeof r['resourceType'] === 'string' ? r['resourceType'] : '—']];
  const add = (label: string, v: JsonValue | undefined): void => {
    const t = text(v);
    if (t !== null && t !== '') rows.push([label, t]);
  };
  add('What', r['code']);
  add('Description', r['description']);
  add('Status', r['clinicalStatus'] ?? r['status']);
  add('Value', r['valueQuantity'] ?? r['valueString']);
  add('Medication', r['medicationCodeableConcept']);
  add('Recorded', r['recordedDate'] ?? r['effectiveDateTime'] ?? r['authoredOn'] ?? r['date']);
  return rows;
}
