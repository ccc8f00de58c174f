/** FHIR search parameters: supported ones parsed, anything else refused (R4 §3.1.1). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_COUNT, MAX_COUNT, dateRange, pageQuery, parseSearch, referenceId, tokenCode } from './search.ts';

const SUPPORTED = { patient: 'reference', date: 'date', category: 'token' } as const;
const parse = (q: string) => parseSearch([...new URLSearchParams(q).entries()], SUPPORTED);
const refused = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ code: 'FHIR_SEARCH_UNSUPPORTED' }));

describe('parseSearch', () => {
  it('reads parameters, paging and sort', () => {
    const s = parse('patient=Patient/abc&date=ge2026&date=lt2027&_count=5&_offset=10&_sort=date');
    expect(s).toEqual({
      params: new Map([
        ['patient', ['Patient/abc']],
        ['date', ['ge2026', 'lt2027']],
      ]),
      count: 5,
      offset: 10,
      descending: false,
    });
    expect(parse('').count).toBe(DEFAULT_COUNT);
    expect(parse('_count=100000').count).toBe(MAX_COUNT);
    expect(parse('_sort=-date').descending).toBe(true);
  });
  it.each([
    'unknown=1',
    'patient:missing=true',
    'category:text=x',
    '_summary=count',
    '_elements=id',
    '_sort=patient',
    '_count=-1',
    '_count=ten',
    '_offset=20000',
    '_count=1&_count=2',
    'category=a,b',
    'patient=',
  ])('refuses %s', (q) => refused(() => parse(q)));
});

describe('tokens and references', () => {
  it('checks the system or type when given', () => {
    expect(tokenCode('category', 'Observation', 'http://s')).toBe('Observation');
    expect(tokenCode('category', 'http://s|Observation', 'http://s')).toBe('Observation');
    expect(tokenCode('category', '|Observation', 'http://s')).toBe('Observation');
    refused(() => tokenCode('category', 'http://other|Observation', 'http://s'));
    expect(referenceId('patient', 'Patient/x', 'Patient')).toBe('x');
    refused(() => referenceId('patient', 'Group/x', 'Patient'));
  });
});

describe('dateRange', () => {
  const d = (s: string) => Date.parse(s);
  it('gives each precision its whole interval', () => {
    expect(dateRange('date', ['2026'])).toEqual({ from: d('2026-01-01T00:00:00Z'), to: d('2027-01-01T00:00:00Z') });
    expect(dateRange('date', ['2026-02'])).toEqual({ from: d('2026-02-01T00:00:00Z'), to: d('2026-03-01T00:00:00Z') });
    expect(dateRange('date', ['eq2026-12-31'])).toEqual({ from: d('2026-12-31T00:00:00Z'), to: d('2027-01-01T00:00:00Z') });
    expect(dateRange('date', ['2026-11-01T10:00:00+02:00'])).toEqual({ from: d('2026-11-01T08:00:00Z'), to: d('2026-11-01T08:00:01Z') });
  });
  it('follows the prefixes and intersects repeats', () => {
    expect(dateRange('date', ['ge2026-11-01', 'lt2026-11-03'])).toEqual({ from: d('2026-11-01T00:00:00Z'), to: d('2026-11-03T00:00:00Z') });
    expect(dateRange('date', ['gt2026-11-01'])).toEqual({ from: d('2026-11-02T00:00:00Z') });
    expect(dateRange('date', ['le2026-11-01'])).toEqual({ to: d('2026-11-02T00:00:00Z') });
    expect(dateRange('date', [])).toEqual({});
  });
  it.each(['ne2026', 'sa2026', '2026-13', '2026-02-30', '2026-11-01T10:00', '26-11-01', 'today'])('refuses %s', (v) =>
    refused(() => dateRange('date', [v])),
  );
});

describe('pageQuery', () => {
  it('keeps the search and sets paging in a stable order', () => {
    expect(pageQuery(parse('patient=x&_count=2'), 4)).toBe('patient=x&_count=2&_offset=4&_sort=-date');
  });
});
