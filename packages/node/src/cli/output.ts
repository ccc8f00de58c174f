/** How the CLI prints: JSON for machines (`--json`), short lines for people. */
export function printResult(value: unknown, json: boolean): void {
  if (json || typeof value !== 'object' || value === null) {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n');
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      process.stdout.write('(none)\n');
      return;
    }
    console.table(value.map((v: unknown) => flatten(v)));
    return;
  }
  for (const [k, v] of Object.entries(value)) process.stdout.write(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
}

function flatten(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return { value: v };
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'object' && x !== null ? JSON.stringify(x).slice(0, 60) : x;
  return out;
}
