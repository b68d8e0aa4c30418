import { ALL_TENANTS, LOG_START, comparePositions, type LogPosition, type RecordedEvent } from '@causeway/core';
import { expect, it } from 'vitest';
import { placed } from './store-append-cases.js';
import { sleep, uniqueTenant, waitFor } from './store-harness.js';
import type { StoreSuiteContext } from './store-suite.js';

export function readCases(ctx: StoreSuiteContext): void {
  it('reads a stream forward, backward, by range and with a limit', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('range'), streamId: 'r' };
    await store.append(stream, Array.from({ length: 10 }, (_, i) => placed(i + 1)));
    const v = (events: RecordedEvent[]) => events.map((e) => e.streamVersion);
    expect(v(await store.readStream(stream))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(v(await store.readStream(stream, { direction: 'backward' }))).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(v(await store.readStream(stream, { fromVersion: 4, toVersion: 6 }))).toEqual([4, 5, 6]);
    expect(v(await store.readStream(stream, { fromVersion: 4, maxCount: 2 }))).toEqual([4, 5]);
    expect(v(await store.readStream(stream, { direction: 'backward', maxCount: 3 }))).toEqual([10, 9, 8]);
    expect(v(await store.readStream(stream, { direction: 'backward', toVersion: 5, maxCount: 2 }))).toEqual([5, 4]);
    expect(await store.readStream({ ...stream, streamId: 'missing' })).toEqual([]);
    expect((await store.readStream(stream)).map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('readAll returns every event once, in log order, across batches, scoped by tenant', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('readall');
    const other = uniqueTenant('readall-other');
    const appended: RecordedEvent[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await store.append({ tenantId, streamId: `s-${i % 4}` }, [placed(i), placed(i + 100)]);
      appended.push(...r.events);
      await store.append({ tenantId: other, streamId: `s-${i % 4}` }, [placed(i)]);
    }
    const seen: RecordedEvent[] = [];
    let after: LogPosition = LOG_START;
    // A gap-safe reader holds back while any older transaction on the server is open (another
    // test file may hold one), so an empty batch means "not yet", not "the end": keep reading.
    await waitFor(async () => {
      const batch = await store.readAll({ tenantId, after, limit: 5 });
      expect(batch.events.length).toBeLessThanOrEqual(5);
      seen.push(...batch.events);
      after = batch.next;
      return seen.length >= appended.length;
    }, 15_000, 'readAll to reach every appended event');
    expect(seen.map((e) => e.eventId)).toEqual(appended.map((e) => e.eventId));
    for (let i = 1; i < seen.length; i++) expect(comparePositions((seen[i - 1] as RecordedEvent).position, (seen[i] as RecordedEvent).position)).toBe(-1);
    expect(seen.every((e) => e.tenantId === tenantId)).toBe(true);
    const typed = await store.readAll({ tenantId, eventTypes: ['test.other.happened'] });
    expect(typed.events).toEqual([]);
    let mine: RecordedEvent[] = [];
    await waitFor(async () => {
      const all = await store.readAll({ tenantId: ALL_TENANTS, after: (appended[0] as RecordedEvent).position, limit: 100_000 });
      mine = all.events.filter((e) => e.tenantId === tenantId || e.tenantId === other);
      return mine.length >= appended.length - 1 + 12;
    }, 15_000, 'readAll across tenants to reach both tenants\' events');
    expect(mine.length).toBe(appended.length - 1 + 12);
  });

  it('a catch-up subscription delivers history, then live events, in order and once', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('sub');
    for (let i = 0; i < 5; i++) await store.append({ tenantId, streamId: 'a' }, [placed(i)]);
    const seen: RecordedEvent[] = [];
    // A long fallback poll: live delivery must come from the wake-up, not the poll.
    const sub = store.subscribe({ tenantId, batchSize: 2, pollIntervalMs: 30_000 }, async (events) => {
      expect(events.length).toBeLessThanOrEqual(2);
      seen.push(...events);
    });
    await waitFor(() => seen.length === 5, 10_000, 'history');
    const live = [];
    for (let i = 0; i < 5; i++) live.push(...(await store.append({ tenantId, streamId: `b-${i}` }, [placed(i)])).events);
    await waitFor(() => seen.length === 10, 10_000, 'live events through the wake-up');
    expect(seen.slice(5).map((e) => e.eventId)).toEqual(live.map((e) => e.eventId));
    await sub.stop();
    await sub.stop();
    await sub.done;
    await store.append({ tenantId, streamId: 'c' }, [placed(1)]);
    await sleep(50);
    expect(seen.length).toBe(10);
  });

  it('a subscription can start from a position and stops on a handler error', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('sub-from');
    const r = await store.append({ tenantId, streamId: 'a' }, [placed(1), placed(2), placed(3)]);
    const seen: number[] = [];
    const sub = store.subscribe({ tenantId, after: (r.events[0] as RecordedEvent).position }, async (events) => {
      for (const e of events) seen.push(e.streamVersion);
      throw new Error('handler broke');
    });
    await expect(sub.done).rejects.toThrow('handler broke');
    expect(seen).toEqual([2, 3]);
  });
}
