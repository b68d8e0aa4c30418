import { machine } from '../machine.js';
import { fileURLToPath } from 'node:url';
import type { SuiteOptions } from '../suite.js';
import { formatNumber, formatTable, round, toRow, writeJson, type ResultRow } from '../stats.js';
import { createCausewayPGliteTarget, createCausewayTarget } from './causeway-target.js';
import { createEmmettTarget } from './emmett-target.js';
import { createRawPGliteTarget } from './raw-pglite-target.js';
import { createRawPgTarget } from './raw-pg-target.js';
import { STORE_CASES, type CaseName } from './store-cases.js';
import type { StoreTarget, SystemName } from './store-target.js';
import { FULL_WORKLOAD, QUICK_WORKLOAD } from './workload.js';


const POOL_SIZE = 20;

interface SystemSpec {
  readonly system: SystemName;
  readonly create: (url: string) => Promise<StoreTarget>;
}

/**
 * Systems measured against each other run in one group: all its targets open at once, and each
 * case runs once per target per round, the order flipping every round, so a machine that slows
 * down or speeds up during the run weighs on both sides of a ratio alike. A row is the median of
 * the rounds. Emmett goes last and alone: it installs process-wide pg type parsers (see
 * emmett-target.ts), which would change what the raw baseline parses.
 */
const GROUPS: readonly (readonly SystemSpec[])[] = [
  [
    { system: 'raw-pg', create: (url) => createRawPgTarget(url, POOL_SIZE) },
    { system: 'causeway', create: (url) => createCausewayTarget(url, POOL_SIZE) },
  ],
  [
    { system: 'raw-pglite', create: () => createRawPGliteTarget() },
    { system: 'causeway-pglite', create: () => createCausewayPGliteTarget() },
  ],
  [{ system: 'emmett', create: (url) => createEmmettTarget(url, POOL_SIZE) }],
];

const DISPLAY_ORDER: readonly SystemName[] = ['raw-pg', 'causeway', 'emmett', 'raw-pglite', 'causeway-pglite'];
const BASELINE: Partial<Record<SystemName, SystemName>> = { causeway: 'raw-pg', emmett: 'raw-pg', 'causeway-pglite': 'raw-pglite' };

export interface Ratio {
  readonly case: string;
  readonly system: string;
  readonly vs: string;
  /** system ops/s ÷ vs ops/s: above 1 = system has the higher rate. */
  readonly ops_ratio: number;
  /** system p50 ÷ vs p50: above 1 = system is slower per call. */
  readonly p50_ratio: number;
}

/** Rounds per group (each row is their median); --quick runs one. */
const ROUNDS = 3;

/** The median round of each figure (rate, p50, p99 taken separately). */
function medianRow(rows: readonly ResultRow[]): ResultRow {
  const mid = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  const first = rows[0] as ResultRow;
  return {
    case: first.case,
    system: first.system,
    ops_per_s: mid(rows.map((r) => r.ops_per_s)),
    p50_ms: mid(rows.map((r) => r.p50_ms)),
    p99_ms: mid(rows.map((r) => r.p99_ms)),
  };
}

const log = (line: string): void => void process.stderr.write(`[store] ${line}\n`);

export async function runStoreSuite(options: SuiteOptions): Promise<boolean> {
  const workload = options.quick ? QUICK_WORKLOAD : FULL_WORKLOAD;
  const started = Date.now();
  const rows: ResultRow[] = [];
  const failures: string[] = [];
  const loadNotes = new Map<string, string>();

  const rounds = options.quick ? 1 : ROUNDS;
  for (const group of GROUPS) {
    const targets: StoreTarget[] = [];
    try {
      for (const { system, create } of group) {
        log(`${system}: setting up`);
        const target = await create(options.connectionString);
        targets.push(target);
        loadNotes.set(system, target.loadNote);
      }
      for (const c of STORE_CASES) {
        const samples = new Map<SystemName, ResultRow[]>();
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? targets : [...targets].reverse();
          for (const target of order) {
            const sample = await c.run(target, workload, `r${round}`);
            const row = toRow(c.name, target.system, sample);
            samples.set(target.system, [...(samples.get(target.system) ?? []), row]);
            log(`${target.system} ${c.name} round ${round + 1}/${rounds}: ${sample.latenciesMs.length} calls in ${formatNumber(sample.wallMs / 1000, 1)} s -> ${formatNumber(row.ops_per_s)} ${c.unit}/s, p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms`);
          }
        }
        for (const [, measured] of samples) rows.push(medianRow(measured));
      }
    } catch (e) {
      const names = group.map((g) => g.system).join(', ');
      failures.push(`${names}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      log(`${names} FAILED: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      for (const target of targets) await target.close().catch((e: unknown) => log(`${target.system}: cleanup failed: ${String(e)}`));
    }
  }

  const ratios = computeRatios(rows);
  process.stdout.write(`${renderReport(rows, ratios, loadNotes, options.quick)}\n`);
  const file = fileURLToPath(new URL(options.quick ? '../../results/store.quick.json' : '../../results/store.json', import.meta.url));
  writeJson(file, {
    suite: 'store',
    quick: options.quick,
    date: new Date(started).toISOString(),
    duration_s: round((Date.now() - started) / 1000, 1),
    machine: await machine(options.connectionString),
    workload,
    rounds,
    units: Object.fromEntries(STORE_CASES.map((c) => [c.name, `${c.unit}/s`])),
    notes: [...loadNotes].map(([system, note]) => `load-10000-snapshot ${system}: ${note}`),
    rows,
    ratios,
    failures,
  });
  log(`done in ${formatNumber((Date.now() - started) / 1000, 1)} s; wrote ${file}`);
  for (const f of failures) process.stderr.write(`${f}\n`);
  return failures.length === 0;
}

