import { waitFor } from '@causeway/conformance';
import {
  deadLetter,
  deduplicate,
  InMemoryBroker,
  InMemoryDeadLetterSink,
  InMemoryDedupLedger,
  PermanentError,
  pipeline,
  requireEventType,
  requireTenant,
  retry,
  retryDelay,
  uuidv7,
  type Delivery,
  type EventDelivery,
  type Message,
} from '@causeway/core';
import { describe, expect, it } from 'vitest';

const message = (n: number, tenantId = 't1'): Message => ({
  event: {
    eventId: uuidv7(),
    eventType: 'test.thing.happened',
    eventVersion: 1,
    tenantId,
    occurredAt: new Date().toISOString(),
    correlationId: uuidv7(),
    causationId: null,
    producer: 'test',
    data: { n },
    metadata: {},
  },
  key: `k${n}`,
});

/** A delivery that records how it was settled, for testing one middleware alone. */
function fakeDelivery(attempt: number, kind: 'event' | 'undecodable' = 'event') {
  const settled: Array<{ how: 'ack' | 'nack'; delayMs?: number }> = [];
  const m = message(1);
  const d = {
    topic: 't', group: 'g', key: 'k', attempt, brokerId: '1', kind,
    ...(kind === 'event' ? { event: m.event } : { error: new PermanentError('bad bytes'), raw: { headers: {}, body: new Uint8Array([1]) } }),
    get settled() { return settled.length > 0; },
    ack: async () => void settled.push({ how: 'ack' }),
    nack: async (o?: { delayMs?: number }) => void settled.push({ how: 'nack', ...(o?.delayMs !== undefined ? { delayMs: o.delayMs } : {}) }),
  } as unknown as Delivery;
  return { d, settled };
}

const failing = async (): Promise<void> => {
  throw new Error('database is down');
};

describe('retry()', () => {
  const policy = { immediate: 3, maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1_000, random: () => 1 };

  it('nacks at once for the immediate attempts, then with exponential backoff from the broker attempt', async () => {
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      const { d, settled } = fakeDelivery(attempt);
      await pipeline(failing, retry(policy))(d);
      expect(settled).toHaveLength(1);
      expect(settled[0]?.how).toBe('nack');
      delays.push(settled[0]?.delayMs ?? -1);
    }
    expect(delays).toEqual([0, 0, 100, 200, 400]);
    expect(retryDelay(7, policy)).toBe(1_000); // capped at maxDelayMs
  });

  it('gives up at maxAttempts and lets a permanent failure through at once', async () => {
    const last = fakeDelivery(6);
    await expect(pipeline(failing, retry(policy))(last.d)).rejects.toMatchObject({ code: 'RETRIES_EXHAUSTED', attempts: 6 });
    expect(last.settled).toEqual([]);
    const first = fakeDelivery(1);
    await expect(pipeline(async () => { throw new PermanentError('unknown type'); }, retry(policy))(first.d)).rejects.toMatchObject({ code: 'PERMANENT_FAILURE' });
    expect(first.settled).toEqual([]);
  });

  it('refuses a policy it cannot follow', () => {
    expect(() => retry({ immediate: 0 })).toThrow(/immediate must be an integer >= 1/);
    expect(() => retry({ maxAttempts: 1.5 })).toThrow(/maxAttempts/);
  });
});

describe('deadLetter()', () => {
  it('records retries-exhausted, permanent and undecodable messages once, with a fingerprint, then acks', async () => {
    const sink = new InMemoryDeadLetterSink();
    const handler = pipeline(failing, deadLetter(sink, { consumer: 'billing' }), retry({ immediate: 1, maxAttempts: 2, random: () => 0 }));
    const exhausted = fakeDelivery(2);
    await handler(exhausted.d);
    const permanent = fakeDelivery(1);
    await pipeline(async () => { throw new PermanentError('no such product'); }, deadLetter(sink, { consumer: 'billing' }))(permanent.d);
    const undecodable = fakeDelivery(1, 'undecodable');
    let called = false;
    await pipeline(async () => { called = true; }, deadLetter(sink, { consumer: 'billing' }))(undecodable.d);
    expect(called).toBe(false);
    expect(sink.letters.map((l) => l.reason)).toEqual(['retries-exhausted', 'permanent', 'undecodable']);
    for (const s of [exhausted, permanent, undecodable]) expect(s.settled).toEqual([{ how: 'ack' }]);
    const [a] = sink.letters;
    expect(a).toMatchObject({ consumer: 'billing', attempts: 2, errorClass: 'Error', errorMessage: 'database is down' });
    expect(a?.fingerprint).toMatch(/^Error:[0-9a-f]{8}$/);
    expect(a?.event?.eventType).toBe('test.thing.happened');
  });

  it('lets a transient error through (the runtime nacks it) and nacks when the sink fails', async () => {
    const { d } = fakeDelivery(1);
    await expect(pipeline(failing, deadLetter(new InMemoryDeadLetterSink(), { consumer: 'c' }))(d)).rejects.toThrow('database is down');
    const down = { put: async () => { throw new Error('dlq table unreachable'); } };
    const u = fakeDelivery(1, 'undecodable');
    await expect(pipeline(failing, deadLetter(down, { consumer: 'c' }))(u.d)).rejects.toThrow('dlq table unreachable');
    expect(u.settled).toEqual([]);
  });
});

