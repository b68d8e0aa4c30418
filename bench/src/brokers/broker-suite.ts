import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { uuidv7, type EventEnvelope } from '@causeway/core';
import { formatNumber, formatTable, percentile, round, writeJson, type ResultRow } from '../stats.js';
import type { SuiteOptions } from '../suite.js';
import type { BrokerBenchPair, BrokerBenchTarget } from './broker-target.js';

/**
 * `npm run bench -- brokers`: per adapter, publish -> consume through Causeway beside the raw
 * client doing the same job, in the same run. Each system runs every case twice, alternating
 * with its baseline, and keeps its better round (the machine is shared and noisy).
 */
const ADAPTERS: readonly { readonly adapter: string; readonly load: () => Promise<Record<string, unknown>> }[] = [
  { adapter: 'postgresql', load: () => import('./postgres-bench.js') },
  { adapter: 'rabbitmq', load: () => import('./rabbitmq-bench.js') },
  { adapter: 'nats', load: () => import('./nats-bench.js') },
  { adapter: 'redis', load: () => import('./redis-bench.js') },
];

interface BenchCase {
  readonly name: string;
  readonly count: (quick: boolean) => number;
  readonly batchSize: number;
}

const CASES: readonly BenchCase[] = [
  { name: 'publish-consume-batch50', count: (quick) => (quick ? 500 : 10_000), batchSize: 50 },
  { name: 'publish-consume-single', count: (quick) => (quick ? 200 : 3_000), batchSize: 1 },
];

// Three alternating rounds; each system keeps its best (the machine is shared and noisy).
const ROUNDS = 3;
const RUN_TIMEOUT_MS = 180_000;

interface Measured {
  readonly opsPerS: number;
  readonly latenciesMs: number[];
}

export interface BrokerRatio {
  readonly adapter: string;
  readonly case: string;
  /** causeway ops/s ÷ raw ops/s (target >= 0.8). */
  readonly ops_ratio: number;
  /** causeway p99 ÷ raw p99 (target <= 1.5). */
  readonly p99_ratio: number;
}

const log = (line: string): void => void process.stderr.write(`[brokers] ${line}\n`);

export async function runBrokerSuite(options: SuiteOptions): Promise<boolean> {
  const started = Date.now();
  const rows: (ResultRow & { readonly adapter: string })[] = [];
  const failures: string[] = [];
  // BENCH_ADAPTERS=postgresql,redis runs a subset (while tuning one adapter).
  const only = process.env.BENCH_ADAPTERS?.split(',').map((a) => a.trim()).filter(Boolean);
  for (const { adapter, load } of ADAPTERS) {
    if (only !== undefined && only.length > 0 && !only.includes(adapter)) continue;
    let pair: BrokerBenchPair;
    try {
      pair = findPair(await load(), adapter);
    } catch (e) {
      failures.push(`${adapter}: cannot load its bench: ${message(e)}`);
      continue;
    }
    for (const c of CASES) {
      const best = new Map<string, Measured>();
      for (let round = 0; round < ROUNDS; round++) {
        for (const [side, make] of [['raw', pair.raw], ['causeway', pair.causeway]] as const) {
          const target = make();
          const system = side === 'raw' ? target.system : `causeway ${adapter}`;
          try {
            const m = await measureRun(target, adapter, c.count(options.quick), c.batchSize);
            log(`${adapter} ${c.name} ${system} round ${round + 1}: ${formatNumber(m.opsPerS)} msg/s`);
            const prev = best.get(system);
            if (prev === undefined || m.opsPerS > prev.opsPerS) best.set(system, m);
          } catch (e) {
            failures.push(`${adapter} ${c.name} ${system}: ${message(e)}`);
            log(`${adapter} ${c.name} ${system} FAILED: ${message(e)}`);
          }
        }
      }
      for (const [system, m] of best) {
        const sorted = [...m.latenciesMs].sort((a, b) => a - b);
        rows.push({
          adapter,
          case: `${adapter} ${c.name}`,
          system,
          ops_per_s: round(m.opsPerS, 1),
          p50_ms: round(percentile(sorted, 50), 3),
          p99_ms: round(percentile(sorted, 99), 3),
        });
      }
    }
  }
  const ratios = computeRatios(rows);
  process.stdout.write(`${render(rows, ratios, options.quick)}\n`);
  const file = fileURLToPath(new URL(options.quick ? '../../results/brokers.quick.json' : '../../results/brokers.json', import.meta.url));
  writeJson(file, {
    suite: 'brokers',
    quick: options.quick,
    date: new Date(started).toISOString(),
    duration_s: round((Date.now() - started) / 1000, 1),
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', memory_gb: round(totalmem() / 2 ** 30, 1), node: process.version },
    method: `each case: N events published in batches (each batch awaited), consumed by one subscriber in one group acking each; rate = N / (last receive - first publish); latency = receive - start of the message's publish call; best of ${ROUNDS} alternating rounds per system`,
    cases: CASES.map((c) => ({ name: c.name, events: c.count(options.quick), batch_size: c.batchSize })),
    rows: rows.map(({ adapter: _a, ...row }) => row),
    ratios,
    failures,
  });
  log(`done in ${formatNumber((Date.now() - started) / 1000, 1)} s; wrote ${file}`);
  for (const f of failures) process.stderr.write(`${f}\n`);
  return failures.length === 0;
}

