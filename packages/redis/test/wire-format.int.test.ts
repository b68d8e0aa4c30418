import { Collector, keyedMessages, testEvent, uniqueTopic, waitFor } from '@causeway/conformance';
import { isMessageTooLargeError, isSchemaError, type Message, type UndecodableDelivery } from '@causeway/core';
import { delayKey, RedisPublisher, RedisSubscriber, REDIS_ENTRY_FIELDS, streamKey } from '@causeway/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeys, rawClient, REDIS_URL, redisAvailable, skipBecauseNoServer, uniquePrefix, type RawClient } from './support.js';

/** What the adapter writes to and reads from Redis, checked with the raw client. */
if (await redisAvailable()) {
  describe('redis wire format', () => {
    const prefix = uniquePrefix('wire');
    let raw: RawClient;
    const open: Array<{ close(): Promise<void> }> = [];
    const publisher = (options: { maxLen?: number } = {}) => track(new RedisPublisher({ url: REDIS_URL, prefix, ...options }));
    const subscriber = (options: { maxMessageBytes?: number } = {}) => track(new RedisSubscriber({ url: REDIS_URL, prefix, ackTimeoutMs: 2_000, ...options }));
    function track<T extends { close(): Promise<void> }>(x: T): T {
      open.push(x);
      return x;
    }
    const readEntries = async (topic: string) =>
      (await raw.xRange(streamKey(prefix, topic), '-', '+')) as Array<{ id: string; message: Record<string, string> }>;

    beforeAll(async () => {
      raw = rawClient();
      raw.on('error', () => undefined);
      await raw.connect();
    });
    afterAll(async () => {
      await Promise.all(open.map((x) => x.close()));
      await deleteKeys(raw, prefix);
      raw.destroy();
    });

    it('writes one entry per message, in array order, to <prefix>:<topic> with the CloudEvent in `cloudevent`', async () => {
      const topic = uniqueTopic('fields');
      const traced: Message = {
        event: { ...testEvent(1), streamId: 'order-1', streamVersion: 3 },
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'congo=t61rcWkgMzE',
      };
      const messages = [traced, ...keyedMessages(4, 2)];
      await publisher().publish(topic, messages);
      const entries = await readEntries(topic);
      expect(entries.map((e) => e.message[REDIS_ENTRY_FIELDS.id])).toEqual(messages.map((m) => m.event.eventId));
      const first = entries[0]?.message ?? {};
      expect(Object.keys(first)).toEqual(['cloudevent', 'id', 'type', 'partitionkey', 'traceparent']);
      expect(first.type).toBe(traced.event.eventType);
      expect(first.partitionkey).toBe('order-1');
      expect(first.traceparent).toBe(traced.traceparent);
      const ce = JSON.parse(first.cloudevent ?? '{}') as Record<string, unknown>;
      expect(ce).toMatchObject({
        specversion: '1.0',
        id: traced.event.eventId,
        type: traced.event.eventType,
        subject: 'order-1',
        partitionkey: 'order-1',
        traceparent: traced.traceparent,
        tracestate: 'congo=t61rcWkgMzE',
        data: { n: 1 },
      });
      // No traceparent on the message: no field for it.
      expect(Object.keys(entries[1]?.message ?? {})).toEqual(['cloudevent', 'id', 'type', 'partitionkey']);
      expect(entries[1]?.message.partitionkey).toBe('k0');
    });

    it('hands entries it cannot decode to the handler as undecodable, with what arrived', async () => {
      const topic = uniqueTopic('undecodable');
      const c = new Collector();
      await subscriber({ maxMessageBytes: 1_000 }).subscribe(topic, { group: 'g' }, c.handler());
      const key = streamKey(prefix, topic);
      await raw.sendCommand(['XADD', key, '*', 'other', 'x', 'partitionkey', 'pk-1']);
      await raw.sendCommand(['XADD', key, '*', 'cloudevent', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]);
      await raw.sendCommand(['XADD', key, '*', 'cloudevent', JSON.stringify({ specversion: '1.0', pad: 'x'.repeat(2_000) })]);
      await raw.sendCommand(['XADD', key, '*', 'cloudevent', JSON.stringify({ specversion: '1.0', id: 'no-type' })]);
      const good = keyedMessages(1, 1);
      await publisher().publish(topic, good);
      await c.waitForAcked([good[0]?.event.eventId as string], 'the good message');
      await waitFor(() => c.received.filter((r) => r.kind === 'undecodable').length === 4, 10_000, 'four undecodable deliveries');
      const bad = c.received.filter((r) => r.kind === 'undecodable').map((r) => r.delivery as UndecodableDelivery);
      const [noField, notUtf8, tooLarge, notCloudEvent] = bad;
      expect(noField?.raw.headers).toEqual({ other: 'x', partitionkey: 'pk-1' });
      expect(noField?.key).toBe('pk-1');
      expect(noField?.raw.body.length).toBe(0);
      expect(isSchemaError(noField?.error)).toBe(true);
      expect(isSchemaError(notUtf8?.error)).toBe(true);
      expect([...(notUtf8?.raw.body ?? [])]).toEqual([0x7b, 0xff, 0xfe, 0x7d]);
      expect(isMessageTooLargeError(tooLarge?.error)).toBe(true);
      expect(isSchemaError(notCloudEvent?.error)).toBe(true);
      expect(bad.every((d) => d.attempt === 1 && /^\d+-\d+$/.test(d.brokerId))).toBe(true);
    });

    it('trims with MAXLEN ~ only when maxLen is set', async () => {
      const [kept, trimmed] = [uniqueTopic('untrimmed'), uniqueTopic('trimmed')];
      const untrimmed = publisher();
      const trimming = publisher({ maxLen: 10 });
      for (let i = 0; i < 10; i++) {
        await untrimmed.publish(kept, keyedMessages(50, 5));
        await trimming.publish(trimmed, keyedMessages(50, 5));
      }
      expect(await raw.xLen(streamKey(prefix, kept))).toBe(500);
      expect(await raw.xLen(streamKey(prefix, trimmed))).toBeLessThan(500);
    });

    it('keeps a delayed nack in the group delay set, pending, until it is due; the PEL counts attempts', async () => {
      const topic = uniqueTopic('delay-set');
      const c = new Collector();
      await subscriber().subscribe(topic, { group: 'g' }, c.handler(0, async (d) => {
        if (d.attempt === 1) await d.nack({ delayMs: 1_000 });
      }));
      const [m] = keyedMessages(1, 1);
      await publisher().publish(topic, [m as Message]);
      await waitFor(() => c.received.length === 1 && c.received[0]?.delivery.settled === true, 10_000, 'the nack');
      // settled turns true when nack() is called; its ZADD may still be on its way.
      await waitFor(async () => (await raw.zCard(delayKey(prefix, topic, 'g'))) === 1, 900, 'the delay-set entry');
      const delayed = await raw.zRangeWithScores(delayKey(prefix, topic, 'g'), 0, -1);
      expect(delayed.map((d) => d.value)).toEqual([c.received[0]?.delivery.brokerId]);
      const pending = await raw.xPendingRange(streamKey(prefix, topic), 'g', '-', '+', 10);
      expect(pending.map((p) => p.deliveriesCounter)).toEqual([1]);
      await c.waitForAcked([m?.event.eventId as string], 'the redelivery');
      expect(c.received.map((r) => r.attempt)).toEqual([1, 2]);
      expect(await raw.zCard(delayKey(prefix, topic, 'g'))).toBe(0);
      expect(await raw.xPendingRange(streamKey(prefix, topic), 'g', '-', '+', 10)).toEqual([]);
    });

    it('a closed subscription removes its consumer from the group when nothing is pending for it', async () => {
      const topic = uniqueTopic('consumers');
      const sub = subscriber();
      const s = await sub.subscribe(topic, { group: 'g' }, () => undefined);
      const messages = keyedMessages(3, 3);
      await publisher().publish(topic, messages);
      await waitFor(async () => (await raw.xPendingRange(streamKey(prefix, topic), 'g', '-', '+', 10)).length === 0 && (await raw.xInfoGroups(streamKey(prefix, topic)))[0]?.['entries-read'] === 3, 10_000, 'acks');
      expect((await raw.xInfoConsumers(streamKey(prefix, topic), 'g')).length).toBe(1);
      await s.close();
      expect(await raw.xInfoConsumers(streamKey(prefix, topic), 'g')).toEqual([]);
    });
  });
} else {
  skipBecauseNoServer('Redis wire format');
}

describe('redis options', () => {
  it('are validated at construction', () => {
    expect(() => new RedisPublisher({ prefix: 'a:b' })).toThrow(/prefix/);
    expect(() => new RedisPublisher({ url: 'http://x' })).toThrow(/url/);
    expect(() => new RedisPublisher({ publishTimeoutMs: 0 })).toThrow(/publishTimeoutMs/);
    expect(() => new RedisPublisher({ maxLen: 1.5 })).toThrow(/maxLen/);
    expect(() => new RedisSubscriber({ ackTimeoutMs: -1 })).toThrow(/ackTimeoutMs/);
    expect(() => new RedisSubscriber({ claimIntervalMs: Number.NaN })).toThrow(/claimIntervalMs/);
    expect(() => new RedisSubscriber({ maxMessageBytes: 0 })).toThrow(/maxMessageBytes/);
    let error: unknown;
    try {
      new RedisPublisher({ url: 'http://user:secret@host' });
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string }).code).toBe('INVALID_OPTIONS');
    expect(String(error)).not.toContain('secret');
  });
});
