import { uuidv7, type Delivery, type DeliveryHandler, type EventEnvelope, type Message } from '@causeway/core';
import { waitFor } from './store-harness.js';

/** Tools the broker cases share: test events, a recording handler, gates. */

export const WAIT_MS = 30_000;

export function testEvent(n: number, overrides: Partial<EventEnvelope> = {}): EventEnvelope {
  return {
    eventId: uuidv7(),
    eventType: 'conformance.thing.happened',
    eventVersion: 1,
    tenantId: 'tenant-a',
    occurredAt: new Date().toISOString(),
    correlationId: uuidv7(),
    causationId: null,
    producer: 'conformance',
    data: { n },
    metadata: {},
    ...overrides,
  };
}

/** `count` messages spread over `keys` keys (key of message i = `k<i % keys>`). */
export function keyedMessages(count: number, keys: number, label = 'k'): Message[] {
  return Array.from({ length: count }, (_, i) => ({ event: testEvent(i), key: `${label}${i % keys}` }));
}

export interface Received {
  readonly id: string;
  readonly key: string;
  readonly attempt: number;
  readonly kind: Delivery['kind'];
  readonly at: number;
  /** Which handler (subscriber) got it. */
  readonly by: number;
  readonly delivery: Delivery;
}

/**
 * Records every delivery, then lets `behave` settle it (default: return, which acks).
 * `acked` holds the ids whose handler returned or acked, in that order.
 */
export class Collector {
  readonly received: Received[] = [];
  readonly acked: string[] = [];

  handler(by = 0, behave?: (d: Delivery, r: Received) => Promise<void> | void): DeliveryHandler {
    return async (delivery) => {
      const id = delivery.kind === 'event' ? delivery.event.eventId : `undecodable:${delivery.brokerId}`;
      let acked = false;
      // The behaviour sees a delivery whose ack we can observe; everything else reads the original.
      const ack = (): Promise<void> => {
        if (!delivery.settled) acked = true;
        return delivery.ack();
      };
      const observed = new Proxy(delivery, {
        get: (target, prop) => (prop === 'ack' ? ack : Reflect.get(target, prop, target)),
      });
      const r: Received = { id, key: delivery.key, attempt: delivery.attempt, kind: delivery.kind, at: Date.now(), by, delivery };
      this.received.push(r);
      if (behave !== undefined) await behave(observed, r);
      if (!delivery.settled) {
        acked = true;
        await delivery.ack();
      }
      if (acked) this.acked.push(id);
    };
  }

  ids(): Set<string> {
    return new Set(this.received.map((r) => r.id));
  }

  count(id: string): number {
    return this.received.filter((r) => r.id === id).length;
  }

  /** Deliveries beyond the first per id. */
  duplicates(): number {
    return this.received.length - this.ids().size;
  }

  async waitForIds(ids: Iterable<string>, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const wanted = [...ids];
    await waitFor(() => {
      const got = this.ids();
      return wanted.every((id) => got.has(id));
    }, timeoutMs, `${what} (${wanted.length} ids; have ${this.ids().size})`);
  }

  async waitForAcked(ids: Iterable<string>, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const wanted = [...ids];
    await waitFor(() => {
      const got = new Set(this.acked);
      return wanted.every((id) => got.has(id));
    }, timeoutMs, `${what} acked`);
  }
}

export function idsOf(messages: readonly Message[]): string[] {
  return messages.map((m) => m.event.eventId);
}

/** A promise with its resolver, for holding a handler until the test lets it go. */
export function gate(): { readonly promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/**
 * Waits a fixed time. Used only to assert that something does NOT happen (a blocked key stays
 * blocked, a dropped duplicate stays dropped), never to wait for work to finish.
 */
export function quietPeriod(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Publishes in batches of `size`, each awaited, retrying a rejected batch (same ids) while the broker is away. */
export async function publishInBatches(
  publish: (batch: Message[]) => Promise<void>,
  messages: readonly Message[],
  size: number,
  retryForMs = 0,
): Promise<{ retries: number }> {
  let retries = 0;
  for (let i = 0; i < messages.length; i += size) {
    const batch = messages.slice(i, i + size);
    const deadline = Date.now() + retryForMs;
    for (;;) {
      try {
        await publish(batch);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        retries++;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
  return { retries };
}
