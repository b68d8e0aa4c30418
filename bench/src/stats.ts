import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Sample } from './measure.js';

/** The mandatory row shape of every results file. */
export interface ResultRow {
  readonly case: string;
  readonly system: string;
  readonly ops_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function toRow(caseName: string, system: string, sample: Sample): ResultRow {
  const sorted = [...sample.latenciesMs].sort((a, b) => a - b);
  return {
    case: caseName,
    system,
    ops_per_s: round(sample.units / (sample.wallMs / 1000), 1),
    p50_ms: round(percentile(sorted, 50), 3),
    p99_ms: round(percentile(sorted, 99), 3),
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Plain-text table, columns padded to the widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ('left' | 'right')[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (c: string, i: number, isHeader: boolean): string =>
    align[i] === 'right' && !isHeader ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0);
  const line = (cells: readonly string[], isHeader = false): string => cells.map((c, i) => cell(c, i, isHeader)).join(' | ').trimEnd();
  return [line(header, true), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map((r) => line(r))].join('\n');
}

export function formatNumber(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-';
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
