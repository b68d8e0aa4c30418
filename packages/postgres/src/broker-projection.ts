import {
  LOG_START,
  deduplicate,
  projectionApplier,
  type DedupLedger,
  type DeliveryHandler,
  type EventDelivery,
  type Projection,
  type ReceivedEvent,
  type RecordedEvent,
} from '@causeway/core';
import type { SqlExecutor } from './sql-executor.js';

export interface BrokerProjectionOptions {
  readonly projection: Projection<SqlExecutor>;
  /** The inbox ledger of the read model's database (e.g. PostgresDedupLedger): dedup record and read-model writes share its transaction. */
  readonly ledger: DedupLedger<SqlExecutor>;
  /** The consumer name the ledger records each event under. Default `projection:<name>:<version>`. */
  readonly consumer?: string;
  /** Called for each redelivered event that was skipped as a duplicate. Default none. */
  readonly onDuplicate?: (delivery: EventDelivery) => void;
}

/**
 * A read model fed from a broker subscription (one that lives in another service than the store):
 * each delivered event is applied in ONE transaction together with its inbox record (through the
 * `DedupLedger` port), so a redelivery after a crash or a lost ack applies nothing twice.
 * Subscribe with the returned handler: `subscriber.subscribe(topic, group, brokerProjection(...))`.
 *
 * The broker decides the order: subscribe with per-key ordering (the stream id is the default
 * key) and write handlers that tolerate events of different streams in any order. A broker event
 * carries no log position of the store: `position` is LOG_START, `streamId`/`streamVersion`
 * come from the message ('' and 0 when it carried none), `recordedAt` falls back to `occurredAt`.
 * Undecodable deliveries are refused (put deadLetter() in front); a throw nacks as usual.
 */
export function brokerProjection(options: BrokerProjectionOptions): DeliveryHandler {
  const apply = projectionApplier(options.projection);
  const consumer = options.consumer ?? `projection:${options.projection.name}:${options.projection.version}`;
  return deduplicate(options.ledger, { consumer, ...(options.onDuplicate ? { onDuplicate: options.onDuplicate } : {}) }, (delivery, tx) =>
    apply([asRecorded(delivery.event)], tx),
  );
}

function asRecorded(event: ReceivedEvent): RecordedEvent {
  return {
    ...event,
    streamId: event.streamId ?? '',
    streamVersion: event.streamVersion ?? 0,
    recordedAt: event.recordedAt ?? event.occurredAt,
    position: LOG_START,
  };
}
