import { Collector, keyedMessages, sleep, testEvent, uniqueTopic, waitFor } from '@causeway/conformance';
import { isMessageTooLargeError, uuidv7, type CausewayError, type EventDelivery, type Message } from '@causeway/core';
import { delayBucket, RabbitMqPublisher, RabbitMqSubscriber, Topology, type RabbitMqSubscriberOptions } from '@causeway/rabbitmq';
import type { ConfirmChannel, GetMessage } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { AMQP_URL, deleteTopology, rabbitAvailable, skipBecauseNoServer, withRawChannel } from './support.js';

/**
 * What the adapter puts on the wire and what it makes of what it finds there, read and written
 * with raw amqplib beside it; plus the RabbitMQ-specific behaviour the shared suite cannot see:
 * dead-lettering at maxDeliveries, the adapter's ack timeout, re-declaring a deleted queue,
 * and an unreachable broker.
 */
const topology = new Topology('causeway.');
const made: Array<[string, string]> = [];
const closers: Array<{ close(o?: { timeoutMs?: number }): Promise<void> }> = [];
const WAIT = 20_000;

function publisher(): RabbitMqPublisher {
  const p = new RabbitMqPublisher({ url: AMQP_URL });
  closers.push(p);
  return p;
}

function subscriber(options: RabbitMqSubscriberOptions = {}): RabbitMqSubscriber {
  const s = new RabbitMqSubscriber({ url: AMQP_URL, ...options });
  closers.push(s);
  return s;
}

function topicFor(label: string, group = 'g'): string {
  const topic = uniqueTopic(label);
  made.push([topic, group]);
  return topic;
}

async function getOne(channel: ConfirmChannel, queue: string): Promise<GetMessage> {
  let got: GetMessage | false = false;
  await waitFor(async () => {
    got = await channel.get(queue, { noAck: true });
    return got !== false;
  }, WAIT, `a message in ${queue}`);
  return got as unknown as GetMessage;
}

