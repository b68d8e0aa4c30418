import { performance } from 'node:perf_hooks';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeStructured, uuidv7, type Message, type NewEvent, type RecordedEvent } from '@causeway/core';
import type { PostgresEventStore } from '@causeway/postgres';

export const TENANT = 'bench';
export const EVENT_TYPE = 'bench.order.placed';
/** Streams (= partition keys) the events spread over: enough that per-key order never throttles a consumer. */
export const KEYS = 1_000;
/** Concurrent writers while seeding a log (the store coalesces their appends into shared transactions). */
const SEED_WRITERS = 32;

/** The brokers suite's payload, numbered: `n` says which event it is. */
export function orderData(n: number): Record<string, unknown> {
  return { n, orderId: `order-${n}`, customerId: `customer-${n % 100}`, total: 1234, lines: [{ sku: 'sku-1', qty: 2 }] };
}

export const streamOf = (n: number): string => `order-${n % KEYS}`;

export function newEvent(n: number): NewEvent & { readonly eventId: string } {
  return { eventType: EVENT_TYPE, data: orderData(n), eventId: uuidv7() };
}

/** A message as a service would publish it straight to a broker (no store): event `n` of its stream key. */
export function brokerMessage(n: number): Message {
  const now = new Date().toISOString();
  return {
    event: {
      eventId: uuidv7(),
      eventType: EVENT_TYPE,
      eventVersion: 1,
      tenantId: TENANT,
      occurredAt: now,
      correlationId: uuidv7(),
      causationId: null,
      producer: 'bench',
      data: orderData(n),
      metadata: {},
    },
    key: streamOf(n),
  };
}

/** The bytes Causeway carries for a message (structured-mode CloudEvent): what the raw clients send. */
export function cloudEventText(message: Message): string {
  return encodeStructured(message, { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES }).text;
}

/** The event id in a raw body (the CloudEvent `id`). */
export function idOf(body: string): string {
  return (JSON.parse(body) as { id: string }).id;
}

/**
 * Appends `count` events, one per append (as a command handler writes), from SEED_WRITERS
 * concurrent writers; event n goes to stream n % KEYS, so consecutive events in the log are on
 * different streams (partition keys). Returns them in log order.
 */
export async function seedEvents(store: PostgresEventStore, count: number, progress: (done: number) => void): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      const r = await store.append({ tenantId: TENANT, streamId: streamOf(n) }, [newEvent(n)]);
      out.push(...r.events);
      if (out.length % 5_000 === 0) progress(out.length);
    }
  };
  await Promise.all(Array.from({ length: SEED_WRITERS }, writer));
  return out.sort((a, b) => (a.position.tx === b.position.tx ? Number(a.position.seq - b.position.seq) : a.position.tx < b.position.tx ? -1 : 1));
}

/**
 * Polls `done` every millisecond until it holds; rejects after `timeoutMs` with `what()` in the
 * message. The 1 ms poll bounds the timing error of a wall time taken when it resolves.
 */
export async function waitUntil(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Calls `fire(i)` for i = 0 … count-1 at `ratePerS`, on schedule: call i is due at start + i/rate.
 * Calls that fell behind (a slow timer turn) go out at once, so the average rate holds. `fire` is
 * not awaited. Resolves after the last call, with the actual rate.
 */
export async function pace(ratePerS: number, count: number, fire: (i: number) => void): Promise<{ readonly achievedPerS: number }> {
  const start = performance.now();
  const intervalMs = 1_000 / ratePerS;
  let i = 0;
  while (i < count) {
    const due = Math.min(count, Math.floor((performance.now() - start) / intervalMs) + 1);
    while (i < due) fire(i++);
    if (i < count) await new Promise((resolve) => setTimeout(resolve, Math.max(0, start + i * intervalMs - performance.now())));
  }
  const wallMs = performance.now() - start;
  return { achievedPerS: count / Math.max(wallMs / 1000, intervalMs / 1000) };
}
