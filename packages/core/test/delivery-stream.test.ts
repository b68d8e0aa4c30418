import { waitFor } from '@causeway/conformance';
import { describe, expect, it } from 'vitest';
import { deliveries, InMemoryBroker, uuidv7, type Delivery, type Message } from '@causeway/core';

const message = (n: number): Message => ({
  event: {
    eventId: uuidv7(),
    eventType: 'test.thing.happened',
    eventVersion: 1,
    tenantId: 't',
    occurredAt: new Date().toISOString(),
    correlationId: uuidv7(),
    causationId: null,
    producer: 'test',
    data: { n },
    metadata: {},
  },
});

describe('deliveries() (async-iterator form)', () => {
  it('never acks a message the loop did not see when it breaks', async () => {
    const broker = new InMemoryBroker({ ackTimeoutMs: 60_000 });
    const messages = Array.from({ length: 20 }, (_, i) => message(i));
    await broker.createPublisher().publish('t', messages);
    const stream = await deliveries(broker.createSubscriber(), 't', { group: 'g', startFrom: 'earliest' });
    const seen: string[] = [];
    for await (const d of stream) {
      if (d.kind === 'event') seen.push(d.event.eventId);
      if (seen.length === 5) break;
    }
    // Everything but the first four (acked by next()) must come back to the group.
    const again: Delivery[] = [];
    await broker.createSubscriber().subscribe('t', { group: 'g' }, (d) => {
      again.push(d);
    });
    const ids = () => new Set(again.map((d) => (d.kind === 'event' ? d.event.eventId : '')));
    await waitFor(() => ids().size >= 16, 5_000, '16 messages back in the group').catch(() => undefined);
    const back = ids();
    expect(back.size).toBe(16);
    for (const id of seen.slice(0, 4)) expect(back.has(id)).toBe(false);
    expect(back.has(seen[4] as string)).toBe(true);
  });
});
