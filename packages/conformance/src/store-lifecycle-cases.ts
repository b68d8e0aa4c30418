import { ALL_TENANTS, aggregateStream, isSchemaError, isStreamClosedError, uuidv7, type RecordedEvent } from '@causeway/core';
import { expect, it } from 'vitest';
import { placed } from './store-append-cases.js';
import { readAllVisible, sleep, uniqueTenant } from './store-harness.js';
import type { StoreSuiteContext } from './store-suite.js';

type Sum = { count: number; total: number };
const evolve = (s: Sum, e: { data: unknown }): Sum => ({ count: s.count + 1, total: s.total + (e.data as { n: number }).n });
const initialState = (): Sum => ({ count: 0, total: 0 });

export function lifecycleCases(ctx: StoreSuiteContext): void {
  it('tenants never mix: equal stream names and event ids in two tenants are two streams', async () => {
    const { store } = ctx.harness();
    const a = { tenantId: uniqueTenant('tenant-a'), streamId: 'order-1' };
    const b = { tenantId: uniqueTenant('tenant-b'), streamId: 'order-1' };
    const sharedId = uuidv7();
    await store.append(a, [placed(1, { eventId: sharedId }), placed(2)], { expectedVersion: 'no_stream' });
    await store.append(b, [placed(10, { eventId: sharedId })], { expectedVersion: 'no_stream' });
    expect((await store.readStream(a)).map((e) => e.data)).toMatchObject([{ n: 1 }, { n: 2 }]);
    expect((await store.readStream(b)).map((e) => e.data)).toMatchObject([{ n: 10 }]);
    expect((await store.readStream(b))[0]?.tenantId).toBe(b.tenantId);
    expect((await store.streamInfo(a))?.version).toBe(2);
    expect((await store.streamInfo(b))?.version).toBe(1);
    await store.saveSnapshot(a, { version: 2, state: { who: 'a' } });
    expect(await store.loadSnapshot(b)).toBeNull();
    expect((await readAllVisible(store, { tenantId: b.tenantId }, 1)).events.map((e) => e.eventId)).toEqual([sharedId]);
    await store.deleteStream(b);
    expect((await store.readStream(a)).length).toBe(2);
    expect(await store.loadSnapshot(a)).toMatchObject({ version: 2, state: { who: 'a' } });
    // an event from one tenant cannot be appended into another tenant's stream
    await expect(store.append(a, [placed(3, { tenantId: b.tenantId })])).rejects.toSatisfy(isSchemaError);
  });

  it('snapshots: newest wins, names are independent, loading = snapshot + tail', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('snap'), streamId: 'agg' };
    await store.append(stream, Array.from({ length: 30 }, (_, i) => placed(i + 1)));
    const full = await aggregateStream(store, stream, { evolve, initialState });
    expect(full).toMatchObject({ version: 30, eventsRead: 30, state: { count: 30, total: 465 } });
    await store.saveSnapshot(stream, { version: 25, state: (await foldTo(store, stream, 25)) });
    await store.saveSnapshot(stream, { version: 20, state: { count: -1, total: -1 } }); // older: ignored
    await store.saveSnapshot(stream, { name: 'v2', version: 10, state: { count: 10, total: 55 } });
    expect(await store.loadSnapshot(stream)).toMatchObject({ version: 25 });
    expect(await store.loadSnapshot(stream, 'v2')).toMatchObject({ version: 10 });
    const fromSnapshot = await aggregateStream(store, stream, { evolve, initialState, snapshotName: 'default' });
    expect(fromSnapshot).toMatchObject({ version: 30, eventsRead: 5 });
    expect(fromSnapshot.state).toEqual(full.state);
    const fromV2 = await aggregateStream(store, stream, { evolve, initialState, snapshotName: 'v2' });
    expect(fromV2).toMatchObject({ eventsRead: 20, state: full.state });
    await expect(store.saveSnapshot(stream, { version: 31, state: {} })).rejects.toSatisfy(isSchemaError);
    await expect(store.saveSnapshot({ ...stream, streamId: 'nope' }, { version: 1, state: {} })).rejects.toSatisfy(isSchemaError);
    await expect(store.saveSnapshot(stream, { version: 30, state: { bad: 10n } })).rejects.toSatisfy(isSchemaError);
  });

  it('as-of read: the stream as it was at a given time', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('asof'), streamId: 'history' };
    const r1 = await store.append(stream, [placed(1), placed(2)]);
    await sleep(20);
    const between = new Date();
    await sleep(20);
    await store.append(stream, [placed(3)]);
    const v = (events: RecordedEvent[]) => events.map((e) => e.streamVersion);
    expect(v(await store.readStream(stream, { asOf: between }))).toEqual([1, 2]);
    expect(v(await store.readStream(stream, { asOf: (r1.events[1] as RecordedEvent).recordedAt }))).toEqual([1, 2]);
    expect(v(await store.readStream(stream, { asOf: new Date(Date.parse((r1.events[0] as RecordedEvent).recordedAt) - 1000) }))).toEqual([]);
    expect(v(await store.readStream(stream, { asOf: new Date(Date.now() + 60_000) }))).toEqual([1, 2, 3]);
    expect(v(await store.readStream(stream, { asOf: between, direction: 'backward' }))).toEqual([2, 1]);
    await expect(store.readStream(stream, { asOf: 'yesterday' })).rejects.toSatisfy(isSchemaError);
  });

  it('archive makes a stream read-only; delete tombstones it for good', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('life');
    const archived = { tenantId, streamId: 'archived' };
    const deleted = { tenantId, streamId: 'deleted' };
    await store.append(archived, [placed(1)], { streamType: 'order' });
    await store.append(deleted, [placed(1), placed(2)]);
    await store.saveSnapshot(deleted, { version: 2, state: { x: 1 } });
    await store.archiveStream(archived);
    expect(await store.streamInfo(archived)).toMatchObject({ archived: true, deleted: false, version: 1, streamType: 'order' });
    expect((await store.readStream(archived)).length).toBe(1);
    await expect(store.append(archived, [placed(2)])).rejects.toSatisfy(isStreamClosedError);
    await store.deleteStream(deleted);
    expect(await store.readStream(deleted)).toEqual([]);
    expect(await store.loadSnapshot(deleted)).toBeNull();
    expect(await store.streamInfo(deleted)).toMatchObject({ deleted: true });
    await expect(store.append(deleted, [placed(3)])).rejects.toSatisfy(isStreamClosedError);
    await expect(store.append(deleted, [placed(3)], { expectedVersion: 'no_stream' })).rejects.toSatisfy(isStreamClosedError);
    const never = { tenantId, streamId: 'never-written' };
    await store.deleteStream(never);
    await expect(store.append(never, [placed(1)])).rejects.toSatisfy(isStreamClosedError);
    const remaining = await readAllVisible(store, { tenantId }, 1);
    expect(remaining.events.map((e) => e.streamId)).toEqual(['archived']);
    expect((await store.readAll({ tenantId: ALL_TENANTS, limit: 100_000 })).events.some((e) => e.tenantId === tenantId && e.streamId === 'deleted')).toBe(false);
  });
}

async function foldTo(store: Parameters<typeof aggregateStream>[0], stream: { tenantId: string; streamId: string }, version: number): Promise<Sum> {
  const events = await store.readStream(stream, { toVersion: version });
  return events.reduce(evolve, initialState());
}
