/**
 * FHIR R4 search parameters (http://hl7.org/fhir/R4/search.html) as the facade understands them:
 * each resource names the parameters it supports and their kind; anything else — an unknown
 * parameter, a modifier, a prefix or a value form it does not handle — is refused with
 * FHIR_SEARCH_UNSUPPORTED rather than ignored, so a search never answers wider than asked.
 * Paging is `_count` (bounded) and `_offset`; `_sort` is `date` or `-date`.
 */
import { MedledgerError } from '../errors.ts';

export type SearchParamKind = 'token' | 'reference' | 'date';

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 100;
/** Paging deeper than this needs a narrower search (a date range). */
export const MAX_OFFSET = 10_000;

export interface ParsedSearch {
  /** each supported parameter's values, in the order given (repeats AND together) */
  params: Map<string, string[]>;
  count: number;
  offset: number;
  /** newest first unless `_sort=date` */
  descending: boolean;
}

const unsupported = (details: string, name: string): MedledgerError =>
  new MedledgerError('FHIR_SEARCH_UNSUPPORTED', { details, payload: { parameter: name.slice(0, 64) } });

function integerOf(name: string, value: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(value)) throw unsupported(`${name} must be an integer.`, name);
  const n = Number(value);
  if (n < min || n > max) throw unsupported(`${name} must be between ${min} and ${max}.`, name);
  return n;
}

/**
 * Checks a query against the parameters a resource supports. `pairs` are the query's
 * (name, value) pairs in order, as URLSearchParams gives them.
 */
export function parseSearch(
  pairs: readonly (readonly [string, string])[],
  supported: Readonly<Record<string, SearchParamKind>>,
): ParsedSearch {
  const params = new Map<string, string[]>();
  const seen = new Set<string>();
  let count = DEFAULT_COUNT;
  let offset = 0;
  let descending = true;
  for (const [name, value] of pairs) {
    if (name.startsWith('_')) {
      if (seen.has(name)) throw unsupported(`${name} is given twice.`, name);
      seen.add(name);
      if (name === '_count') count = Math.min(integerOf(name, value, 0, Number.MAX_SAFE_INTEGER), MAX_COUNT);
      else if (name === '_offset') offset = integerOf(name, value, 0, MAX_OFFSET);
      else if (name === '_sort') {
        if (value !== 'date' && value !== '-date') throw unsupported('_sort is date or -date.', name);
        descending = value === '-date';
      } else throw unsupported(`${name} is not supported.`, name);
      continue;
    }
    if (!Object.hasOwn(supported, name)) {
      throw unsupported(
        name.includes(':') ? 'Search modifiers are not supported.' : `Supported parameters: ${Object.keys(supported).join(', ')}.`,
        name,
      );
    }
    if (value.length === 0) throw unsupported(`${name} needs a value.`, name);
    if (value.includes(',')) throw unsupported(`${name}: lists of values (a,b) are not supported.`, name);
    params.set(name, [...(params.get(name) ?? []), value]);
  }
  return { params, count, offset, descending };
}

/** The one value of a parameter that may be given once; undefined when absent. */
export function single(s: ParsedSearch, name: string): string | undefined {
  const values = s.params.get(name);
  if (values === undefined) return undefined;
  if (values.length > 1) throw unsupported(`${name} is given more than once.`, name);
  return values[0];
}

/** A token `[system|]code`: the code, after checking the system when one is given. */
export function tokenCode(name: string, value: string, system: string): string {
  const bar = value.indexOf('|');
  if (bar < 0) return value;
  const given = value.slice(0, bar);
  if (given !== '' && given !== system) throw unsupported(`${name}: the only system here is ${system}.`, name);
  return value.slice(bar + 1);
}

/** A reference `[Type/]id`: the id, after checking the type when one is given. */
export function referenceId(name: string, value: string, type: string): string {
  const slash = value.indexOf('/');
  if (slash < 0) return value;
  if (value.slice(0, slash) !== type || value.indexOf('/', slash + 1) >= 0)
    throw unsupported(`${name} references a ${type} (${type}/<id>).`, name);
  return value.slice(slash + 1);
}

const DATE = /^(ge|gt|le|lt|eq)?(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/**
 * The half-open interval [from, to) of times (ms) that every `date` value given admits.
 * A value stands for the whole interval of its precision (2026-11 is all of November, UTC when no
 * zone is given); prefixes eq (default), ge, gt, le, lt follow FHIR R4 §3.1.1.4.4.2.
 */
export function dateRange(name: string, values: readonly string[]): { from?: number; to?: number } {
  let from: number | undefined;
  let to: number | undefined;
  const atLeast = (ms: number): void => {
    from = from === undefined ? ms : Math.max(from, ms);
  };
  const below = (ms: number): void => {
    to = to === undefined ? ms : Math.min(to, ms);
  };
  for (const value of values) {
    const m = DATE.exec(value);
    if (m === null) throw unsupported(`${name} must be [ge|gt|le|lt|eq]YYYY[-MM[-DD[Thh:mm[:ss[.sss]](Z|±hh:mm)]]].`, name);
    const [, prefix = 'eq', y, mo, d, h, mi, s, frac, zone] = m;
    const year = Number(y);
    const month = mo === undefined ? 1 : Number(mo);
    const day = d === undefined ? 1 : Number(d);
    if (month < 1 || month > 12 || day < 1 || day > 31) throw unsupported(`${name} is not a valid date.`, name);
    let start: number;
    let end: number;
    if (h === undefined) {
      start = Date.UTC(year, month - 1, day);
      end = mo === undefined ? Date.UTC(year + 1, 0, 1) : d === undefined ? Date.UTC(year, month, 1) : Date.UTC(year, month - 1, day + 1);
      if (new Date(start).getUTCDate() !== day) throw unsupported(`${name} is not a valid date.`, name);
    } else {
      const ms = frac === undefined ? 0 : Number(frac.padEnd(3, '0'));
      const offsetMin =
        zone === 'Z' || zone === undefined ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4)));
      start = Date.UTC(year, month - 1, day, Number(h), Number(mi), s === undefined ? 0 : Number(s), ms) - offsetMin * 60_000;
      end = start + (s === undefined ? 60_000 : frac === undefined ? 1000 : 1);
    }
    switch (prefix) {
      case 'eq':
        atLeast(start);
        below(end);
        break;
      case 'ge':
        atLeast(start);
        break;
      case 'gt':
        atLeast(end);
        break;
      case 'le':
        below(end);
        break;
      case 'lt':
        below(start);
        break;
    }
  }
  return { ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) };
}

/** The query string of a page of this search: its own parameters, then paging, in a stable order. */
export function pageQuery(s: ParsedSearch, offset: number): string {
  const q = new URLSearchParams();
  for (const [name, values] of s.params) for (const v of values) q.append(name, v);
  q.set('_count', String(s.count));
  q.set('_offset', String(offset));
  q.set('_sort', s.descending ? '-date' : 'date');
  return q.toString();
}