function findPair(module: Record<string, unknown>, adapter: string): BrokerBenchPair {
  const pair = Object.values(module).find(
    (v): v is BrokerBenchPair => typeof v === 'object' && v !== null && 'causeway' in v && 'raw' in v,
  );
  if (pair === undefined) throw new Error(`no BrokerBenchPair exported for ${adapter}`);
  return pair;
}

async function measureRun(target: BrokerBenchTarget, adapter: string, count: number, batchSize: number): Promise<Measured> {
  const events = makeEvents(count);
  const publishStart = new Float64Array(count);
  const latenciesMs: number[] = [];
  const seen = new Uint8Array(count);
  let received = 0;
  let last = 0;
  let first = 0;
  await target.setup(`bench.${adapter}.${process.pid}.${Date.now().toString(36)}`);
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not every message arrived within ${RUN_TIMEOUT_MS} ms (${received}/${count})`)), RUN_TIMEOUT_MS);
    });
    first = performance.now();
    const onBatch = (start: number): void => {
      publishStart.fill(performance.now(), start, Math.min(count, start + batchSize));
    };
    const run = target.run(events, batchSize, (i) => {
      const now = performance.now();
      if (seen[i] === 1) return; // a redelivery: count each message once
      seen[i] = 1;
      received++;
      latenciesMs.push(now - (publishStart[i] || first));
      last = now;
    }, onBatch);
    await Promise.race([run, timeout]).finally(() => clearTimeout(timer));
    if (received !== count) throw new Error(`run ended with ${received}/${count} messages received`);
    return { opsPerS: count / ((last - first) / 1000), latenciesMs };
  } finally {
    await target.teardown();
  }
}

function makeEvents(count: number): EventEnvelope[] {
  const now = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => ({
    eventId: uuidv7(),
    eventType: 'bench.order.placed',
    eventVersion: 1,
    tenantId: 'bench',
    occurredAt: now,
    correlationId: uuidv7(),
    causationId: null,
    producer: 'bench',
    data: { orderId: `order-${i}`, customerId: `customer-${i % 100}`, total: 1234, lines: [{ sku: 'sku-1', qty: 2 }] },
    metadata: {},
  }));
}

function computeRatios(rows: readonly (ResultRow & { readonly adapter: string })[]): BrokerRatio[] {
  const out: BrokerRatio[] = [];
  for (const caseName of new Set(rows.map((r) => r.case))) {
    const cw = rows.find((r) => r.case === caseName && r.system.startsWith('causeway'));
    const raw = rows.find((r) => r.case === caseName && !r.system.startsWith('causeway'));
    if (cw && raw) out.push({ adapter: cw.adapter, case: caseName, ops_ratio: round(cw.ops_per_s / raw.ops_per_s, 3), p99_ratio: round(cw.p99_ms / raw.p99_ms, 3) });
  }
  return out;
}

function render(rows: readonly ResultRow[], ratios: readonly BrokerRatio[], quick: boolean): string {
  const table = formatTable(
    ['case', 'system', 'msg/s', 'p50 ms', 'p99 ms', 'vs raw (rate; p99)'],
    rows.map((r) => {
      const q = r.system.startsWith('causeway') ? ratios.find((x) => x.case === r.case) : undefined;
      return [r.case, r.system, formatNumber(r.ops_per_s), r.p50_ms.toFixed(2), r.p99_ms.toFixed(2), q ? `${q.ops_ratio.toFixed(2)}x rate, ${q.p99_ratio.toFixed(2)}x p99` : 'baseline'];
    }),
    ['left', 'left', 'right', 'right', 'right', 'left'],
  );
  return [
    `brokers bench${quick ? ' (--quick: smoke run, small counts)' : ''}`,
    '',
    table,
    '',
    'targets per adapter: rate >= 0.8x raw; p99 <= 1.5x raw.',
  ].join('\n');
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
