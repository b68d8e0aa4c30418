import type { DeliveryHandler, EventDelivery } from '../message.js';

/** (consumer, tenant, event id): what the inbox ledger records once per handled event. */
export interface DedupKey {
  readonly consumer: string;
  readonly tenantId: string;
  readonly eventId: string;
}

/**
 * The inbox ledger. `once` records the key and runs `work` in ONE transaction of the ledger's
 * database, so the handler's writes and the record commit together: a crash before COMMIT
 * leaves neither, a crash after leaves both. A key already recorded means a duplicate: `work`
 * does not run. (The PostgreSQL ledger recognises it by SQLSTATE 23505, never by message text.)
 */
export interface DedupLedger<TTx = unknown> {
  once(key: DedupKey, work: (tx: TTx) => Promise<void>): Promise<{ readonly duplicate: boolean }>;
}

/**
 * A ledger that can also hand the fresh keys of one transaction to a single call, so a handler
 * writes every effect of the batch in one statement. `work` gets the items whose key was new;
 * duplicates are left out. If it throws, nothing of the batch commits and each item is retried
 * alone (work called with one item), so only the failing one fails.
 */
export interface BatchDedupLedger<TTx = unknown> extends DedupLedger<TTx> {
  onceInBatch<TItem>(key: DedupKey, item: TItem, work: (tx: TTx, items: readonly TItem[]) => Promise<void>): Promise<{ readonly duplicate: boolean }>;
}

export interface DeduplicateOptions {
  readonly consumer: string;
  /** Called for each duplicate skipped (metrics, logs). */
  readonly onDuplicate?: (delivery: EventDelivery) => void;
}

/**
 * Runs `handler` at most once per (consumer, tenant, event id), inside the ledger's transaction;
 * a duplicate is acked without running it. Undecodable deliveries pass through untouched
 * (deadLetter() handles them before they get here).
 */
export function deduplicate<TTx>(
  ledger: DedupLedger<TTx>,
  options: DeduplicateOptions,
  handler: (delivery: EventDelivery, tx: TTx) => Promise<void>,
): DeliveryHandler {
  return async function deduplicating(delivery) {
    if (delivery.kind !== 'event') throw new Error(`deduplicate() got an undecodable delivery ${delivery.brokerId}; put deadLetter() outside it`);
    const key = { consumer: options.consumer, tenantId: delivery.event.tenantId, eventId: delivery.event.eventId };
    const { duplicate } = await ledger.once(key, (tx) => handler(delivery, tx));
    if (duplicate) options.onDuplicate?.(delivery);
  };
}

/**
 * deduplicate() for handlers that write a batch's effects at once: `handler` gets the fresh
 * deliveries of one ledger transaction (one or more) and the transaction. Pass the same handler
 * function for every delivery: batches group by it. Each delivery is acked after its batch commits.
 */
export function deduplicateBatch<TTx>(
  ledger: BatchDedupLedger<TTx>,
  options: DeduplicateOptions,
  handler: (tx: TTx, deliveries: readonly EventDelivery[]) => Promise<void>,
): DeliveryHandler {
  return async function deduplicatingInBatch(delivery) {
    if (delivery.kind !== 'event') throw new Error(`deduplicateBatch() got an undecodable delivery ${delivery.brokerId}; put deadLetter() outside it`);
    const key = { consumer: options.consumer, tenantId: delivery.event.tenantId, eventId: delivery.event.eventId };
    const { duplicate } = await ledger.onceInBatch(key, delivery, handler);
    if (duplicate) options.onDuplicate?.(delivery);
  };
}

/** A ledger in memory (the "transaction" is the work itself); for tests and the in-memory setup. */
export class InMemoryDedupLedger implements BatchDedupLedger<undefined> {
  readonly #seen = new Set<string>();
  readonly #running = new Map<string, Promise<void>>();

  /** No transactions to share in memory: each item is its own batch. */
  onceInBatch<TItem>(key: DedupKey, item: TItem, work: (tx: undefined, items: readonly TItem[]) => Promise<void>): Promise<{ readonly duplicate: boolean }> {
    return this.once(key, (tx) => work(tx, [item]));
  }

  async once(key: DedupKey, work: (tx: undefined) => Promise<void>): Promise<{ readonly duplicate: boolean }> {
    const id = `${key.consumer}\u0000${key.tenantId}\u0000${key.eventId}`;
    const running = this.#running.get(id);
    if (running !== undefined) await running.catch(() => undefined);
    if (this.#seen.has(id)) return { duplicate: true };
    const run = work(undefined).then(() => {
      this.#seen.add(id);
    });
    this.#running.set(id, run);
    try {
      await run;
    } finally {
      this.#running.delete(id);
    }
    return { duplicate: false };
  }

  get size(): number {
    return this.#seen.size;
  }
}
