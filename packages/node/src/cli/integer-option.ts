/**
 * Whole-number command-line options (ports, counts): commander hands over text, and `Number()`
 * would let "abc", "1e3" or "65536" through as NaN, 1000 or a port no socket takes.
 */
import { MedledgerError } from '@medledger/core/errors';

/** The option's value as an integer in [min, max], or BAD_REQUEST naming the option. */
export function integerOption(value: string, option: string, min: number, max: number): number {
  const n = /^-?[0-9]{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new MedledgerError('BAD_REQUEST', { details: `${option} is a whole number from ${min} to ${max}.` });
  return n;
}
