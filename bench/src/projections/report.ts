import { formatNumber, formatTable, round, type ResultRow } from '../stats.js';
import type { Ratio } from '../store/store-suite.js';
import type { CatchUpTarget } from './catch-up-target.js';
import type { ProjectionWorkload } from './workload.js';

/** Issue 5's performance targets: catch-up >= 3x Emmett and >= 0.5x the raw batched insert. */
export const TARGETS: readonly { readonly system: string; readonly vs: string; readonly min: number }[] = [
  { system: 'causeway', vs: 'emmett', min: 3 },
  { system: 'causeway', vs: 'raw-pg', min: 0.5 },
];

const PAIRS: readonly (readonly [string, string])[] = [
  ['causeway', 'emmett'],
  ['causeway', 'raw-pg'],
  ['emmett', 'raw-pg'],
  ['causeway per-event', 'emmett'],
  ['causeway per-event', 'raw-pg'],
];

/** Ratio rows in the store suite's shape; p50_ratio here compares the per-1,000-event slice times. */
export function computeRatios(rows: readonly ResultRow[]): Ratio[] {
  const out: Ratio[] = [];
  for (const [system, vs] of PAIRS) {
    const a = rows.find((r) => r.system === system);
    const b = rows.find((r) => r.system === vs);
    if (a && b) {
      out.push({ case: a.case, system, vs, ops_ratio: round(a.ops_per_s / b.ops_per_s, 3), p50_ratio: round(a.p50_ms / b.p50_ms, 3) });
    }
  }
  return out;
}

export function renderReport(
  rows: readonly ResultRow[],
  ratios: readonly Ratio[],
  targets: readonly CatchUpTarget[],
  roundsRun: ReadonlyMap<string, number>,
  w: ProjectionWorkload,
  quick: boolean,
): string {
  const versus = (system: string, vs: string): string => {
    const q = ratios.find((x) => x.system === system && x.vs === vs);
    return q ? times(q.ops_ratio) : '-';
  };
  const table = formatTable(
    ['case', 'system', 'events/s', 'p50 ms / 1k', 'p99 ms / 1k', 'rounds', 'vs emmett', 'vs raw-pg'],
    rows.map((r) => [
      r.case, r.system, formatNumber(r.ops_per_s), r.p50_ms.toFixed(2), r.p99_ms.toFixed(2), String(roundsRun.get(r.system) ?? 0), versus(r.system, 'emmett'), versus(r.system, 'raw-pg'),
    ]),
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
  const verdicts = TARGETS.map((t) => {
    const q = ratios.find((x) => x.system === t.system && x.vs === t.vs);
    return `target ${t.system} >= ${t.min}x ${t.vs}: ${q ? `${times(q.ops_ratio)} ${q.ops_ratio >= t.min ? 'met' : 'NOT met'}` : 'not measured'}`;
  });
  return [
    `projections bench${quick ? ' (--quick: smoke run, small counts)' : ''}: catch-up of ${formatNumber(w.events)} events over ${formatNumber(w.streams)} streams, batches of ${formatNumber(w.batchSize)}, best of up to ${w.rounds} rounds (1 for a system whose round takes over ${w.repeatBelowMs / 1000} s)`,
    '',
    table,
    '',
    ...verdicts,
    '',
    'ratios are events/s ÷ events/s (above 1 = faster); p50/p99 = ms to apply each successive 1,000 events.',
    'every round\'s read model was checked (row count, sums, md5 over all rows) against the rows computed from the workload.',
    'what each system runs:',
    ...targets.map((t) => `  ${t.system.padEnd(18)} ${t.note}`),
  ].join('\n');
}

/** 0.62x; small ratios keep two significant digits instead of rounding to 0.00x. */
const times = (ratio: number): string => `${ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2)}x`;
