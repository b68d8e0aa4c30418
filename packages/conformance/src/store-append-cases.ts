import {
  ConcurrencyError,
  isConcurrencyError,
  isDuplicateEventError,
  isSchemaError,
  uuidv7,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type StreamRef,
} from '@causeway/core';
import { expect, it } from 'vitest';
import type { StoreSuiteContext } from './store-suite.js';
import { uniqueTenant } from './store-harness.js';

export function placed(n: number, extra: Partial<NewEvent> = {}): NewEvent {
  return { eventType: 'test.item.placed', data: { n, label: `item ${n}`, nested: { list: [1, 'two', null, true] } }, ...extra };
}

async function expectConflict(store: EventStore, stream: StreamRef, expected: ExpectedVersion, actual: number): Promise<void> {
  const error = await store.append(stream, [placed(99)], { expectedVersion: expected }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(isConcurrencyError(error), `expected a ConcurrencyError for ${String(expected)}, got ${String(error)}`).toBe(true);
  const c = error as ConcurrencyError;
  expect(c.stream).toBe(stream.streamId);
  expect(c.expected).toBe(expected);
  expect(c.actual).toBe(actual);
}

export function appendCases(ctx: StoreSuiteContext): void {
  it('appends and reads back every envelope field exactly', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('fields'), streamId: 'order-1' };
    const cause = uuidv7();
    const event: NewEvent = {
      eventId: uuidv7(),
      eventType: 'test.order.placed',
      eventVersion: 3,
      occurredAt: '2026-01-02T03:04:05.678Z',
      correlationId: 'corr-1',
      causationId: cause,
      producer: 'shop.orders',
      data: { orderId: 'o-1', lines: [{ sku: 'A', qty: 2, price: 9.5 }], note: 'ünïcødé ✓ "quoted"; drop' },
      metadata: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', region: 'eu' },
    };
    const result = await store.append(stream, [event], { expectedVersion: 'no_stream', streamType: 'order' });
    expect(result.written).toBe(true);
    expect(result.nextExpectedVersion).toBe(1);
    const [read] = await store.readStream(stream);
    expect(read).toEqual(result.events[0]);
    expect(read).toMatchObject({ ...event, tenantId: stream.tenantId, streamId: 'order-1', streamVersion: 1 });
    expect(typeof read?.recordedAt).toBe('string');
    expect(Number.isNaN(Date.parse(read?.recordedAt ?? ''))).toBe(false);
    expect(read?.position.tx).toBeTypeOf('bigint');
    const info = await store.streamInfo(stream);
    expect(info).toMatchObject({ version: 1, streamType: 'order', archived: false, deleted: false });
  });

  it('fills defaults: UUIDv7 id, version 1, correlation = own id, no causation', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('defaults'), streamId: 's' };
    const { events } = await store.append(stream, [placed(1)]);
    const e = events[0];
    expect(e?.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(e?.eventVersion).toBe(1);
    expect(e?.correlationId).toBe(e?.eventId);
    expect(e?.causationId).toBeNull();
    expect(e?.tenantId).toBe(stream.tenantId);
  });

  it('enforces every expectedVersion mode inside the write', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('expected');
    const s = (id: string): StreamRef => ({ tenantId, streamId: id });
    await expectConflict(store, s('a'), 'exists', 0);
    await expectConflict(store, s('a'), 3, 0);
    await store.append(s('a'), [placed(1)], { expectedVersion: 'no_stream' });
    await expectConflict(store, s('a'), 'no_stream', 1);
    await expectConflict(store, s('a'), 0, 1);
    await expectConflict(store, s('a'), 2, 1);
    expect((await store.append(s('a'), [placed(2)], { expectedVersion: 'exists' })).nextExpectedVersion).toBe(2);
    expect((await store.append(s('a'), [placed(3), placed(4)], { expectedVersion: 2 })).nextExpectedVersion).toBe(4);
    expect((await store.append(s('a'), [placed(5)], { expectedVersion: 'any' })).nextExpectedVersion).toBe(5);
    expect((await store.append(s('b'), [placed(1)], { expectedVersion: 0 })).nextExpectedVersion).toBe(1);
    expect((await store.append(s('c'), [placed(1)])).nextExpectedVersion).toBe(1);
    const versions = (await store.readStream(s('a'))).map((e) => e.streamVersion);
    expect(versions).toEqual([1, 2, 3, 4, 5]);
  });

  it('a refused append leaves the stream untouched', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('untouched'), streamId: 'x' };
    await store.append(stream, [placed(1), placed(2)]);
    const before = await store.readStream(stream);
    await expect(store.append(stream, [placed(3), placed(4)], { expectedVersion: 1 })).rejects.toSatisfy(isConcurrencyError);
    await expect(store.append(stream, [placed(3), { eventType: 'BadName', data: {} }])).rejects.toSatisfy(isSchemaError);
    await expect(store.append(stream, [placed(3), { eventType: 'test.item.placed', data: { f: () => 1 } }])).rejects.toSatisfy(isSchemaError);
    await expect(store.append(stream, [placed(3), placed(4, { eventId: before[0]?.eventId as string })])).rejects.toSatisfy(isDuplicateEventError);
    expect(await store.readStream(stream)).toEqual(before);
    expect((await store.streamInfo(stream))?.version).toBe(2);
  });

  it('re-appending the same event ids at the same position succeeds without writing', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('idem'), streamId: 'order' };
    const first = await store.append(stream, [placed(1)], { expectedVersion: 'no_stream' });
    const batch = [placed(2, { eventId: uuidv7() }), placed(3, { eventId: uuidv7() })];
    const written = await store.append(stream, batch, { expectedVersion: 1 });
    // the caller retries after a timeout: same ids, same expected version
    const again = await store.append(stream, batch, { expectedVersion: 1 });
    expect(again.written).toBe(false);
    expect(again.nextExpectedVersion).toBe(3);
    expect(again.events.map((e) => e.eventId)).toEqual(written.events.map((e) => e.eventId));
    expect(again.events.map((e) => e.position)).toEqual(written.events.map((e) => e.position));
    const sameFirst = await store.append(stream, first.events, { expectedVersion: 'no_stream' });
    expect(sameFirst.written).toBe(false);
    expect((await store.append(stream, batch, { expectedVersion: 'any' })).written).toBe(false);
    expect((await store.readStream(stream)).length).toBe(3);
  });

  it('an event id already stored elsewhere is an error, not a silent success', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('dupid');
    const a = { tenantId, streamId: 'a' };
    const b = { tenantId, streamId: 'b' };
    const { events } = await store.append(a, [placed(1), placed(2)]);
    const id1 = events[0]?.eventId as string;
    const id2 = events[1]?.eventId as string;
    await expect(store.append(b, [placed(1, { eventId: id1 })])).rejects.toSatisfy(isDuplicateEventError);
    // same ids, but at another position of the same stream
    await expect(store.append(a, [placed(1, { eventId: id1 }), placed(2, { eventId: id2 })], { expectedVersion: 2 })).rejects.toSatisfy(isDuplicateEventError);
    // some ids stored, some new
    await expect(store.append(a, [placed(1, { eventId: id2 }), placed(3)], { expectedVersion: 'any' })).rejects.toSatisfy(isDuplicateEventError);
    // out of order
    await expect(store.append(a, [placed(2, { eventId: id2 }), placed(1, { eventId: id1 })], { expectedVersion: 0 })).rejects.toSatisfy(isDuplicateEventError);
    expect(await store.streamInfo(b)).toBeNull();
    expect((await store.readStream(a)).length).toBe(2);
  });

  it('names with quotes, ";", unicode and whitespace round-trip exactly; bad names get a clear error', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('names');
    const names = ["o'brien\"; DROP TABLE events; --", 'naïve 日本語 עברית 🎉', '  leading and trailing  ', 'tab\tnew\nline', '$1', '\\x00', 'x'.repeat(1024)];
    for (const streamId of names) {
      await store.append({ tenantId, streamId }, [placed(1)]);
      const [e] = await store.readStream({ tenantId, streamId });
      expect(e?.streamId).toBe(streamId);
    }
    const tooLong = 'y'.repeat(10 * 1024);
    const error = await store.append({ tenantId, streamId: tooLong }, [placed(1)]).catch((e: unknown) => e);
    expect(isSchemaError(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/stream id must be at most 1024 bytes/);
    for (const bad of ["acme'; --", 'has space', 'ünï', 't'.repeat(10 * 1024), '']) {
      const e = await store.append({ tenantId: bad, streamId: 's' }, [placed(1)]).catch((x: unknown) => x);
      expect(isSchemaError(e), `tenant ${JSON.stringify(bad.slice(0, 20))}`).toBe(true);
      expect(String((e as Error).message)).toMatch(/tenant id/);
    }
    const nul = await store.append({ tenantId, streamId: 'a\u0000b' }, [placed(1)]).catch((x: unknown) => x);
    expect(String((nul as Error).message)).toMatch(/NUL/);
  });

  it('refuses an event over the size limit before writing anything', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('size'), streamId: 'big' };
    const big = 'x'.repeat(1024 * 1024 + 10);
    const error = await store.append(stream, [placed(1), { eventType: 'test.blob.stored', data: { big } }]).catch((e: unknown) => e);
    expect(isSchemaError(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/limit is 1048576 bytes/);
    expect(await store.streamInfo(stream)).toBeNull();
    const ok = 'x'.repeat(1024 * 1024 - 100);
    await store.append(stream, [{ eventType: 'test.blob.stored', data: { ok } }]);
    expect(((await store.readStream(stream))[0]?.data as { ok: string }).ok.length).toBe(ok.length);
  });
}
