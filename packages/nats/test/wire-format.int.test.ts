import { Collector, keyedMessages, testEvent, uniqueTopic, waitFor } from '@causeway/conformance';
import type { Message, UndecodableDelivery } from '@causeway/core';
import { NatsPublisher, NatsSubscriber, streamNameOf, subjectOf } from '@causeway/nats';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAckSubject } from '../src/pull-feed.js';
import { deleteStreams, NATS_URL, natsAvailable, rawConnection, skipBecauseNoServer, uniquePrefix } from './support.js';

/** What the NATS adapter puts on the server, byte for byte: headers, stream and consumer declarations, limits. */

describe('stream names', () => {
  it('map subjects injectively into [A-Za-z0-9_-], at most 255 characters', () => {
    const subjects = ['a.b_c', 'a_b.c', 'a.b-c', 'a-b.c', 'a__b', 'a._b', 'a_.b', 'a-_b', 'a_-b', 'a--b', 'a.-b', 'a-.b', 'a.x.b', 'ab'];
    const names = subjects.map(streamNameOf);
    expect(new Set(names).size).toBe(subjects.length);
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]{1,255}$/);
    expect(streamNameOf('causeway.orders')).toBe('causeway_orders');
    expect(streamNameOf('causeway.order_placed')).toBe('causeway_order-_placed');
    expect(streamNameOf('causeway.order-placed')).toBe('causeway_order--placed');
  });

  it('hash what would pass 255 characters, keeping long subjects apart', () => {
    const long = `p.${'x_'.repeat(100)}`;
    const [a, b] = [streamNameOf(`${long}a`), streamNameOf(`${long}b`)];
    expect(a).not.toBe(b);
    for (const name of [a, b]) {
      expect(name.length).toBeLessThanOrEqual(255);
      expect(name).toMatch(/^[A-Za-z0-9_-]+-h[0-9a-f]{32}$/);
    }
  });
});

describe('ack subjects', () => {
  it('give the delivery count and stream sequence in both server formats', () => {
    expect(parseAckSubject('$JS.ACK.orders.billing.3.42.17.1795435054466146977.0')).toEqual({ deliveryCount: 3, streamSequence: 42 });
    expect(parseAckSubject('$JS.ACK.hub.ACCHASH.orders.billing.2.7.5.1795435054466146977.4.abc')).toEqual({ deliveryCount: 2, streamSequence: 7 });
    expect(parseAckSubject('_INBOX.x.y')).toBeUndefined();
    expect(parseAckSubject('$JS.ACK.orders.billing.x.7.5.1.0')).toBeUndefined();
  });
});

describe('options', () => {
  it('are validated at construction', () => {
    expect(() => new NatsPublisher({ subjectPrefix: 'a.*' })).toThrow(/subjectPrefix/);
    expect(() => new NatsPublisher({ duplicateWindowMs: 10_000, maxAgeMs: 5_000 })).toThrow(/duplicateWindowMs/);
    expect(() => new NatsPublisher({ publishTimeoutMs: 0 })).toThrow(/publishTimeoutMs/);
    expect(() => new NatsSubscriber({ maxDeliver: 0 })).toThrow(/maxDeliver/);
    expect(() => new NatsSubscriber({ ackTimeoutMs: 1.5 })).toThrow(/ackTimeoutMs/);
    expect(() => new NatsSubscriber({ servers: [] })).toThrow(/servers/);
  });
});