if (await rabbitAvailable()) {
  afterAll(async () => {
    await Promise.all(closers.map((c) => c.close({ timeoutMs: 500 }).catch(() => undefined)));
    await withRawChannel((ch) => deleteTopology(ch, topology, made));
  });

  describe('rabbitmq wire format (CloudEvents AMQP binding, binary mode)', () => {
    it('writes attributes as cloudEvents: headers, data as the JSON body, and AMQP properties', async () => {
      const topic = topicFor('wire-out');
      const event = { ...testEvent(1, { causationId: uuidv7(), metadata: { region: 'eu' } }), streamId: 'order-1', streamVersion: 3 };
      const message: Message = { event, key: 'k-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
      const msg = await withRawChannel(async (ch) => {
        const { queue } = await ch.assertQueue('', { exclusive: true });
        await ch.assertExchange(topology.exchange(topic), 'topic', { durable: true });
        await ch.bindQueue(queue, topology.exchange(topic), '#');
        await publisher().publish(topic, [message]);
        return getOne(ch, queue);
      });
      expect(msg.fields.routingKey).toBe(event.eventType);
      expect(msg.properties.contentType).toBe('application/json');
      expect(msg.properties.messageId).toBe(event.eventId);
      expect(msg.properties.deliveryMode).toBe(2);
      expect(JSON.parse(msg.content.toString('utf8'))).toEqual(event.data);
      expect(msg.properties.headers).toEqual({
        'cloudEvents:specversion': '1.0',
        'cloudEvents:id': event.eventId,
        'cloudEvents:source': event.producer,
        'cloudEvents:type': event.eventType,
        'cloudEvents:time': event.occurredAt,
        'cloudEvents:tenantid': event.tenantId,
        'cloudEvents:correlationid': event.correlationId,
        'cloudEvents:causationid': event.causationId,
        'cloudEvents:eventversion': '1',
        'cloudEvents:subject': 'order-1',
        'cloudEvents:sequence': '3',
        'cloudEvents:region': 'eu',
        'cloudEvents:partitionkey': 'k-1',
        traceparent: message.traceparent,
      });
    });

    it('reads a binary-mode CloudEvent written by another AMQP producer', async () => {
      const topic = topicFor('wire-in');
      const c = new Collector();
      await subscriber().subscribe(topic, { group: 'g' }, c.handler());
      const id = uuidv7();
      await withRawChannel(async (ch) => {
        const headers = {
          'cloudEvents:specversion': '1.0',
          'cloudEvents:id': id,
          'cloudEvents:source': 'urn:svc:other',
          'cloudEvents:type': 'other.thing.happened',
          'cloudEvents:time': '2026-11-23T10:00:00.000Z',
          'cloudEvents:tenantid': 't1',
          'cloudEvents:correlationid': id,
          'x-custom': 42,
        };
        await new Promise<void>((resolve, reject) =>
          ch.publish(topology.exchange(topic), 'other.thing.happened', Buffer.from('{"a":[1,2]}'), { contentType: 'application/json', headers }, (e: unknown) =>
            e ? reject(e) : resolve(),
          ),
        );
      });
      await c.waitForIds([id], 'the foreign event', WAIT);
      const d = c.received[0]?.delivery as EventDelivery;
      expect(d.kind).toBe('event');
      expect(d.event).toMatchObject({ eventId: id, producer: 'urn:svc:other', tenantId: 't1', data: { a: [1, 2] }, causationId: null, eventVersion: 1 });
      expect(d.key).toBe(id);
      expect(d.attempt).toBe(1);
    });

    it('hands over a body over maxMessageBytes as undecodable, without parsing it', async () => {
      const topic = topicFor('wire-big');
      const c = new Collector();
      await subscriber({ maxMessageBytes: 1_000 }).subscribe(topic, { group: 'g' }, c.handler());
      await withRawChannel(async (ch) => {
        await new Promise<void>((resolve, reject) =>
          ch.publish(topology.exchange(topic), 'x', Buffer.from(`"${'y'.repeat(5_000)}`), { headers: { 'cloudEvents:partitionkey': 'pk' } }, (e: unknown) =>
            e ? reject(e) : resolve(),
          ),
        );
      });
      await waitFor(() => c.received.length > 0, WAIT, 'the oversized delivery');
      const d = c.received[0]?.delivery;
      expect(d?.kind).toBe('undecodable');
      if (d?.kind === 'undecodable') {
        expect(isMessageTooLargeError(d.error)).toBe(true);
        expect(d.key).toBe('pk');
        expect(d.raw.body.length).toBe(5_001);
        expect(d.raw.headers['cloudEvents:partitionkey']).toBe('pk');
      }
    });

    it('refuses a headers table amqplib could not encode, sending nothing of the call', async () => {
      const topic = topicFor('wire-headers');
      const c = new Collector();
      await subscriber().subscribe(topic, { group: 'g' }, c.handler());
      const huge: Message = { event: testEvent(1, { metadata: { blob: 'z'.repeat(70_000) } }) };
      const small = keyedMessages(1, 1);
      const error = await publisher().publish(topic, [...small, huge]).then(() => null, (e: unknown) => e);
      expect(isMessageTooLargeError(error), String(error)).toBe(true);
      await sleep(300); // nothing may arrive
      expect(c.received.length).toBe(0);
    });
  });

  describe('rabbitmq redelivery, dead letters and recovery', () => {
    it('dead-letters after maxDeliveries, counting deliveries across delayed nacks', async () => {
      const topic = topicFor('dead-letter');
      const c = new Collector();
      await subscriber({ maxDeliveries: 4 }).subscribe(topic, { group: 'g' }, c.handler(0, async (d) => {
        // Alternate delayed (re-published copy, count restarts broker-side) and plain nacks.
        await (d.attempt % 2 === 1 ? d.nack({ delayMs: 50 }) : d.nack());
      }));
      const [m] = keyedMessages(1, 1);
      await publisher().publish(topic, [m as Message]);
      const dead = await withRawChannel((ch) => getOne(ch, topology.deadLetterQueue(topic, 'g')));
      expect(c.received.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
      expect(dead.properties.messageId).toBe(m?.event.eventId);
      expect(dead.properties.headers?.['cloudEvents:id']).toBe(m?.event.eventId);
      // x-death lists each death: the trips through the delay queue ('expired'), then this one.
      const deaths = dead.properties.headers?.['x-death'] as Array<{ reason: string; queue: string }>;
      expect(deaths.find((x) => x.reason === 'rejected')?.queue).toBe(topology.queue(topic, 'g'));
      await sleep(300); // and it does not come back
      expect(c.received.length).toBe(4);
    });

    it('the broker dead-letters on its own at maxDeliveries when consumers keep dying (x-delivery-limit)', async () => {
      const topic = topicFor('delivery-limit');
      const c = new Collector();
      const [m] = keyedMessages(1, 1);
      await subscriber({ maxDeliveries: 2 }).subscribe(topic, { group: 'g' }, () => undefined);
      await closers.at(-1)?.close();
      await publisher().publish(topic, [m as Message]);
      // Each consumer dies holding the message: only the broker counts, the adapter never nacks.
      for (let i = 0; i < 2; i++) {
        const doomed = subscriber({ maxDeliveries: 2 });
        await doomed.subscribe(topic, { group: 'g' }, c.handler(i, () => new Promise<void>(() => undefined)));
        await waitFor(() => c.received.length > i, WAIT, `delivery ${i + 1}`);
        doomed.simulateCrashForTests();
      }
      const dead = await withRawChannel((ch) => getOne(ch, topology.deadLetterQueue(topic, 'g')));
      expect(dead.properties.messageId).toBe(m?.event.eventId);
      expect(dead.properties.headers?.['x-first-death-reason']).toBe('delivery_limit');
      expect(c.received.map((r) => r.attempt)).toEqual([1, 2]);
    });

    it('a handler past ackTimeoutMs is abandoned and its message goes to another consumer', async () => {
      const topic = topicFor('ack-timeout');
      const errors: unknown[] = [];
      const hung = new Collector();
      let lateAck: Promise<void> | undefined;
      await subscriber({ ackTimeoutMs: 500, onError: (e) => errors.push(e) }).subscribe(topic, { group: 'g', concurrency: 1 }, hung.handler(0, async (d) => {
        await sleep(2_000);
        lateAck = d.ack(); // abandoned by then: a no-op
      }));
      const [m] = keyedMessages(1, 1);
      await publisher().publish(topic, [m as Message]);
      await hung.waitForIds([m?.event.eventId as string], 'first delivery', WAIT);
      const other = new Collector();
      await subscriber().subscribe(topic, { group: 'g' }, other.handler(1));
      await other.waitForAcked([m?.event.eventId as string], 'the timed-out message on the other consumer', WAIT);
      expect(other.received[0]?.attempt).toBeGreaterThanOrEqual(2);
      await waitFor(() => lateAck !== undefined, WAIT, 'the late ack');
      await expect(lateAck).resolves.toBeUndefined();
      expect(errors.length).toBeGreaterThan(0);
    });

    it('re-declares a group queue deleted under a live subscriber and keeps consuming', async () => {
      const topic = topicFor('redeclare');
      const errors: unknown[] = [];
      const c = new Collector();
      await subscriber({ onError: (e) => errors.push(e) }).subscribe(topic, { group: 'g' }, c.handler());
      await withRawChannel((ch) => ch.deleteQueue(topology.queue(topic, 'g')));
      await waitFor(() => errors.length > 0, WAIT, 'the cancellation report');
      await waitFor(async () => (await withRawChannel((ch) => ch.checkQueue(topology.queue(topic, 'g'))).then(() => true, () => false)) as boolean, WAIT, 'the queue back');
      const messages = keyedMessages(3, 3);
      await publisher().publish(topic, messages);
      await c.waitForAcked(messages.map((m) => m.event.eventId), 'messages after the re-declare', WAIT);
    });

    it('refuses to subscribe where the queue exists with another maxDeliveries, naming the cause', async () => {
      const topic = topicFor('mismatch');
      await subscriber({ maxDeliveries: 5 }).subscribe(topic, { group: 'g' }, () => undefined);
      const error = await subscriber({ maxDeliveries: 6 }).subscribe(topic, { group: 'g' }, () => undefined).then(() => null, (e: unknown) => e);
      expect((error as CausewayError).code).toBe('ADAPTER_FAILED');
      expect(String((error as Error).cause)).toContain('PRECONDITION_FAILED');
    });
  });

  describe('rabbitmq with the broker unreachable', () => {
    const url = 'amqp://someone:s3cret-pw@127.0.0.1:1';

    it('publish and subscribe wait for the connection up to their timeouts, then reject; the password never shows', async () => {
      const reports: string[] = [];
      const onError = (e: unknown, context: string) => reports.push(`${context} ${(e as Error).message} ${String((e as Error).cause)}`);
      const pub = new RabbitMqPublisher({ url, publishTimeoutMs: 400, onError });
      const sub = new RabbitMqSubscriber({ url, subscribeTimeoutMs: 400, onError });
      closers.push(pub, sub);
      const started = Date.now();
      const [p, s] = await Promise.all([
        pub.publish('cw.test.unreachable', keyedMessages(1, 1)).then(() => null, (e: unknown) => e),
        sub.subscribe('cw.test.unreachable', { group: 'g' }, () => undefined).then(() => null, (e: unknown) => e),
      ]);
      expect(Date.now() - started).toBeLessThan(5_000);
      for (const e of [p, s]) {
        expect((e as CausewayError).code).toBe('ADAPTER_FAILED');
        expect(String((e as Error).message)).not.toContain('s3cret');
      }
      expect(reports.length).toBeGreaterThan(0);
      for (const r of reports) expect(r).not.toContain('s3cret');
      expect(reports.join('\n')).toContain('someone:***@127.0.0.1:1');
    });
  });
} else {
  skipBecauseNoServer('rabbitmq wire format');
}

describe('rabbitmq options and delay buckets (no server)', () => {
  it('rounds delays up to two significant digits, never down', () => {
    expect([0, 1, 50, 99, 100, 101, 999, 1_000, 1_234, 1_500, 59_001].map(delayBucket)).toEqual([1, 1, 50, 99, 100, 110, 1_000, 1_000, 1_300, 1_500, 60_000]);
    for (let ms = 1; ms < 100_000; ms += 7) {
      const b = delayBucket(ms);
      expect(b).toBeGreaterThanOrEqual(ms);
      expect(b).toBeLessThanOrEqual(ms * 1.1 + 1);
    }
  });

  it('validates options at construction', () => {
    expect(() => new RabbitMqSubscriber({ maxDeliveries: 0 })).toThrow(/maxDeliveries/);
    expect(() => new RabbitMqSubscriber({ ackTimeoutMs: -1 })).toThrow(/ackTimeoutMs/);
    expect(() => new RabbitMqPublisher({ prefix: 'a b' })).toThrow(/prefix/);
    expect(() => new RabbitMqPublisher({ url: 'http://x:secret@host' })).toThrow(/url must start with amqp/);
    expect(() => new RabbitMqPublisher({ url: 'http://x:secret@host' })).not.toThrow(/secret/);
    expect(() => new RabbitMqPublisher({ publishTimeoutMs: 1.5 })).toThrow(/publishTimeoutMs/);
  });
});
