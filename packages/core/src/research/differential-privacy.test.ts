/** Discrete Laplace noise and the release of a summed study vector: suppression below k, noise scaled by sensitivity / ε. */
import { describe, expect, it } from 'vitest';
import { hmacSha256 } from '../crypto/hash.ts';
import { utf8 } from '../codec/bytes.ts';
import { MedledgerError } from '../errors.ts';
import { MAX_SCALE, releaseResult, sampleDiscreteLaplace, type RandomSource } from './differential-privacy.ts';
import type { StudyQuery } from './study-query.ts';

/** A reproducible byte stream: HMAC-SHA256(seed, counter) blocks. */
function seededSource(seed: string): RandomSource {
  const key = utf8(seed);
  let counter = 0;
  let buffer = new Uint8Array();
  return (n) => {
    while (buffer.length < n) {
      const block = hmacSha256(key, String(counter++));
      const next = new Uint8Array(buffer.length + block.length);
      next.set(buffer);
      next.set(block, buffer.length);
      buffer = next;
    }
    const out = buffer.slice(0, n);
    buffer = buffer.slice(n);
    return out;
  };
}

/** Each draw is 8 copies of the next byte of `pattern`, cyclically: 0xff gives U = 1, 0x00 gives U = 2^-53. */
function patternSource(pattern: number[]): RandomSource {
  let i = 0;
  return (n) => new Uint8Array(n).fill(pattern[i++ % pattern.length]!);
}
/** Noise of exactly +floor(53 ln 2 · scale) for every sample. */
const alwaysUp = () => patternSource([0x00, 0xff]);
/** Noise of exactly -floor(53 ln 2 · scale) for every sample. */
const alwaysDown = () => patternSource([0xff, 0x00]);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof MedledgerError ? e.code : 'not a MedledgerError';
  }
  return undefined;
}

const T2D = { system: 'http://snomed.info/sct', code: '44054006' };
const HBA1C = { system: 'http://loinc.org', code: '4548-4' };
const countBySex: StudyQuery = { cohort: { codes: [T2D] }, measure: { kind: 'count' }, groupBy: ['sex'] };
const meanBySex: StudyQuery = { cohort: { codes: [T2D] }, measure: { kind: 'mean', code: HBA1C, lower: -2, upper: 10 }, groupBy: ['sex'] };
const sumBySex: StudyQuery = { ...meanBySex, measure: { ...meanBySex.measure, kind: 'sum' } } as StudyQuery;

describe('sampleDiscreteLaplace', () => {
  it('gives known answers at the ends of the uniform grid', () => {
    // U = 1 gives G = 0; U = 2^-53 gives G = floor(53 ln 2 · scale) = floor(36.7368 · scale).
    expect(sampleDiscreteLaplace(1, alwaysUp())).toBe(36n);
    expect(sampleDiscreteLaplace(1, alwaysDown())).toBe(-36n);
    expect(sampleDiscreteLaplace(2.5, alwaysUp())).toBe(91n);
    expect(sampleDiscreteLaplace(1, patternSource([0xff]))).toBe(0n);
    expect(sampleDiscreteLaplace(1, patternSource([0x00]))).toBe(0n);
  });

  it('is reproducible from a deterministic source', () => {
    const run = (seed: string) => {
      const random = seededSource(seed);
      return Array.from({ length: 200 }, () => sampleDiscreteLaplace(3, random));
    };
    expect(run('seed-1')).toEqual(run('seed-1'));
    expect(run('seed-1')).not.toEqual(run('seed-2'));
    expect(new Set(run('seed-1')).size).toBeGreaterThan(5);
  });

  it('has mean 0, variance 2q/(1-q)^2 and P(0) = (1-q)/(1+q), q = exp(-1/scale)', () => {
    // Fixed generous bounds, about 6 standard errors for 20,000 samples; no timing involved.
    const scale = 2;
    const q = Math.exp(-1 / scale);
    const n = 20_000;
    const xs = Array.from({ length: n }, () => Number(sampleDiscreteLaplace(scale)));
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    const expectedVariance = (2 * q) / (1 - q) ** 2; // ≈ 7.83
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(Math.abs(variance - expectedVariance) / expectedVariance).toBeLessThan(0.1);
    expect(Math.abs(xs.filter((x) => x === 0).length / n - (1 - q) / (1 + q))).toBeLessThan(0.02);
    expect(Math.abs(xs.filter((x) => x > 0).length - xs.filter((x) => x < 0).length) / n).toBeLessThan(0.04);
  });

  it('refuses a scale that is not positive and finite, or too large, and a short random source', () => {
    for (const scale of [0, -1, Number.NaN, Infinity, MAX_SCALE * 2])
      expect(codeOf(() => sampleDiscreteLaplace(scale))).toBe('BAD_REQUEST');
    expect(() => sampleDiscreteLaplace(1, () => new Uint8Array(7))).toThrow(TypeError);
  });
});

