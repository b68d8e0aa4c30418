import { machine } from '../machine.js';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { formatNumber, percentile, round, writeJson, type ResultRow } from '../stats.js';
import { checkpoint, withAdmin } from '../store/admin.js';
import type { SuiteOptions } from '../suite.js';
import type { CatchUpTarget } from './catch-up-target.js';
import { createCausewayCatchUp } from './causeway-catch-up.js';
import { seedCausewayLog, type CausewayLog } from './causeway-log.js';
import { createEmmettCatchUp } from './emmett-catch-up.js';
import { createRawCatchUp } from './raw-catch-up.js';
import { expectedDigest, sameDigest } from './read-model.js';
import { computeRatios, renderReport, TARGETS } from './report.js';
import { FULL_WORKLOAD, QUICK_WORKLOAD, validateWorkload, type ProjectionWorkload } from './workload.js';

/**
 * `npm run bench -- projections`: a read model caught up from position 0 over the whole log, by
 * the raw-pg floor, Causeway's projection runner and Emmett's PostgreSQL projection, each reading
 * its own log (raw reads Causeway's). Rounds alternate between systems; each keeps its best.
 * BENCH_SYSTEMS=raw-pg,causeway runs a subset (while tuning).
 */
export interface RoundResult {
  readonly system: string;
  readonly round: number;
  readonly events_per_s: number;
  readonly seconds: number;
  /** Time to apply each successive 1,000 events of the log. */
  readonly sliceMs: number[];
}

const SLICE = 1_000;
const log = (line: string): void => void process.stderr.write(`[projections] ${line}\n`);

export async function runProjectionSuite(options: SuiteOptions): Promise<boolean> {
  const workload = options.quick ? QUICK_WORKLOAD : FULL_WORKLOAD;
  validateWorkload(workload);
  const started = Date.now();
  const caseName = `catch-up-${workload.events}`;
  const only = process.env['BENCH_SYSTEMS']?.split(',').map((s) => s.trim()).filter(Boolean);
  const wanted = (system: string): boolean => only === undefined || only.length === 0 || only.includes(system);
  const failures: string[] = [];
  const targets: CatchUpTarget[] = [];
  const expected = expectedDigest(workload);
  let causewayLog: CausewayLog | null = null;

  try {
    // The two logs are seeded at the same time (different databases, one writer each, not measured).
    const needsLog = wanted('raw-pg') || wanted('causeway') || wanted('causeway per-event');
    const [seeded, emmett] = await Promise.all([
      needsLog ? setUp('causeway log', failures, () => seedCausewayLog(options.connectionString, workload, seedProgress('causeway', workload))) : null,
      wanted('emmett') ? setUp('emmett', failures, () => createEmmettCatchUp(options.connectionString, workload, seedProgress('emmett', workload))) : null,
    ]);
    causewayLog = seeded;
    if (seeded) {
      if (wanted('raw-pg')) await addTarget(targets, failures, 'raw-pg', () => createRawCatchUp(seeded, workload));
      if (wanted('causeway')) await addTarget(targets, failures, 'causeway', () => createCausewayCatchUp(seeded, workload, 'batch'));
      if (wanted('causeway per-event')) await addTarget(targets, failures, 'causeway per-event', () => createCausewayCatchUp(seeded, workload, 'per-event'));
    }
    if (emmett) targets.push(emmett);

    const results: RoundResult[] = [];
    const finished = new Set<CatchUpTarget>();
    for (let r = 1; r <= workload.rounds; r++) {
      for (const target of targets) {
        if (finished.has(target)) continue;
        try {
          const result = await measureRound(target, r, workload, options.connectionString);
          const digest = await target.verify(r);
          if (!sameDigest(digest, expected)) {
            throw new Error(`wrong read model: ${JSON.stringify(digest)}, expected ${JSON.stringify(expected)}`);
          }
          results.push(result);
          log(`${target.system} round ${r}: ${formatNumber(workload.events)} events in ${formatNumber(result.seconds, 2)} s -> ${formatNumber(result.events_per_s)} events/s; read model verified`);
          if (result.seconds * 1000 > workload.repeatBelowMs && r < workload.rounds) {
            finished.add(target);
            log(`${target.system}: a round takes over ${workload.repeatBelowMs / 1000} s; no further rounds`);
          }
        } catch (e) {
          failures.push(`${target.system} round ${r}: ${message(e)}`);
          log(`${target.system} round ${r} FAILED: ${message(e)}`);
        }
      }
    }

    const rows = bestRows(results, caseName, targets);
    const ratios = computeRatios(rows);
    const roundsRun = new Map(targets.map((t) => [t.system, results.filter((x) => x.system === t.system).length]));
    process.stdout.write(`${renderReport(rows, ratios, targets, roundsRun, workload, options.quick)}\n`);
    const file = fileURLToPath(new URL(options.quick ? '../../results/projections.quick.json' : '../../results/projections.json', import.meta.url));
    writeJson(file, {
      suite: 'projections',
      quick: options.quick,
      date: new Date(started).toISOString(),
      duration_s: round((Date.now() - started) / 1000, 1),
      machine: await machine(options.connectionString),
      method:
        `catch-up of a ${workload.events}-event log (${workload.streams} streams, seeded ${workload.eventsPerAppend} events per append by ${workload.seedWorkers} writer(s), not measured; raw-pg reads Causeway's log, Emmett its own) ` +
        `into a per-stream summary table (same shape for every system), from position 0 until the read model holds every event and the checkpoint is at the log's end; ` +
        `batches of ${workload.batchSize}; ops_per_s = events / wall time; p50/p99 = time to apply each successive ${SLICE} events; ` +
        `best of ${workload.rounds} alternating rounds per system, or of fewer for a system whose round takes over ${workload.repeatBelowMs / 1000} s (see rounds); ` +
        `each round's read model checked against the expected rows (count, sums, md5 over all rows)`,
      workload,
      units: { [caseName]: 'events/s' },
      notes: targets.map((t) => `${t.system}: ${t.note}`),
      expected_read_model: expected,
      rows,
      ratios,
      targets: TARGETS.map((t) => {
        const q = ratios.find((x) => x.system === t.system && x.vs === t.vs);
        return { ...t, measured: q?.ops_ratio ?? null, met: q !== undefined && q.ops_ratio >= t.min };
      }),
      rounds: results.map(({ sliceMs: _s, ...r }) => r),
      failures,
    });
    log(`done in ${formatNumber((Date.now() - started) / 1000, 1)} s; wrote ${file}`);
  } finally {
    for (const t of targets) await t.close().catch((e: unknown) => log(`${t.system}: cleanup failed: ${message(e)}`));
    await causewayLog?.close().catch((e: unknown) => log(`causeway log: cleanup failed: ${message(e)}`));
  }
  for (const f of failures) process.stderr.write(`${f}\n`);
  return failures.length === 0;
}

