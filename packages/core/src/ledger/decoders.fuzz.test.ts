/**
 * Fuzzing the decoders (issue 9): random and mutated inputs to every function that takes bytes or
 * JSON from outside — transaction envelopes, transaction bodies executed in blocks, receipts,
 * genesis documents, Content-Digest headers, signed HTTP requests, FHIR resources, study queries,
 * masked vectors and seeds, de-identification — must end in a coded MedledgerError (or a valid
 * answer), never another exception; a rejected transaction must leave the state as it was.
 * Mutations start from valid inputs, so the fuzzers reach past the first check.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMedledgerError, isErrorCode } from '../errors.ts';
import type { JsonObject, JsonValue } from '../codec/canonical-json.ts';
import { createCast, recordBody, type Cast } from './test-network.test-fixture.ts';
import { decodeTx, txIdOf } from './tx.ts';
import { buildReceipt, verifyReceipt, type Receipt } from './receipt.ts';
import { checkGenesis } from './genesis.ts';
import type { TxType } from './tx-types.ts';
import { contentDigest, parseContentDigest } from '../http/content-digest.ts';
import { signRequest, verifyRequest } from '../http/message-signatures.ts';
import { generateSigningKey } from '../crypto/ed25519.ts';
import { validateResource } from '../fhir/validate.ts';
import { checkQuery } from '../research/study-query.ts';
import { decodeSeeds, decodeVector } from '../research/secure-aggregation.ts';
import { deidentify } from '../research/deidentify.ts';
import { utf8 } from '../codec/bytes.ts';

/** Runs `f`; passes when it answers or throws a coded MedledgerError, fails on anything else. */
async function coded(f: () => unknown): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!isMedledgerError(e)) throw new Error(`uncoded ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
    expect(isErrorCode(e.code)).toBe(true);
  }
}

type Path = (string | number)[];

function paths(v: JsonValue, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/** A copy of `v` with the value at `path` replaced (or deleted when `replacement` is undefined). */
function setAt(v: JsonValue, path: Path, replacement: JsonValue | undefined): JsonValue | undefined {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(v)) {
    // JSON arrays have no named keys and no holes: a key that is not an index leaves it as it is.
    if (typeof head !== 'number' || head > v.length) return v;
    const copy = [...v];
    const next = setAt(copy[head]!, rest, replacement);
    if (next === undefined) copy.splice(head, 1);
    else copy[head] = next;
    return copy;
  }
  // A key added under a primitive turns it into an object holding that key.
  const obj: JsonObject = v !== null && typeof v === 'object' ? v : {};
  const next = setAt(obj[head as string]!, rest, replacement);
  const entries: [string, JsonValue | undefined][] = Object.entries(obj).map(([k, x]) => [k, k === head ? next : x]);
  if (!Object.hasOwn(obj, head as string)) entries.push([head as string, next]);
  return Object.fromEntries(entries.filter((e): e is [string, JsonValue] => e[1] !== undefined));
}

const junk: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>,
  fc.constantFrom<JsonValue>('', 'x'.repeat(300), -1, 0, 2 ** 53, 1e308, -0.5, true, null, [], {}, '0'.repeat(64), 'A'.repeat(86)),
);

/** Mutations of a valid JSON value: one element replaced, deleted, or given a stray key; or a string flipped. */
function mutations(valid: JsonValue): fc.Arbitrary<JsonValue> {
  const all = paths(valid);
  return fc.oneof(
    fc.tuple(fc.nat(all.length - 1), junk).map(([i, j]) => setAt(valid, all[i]!, j) ?? null),
    fc.nat(all.length - 1).map((i) => setAt(valid, all[i]!, undefined) ?? null),
    fc.tuple(fc.nat(all.length - 1), fc.string({ maxLength: 8 }), junk).map(([i, k, j]) => {
      const target = all[i]!;
      return setAt(valid, [...target, k], j) ?? null;
    }),
    fc.tuple(fc.nat(all.length - 1), fc.nat(64), fc.string({ minLength: 1, maxLength: 1 })).map(([i, pos, ch]) => {
      const target = all[i]!;
      let cur: JsonValue = valid;
      for (const k of target) cur = (cur as Record<string | number, JsonValue>)[k]!;
      if (typeof cur !== 'string' || cur.length === 0) return valid;
      const p = pos % cur.length;
      return setAt(valid, target, cur.slice(0, p) + ch + cur.slice(p + 1)) ?? null;
    }),
  );
}

/**
 * Locally every run draws new inputs; CI replays one fixed seed, so a rare input found while
 * working is fixed before it can turn main red at random. A failure prints its seed and path.
 */
const ciEnv = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
if (ciEnv?.['CI'] === 'true') fc.configureGlobal({ seed: 20261121 });

const RUNS = 300;

describe('fuzzing decoders: every outside input ends in a coded error or a valid answer', () => {
  it('transaction envelopes, random and mutated', async () => {
    const cast = await createCast();
    const { tx } = await cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(cast.alice.patientCode));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.anything(), mutations(tx as unknown as JsonValue)), (v) => coded(() => decodeTx(v, 65536))),
      {
        numRuns: RUNS * 3,
      },
    );
  });

  it('mutated transaction bodies executed in blocks: a code for each, and no state change when rejected', async () => {
    const cast: Cast = await createCast();
    const kim = cast.staff('hosp-a/dr-kim');
    const valid: [Parameters<Cast['ledger']['tx']>[0], TxType, JsonObject][] = [
      [kim, 'records.register', recordBody(cast.alice.patientCode)],
      [
        cast.alice.patient,
        'consent.grant',
        {
          patientCode: cast.alice.patientCode,
          grantee: { kind: 'institution', institution: 'hosp-b' },
          scope: { kind: 'all' },
          purposes: ['TREAT'],
          period: { from: 0, to: null },
          deidentification: 'identified',
        },
      ],
      [
        cast.staff('hosp-b/dr-park'),
        'access.request',
        {
          patientCode: cast.alice.patientCode,
          scope: { kind: 'all' },
          purpose: 'TREAT',
          deidentification: 'identified',
          reason: 'referral',
        },
      ],
      [
        cast.staff('res-e/res-1'),
        'research.registerStudy',
        {
          studyId: 'fuzz',
          title: 'fuzzed study',
          purpose: 'HRESCH',
          categories: ['Condition'],
          query: { cohort: { codes: [{ system: 'http://snomed.info/sct', code: '44054006' }] }, measure: { kind: 'count' }, groupBy: [] },
          deidentification: 'pseudonymised',
          k: 5,
          epsilonBudgetMilli: null,
        },
      ],
    ];
    const cases = fc.oneof(...valid.map(([who, type, body]) => mutations(body).map((b) => [who, type, b] as const)));
    await fc.assert(
      fc.asyncProperty(cases, async ([who, type, body]) => {
        const before = JSON.stringify(cast.ledger.snapshot());
        const code = await cast.ledger.code(cast.ledger.tx(who, type, (body ?? {}) as JsonObject));
        expect(code === 'OK' || isErrorCode(code), code).toBe(true);
        if (code !== 'OK') expect(JSON.stringify(cast.ledger.snapshot())).toBe(before);
      }),
      { numRuns: RUNS },
    );
  });

  it('receipts and genesis documents, mutated', async () => {
    const cast = await createCast();
    const entry = await cast.ledger.ok(cast.ledger.tx(cast.staff('hosp-a/dr-kim'), 'records.register', recordBody(cast.alice.patientCode)));
    const block = cast.ledger.blocks[cast.ledger.height]!;
    const receipt = buildReceipt(block.header, [{ tx: entry.tx, txId: txIdOf(entry.tx) }], block.codes, 0);
    await fc.assert(
      fc.asyncProperty(mutations(receipt as unknown as JsonValue), (r) => coded(() => verifyReceipt(r as unknown as Receipt))),
      { numRuns: RUNS },
    );
    const genesis = cast.ledger.net.genesis as unknown as JsonValue;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.anything(), mutations(genesis)), (g) => coded(() => checkGenesis(g))),
      { numRuns: RUNS },
    );
  });

  it('Content-Digest headers and signed requests, mutated', async () => {
    const body = utf8('{"a":1}');
    const digest = contentDigest(body);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), mutations(digest).map(String)), (h) => coded(() => parseContentDigest(h))),
      {
        numRuns: RUNS,
      },
    );
    const keys = await generateSigningKey();
    const now = Date.UTC(2026, 10, 21);
    const url = 'http://vault.test:8080/vault/records/abc?purpose=TREAT';
    const headers = await signRequest({ method: 'POST', url, keyId: 'k1', privateKey: keys.privateKey, now, body });
    await fc.assert(
      fc.asyncProperty(mutations(headers as unknown as JsonValue), (h) =>
        coded(() =>
          verifyRequest({
            method: 'POST',
            url,
            headers: h as Record<string, string>,
            now,
            lookupKey: (k) => Promise.resolve(k === 'k1' ? keys.publicKey : null),
          }),
        ),
      ),
      { numRuns: RUNS },
    );
  });

  it('FHIR resources, study queries, masked vectors, seeds and de-identification, random and mutated', async () => {
    const observation: JsonObject = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '4548-4' }] },
      subject: { reference: 'Patient/p1', display: 'Jane Roe' },
      effectiveDateTime: '2026-10-01T09:30:00Z',
      valueQuantity: { value: 7.1, unit: '%' },
    };
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.anything(), mutations(observation)), (r) => coded(() => validateResource(r))),
      {
        numRuns: RUNS,
      },
    );
    const key = new Uint8Array(32).fill(7);
    await fc.assert(
      fc.asyncProperty(mutations(observation), (r) =>
        coded(() => deidentify(r as JsonObject, { level: 'pseudonymised', studyKey: key, patientCode: '0'.repeat(64), referenceTime: 0 })),
      ),
      { numRuns: RUNS },
    );
    const query: JsonObject = {
      cohort: { codes: [{ system: 'http://snomed.info/sct', code: '44054006' }] },
      measure: { kind: 'mean', code: { system: 'http://loinc.org', code: '4548-4' }, lower: 3, upper: 20 },
      groupBy: ['sex', 'year'],
      years: { from: 2020, to: 2026 },
    };
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.anything(), mutations(query)), (q) => coded(() => checkQuery(q))),
      { numRuns: RUNS },
    );
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.nat(64), (s, n) => coded(() => decodeVector(s, n))),
      { numRuns: RUNS },
    );
    await fc.assert(
      fc.asyncProperty(fc.anything(), (s) => coded(() => decodeSeeds(s))),
      { numRuns: RUNS },
    );
  });
});

describe('regressions the fuzzers found', () => {
  it('a receipt that is not an object, or lacks its parts, is CHAIN_BROKEN (was a TypeError)', () => {
    expect(() => verifyReceipt(null as unknown as Receipt)).toThrow(expect.objectContaining({ code: 'CHAIN_BROKEN' }));
    expect(() => verifyReceipt({ txId: 'x' } as unknown as Receipt)).toThrow(expect.objectContaining({ code: 'CHAIN_BROKEN' }));
  });

  it('signed-request headers that are not text are refused with a code (was a TypeError)', async () => {
    const base = { method: 'GET', url: 'http://v.test/x', now: 0, lookupKey: () => Promise.resolve(null) };
    await expect(verifyRequest({ ...base, headers: null as unknown as Record<string, string> })).rejects.toMatchObject({
      code: 'SIGNATURE_MISSING',
    });
    await expect(verifyRequest({ ...base, headers: { signature: {} as unknown as string } })).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
    });
  });

  it('de-identifying a resource that does not fit the R4 model is FHIR_INVALID, naming the rule path only (was an engine Error)', () => {
    const resource = { resourceType: 'Observation', status: 'final', code: { coding: [{ system: [{}], code: 'SECRET-VALUE' }] } };
    try {
      deidentify(resource, {
        level: 'pseudonymised',
        studyKey: new Uint8Array(32),
        patientCode: '0'.repeat(64),
        referenceTime: 0,
      });
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'FHIR_INVALID' });
      expect((e as Error).message).not.toContain('SECRET-VALUE');
    }
  });
});
