/**
 * The release of an aggregated study result: discrete Laplace noise for ε-differential privacy
 * (the geometric mechanism, Ghosh, Roughgarden and Sundararajan, STOC 2009) and suppression of
 * small cells, turning the summed vector of `study-query.ts` into the JSON table put on the ledger.
 *
 * Sensitivities come from the one-cell-per-patient rule of `study-query.ts`: 1 for the counts and
 * the value counts, max(|lower|, |upper|) thousandths for the sums, times the number of custodians
 * that may count the same patient (`contributionsPerPatient`, 1 when each patient is evaluated at
 * one custodian). With a value measure ε is split in three equal parts (counts, value counts,
 * sums; sequential composition). Suppression and clamping look only at noisy values, so they are
 * post-processing and cost no privacy. No complementary suppression is done: a released margin
 * elsewhere could let a suppressed cell be recomputed.
 */
import { randomBytes } from '../crypto/random.ts';
import { MedledgerError } from '../errors.ts';
import {
  FIXED_POINT_SCALE,
  cellsOf,
  checkQuery,
  fixedPointBounds,
  isValueMeasure,
  vectorLength,
  type CellKey,
  type StudyQuery,
} from './study-query.ts';

/** Returns `length` uniformly random bytes. */
export type RandomSource = (length: number) => Uint8Array;

/** Scales above this are refused: the sample must stay well inside the doubles' exact integers. */
export const MAX_SCALE = 1e14;

function invalid(details: string): never {
  throw new MedledgerError('BAD_REQUEST', { details });
}

