/**
 * Shared reporting for benchmarks: medians with min and max over runs, a human table on stdout,
 * JSON to bench/results/, and a progress line on stderr.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Figure {
  /** Stable key the suite runner uses to cross-reference figures, e.g. `embedded.tps`. */
  id?: string;
  name: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
  target?: string;
  /** Whether the median meets `target` (absent when the figure has no target). */
  met?: boolean;
  note?: string;
}

export interface FigureExtra {
  id?: string;
  target?: string;
  met?: boolean;
  note?: string;
}

export function summarise(name: string, unit: string, runs: number[], extra: FigureExtra = {}): Figure {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { name, unit, median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs, ...extra };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function progress(line: string): void {
  process.stderr.write(`\r\x1b[K${line}`);
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(2);
}

export function targetCell(f: Figure): string {
  if (f.target === undefined) return '';
  if (f.met === undefined) return f.target;
  return `${f.target} — ${f.met ? 'met' : 'not met'}`;
}

export function report(bench: string, figures: Figure[], context: Record<string, unknown>): void {
  process.stderr.write('\r\x1b[K');
  const rows = figures.map((f) => [f.name, `${fmt(f.median)} ${f.unit}`, `${fmt(f.min)} – ${fmt(f.max)}`, targetCell(f), f.note ?? '']);
  const head = ['figure', 'median', 'min – max', 'target', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  process.stdout.write(`\n${bench}\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n${rows.map(line).join('\n')}\n`);
  const out = { bench, at: new Date().toISOString(), node: process.version, context, figures };
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${bench}-${out.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(out, null, 2));
  // The suite runner (`npm run bench`) collects every bench's figures from this file.
  const suiteOut = process.env['BENCH_OUT'];
  if (suiteOut !== undefined && suiteOut !== '') writeFileSync(suiteOut, JSON.stringify(out));
  process.stdout.write(`\n${JSON.stringify(out)}\n(written to ${file})\n`);
}
