/** FHIR R4 searchset Bundles with `total` and self / next / previous links (R4 §3.1.1.5, paging). */
import type { Bundle, BundleLink, Resource } from '@medplum/fhirtypes';
import { pageQuery, type ParsedSearch } from './search.ts';

/**
 * One page of a search: `resources` are the page's matches, `total` all matches, `searchUrl` the
 * absolute URL of the search without its query (e.g. https://node/fhir/DocumentReference).
 */
export function searchBundle(searchUrl: string, s: ParsedSearch, total: number, resources: readonly Resource[]): Bundle {
  const link: BundleLink[] = [{ relation: 'self', url: `${searchUrl}?${pageQuery(s, s.offset)}` }];
  if (s.count > 0 && s.offset + s.count < total) link.push({ relation: 'next', url: `${searchUrl}?${pageQuery(s, s.offset + s.count)}` });
  if (s.offset > 0 && s.count > 0)
    link.push({ relation: 'previous', url: `${searchUrl}?${pageQuery(s, Math.max(0, s.offset - s.count))}` });
  const base = searchUrl.slice(0, searchUrl.lastIndexOf('/'));
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    link,
    entry: resources.map((resource) => ({
      fullUrl: `${base}/${resource.resourceType}/${resource.id ?? ''}`,
      resource,
      search: { mode: 'match' },
    })),
  };
}
