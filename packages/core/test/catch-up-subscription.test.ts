import { afterEach, describe, expect, it } from 'vitest';
import {
  InMemoryEventStore,
  LOG_START,
  comparePositions,
  runCatchUpSubscription,
  uuidv7,
  type CatchUpSource,
  type LogPosition,
  type RecordedEvent,
  type Subscription,
} from '@causeway/core';

/** Polls `predicate` every 5 ms; rejects naming `what` when it is still false after `timeoutMs`. */
async function waitFor(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<number> {
  const start = performance.now();
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - start;
}

const running: Subscription[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

/** A tenant of its own per test, so the log reads only see this test's events. */
const newTenant = (): string => `t${uuidv7().replace(/-/g, '').slice(-20)}`;

async function appendNotes(store: InMemoryEventStore, tenantId: string, streamId: string, count: number, from = 0): Promise<void> {
  for (let i = from; i < from + count; i++) await store.append({ tenantId, streamId }, [{ eventType: 'shop.note.added', data: { n: i } }]);
}

const ns = (events: readonly RecordedEvent[]): number[] => events.map((e) => (e.data as { n: number }).n);

describe('store.subscribe (catch-up)', () => {
  it('delivers every earlier event from LOG_START, in log order, in batches of at most batchSize', async () => {
    const store = new InMemoryEventStore();
    const tenantId = newTenant();
    await appendNotes(store, tenantId, 'a', 6);
    await store.append({ tenantId, streamId: 'b' }, [6, 7, 8, 9, 10].map((n) => ({ eventType: 'shop.note.added', data: { n } })));
    await appendNotes(store, 'someone-else', 'a', 3);

    const batches: RecordedEvent[][] = [];
    const sub = store.subscribe({ tenantId, after: LOG_START, batchSize: 3, pollIntervalMs: 60_000 }, async (events) => {
      batches.push([...events]);
    });
    running.push(sub);
    await waitFor(() => batches.flat().length >= 11, 1000, '11 events');

    const delivered = batches.flat();
    expect(ns(delivered)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(batches.map((b) => b.length)).toEqual([3, 3, 3, 2]);
    expect(delivered.every((e) => e.tenantId === tenantId)).toBe(true);
    for (let i = 1; i < delivered.length; i++) {
      expect(comparePositions((delivered[i - 1] as RecordedEvent).position, (delivered[i] as RecordedEvent).position)).toBe(-1);
    }
    await waitFor(() => comparePositions(sub.position, (delivered[10] as RecordedEvent).position) === 0, 1000, 'position to settle');
  });

  it('starts after the given position', async () => {
    const store = new InMemoryEventStore();
    const tenantId = newTenant();
    await appendNotes(store, tenantId, 'a', 5);
    const all = await store.readAll({ tenantId });
    const seen: number[] = [];
    const sub = store.subscribe({ tenantId, after: (all.events[1] as RecordedEvent).position, pollIntervalMs: 60_000 }, async (events) => {
      seen.push(...ns(events));
    });
    running.push(sub);
    await waitFor(() => seen.length >= 3, 1000, '3 events');
    expect(seen).toEqual([2, 3, 4]);
  });

  it('is woken by an append long before the fallback poll', async () => {
    const store = new InMemoryEventStore();
    const tenantId = newTenant();
    // Count the log reads the subscription makes (it reads through the instance's readAll).
    let reads = 0;
    const readAll = store.readAll.bind(store);
    store.readAll = (options) => {
      reads++;
      return readAll(options);
    };
    const seen: number[] = [];
    const sub = store.subscribe({ tenantId, pollIntervalMs: 60_000 }, async (events) => {
      seen.push(...ns(events));
    });
    running.push(sub);
    // Once the first read found nothing, the loop sleeps until a wake-up or the 60 s poll.
    await waitFor(() => reads >= 1, 1000, 'the first read');
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(seen).toEqual([]);

    await appendNotes(store, tenantId, 'a', 1);
    await waitFor(() => seen.length >= 1, 1000, 'the first appended event');
    await appendNotes(store, tenantId, 'b', 2, 1);
    await waitFor(() => seen.length >= 3, 1000, 'the next two events');
    expect(seen).toEqual([0, 1, 2]);
    // Woken reads only: a handful, not a poll loop.
    expect(reads).toBeLessThanOrEqual(10);
  });

  it('stop() is idempotent and resolves done; nothing is delivered after it', async () => {
    const store = new InMemoryEventStore();
    const tenantId = newTenant();
    const seen: number[] = [];
    const sub = store.subscribe({ tenantId, pollIntervalMs: 60_000 }, async (events) => {
      seen.push(...ns(events));
    });
    await appendNotes(store, tenantId, 'a', 2);
    await waitFor(() => seen.length >= 2, 1000, '2 events');

    const stopped = await Promise.all([sub.stop(), sub.stop()]);
    expect(stopped).toEqual([undefined, undefined]);
    await expect(sub.stop()).resolves.toBeUndefined();
    await expect(sub.done).resolves.toBeUndefined();

    await appendNotes(store, tenantId, 'a', 1, 2);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(seen).toEqual([0, 1]);
  });

  it('a handler error rejects done with that error and stops delivery', async () => {
    const store = new InMemoryEventStore();
    const tenantId = newTenant();
    let calls = 0;
    const boom = new Error('projection failed');
    const sub = store.subscribe({ tenantId, batchSize: 1, pollIntervalMs: 60_000 }, async () => {
      calls++;
      throw boom;
    });
    await appendNotes(store, tenantId, 'a', 3);
    await expect(sub.done).rejects.toBe(boom);
    expect(calls).toBe(1);
    // The failed batch is not acknowledged: the position stays where it was.
    expect(sub.position).toEqual(LOG_START);
    await expect(sub.stop()).resolves.toBeUndefined();
  });
});

describe('runCatchUpSubscription', () => {
  function countingSource(): { source: CatchUpSource; reads: () => number; wake: () => void; listeners: () => number } {
    let reads = 0;
    const wakes = new Set<() => void>();
    return {
      source: {
        async read(after: LogPosition) {
          reads++;
          return { events: [], next: after };
        },
        onWake(wake) {
          wakes.add(wake);
          return () => wakes.delete(wake);
        },
      },
      reads: () => reads,
      wake: () => {
        for (const w of wakes) w();
      },
      listeners: () => wakes.size,
    };
  }

  it('reads at most once per poll interval while idle', async () => {
    const { source, reads } = countingSource();
    const start = performance.now();
    const sub = runCatchUpSubscription(source, { after: LOG_START, batchSize: 100, pollIntervalMs: 50 }, async () => undefined);
    running.push(sub);
    await waitFor(() => performance.now() - start >= 400, 2000, '400 ms to pass');
    await sub.stop();
    const elapsed = performance.now() - start;
    expect(reads()).toBeGreaterThanOrEqual(3);
    expect(reads()).toBeLessThanOrEqual(Math.floor(elapsed / 50) + 3);
  });

  it('after a wake-up that finds nothing, backs off instead of spinning', async () => {
    const { source, reads, wake } = countingSource();
    const start = performance.now();
    const sub = runCatchUpSubscription(source, { after: LOG_START, batchSize: 100, pollIntervalMs: 200 }, async () => undefined);
    running.push(sub);
    await waitFor(() => reads() >= 1, 1000, 'the first read');
    for (let i = 0; i < 5; i++) {
      wake();
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    await sub.stop();
    const elapsed = performance.now() - start;
    // 5 wakes, each followed by re-reads at 5, 10, 20 ... ms: a handful of reads each, never hundreds.
    expect(reads()).toBeGreaterThan(5);
    expect(reads()).toBeLessThanOrEqual(5 * 6 + Math.floor(elapsed / 200) + 3);
  });

  it('unregisters its wake-up callback when stopped', async () => {
    const { source, listeners } = countingSource();
    const sub = runCatchUpSubscription(source, { after: LOG_START, batchSize: 100, pollIntervalMs: 60_000 }, async () => undefined);
    expect(listeners()).toBe(1);
    await sub.stop();
    expect(listeners()).toBe(0);
  });

  it('retries a failing read and then delivers', async () => {
    let reads = 0;
    const event = { position: { tx: 1n, seq: 1n } } as RecordedEvent;
    const source: CatchUpSource = {
      async read(after) {
        reads++;
        if (reads <= 2) throw new Error('connection reset');
        if (comparePositions(after, LOG_START) === 0) return { events: [event], next: event.position };
        return { events: [], next: after };
      },
      onWake: () => () => undefined,
    };
    const delivered: RecordedEvent[] = [];
    const sub = runCatchUpSubscription(source, { after: LOG_START, batchSize: 10, pollIntervalMs: 60_000 }, async (events) => {
      delivered.push(...events);
    });
    running.push(sub);
    await waitFor(() => delivered.length === 1, 1000, 'delivery after two failed reads');
    expect(delivered).toEqual([event]);
    expect(reads).toBeGreaterThanOrEqual(3);
    await waitFor(() => comparePositions(sub.position, event.position) === 0, 1000, 'position to advance');
  });
});