async function setUp<T>(what: string, failures: string[], create: () => Promise<T>): Promise<T | null> {
  log(`${what}: setting up`);
  try {
    return await create();
  } catch (e) {
    failures.push(`${what}: setup failed: ${message(e)}`);
    log(`${what}: setup FAILED: ${message(e)}`);
    return null;
  }
}

async function addTarget(targets: CatchUpTarget[], failures: string[], system: string, create: () => Promise<CatchUpTarget>): Promise<void> {
  const target = await setUp(system, failures, create);
  if (target) targets.push(target);
}

async function measureRound(target: CatchUpTarget, r: number, workload: ProjectionWorkload, connectionString: string): Promise<RoundResult> {
  await target.reset(r);
  await checkpoint(connectionString); // no system pays for flushing an earlier one's writes
  const sliceMs: number[] = [];
  let applied = 0;
  let sliceStart = 0;
  const onApplied = (events: number): void => {
    const before = Math.floor(applied / SLICE);
    applied += events;
    const after = Math.floor(applied / SLICE);
    if (after > before) {
      const now = performance.now();
      for (let i = before; i < after; i++) sliceMs.push((now - sliceStart) / (after - before));
      sliceStart = now;
    }
  };
  let seen = 0;
  const ticker = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    log(`${target.system} round ${r}: ${formatNumber(applied)}/${formatNumber(workload.events)} events, ${formatNumber(applied / s)} events/s`);
    // The server is shared: name the open transaction that holds every gap-safe reader back.
    if (applied === seen && applied < workload.events) void oldestTransaction(connectionString).then((t) => log(`  no progress; oldest open transaction: ${t}`), () => undefined);
    seen = applied;
  }, 3_000);
  ticker.unref();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not caught up within ${workload.timeoutMs} ms (${applied} events applied)`)), workload.timeoutMs);
  });
  const t0 = performance.now();
  sliceStart = t0;
  try {
    await Promise.race([target.catchUp(r, onApplied), timeout]);
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (applied !== workload.events) throw new Error(`handlers saw ${applied} events, expected ${workload.events}`);
  return { system: target.system, round: r, events_per_s: round(workload.events / seconds, 1), seconds: round(seconds, 3), sliceMs };
}

function bestRows(results: readonly RoundResult[], caseName: string, targets: readonly CatchUpTarget[]): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const t of targets) {
    const best = results.filter((r) => r.system === t.system).sort((a, b) => b.events_per_s - a.events_per_s)[0];
    if (best === undefined) continue;
    const sorted = [...best.sliceMs].sort((a, b) => a - b);
    rows.push({ case: caseName, system: t.system, ops_per_s: best.events_per_s, p50_ms: round(percentile(sorted, 50), 3), p99_ms: round(percentile(sorted, 99), 3) });
  }
  return rows;
}

function seedProgress(system: string, workload: ProjectionWorkload): (appended: number) => void {
  const t0 = performance.now();
  let next = 0;
  return (appended) => {
    if (appended < next && appended < workload.events) return;
    next = appended + workload.events / 10;
    log(`${system}: seeded ${formatNumber(appended)}/${formatNumber(workload.events)} events (${formatNumber(appended / ((performance.now() - t0) / 1000))} events/s, not measured)`);
  };
}

async function oldestTransaction(connectionString: string): Promise<string> {
  return withAdmin(connectionString, async (c) => {
    const { rows } = await c.query<{ pid: number; datname: string | null; app: string; age: string; query: string }>(
      `SELECT pid, datname, application_name AS app, (now() - xact_start)::text AS age, left(query, 80) AS query
       FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 1`,
    );
    const t = rows[0];
    return t ? `pid ${t.pid} db ${t.datname ?? '-'} app "${t.app}" open ${t.age}: ${t.query}` : 'none';
  });
}


function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