describe('releaseResult without noise', () => {
  it('withholds counts 1..k-1 and keeps 0 and counts of k or more', () => {
    const r = releaseResult(countBySex, [12n, 4n, 0n, 5n], { k: 5, epsilon: null });
    expect(r).toEqual({
      cells: [
        { key: { sex: 'female' }, count: 12 },
        { key: { sex: 'male' }, count: null },
        { key: { sex: 'other' }, count: 0 },
        { key: { sex: 'unknown' }, count: 5 },
      ],
      k: 5,
      epsilon: null,
      mechanism: 'none',
      suppressed: 1,
    });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(releaseResult(countBySex, [12n, 4n, 1n, 5n], { k: 1, epsilon: null }).suppressed).toBe(0);
  });

  it('withholds sums and means with their count, and when fewer than k patients have a value', () => {
    // counts, value counts, sums in thousandths
    const vector = [10n, 7n, 3n, 0n, 8n, 2n, 3n, 0n, 64_000n, 9_000n, 15_000n, 0n];
    expect(releaseResult(meanBySex, vector, { k: 5, epsilon: null }).cells).toEqual([
      { key: { sex: 'female' }, count: 10, sum: 64, mean: 8 },
      { key: { sex: 'male' }, count: 7, sum: null, mean: null },
      { key: { sex: 'other' }, count: null, sum: null, mean: null },
      { key: { sex: 'unknown' }, count: 0, sum: 0, mean: null },
    ]);
    expect(releaseResult(meanBySex, vector, { k: 5, epsilon: null }).suppressed).toBe(2);
    expect(releaseResult(sumBySex, vector, { k: 5, epsilon: null }).cells[0]).toEqual({ key: { sex: 'female' }, count: 10, sum: 64 });
  });

  it('rounds means to 3 decimals and keeps negative sums', () => {
    const r = releaseResult(meanBySex, [6n, 0n, 0n, 0n, 6n, 0n, 0n, 0n, -1_000n, 0n, 0n, 0n], { k: 5, epsilon: null });
    expect(r.cells[0]).toEqual({ key: { sex: 'female' }, count: 6, sum: -1, mean: -0.167 });
  });

  it('refuses a vector of the wrong length, a bad k or ε', () => {
    expect(codeOf(() => releaseResult(countBySex, [1n, 2n, 3n], { k: 5, epsilon: null }))).toBe('BAD_REQUEST');
    expect(codeOf(() => releaseResult(countBySex, [1n, 2n, 3n, 4n], { k: 0, epsilon: null }))).toBe('BAD_REQUEST');
    expect(codeOf(() => releaseResult(countBySex, [1n, 2n, 3n, 4n], { k: 2.5, epsilon: null }))).toBe('BAD_REQUEST');
    expect(codeOf(() => releaseResult(countBySex, [1n, 2n, 3n, 4n], { k: 5, epsilon: 0 }))).toBe('BAD_REQUEST');
    expect(codeOf(() => releaseResult(countBySex, [1n, 2n, 3n, 4n], { k: 5, epsilon: -1 }))).toBe('BAD_REQUEST');
  });
});

describe('releaseResult with discrete Laplace noise', () => {
  it('scales the count noise by 1/ε and by the contributions per patient', () => {
    const vector = [100n, 0n, 50n, 7n];
    const at = (epsilon: number, contributionsPerPatient = 1) =>
      releaseResult(countBySex, vector, { k: 5, epsilon, random: alwaysUp(), contributionsPerPatient }).cells.map((c) => c.count);
    expect(at(1)).toEqual([136, 36, 86, 43]);
    expect(at(0.5)).toEqual([173, 73, 123, 80]);
    expect(at(1, 2)).toEqual([173, 73, 123, 80]);
    const r = releaseResult(countBySex, vector, { k: 5, epsilon: 1, random: alwaysUp() });
    expect(r.mechanism).toBe('discrete-laplace');
    expect(r.epsilon).toBe(1);
  });

  it('suppresses on the noisy count and clamps negative counts to 0', () => {
    // -36 on every count: 40 → 4 (withheld), 100 → 64, 10 → 0 (clamped, released), 0 → 0
    const r = releaseResult(countBySex, [40n, 100n, 10n, 0n], { k: 5, epsilon: 1, random: alwaysDown() });
    expect(r.cells.map((c) => c.count)).toEqual([null, 64, 0, 0]);
    expect(r.suppressed).toBe(1);
  });

  it('splits ε in three for a value measure, scaling sum noise by max(|lower|, |upper|)', () => {
    // ε = 3: each block gets ε = 1. Counts and value counts +36; sums + floor(10,000 · 36.7368) thousandths.
    const vector = [100n, 50n, 0n, 0n, 80n, 10n, 0n, 0n, 400_000n, 50_000n, 0n, 0n];
    const r = releaseResult(meanBySex, vector, { k: 5, epsilon: 3, random: alwaysUp() });
    const sumNoise = 367_368;
    expect(r.cells[0]).toEqual({ key: { sex: 'female' }, count: 136, sum: (400_000 + sumNoise) / 1000, mean: 6.615 });
    // Value count 10 + 36 = 46 ≤ count 86; mean (50,000 + 367,368) / 46 thousandths → 9.073.
    expect(r.cells[1]).toEqual({ key: { sex: 'male' }, count: 86, sum: (50_000 + sumNoise) / 1000, mean: 9.073 });
    // An empty cell gets count 36 and value count 36: the mean is held within [lower, upper].
    expect(r.cells[2]).toEqual({ key: { sex: 'other' }, count: 36, sum: sumNoise / 1000, mean: 10 });
  });

  it('keeps every released cell either empty or at least k, over many noisy releases', () => {
    const random = seededSource('release');
    for (let round = 0; round < 50; round++) {
      const r = releaseResult(meanBySex, [3n, 6n, 9n, 30n, 2n, 6n, 4n, 30n, 0n, 6_000n, 0n, 30_000n], { k: 5, epsilon: 1, random });
      for (const cell of r.cells) {
        if (cell.count === null) expect(cell).toEqual({ key: cell.key, count: null, sum: null, mean: null });
        else expect(cell.count === 0 || cell.count >= 5).toBe(true);
        expect(cell.mean === null || cell.mean === undefined || (cell.mean >= -2 && cell.mean <= 10)).toBe(true);
      }
    }
  });
});