/** A uniform double in (0, 1]: (k + 1) / 2^53 for a uniform 53-bit k. */
function uniform53(random: RandomSource): number {
  const bytes = random(8);
  if (!(bytes instanceof Uint8Array) || bytes.length !== 8) throw new TypeError('the random source returned the wrong number of bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const k = (view.getUint32(0) >>> 11) * 2 ** 32 + view.getUint32(4);
  return (k + 1) / 2 ** 53;
}

/**
 * One sample of the discrete Laplace distribution, P(x) ∝ exp(-|x| / scale) on the integers.
 *
 * It is the difference of two independent geometric variables on {0, 1, ...} with
 * P(G ≥ g) = q^g, q = exp(-1/scale) (Inusah and Kozubowski 2006), each sampled by inversion:
 * G = floor(-scale · ln U) with U uniform in (0, 1] on a 2^-53 grid. Two draws of 8 bytes, so the
 * running time is fixed and does not depend on the value. The floating-point inversion is an
 * approximation, not an exact sampler: the tail beyond scale · 53 ln 2 ≈ 36.7 · scale is cut off
 * (probability below 2^-53) and each probability is off by about the grid step and the rounding of
 * the logarithm. Because the output is an integer added to an integer, none of the low-order-bit
 * leakage of floating-point continuous Laplace (Mironov, CCS 2012) arises.
 */
export function sampleDiscreteLaplace(scale: number, random: RandomSource = randomBytes): bigint {
  if (!Number.isFinite(scale) || scale <= 0 || scale > MAX_SCALE) invalid(`The noise scale must be in (0, ${MAX_SCALE}].`);
  const g1 = Math.floor(-scale * Math.log(uniform53(random)));
  const g2 = Math.floor(-scale * Math.log(uniform53(random)));
  return BigInt(g1) - BigInt(g2);
}

export interface ReleasedCell {
  key: CellKey;
  /** patients in the cell (noisy when ε is given); null when suppressed */
  count: number | null;
  /** sum and mean measures: the sum of the values, null when suppressed */
  sum?: number | null;
  /** mean measures: sum / patients with a value, within the bounds; null when suppressed or no value */
  mean?: number | null;
}

/** The released table: plain JSON, as it goes on the ledger. */
export interface ReleasedResult {
  cells: ReleasedCell[];
  k: number;
  epsilon: number | null;
  mechanism: 'discrete-laplace' | 'none';
  /** cells with at least one value withheld */
  suppressed: number;
}

export interface ReleaseOptions {
  /** smallest count released; cells with 1..k-1 are withheld (k = 1 withholds nothing) */
  k: number;
  /** the ε this release spends, or null for no noise */
  epsilon: number | null;
  random?: RandomSource;
  /** how many custodians may count the same patient; multiplies every sensitivity (default 1) */
  contributionsPerPatient?: number;
}

/**
 * Suppresses and (with ε) noises the unmasked total of a round's vectors for release.
 *
 * A cell whose count (noisy count with ε; negatives become 0) is in [1, k-1] is released with
 * count, sum and mean null. For sum and mean, a cell whose patients with a value number 1..k-1 keeps
 * its count but not its sum and mean, since a mean over few values is nearly a patient's value.
 * Sums are in the measure's unit; means are rounded to 3 decimals and held within [lower, upper].
 */
export function releaseResult(query: StudyQuery, sum: readonly bigint[], o: ReleaseOptions): ReleasedResult {
  checkQuery(query);
  if (!Number.isSafeInteger(o.k) || o.k < 1) invalid('k must be a positive integer.');
  if (o.epsilon !== null && (!Number.isFinite(o.epsilon) || o.epsilon <= 0)) invalid('ε must be a positive number or null.');
  const contributions = o.contributionsPerPatient ?? 1;
  if (!Number.isSafeInteger(contributions) || contributions < 1) invalid('contributionsPerPatient must be a positive integer.');
  if (sum.length !== vectorLength(query)) invalid(`The vector has ${sum.length} entries; the query makes ${vectorLength(query)}.`);
  if (sum.some((x) => typeof x !== 'bigint')) invalid('The vector’s entries must be bigints.');

  const cells = cellsOf(query);
  const n = cells.length;
  const measure = isValueMeasure(query.measure) ? query.measure : undefined;
  const bounds = measure === undefined ? undefined : fixedPointBounds(measure);
  const random = o.random ?? randomBytes;
  const epsilonPart = o.epsilon === null ? null : measure === undefined ? o.epsilon : o.epsilon / 3;
  const noisy = (block: number, sensitivity: number): bigint[] => {
    const values = sum.slice(block * n, (block + 1) * n);
    if (epsilonPart === null) return values;
    const scale = (sensitivity * contributions) / epsilonPart;
    return values.map((x) => x + sampleDiscreteLaplace(scale, random));
  };

  const counts = noisy(0, 1).map((x) => (x < 0n ? 0n : x));
  const valueCounts = bounds === undefined ? [] : noisy(1, 1).map((x, i) => (x < 0n ? 0n : x > counts[i]! ? counts[i]! : x));
  const sums = bounds === undefined ? [] : noisy(2, Math.max(Math.abs(bounds.lower), Math.abs(bounds.upper)));

  const small = (x: bigint): boolean => x >= 1n && x < BigInt(o.k);
  let suppressed = 0;
  const released = cells.map((key, i): ReleasedCell => {
    const count = counts[i]!;
    if (measure === undefined) {
      if (small(count)) suppressed++;
      return { key, count: small(count) ? null : Number(count) };
    }
    const withMean = measure.kind === 'mean';
    if (small(count)) {
      suppressed++;
      return withMean ? { key, count: null, sum: null, mean: null } : { key, count: null, sum: null };
    }
    const valueCount = valueCounts[i]!;
    if (small(valueCount)) {
      suppressed++;
      return withMean ? { key, count: Number(count), sum: null, mean: null } : { key, count: Number(count), sum: null };
    }
    // No value left after noise: the sum is taken as 0, which depends on noisy values only.
    const total = valueCount === 0n ? 0 : Number(sums[i]!);
    const cell: ReleasedCell = { key, count: Number(count), sum: total / FIXED_POINT_SCALE };
    if (withMean) {
      const mean = valueCount === 0n ? null : Math.min(bounds!.upper, Math.max(bounds!.lower, total / Number(valueCount)));
      cell.mean = mean === null ? null : Math.round(mean) / FIXED_POINT_SCALE;
    }
    return cell;
  });
  return { cells: released, k: o.k, epsilon: o.epsilon, mechanism: o.epsilon === null ? 'none' : 'discrete-laplace', suppressed };
}