describe('the pipeline on a broker', () => {
  it('1 in 20 poison messages: each dead-lettered exactly once after maxAttempts, the rest handled once', async () => {
    const broker = new InMemoryBroker({ ackTimeoutMs: 60_000 });
    const sink = new InMemoryDeadLetterSink();
    const messages = Array.from({ length: 100 }, (_, i) => message(i));
    const poison = new Set(messages.filter((_, i) => i % 20 === 7).map((m) => m.event.eventId));
    const handled: string[] = [];
    const calls = new Map<string, number>();
    const handler = pipeline(
      async (d) => {
        const id = (d as EventDelivery).event.eventId;
        calls.set(id, (calls.get(id) ?? 0) + 1);
        if (poison.has(id)) throw new Error(`cannot handle ${id}`);
        handled.push(id);
      },
      deadLetter(sink, { consumer: 'test' }),
      retry({ immediate: 2, maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 }),
    );
    await broker.createSubscriber().subscribe('orders', { group: 'g', concurrency: 8 }, handler);
    await broker.createPublisher().publish('orders', messages);
    await waitFor(() => handled.length + sink.letters.length >= 100, 10_000, 'every message handled or dead-lettered');
    console.info(`[consumer runtime] published=100 handled=${handled.length} deadLettered=${sink.letters.length} poisonCalls=${[...poison].map((id) => calls.get(id)).join('/')}`);
    expect(new Set(handled).size).toBe(95);
    expect(handled).toHaveLength(95);
    expect(sink.letters.map((l) => l.event?.eventId).sort()).toEqual([...poison].sort());
    for (const id of poison) expect(calls.get(id)).toBe(4); // no hot loop: exactly maxAttempts tries
  });

  it('deduplicate() runs the handler once per event id and acks duplicates', async () => {
    const broker = new InMemoryBroker();
    const ledger = new InMemoryDedupLedger();
    const applied: string[] = [];
    let duplicates = 0;
    const handler = deduplicate(ledger, { consumer: 'billing', onDuplicate: () => duplicates++ }, async (d) => {
      applied.push(d.event.eventId);
    });
    await broker.createSubscriber().subscribe('orders', { group: 'g' }, handler);
    const batch = [message(1), message(2)];
    await broker.createPublisher().publish('orders', [...batch, ...batch]);
    await waitFor(() => applied.length + duplicates >= 4, 5_000, 'four deliveries');
    expect(applied).toHaveLength(2);
    expect(duplicates).toBe(2);
  });

  it('requireTenant() dead-letters another tenant\'s event instead of handling it', async () => {
    const sink = new InMemoryDeadLetterSink();
    const { d } = fakeDelivery(1);
    const ran: string[] = [];
    await pipeline(async () => void ran.push('x'), deadLetter(sink, { consumer: 'c' }), requireTenant((t) => t === 'other'))(d);
    expect(ran).toEqual([]);
    expect(sink.letters[0]?.reason).toBe('permanent');
    expect(sink.letters[0]?.errorMessage).toMatch(/tenant "t1" is not served/);
  });

  it('requireEventType() dead-letters an unknown type at once (no retry), and lets known types through', async () => {
    const sink = new InMemoryDeadLetterSink();
    const ran: string[] = [];
    const known = fakeDelivery(1);
    const type = (known.d as EventDelivery).event.eventType;
    const handler = pipeline(async () => void ran.push('x'), deadLetter(sink, { consumer: 'c' }), retry(), requireEventType([type]));
    await handler(known.d);
    expect(ran).toEqual(['x']);
    const unknown = fakeDelivery(1);
    await pipeline(async () => void ran.push('y'), deadLetter(sink, { consumer: 'c' }), retry(), requireEventType(['test.other.happened']))(unknown.d);
    expect(ran).toEqual(['x']);
    expect(unknown.settled).toEqual([{ how: 'ack' }]); // recorded and acked on the first attempt, never nacked
    expect(sink.letters.map((l) => [l.reason, l.attempts])).toEqual([['permanent', 1]]);
    expect(sink.letters[0]?.errorMessage).toContain(`unknown event type ${JSON.stringify(type)}`);
    expect(() => requireEventType([])).toThrow(/at least one event type/);
  });
});
