import { performance } from 'node:perf_hooks';
import { deduplicateBatch, type BrokerSubscription, type EventDelivery } from '@causeway/core';
import { PostgresDedupLedger } from '@causeway/postgres';
import type { CausewaySide } from './delivery-broker.js';
import type { DeliveryEnv } from './delivery-env.js';

/** The consumer's name in the dedup ledger's keys. */
export const CONSUMER = 'bench-consumer';
export const GROUP = 'bench';
/**
 * Ledger calls sharing one transaction (PostgresDedupLedger `batchSize`), and such transactions at
 * once: the store's append coalescer's defaults, measured best on this 2-core machine.
 */
export const LEDGER_BATCH = 64;
export const LEDGER_IN_FLIGHT = 4;
/**
 * Handlers running at once, on every broker: enough to fill every batch in flight. The raw
 * consumers get the same number of messages in flight (prefetch, pull batch, rows per DELETE),
 * so both sides have the same pipeline depth.
 */
export const CONSUMER_CONCURRENCY = LEDGER_BATCH * LEDGER_IN_FLIGHT;

export interface EffectConsumer {
  /** Redeliveries the ledger recognised as duplicates (skipped, acked). */
  readonly duplicates: number;
  close(): Promise<void>;
}

/**
 * Subscribes `group` on `topic` (from the earliest message kept) with Causeway's consumer path:
 * deduplicateBatch() over the PostgreSQL ledger, whose transaction also inserts the effect rows. After
 * that transaction committed and before the ack, `onApplied` gets the delivery, when the handler
 * started and when the commit returned (performance.now()).
 */
export async function startEffectConsumer(
  env: DeliveryEnv,
  side: CausewaySide,
  topic: string,
  onApplied: (delivery: EventDelivery, startedAt: number, committedAt: number) => void,
): Promise<EffectConsumer> {
  const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema, batchSize: LEDGER_BATCH, maxInFlight: LEDGER_IN_FLIGHT });
  let duplicates = 0;
  const statement = `${env.schema}.bench-effect`;
  // One multi-row effect insert per ledger transaction (deduplicateBatch); alone, it gets one delivery.
  const apply = deduplicateBatch(ledger, { consumer: CONSUMER, onDuplicate: () => void duplicates++ }, async (tx, ds) => {
    await tx.query(env.effectBatchSql, [ds.map((d) => d.event.eventId), ds.map((d) => (d.event.data as { n: number }).n)], statement);
  });
  const subscription: BrokerSubscription = await side.subscriber.subscribe(topic, { group: GROUP, startFrom: 'earliest', concurrency: CONSUMER_CONCURRENCY }, async (d) => {
    if (d.kind !== 'event') throw new Error(`undecodable delivery ${d.brokerId}: ${d.error.message}`);
    const startedAt = performance.now();
    await apply(d);
    onApplied(d, startedAt, performance.now());
  });
  return {
    get duplicates() {
      return duplicates;
    },
    async close() {
      await subscription.close();
      await ledger.drain();
    },
  };
}

/**
 * Makes the group exist before anything is published to `topic`: RabbitMQ drops a message that no
 * group queue is bound for, so the relay and pre-publish cases declare it first on every broker.
 */
export async function createGroup(side: CausewaySide, topic: string): Promise<void> {
  const s = await side.subscriber.subscribe(topic, { group: GROUP, startFrom: 'earliest', concurrency: 1 }, (d) => d.nack());
  await s.close();
}
