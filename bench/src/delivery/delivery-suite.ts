import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatNumber, round, writeJson } from '../stats.js';
import type { SuiteOptions } from '../suite.js';
import type { DeliveryBroker } from './delivery-broker.js';
import type { CaseContext, DeliveryCase } from './delivery-case.js';
import { checkTargets, renderDelivery, toDeliveryRow, type DeliveryRow } from './delivery-report.js';
import { commitLatencyCase } from './commit-latency.js';
import { dedupConsumerCase } from './dedup-consumer.js';
import { relayThroughputCase } from './relay-throughput.js';

/**
 * `npm run bench -- delivery`: append -> relay -> broker -> consumer with dedup -> ack, per broker,
 * beside the raw client doing the same job in the same run. Brokers load lazily, so one whose
 * client is missing fails alone. Rows are sorted by broker, then case, for the table.
 */
const BROKERS: readonly { readonly adapter: string; readonly load: () => Promise<DeliveryBroker> }[] = [
  { adapter: 'postgresql', load: async () => (await import('./postgres-delivery.js')).postgresDelivery },
  { adapter: 'nats', load: async () => (await import('./nats-delivery.js')).natsDelivery },
  { adapter: 'rabbitmq', load: async () => (await import('./rabbitmq-delivery.js')).rabbitmqDelivery },
];

const cases = (): readonly DeliveryCase[] => [relayThroughputCase(), commitLatencyCase, dedupConsumerCase];

const log = (line: string): void => void process.stderr.write(`[delivery] ${line}\n`);

export async function runDeliverySuite(options: SuiteOptions): Promise<boolean> {
  const started = Date.now();
  const rows: DeliveryRow[] = [];
  const failures: string[] = [];
  const ctx: CaseContext = { quick: options.quick, connectionString: options.connectionString, log };
  // BENCH_ADAPTERS=postgresql,nats runs a subset; BENCH_CASES=relay-throughput a subset of cases;
  // BENCH_HORIZON_TRACE=1 splits each commit-to-consume event's wait for the read horizon from the
  // relay's own time (samples every 2 ms, which adds load: for diagnosis, not for the figures).
  const only = (name: string): string[] | undefined => process.env[name]?.split(',').map((a) => a.trim()).filter(Boolean);
  const wanted = (list: string[] | undefined, name: string): boolean => list === undefined || list.length === 0 || list.includes(name);
  const adapters = only('BENCH_ADAPTERS');
  const caseNames = only('BENCH_CASES');
  const brokers: DeliveryBroker[] = [];
  for (const { adapter, load } of BROKERS) {
    if (!wanted(adapters, adapter)) continue;
    try {
      brokers.push(await load());
    } catch (e) {
      failures.push(`${adapter}: cannot load its bench: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const all = cases();
  // Case by case, each over every broker: a case's shared setup (the relay's seeded log) is made once.
  for (const c of all) {
    if (!wanted(caseNames, c.name)) continue;
    try {
      for (const broker of brokers) {
        log(`${broker.adapter} ${c.name}: start`);
        try {
          const outcome = await c.run(broker, ctx);
          for (const r of outcome.results) rows.push(toDeliveryRow(broker.adapter, c.name, r.side, r.measured));
          failures.push(...outcome.failures);
        } catch (e) {
          const reason = `${broker.adapter} ${c.name}: ${e instanceof Error ? e.message : String(e)}`;
          failures.push(reason);
          log(`FAILED ${reason}`);
        }
      }
    } finally {
      await c.finish?.();
    }
  }
  rows.sort((a, b) => BROKERS.findIndex((x) => x.adapter === a.adapter) - BROKERS.findIndex((x) => x.adapter === b.adapter));
  const targets = checkTargets(rows);
  process.stdout.write(`${renderDelivery(rows, targets, options.quick)}\n`);
  const file = fileURLToPath(new URL(options.quick ? '../../results/delivery.quick.json' : '../../results/delivery.json', import.meta.url));
  writeJson(file, {
    suite: 'delivery',
    quick: options.quick,
    date: new Date(started).toISOString(),
    duration_s: round((Date.now() - started) / 1000, 1),
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', memory_gb: round(totalmem() / 2 ** 30, 1), node: process.version },
    method: Object.fromEntries(all.map((c) => [c.name, c.method])),
    cases: all.map((c) => ({ name: c.name, ...c.sizes(options.quick) })),
    rows: rows.map(({ case: caseName, system, ops_per_s, p50_ms, p99_ms }) => ({ case: caseName, system, ops_per_s, p50_ms, p99_ms })),
    targets,
    details: rows.filter((r) => r.notes !== undefined).map((r) => ({ case: r.case, system: r.system, ...r.notes })),
    failures,
  });
  log(`done in ${formatNumber((Date.now() - started) / 1000, 1)} s; wrote ${file}`);
  for (const f of failures) process.stderr.write(`${f}\n`);
  return failures.length === 0;
}
