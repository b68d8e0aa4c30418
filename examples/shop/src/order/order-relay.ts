import type { EventStore, Publisher, RecordedEvent } from '@causeway/core';
import { createEventLogRelay, type Relay, type SqlDatabase } from '@causeway/postgres';
import { ORDER_EVENT_TYPES, ORDER_TOPIC } from '../contracts/order-events.js';

export interface OrderRelayOptions {
  /** The database holding the store (the relay keeps its lease and checkpoint there). */
  readonly db: SqlDatabase;
  /** The shop's event store; its global log is what gets published. */
  readonly store: Pick<EventStore, 'subscribe'>;
  readonly publisher: Publisher;
  /** Schema of the event store. Default 'causeway'. */
  readonly schema?: string;
  /** The relay's fallback poll when no NOTIFY arrives. Default 1000 ms. */
  readonly pollIntervalMs?: number;
}

/** Names the relay's lease and checkpoint: one active publisher of order events per database. */
export const ORDER_RELAY_NAME = 'shop-orders';

const orderTypes: ReadonlySet<string> = new Set(ORDER_EVENT_TYPES);

/**
 * How the order service publishes: the event-log relay, not `outbox.add(tx, …)`.
 *
 * The order service is event-sourced, so its events are already written once, atomically, by
 * the append that decided them: the log IS the outbox. Adding each event to an outbox table in
 * the same transaction would store every event twice and need a hook inside the store's append
 * for no gain. The relay tails the gap-safe global log from its own checkpoint and publishes the
 * order events to `shop.orders`, keyed by the order's stream (per-order order on the broker); a
 * crash between publish and checkpoint republishes with the same event ids, which the broker
 * and the consumers' dedup ledgers absorb. `outbox.add` is for services whose state is a table.
 *
 * Catalogue events are not published: the topic function skips them, and the checkpoint still
 * moves past them, so the relay's pending count reaches zero.
 */
export function startOrderRelay(options: OrderRelayOptions): Relay {
  return createEventLogRelay({
    db: options.db,
    store: options.store,
    publisher: options.publisher,
    name: ORDER_RELAY_NAME,
    topic: (event: RecordedEvent) => (orderTypes.has(event.eventType) ? ORDER_TOPIC : null),
    ...(options.schema === undefined ? {} : { schema: options.schema }),
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  });
}
