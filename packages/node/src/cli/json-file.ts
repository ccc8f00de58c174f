/**
 * A JSON file the user names on the command line (a FHIR resource, a study query): read with
 * coded errors whose messages never quote the file, since it may hold patient data.
 */
import { readFileSync } from 'node:fs';
import { MedledgerError } from '@medledger/core/errors';

export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new MedledgerError(missing ? 'NOT_FOUND' : 'BAD_REQUEST', { details: `Cannot read the ${what} ${path}.`, cause });
  }
  try {
    return JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text around the error.
    throw new MedledgerError('INVALID_JSON', { details: `The ${what} ${path} is not JSON.` });
  }
}