function computeRatios(rows: readonly ResultRow[]): Ratio[] {
  const find = (caseName: string, system: string): ResultRow | undefined => rows.find((r) => r.case === caseName && r.system === system);
  const ratio = (a: ResultRow, b: ResultRow): Ratio => ({
    case: a.case,
    system: a.system,
    vs: b.system,
    ops_ratio: round(a.ops_per_s / b.ops_per_s, 3),
    p50_ratio: round(a.p50_ms / b.p50_ms, 3),
  });
  const out: Ratio[] = [];
  for (const c of STORE_CASES) {
    for (const system of DISPLAY_ORDER) {
      const baseline = BASELINE[system];
      const a = find(c.name, system);
      const b = baseline && find(c.name, baseline);
      if (a && b) out.push(ratio(a, b));
    }
    const cw = find(c.name, 'causeway');
    const em = find(c.name, 'emmett');
    if (cw && em) out.push(ratio(cw, em));
  }
  return out;
}

function renderReport(rows: readonly ResultRow[], ratios: readonly Ratio[], loadNotes: ReadonlyMap<string, string>, quick: boolean): string {
  const unitOf = (caseName: string): string => (STORE_CASES.find((c) => c.name === caseName)?.unit === 'events' ? 'events/s' : 'calls/s');
  const vsBaseline = (r: ResultRow): string => {
    const q = ratios.find((x) => x.case === r.case && x.system === r.system && x.vs === BASELINE[r.system as SystemName]);
    return q ? `${times(q.ops_ratio)} rate, ${times(q.p50_ratio)} p50 vs ${q.vs}` : 'baseline';
  };
  const sorted = STORE_CASES.flatMap((c) => DISPLAY_ORDER.flatMap((s) => rows.filter((r) => r.case === c.name && r.system === s)));
  const table = formatTable(
    ['case', 'system', 'rate (append: events/s; read/load: calls/s)', 'p50 ms', 'p99 ms', 'ratio vs baseline (rate; p50 latency)'],
    sorted.map((r) => [r.case, r.system, `${formatNumber(r.ops_per_s)} ${unitOf(r.case)}`, r.p50_ms.toFixed(2), r.p99_ms.toFixed(2), vsBaseline(r)]),
    ['left', 'left', 'right', 'right', 'right', 'left'],
  );
  const cwEm = ratios
    .filter((q) => q.system === 'causeway' && q.vs === 'emmett')
    .map((q) => `causeway/emmett ${q.case.padEnd(20)} rate ${times(q.ops_ratio)}, p50 ${times(q.p50_ratio)}${q.case === ('load-10000-snapshot' satisfies CaseName) ? '  (causeway: snapshot + 10-event tail; emmett: no snapshots, full 10,000-event fold)' : ''}`);
  const notes = [...loadNotes].map(([system, note]) => `  ${system.padEnd(16)} ${note}`);
  return [
    `store bench${quick ? ' (--quick: smoke run, small counts, one round)' : `: each row the median of ${ROUNDS} interleaved rounds`}`,
    '',
    table,
    '',
    ...cwEm,
    '',
    'rate ratio above 1 = faster than the baseline; p50 ratio above 1 = slower per call.',
    'baselines: raw-pg for causeway and emmett, raw-pglite for causeway-pglite.',
    'load-10000-snapshot, what each system does:',
    ...notes,
  ].join('\n');
}

/** 0.62x; small ratios keep two significant digits instead of rounding to 0.00x. */
const times = (ratio: number): string => `${ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2)}x`;

