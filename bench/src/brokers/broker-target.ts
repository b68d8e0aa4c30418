import type { EventEnvelope } from '@causeway/core';

/**
 * One system in the broker bench: Causeway's adapter, or the raw client doing the minimum work
 * for the same job (publish with the broker's durability confirm, consume in one group, ack each).
 * Both sides of a pair carry the same events and the same JSON bytes of `data`.
 */
export interface BrokerBenchTarget {
  /** e.g. 'causeway' or 'raw amqplib (confirms)'. */
  readonly system: string;
  /** Connects and declares what it needs on a fresh topic/stream/queue of its own. */
  setup(topic: string): Promise<void>;
  /**
   * Publishes `events` in batches of `batchSize` (each batch awaited before the next), consumed
   * by one subscriber in one group that acks each message. Resolves when every event was handled.
   * Call `onBatch(start)` right before publishing the batch that begins at index `start` (the
   * bench stamps latency from it), and `onReceived(i)` from the handler with the event's index
   * in `events` (look it up by event id).
   */
  run(
    events: readonly EventEnvelope[],
    batchSize: number,
    onReceived: (index: number) => void,
    onBatch: (start: number) => void,
  ): Promise<void>;
  /** Closes connections and deletes what setup made. */
  teardown(): Promise<void>;
}

/** A Causeway adapter and its raw baseline, run in the same process one after the other. */
export interface BrokerBenchPair {
  /** 'postgresql', 'rabbitmq', 'nats', 'redis'. */
  readonly adapter: string;
  readonly causeway: () => BrokerBenchTarget;
  readonly raw: () => BrokerBenchTarget;
}

/**
 * Tracks which of `events` arrived, by event id: `got(id)` reports the event's index to
 * `onReceived` (redeliveries included) and `all` resolves once every event arrived at least once.
 * Ids of other events are ignored.
 */
export function arrivals(events: readonly EventEnvelope[], onReceived: (index: number) => void) {
  const index = new Map(events.map((e, i) => [e.eventId, i]));
  const seen = new Uint8Array(events.length);
  let received = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  return {
    all,
    got(eventId: string): void {
      const i = index.get(eventId);
      if (i === undefined) return;
      onReceived(i);
      if (seen[i] === 1) return;
      seen[i] = 1;
      if (++received === events.length) done();
    },
  };
}