describe('an unreachable server', () => {
  // Port 1 on loopback: nothing listens, connections are refused at once.
  const servers = 'nats://causeway:s3cret-pw@127.0.0.1:1';

  it('fails publish with AdapterError after publishTimeoutMs, never naming the password', async () => {
    const reports: string[] = [];
    const pub = new NatsPublisher({ servers, publishTimeoutMs: 400, onError: (e) => reports.push(String(e)) });
    const started = Date.now();
    const error = await pub.publish('orders', keyedMessages(1, 1)).then(() => null, (e: unknown) => e as Error & { code?: string });
    expect(error?.code).toBe('ADAPTER_FAILED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(`${error?.message} ${reports.join(' ')}`).not.toContain('s3cret');
    const closing = Date.now();
    await pub.close();
    expect(Date.now() - closing).toBeLessThan(2_000);
  });

  it('fails subscribe with AdapterError after subscribeTimeoutMs', async () => {
    const sub = new NatsSubscriber({ servers, subscribeTimeoutMs: 400, onError: () => undefined });
    await expect(sub.subscribe('orders', { group: 'g' }, () => undefined)).rejects.toMatchObject({ code: 'ADAPTER_FAILED' });
    await sub.close();
  });
});

if (await natsAvailable()) {
  describe('on the server', () => {
    const subjectPrefix = uniquePrefix('wire');
    const base = { servers: NATS_URL, subjectPrefix, onError: () => undefined };
    let nc: NatsConnection;
    const open: Array<{ close(): Promise<void> }> = [];
    const publisher = (extra: object = {}) => {
      const p = new NatsPublisher({ ...base, ...extra });
      open.push(p);
      return p;
    };
    const subscriber = (extra: object = {}) => {
      const s = new NatsSubscriber({ ...base, ...extra });
      open.push(s);
      return s;
    };
    const streamOf = (topic: string) => streamNameOf(subjectOf(subjectPrefix, topic));

    beforeAll(async () => {
      nc = await rawConnection();
    });
    afterAll(async () => {
      await Promise.all(open.map((x) => x.close().catch(() => undefined)));
      await deleteStreams(nc, subjectPrefix);
      await nc.close();
    });

    it('publishes CloudEvents NATS binary mode: percent-encoded ce- headers, JSON body, Nats-Msg-Id', async () => {
      const topic = uniqueTopic('wire');
      const message: Message = {
        event: { ...testEvent(7, { metadata: { region: 'eu wést' } }), streamId: 'order-ü/42 x', streamVersion: 3 },
        key: 'key with spaces',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      };
      await publisher().publish(topic, [message]);
      const jsm = await jetstreamManager(nc);
      const stored = await jsm.streams.getMessage(streamOf(topic), { seq: 1 });
      const h = stored?.header;
      expect(h?.get('ce-specversion')).toBe('1.0');
      expect(h?.get('ce-id')).toBe(message.event.eventId);
      expect(h?.get('ce-type')).toBe('conformance.thing.happened');
      expect(h?.get('ce-subject')).toBe('order-%C3%BC/42%20x');
      expect(h?.get('ce-sequence')).toBe('3');
      expect(h?.get('ce-partitionkey')).toBe('key%20with%20spaces');
      expect(h?.get('ce-region')).toBe('eu%20w%C3%A9st');
      expect(h?.get('content-type')).toBe('application/json');
      expect(h?.get('traceparent')).toBe(message.traceparent);
      expect(h?.get('Nats-Msg-Id')).toBe(message.event.eventId);
      expect(JSON.parse(new TextDecoder().decode(stored?.data))).toEqual({ n: 7 });
    });

    it('declares a file-backed limits stream per topic with the configured windows', async () => {
      const topic = uniqueTopic('stream');
      await publisher({ duplicateWindowMs: 60_000, maxAgeMs: 3_600_000 }).publish(topic, keyedMessages(1, 1));
      const info = await (await jetstreamManager(nc)).streams.info(streamOf(topic));
      expect(info.config.subjects).toEqual([subjectOf(subjectPrefix, topic)]);
      expect(info.config.storage).toBe(StorageType.File);
      expect(info.config.retention).toBe(RetentionPolicy.Limits);
      expect(info.config.duplicate_window).toBe(60_000 * 1e6);
      expect(info.config.max_age).toBe(3_600_000 * 1e6);
    });

    it('declares a durable explicit-ack consumer per group; an existing one resumes with updated ack_wait', async () => {
      const topic = uniqueTopic('consumer');
      const first = await subscriber({ ackTimeoutMs: 4_000 }).subscribe(topic, { group: 'billing', startFrom: 'earliest' }, () => undefined);
      const jsm = await jetstreamManager(nc);
      const info = await jsm.consumers.info(streamOf(topic), 'billing');
      expect(info.config.durable_name).toBe('billing');
      expect(info.config.ack_policy).toBe(AckPolicy.Explicit);
      expect(info.config.ack_wait).toBe(4_000 * 1e6);
      expect(info.config.max_deliver).toBe(-1);
      expect(info.config.deliver_policy).toBe(DeliverPolicy.All);
      await first.close();
      const defaultPending = info.config.max_ack_pending;
      await subscriber({ ackTimeoutMs: 7_000, maxAckPending: 1 }).subscribe(topic, { group: 'billing', startFrom: 'latest' }, () => undefined);
      const again = await jsm.consumers.info(streamOf(topic), 'billing');
      expect(again.config.ack_wait).toBe(7_000 * 1e6);
      expect(again.config.max_ack_pending).toBe(1);
      expect(defaultPending).not.toBe(1);
      // A subscriber that leaves maxAckPending unset keeps what the consumer has.
      await subscriber({ ackTimeoutMs: 7_000 }).subscribe(topic, { group: 'billing' }, () => undefined);
      expect((await jsm.consumers.info(streamOf(topic), 'billing')).config.max_ack_pending).toBe(1);
      expect(again.config.deliver_policy).toBe(DeliverPolicy.All);
      await subscriber().subscribe(topic, { group: 'late' }, () => undefined);
      expect((await jsm.consumers.info(streamOf(topic), 'late')).config.deliver_policy).toBe(DeliverPolicy.New);
    });

    it('declares its consumer again when it is deleted under a live subscription', async () => {
      const topic = uniqueTopic('redeclare');
      const c = new Collector();
      await subscriber().subscribe(topic, { group: 'g' }, c.handler());
      const pub = publisher();
      const before = keyedMessages(2, 2, 'before');
      await pub.publish(topic, before);
      await c.waitForIds(before.map((m) => m.event.eventId), 'messages before the deletion');
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.delete(streamOf(topic), 'g');
      await waitFor(() => jsm.consumers.info(streamOf(topic), 'g').then(() => true, () => false), 15_000, 'the consumer to be declared again');
      const after = keyedMessages(2, 2, 'after');
      await pub.publish(topic, after);
      await c.waitForIds(after.map((m) => m.event.eventId), 'messages after the consumer came back', 15_000);
    });

    it('decodes a CloudEvent another producer published in binary mode', async () => {
      const topic = uniqueTopic('foreign');
      const c = new Collector();
      await subscriber().subscribe(topic, { group: 'g' }, c.handler());
      const h = headers();
      const attributes: Record<string, string> = {
        'ce-specversion': '1.0',
        'ce-id': '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
        'ce-type': 'shop.order.placed',
        'ce-source': 'urn:svc:other',
        'ce-time': '2026-11-23T10:00:00Z',
        'ce-tenantid': 'tenant-a',
        'ce-correlationid': '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2c',
        'ce-eventversion': '1',
        'content-type': 'application/json',
      };
      for (const [name, value] of Object.entries(attributes)) h.set(name, value);
      await jetstream(nc).publish(subjectOf(subjectPrefix, topic), JSON.stringify({ total: 5 }), { headers: h });
      await waitFor(() => c.received.length > 0, 10_000, 'the foreign event');
      const d = c.received[0]?.delivery;
      expect(d?.kind, d?.kind === 'undecodable' ? d.error.message : '').toBe('event');
      if (d?.kind === 'event') {
        expect(d.event.eventId).toBe(attributes['ce-id']);
        expect(d.event.data).toEqual({ total: 5 });
        expect(d.key).toBe(attributes['ce-id']);
      }
    });

    it('hands over bad percent-encoding and oversized bodies as undecodable, the size checked before parsing', async () => {
      const topic = uniqueTopic('undecodable');
      const c = new Collector();
      await subscriber({ maxMessageBytes: 1_000 }).subscribe(topic, { group: 'g' }, c.handler());
      const js = jetstream(nc);
      const h = headers();
      h.set('ce-id', 'bad%ZZ');
      h.set('ce-partitionkey', 'k%201');
      await js.publish(subjectOf(subjectPrefix, topic), '{}', { headers: h });
      await js.publish(subjectOf(subjectPrefix, topic), `{"not json${'x'.repeat(1_200)}`);
      await waitFor(() => c.received.length >= 2, 10_000, 'two undecodable deliveries');
      const [bad, big] = c.received.map((r) => r.delivery as UndecodableDelivery);
      expect(bad?.kind).toBe('undecodable');
      expect(bad?.error.code).toBe('SCHEMA_INVALID');
      expect(bad?.key).toBe('k 1');
      expect(bad?.raw.headers['ce-id']).toBe('bad%ZZ');
      expect(big?.kind).toBe('undecodable');
      expect(big?.error.code).toBe('MESSAGE_TOO_LARGE');
      expect(big?.raw.body.length).toBe(1_210);
    });

    it("refuses a message over the server's max_payload before sending any of the call", async () => {
      const topic = uniqueTopic('max-payload');
      const pub = publisher({ maxMessageBytes: 4 * 1024 * 1024 });
      const small = keyedMessages(1, 1);
      const big: Message = { event: testEvent(1, { data: { blob: 'x'.repeat(1024 * 1024 + 10) } }) };
      await pub.publish(topic, small); // the stream exists, so a stray send would show
      const error = await pub.publish(topic, [...keyedMessages(1, 1), big]).then(() => null, (e: unknown) => e as Error & { code?: string });
      expect(error?.code).toBe('MESSAGE_TOO_LARGE');
      expect(error?.message).toContain('max_payload');
      const info = await (await jetstreamManager(nc)).streams.info(streamOf(topic));
      expect(info.state.messages).toBe(1);
    });

    it('stops offering a message to the group after maxDeliver deliveries', async () => {
      const topic = uniqueTopic('max-deliver');
      const [poison] = keyedMessages(1, 1, 'poison');
      const c = new Collector();
      await subscriber({ maxDeliver: 2 }).subscribe(topic, { group: 'g' }, c.handler(0, async (d) => {
        if (d.kind === 'event' && d.event.eventId === poison?.event.eventId) await d.nack();
      }));
      const pub = publisher();
      await pub.publish(topic, [poison as Message]);
      await waitFor(() => c.count(poison?.event.eventId as string) >= 2, 10_000, 'two deliveries');
      const marker = keyedMessages(1, 1, 'marker');
      await pub.publish(topic, marker);
      await c.waitForIds([marker[0]?.event.eventId as string], 'the marker');
      await new Promise((r) => setTimeout(r, 500)); // nothing more may come: asserting an absence
      expect(c.count(poison?.event.eventId as string)).toBe(2);
    });
  });
} else {
  skipBecauseNoServer('NATS wire format and declarations');
}
