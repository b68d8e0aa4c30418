import { measure, type Sample } from '../measure.js';
import type { StoreTarget } from './store-target.js';
import {
  AGGREGATE_EVENTS,
  CONCURRENCY,
  READ_STREAM_EVENTS,
  SEED_BATCH,
  SNAPSHOT_AT,
  evolveCart,
  initialCart,
  itemsAdded,
  type ItemAdded,
  type Workload,
} from './workload.js';

export type CaseName = 'append-1-seq' | 'append-1-c16' | 'append-10-seq' | 'read-1000' | 'load-10000-snapshot';

export interface StoreCase {
  readonly name: CaseName;
  /** What the rate counts: appended events, or calls (reads, loads). */
  readonly unit: 'events' | 'calls';
  /** `tag` makes the stream names of one round unique, so rounds never write into each other's streams. */
  run(target: StoreTarget, workload: Workload, tag: string): Promise<Sample>;
}

/** Versions of the streams a case writes, so every append states exactly where the stream is. */
class Versions {
  private readonly map = new Map<string, number>();
  at(streamId: string): number {
    return this.map.get(streamId) ?? 0;
  }
  async append(target: StoreTarget, streamId: string, events: readonly ItemAdded[]): Promise<number> {
    const version = this.at(streamId);
    await target.append(streamId, version, events);
    this.map.set(streamId, version + events.length);
    return events.length;
  }
}

/** `calls` appends of `size` events, round-robin over `streams` streams per worker. */
async function appendCase(target: StoreTarget, workload: Workload, o: { prefix: string; workers: number; calls: number; streams: number; size: number }): Promise<Sample> {
  const versions = new Versions();
  const stream = (w: number, i: number, phase: string): string => `${o.prefix}-${phase}-${w}-${i % o.streams}`;
  const warmCalls = Math.max(5, Math.ceil(o.calls / 10));
  const warm = Array.from({ length: o.workers }, () => Array.from({ length: warmCalls }, () => itemsAdded(o.size)));
  await measure({ workers: o.workers, callsPerWorker: warmCalls, budgetMs: workload.budgetMs }, (w, i) =>
    versions.append(target, stream(w, i, 'warm'), warm[w]?.[i] ?? []),
  );
  const batches = Array.from({ length: o.workers }, () => Array.from({ length: o.calls }, () => itemsAdded(o.size)));
  return measure({ workers: o.workers, callsPerWorker: o.calls, budgetMs: workload.budgetMs }, (w, i) =>
    versions.append(target, stream(w, i, 'run'), batches[w]?.[i] ?? []),
  );
}

async function seed(target: StoreTarget, streamId: string, events: readonly ItemAdded[]): Promise<void> {
  const versions = new Versions();
  for (let at = 0; at < events.length; at += SEED_BATCH) await versions.append(target, streamId, events.slice(at, at + SEED_BATCH));
}

export const STORE_CASES: readonly StoreCase[] = [
  {
    name: 'append-1-seq',
    unit: 'events',
    run: (t, w, tag) => appendCase(t, w, { prefix: `a1-${tag}`, workers: 1, calls: w.appendSeqCalls, streams: w.appendSeqStreams, size: 1 }),
  },
  {
    name: 'append-1-c16',
    unit: 'events',
    run: (t, w, tag) =>
      appendCase(t, w, { prefix: `c16-${tag}`, workers: CONCURRENCY, calls: w.appendC16PerWorker, streams: w.appendC16StreamsPerWorker, size: 1 }),
  },
  {
    name: 'append-10-seq',
    unit: 'events',
    run: (t, w, tag) => appendCase(t, w, { prefix: `a10-${tag}`, workers: 1, calls: w.append10Calls, streams: w.append10Streams, size: 10 }),
  },
  {
    name: 'read-1000',
    unit: 'calls',
    async run(target, workload, tag) {
      const stream = `read-${tag}`;
      await seed(target, stream, itemsAdded(READ_STREAM_EVENTS));
      const n = await target.read(stream);
      if (n !== READ_STREAM_EVENTS) throw new Error(`${target.system}: read ${n} events, expected ${READ_STREAM_EVENTS}`);
      await measure({ workers: 1, callsPerWorker: 10, budgetMs: workload.budgetMs }, async () => (await target.read(stream), 1));
      return measure({ workers: 1, callsPerWorker: workload.reads, budgetMs: workload.budgetMs }, async () => (await target.read(stream), 1));
    },
  },
  {
    name: 'load-10000-snapshot',
    unit: 'calls',
    async run(target, workload, tag) {
      const stream = `agg-${tag}`;
      const events = itemsAdded(AGGREGATE_EVENTS);
      await seed(target, stream, events);
      const atSnapshot = events.slice(0, SNAPSHOT_AT).reduce((s, data) => evolveCart(s, { data }), initialCart());
      await target.saveSnapshot?.(stream, SNAPSHOT_AT, atSnapshot);
      const expected = events.reduce((s, data) => evolveCart(s, { data }), initialCart());
      const check = await target.load(stream);
      const same = check.state.items === expected.items && check.state.qty === expected.qty && check.state.totalCents === expected.totalCents;
      if (check.version !== AGGREGATE_EVENTS || !same) {
        throw new Error(`${target.system}: load gave version ${check.version} ${JSON.stringify(check.state)}, expected ${JSON.stringify(expected)}`);
      }
      await measure({ workers: 1, callsPerWorker: 5, budgetMs: workload.budgetMs }, async () => (await target.load(stream), 1));
      return measure({ workers: 1, callsPerWorker: workload.loads, budgetMs: workload.budgetMs }, async () => (await target.load(stream), 1));
    },
  },
];
