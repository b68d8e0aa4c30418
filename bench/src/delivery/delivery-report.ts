import { formatNumber, formatTable, percentile, round, type ResultRow } from '../stats.js';
import type { Measured, Side } from './delivery-case.js';

/** A row of the results file (the shared row shape) with where it came from. */
export interface DeliveryRow extends ResultRow {
  readonly adapter: string;
  readonly case_name: string;
  readonly side: Side;
  readonly notes?: Readonly<Record<string, number | string>>;
}

/** One performance target of issue 4, checked on one adapter. */
export interface TargetCheck {
  readonly adapter: string;
  readonly case: string;
  readonly target: string;
  readonly value: number;
  readonly met: boolean;
}

export function toDeliveryRow(adapter: string, caseName: string, side: Side, m: Measured): DeliveryRow {
  const sorted = [...m.latenciesMs].sort((a, b) => a - b);
  return {
    adapter,
    case_name: caseName,
    side,
    case: `${adapter} ${caseName}`,
    system: m.system,
    ops_per_s: round(m.opsPerS, 1),
    p50_ms: round(percentile(sorted, 50), 3),
    p99_ms: round(percentile(sorted, 99), 3),
    ...(m.notes ? { notes: m.notes } : {}),
  };
}

const RELAY_MIN_RATIO = 0.8;
const MIN_BASELINE_P99_MS = 0.1;
const LATENCY_MAX_P99_MS = 25;
const DEDUP_MIN_RATE = 10_000;

/** Issue 4's targets, per adapter, from the rows that exist (a failed side gives no check). */
export function checkTargets(rows: readonly DeliveryRow[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const find = (adapter: string, caseName: string, side: Side) => rows.find((r) => r.adapter === adapter && r.case_name === caseName && r.side === side);
  for (const adapter of new Set(rows.map((r) => r.adapter))) {
    const relay = find(adapter, 'relay-throughput', 'causeway');
    const rawPublish = find(adapter, 'relay-throughput', 'raw');
    if (relay && rawPublish) {
      const ratio = round(relay.ops_per_s / rawPublish.ops_per_s, 3);
      out.push({ adapter, case: 'relay-throughput', target: `relay rate >= ${RELAY_MIN_RATIO}x raw publish rate`, value: ratio, met: ratio >= RELAY_MIN_RATIO });
    }
    const latency = find(adapter, 'commit-to-consume', 'causeway');
    if (latency) {
      out.push({ adapter, case: 'commit-to-consume', target: `p99 < ${LATENCY_MAX_P99_MS} ms at 1,000 events/s`, value: latency.p99_ms, met: latency.p99_ms < LATENCY_MAX_P99_MS });
    }
    const dedup = find(adapter, 'dedup-consumer', 'causeway');
    if (dedup) {
      out.push({ adapter, case: 'dedup-consumer', target: `>= ${formatNumber(DEDUP_MIN_RATE)} events/s`, value: dedup.ops_per_s, met: dedup.ops_per_s >= DEDUP_MIN_RATE });
    }
  }
  return out;
}

function versusRaw(row: DeliveryRow, rows: readonly DeliveryRow[]): string {
  if (row.side === 'raw') return 'baseline';
  const raw = rows.find((r) => r.case === row.case && r.side === 'raw');
  if (raw === undefined) return 'no baseline';
  const rate = `${(row.ops_per_s / raw.ops_per_s).toFixed(2)}x rate`;
  // A raw handler that only acks takes microseconds: a p99 ratio against it says nothing.
  return raw.p99_ms < MIN_BASELINE_P99_MS ? rate : `${rate}, ${(row.p99_ms / raw.p99_ms).toFixed(2)}x p99`;
}

function measuredText(t: TargetCheck): string {
  if (t.case === 'relay-throughput') return `${t.value.toFixed(2)}x`;
  if (t.case === 'commit-to-consume') return `${t.value.toFixed(2)} ms`;
  return `${formatNumber(t.value)}/s`;
}

/** For the latency target: how old the server's oldest writer (the read horizon) was during the run. */
function horizonText(t: TargetCheck, rows: readonly DeliveryRow[]): string {
  const notes = rows.find((r) => r.adapter === t.adapter && r.case_name === t.case && r.side === 'causeway')?.notes;
  const p99 = notes?.['oldest_writer_p99_ms'];
  const max = notes?.['oldest_writer_max_ms'];
  return typeof p99 === 'number' && typeof max === 'number' ? ` (server's oldest writer during the run: p99 ${p99} ms, max ${max} ms)` : '';
}

function cpuOf(row: DeliveryRow): string {
  const us = row.notes?.['cpu_us_per_event'];
  return typeof us === 'number' ? formatNumber(us) : '-';
}

export function renderDelivery(rows: readonly DeliveryRow[], targets: readonly TargetCheck[], quick: boolean): string {
  const table = formatTable(
    ['case', 'system', 'events/s', 'p50 ms', 'p99 ms', 'node cpu us/event', 'vs raw (rate; p99)'],
    rows.map((r) => [r.case, r.system, formatNumber(r.ops_per_s), r.p50_ms.toFixed(2), r.p99_ms.toFixed(2), cpuOf(r), versusRaw(r, rows)]),
    ['left', 'left', 'right', 'right', 'right', 'right', 'left'],
  );
  const lines = targets.map((t) => `  ${t.met ? 'met   ' : 'MISSED'} ${t.adapter} ${t.case}: ${t.target}; measured ${measuredText(t)}${horizonText(t, rows)}`);
  return [
    `delivery bench${quick ? ' (--quick: smoke run, small counts)' : ''}`,
    '',
    table,
    '',
    'latency columns: relay-throughput = one publish call of a batch; commit-to-consume = append resolved -> consumer commit (raw: publish call -> received); dedup-consumer = one handler.',
    'node cpu: this process only (user + system) over the timed window; the database server and the broker are not in it.',
    'targets (issue 4):',
    ...lines,
  ].join('\n');
}
