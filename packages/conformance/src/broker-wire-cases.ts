import {
  isClosedError,
  isMessageTooLargeError,
  uuidv7,
  type EventDelivery,
  type Message,
} from '@causeway/core';
import { expect, it } from 'vitest';
import { itWhen } from './capability-case.js';
import type { CaseContext } from './broker-context.js';
import { uniqueTopic } from './broker-harness.js';
import { Collector, idsOf, keyedMessages, quietPeriod, testEvent, WAIT_MS } from './broker-kit.js';
import { waitFor } from './store-harness.js';

/** What travels: exact round-trip, topic isolation, undecodable input, size limits, names, dedup. */
export function wireCases(ctx: CaseContext): void {
  it('round-trips envelope, stream facts, metadata, key and trace context exactly', async () => {
    const topic = uniqueTopic('roundtrip');
    const c = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, c.handler());
    const full: Message = {
      event: {
        ...testEvent(1, {
          tenantId: 'tenant-ü'.replace('ü', 'u'),
          causationId: uuidv7(),
          metadata: { region: 'eu-west', note: 'a "quoted" ünïcødé value, with\ttab' },
          data: { text: 'grüße 👋 "quotes" \\ back', nested: { list: [1, 2.5, null, true, 'x'], empty: {} }, big: 9007199254740991 },
        }),
        streamId: 'order-ü/42 with spaces',
        streamVersion: 7,
        recordedAt: '2026-11-23T10:00:00.123Z',
      },
      key: 'custom-key ü',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
    };
    const plain: Message = { event: testEvent(2, { data: null }) };
    const stored: Message = { event: { ...testEvent(3), streamId: 'stream-3', streamVersion: 1 } };
    await ctx.publisher().publish(topic, [full, plain, stored]);
    await c.waitForIds(idsOf([full, plain, stored]), 'three messages');

    const got = (m: Message) => c.received.find((r) => r.id === m.event.eventId)?.delivery as EventDelivery;
    const a = got(full);
    expect(a.kind).toBe('event');
    expect(a.event).toEqual(full.event);
    expect(a.key).toBe('custom-key ü');
    expect(a.traceparent).toBe(full.traceparent);
    expect(a.tracestate).toBe(full.tracestate);
    expect(a.attempt).toBe(1);
    expect(a.topic).toBe(topic);
    expect(a.group).toBe('g');
    expect(typeof a.brokerId).toBe('string');
    const b = got(plain);
    expect(b.event).toEqual(plain.event);
    expect(b.key).toBe(plain.event.eventId); // default key: the event id when there is no stream
    expect(b.traceparent).toBeUndefined();
    expect(got(stored).key).toBe('stream-3'); // default key: the stream id
  });

  it('keeps topics apart under concurrent publishing', async () => {
    const [ta, tb] = [uniqueTopic('iso-a'), uniqueTopic('iso-b')];
    const [ca, cb] = [new Collector(), new Collector()];
    await ctx.subscriber().subscribe(ta, { group: 'g' }, ca.handler());
    await ctx.subscriber().subscribe(tb, { group: 'g' }, cb.handler());
    const [ma, mb] = [keyedMessages(40, 8, 'a'), keyedMessages(40, 8, 'b')];
    const pub = ctx.publisher();
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        Promise.all([pub.publish(ta, ma.slice(i * 5, i * 5 + 5)), pub.publish(tb, mb.slice(i * 5, i * 5 + 5))]),
      ),
    );
    await ca.waitForIds(idsOf(ma), 'topic A');
    await cb.waitForIds(idsOf(mb), 'topic B');
    await quietPeriod(200);
    expect(ca.ids()).toEqual(new Set(idsOf(ma)));
    expect(cb.ids()).toEqual(new Set(idsOf(mb)));
  });

  it('hands an undecodable message to the handler and keeps going', async () => {
    const topic = uniqueTopic('undecodable');
    const c = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, c.handler());
    await ctx.harness().publishRaw(topic, new TextEncoder().encode('{"specversion": "1.0", this is not JSON'));
    const good = keyedMessages(1, 1);
    await ctx.publisher().publish(topic, good);
    await c.waitForIds(idsOf(good), 'the valid message after the bad one');
    await waitFor(() => c.received.some((r) => r.kind === 'undecodable'), WAIT_MS, 'the undecodable delivery');
    const bad = c.received.find((r) => r.kind === 'undecodable')?.delivery;
    expect(bad?.kind).toBe('undecodable');
    if (bad?.kind === 'undecodable') {
      expect(typeof bad.error.code).toBe('string');
      expect(bad.error.message.length).toBeGreaterThan(0);
      expect(bad.raw.body.length).toBeGreaterThan(0);
      expect(bad.attempt).toBe(1);
    }
  });

  it('refuses a message over maxMessageBytes at publish, sending nothing of the call', async () => {
    const topic = uniqueTopic('too-large');
    const c = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, c.handler());
    const pub = ctx.publisher();
    const big: Message = { event: testEvent(1, { data: { blob: 'x'.repeat(ctx.settings.maxMessageBytes + 1) } }) };
    const small = keyedMessages(1, 1);
    const error = await pub.publish(topic, [...small, big]).then(() => null, (e: unknown) => e);
    expect(isMessageTooLargeError(error), String(error)).toBe(true);
    expect((error as Error).message).toContain(String(ctx.settings.maxMessageBytes));
    const marker = keyedMessages(1, 1, 'marker');
    await pub.publish(topic, marker);
    await c.waitForIds(idsOf(marker), 'the marker');
    await quietPeriod(300);
    expect(c.ids()).toEqual(new Set(idsOf(marker)));
  });

  it('rejects topic and group names that a broker would read as wildcards or separators', async () => {
    const sub = ctx.subscriber();
    const pub = ctx.publisher();
    const msg = keyedMessages(1, 1);
    for (const topic of ['orders.*', 'orders.>', '#', 'orders.#', 'a..b', '', '.a', 'a.', 'a b', 'a/b', '*']) {
      await expect(sub.subscribe(topic, { group: 'g' }, () => undefined), `topic ${JSON.stringify(topic)}`).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
      await expect(pub.publish(topic, msg), `publish to ${JSON.stringify(topic)}`).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    }
    for (const group of ['a.b', 'g*', '>', '', 'x y', '#']) {
      await expect(sub.subscribe(uniqueTopic('names'), { group }, () => undefined), `group ${JSON.stringify(group)}`).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    }
  });

  it('flushes publishes started before close(), then refuses new ones', async () => {
    const topic = uniqueTopic('close-pub');
    const c = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, c.handler());
    const pub = ctx.harness().publisher();
    const messages = keyedMessages(20, 5);
    const pending = messages.map((m) => pub.publish(topic, [m]));
    const closing = pub.close();
    expect(pub.close()).toBe(closing);
    await Promise.all(pending);
    await closing;
    await c.waitForIds(idsOf(messages), 'every message published before close');
    const after = await pub.publish(topic, keyedMessages(1, 1)).then(() => null, (e: unknown) => e);
    expect(isClosedError(after), String(after)).toBe(true);
  });

  itWhen(ctx.capabilities.brokerDedup, 'the adapter declares no broker-side dedup', 'drops a re-publish of the same event id (broker dedup)', async () => {
    const topic = uniqueTopic('dedup');
    const c = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, c.handler());
    const pub = ctx.publisher();
    const once = keyedMessages(3, 3);
    await pub.publish(topic, once);
    await pub.publish(topic, once);
    const marker = keyedMessages(1, 1, 'marker');
    await pub.publish(topic, marker);
    await c.waitForIds([...idsOf(once), ...idsOf(marker)], 'originals and marker');
    await quietPeriod(500);
    expect(c.duplicates()).toBe(0);
  });
}
