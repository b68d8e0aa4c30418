import type { StreamFacts } from './cloudevents.js';
import type { EventEnvelope } from './envelope.js';
import type { CausewayError } from './errors.js';

/** An event on its way to a broker. */
export interface Message {
  /** The event. A stored event's stream id and version travel as CloudEvents `subject` and `sequence`. */
  readonly event: EventEnvelope & StreamFacts;
  /**
   * Partition key: the unit of ordering (where the adapter orders) and of Kafka partitioning.
   * Default: the event's stream id, else its event id. Travels as the CloudEvents `partitionkey`.
   */
  readonly key?: string;
  /** W3C trace context of the send (CloudEvents distributed-tracing extension). */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** The event as a subscriber receives it: the envelope plus what the wire carried about its stream. */
export type ReceivedEvent = EventEnvelope & StreamFacts & { readonly dataschema?: string };

/** Options of a negative acknowledgement. */
export interface NackOptions {
  /**
   * Redeliver no sooner than this many milliseconds from now. Default 0: as soon as the broker
   * will. Where the adapter orders by key, the delay holds back later messages of the same key too.
   */
  readonly delayMs?: number;
}

interface DeliveryBase {
  readonly topic: string;
  readonly group: string;
  /** The partition key it was published with ('' when an undecodable message carried none). */
  readonly key: string;
  /**
   * 1 on the first delivery to this group, +1 on each redelivery (nack, lease expiry, crash).
   * Counted by the broker or carried in headers, never in process memory, so it survives restarts.
   */
  readonly attempt: number;
  /** The broker's own id for the message (stream sequence, entry id, row id, delivery tag...), for logs. */
  readonly brokerId: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** True once ack() or nack() has been called, the runtime settled it after the handler, or the subscription gave up on it. */
  readonly settled: boolean;
  /**
   * Done with it: the broker forgets the message for this group. Resolves once the broker has
   * the ack (where the protocol confirms acks). The first of ack/nack wins; later calls are no-ops.
   */
  ack(): Promise<void>;
  /** Give it back for redelivery (attempt + 1), after `delayMs` where given. */
  nack(options?: NackOptions): Promise<void>;
}

export interface EventDelivery extends DeliveryBase {
  readonly kind: 'event';
  readonly event: ReceivedEvent;
}

/**
 * A message that is not a valid CloudEvent of ours (bad JSON, missing attributes, over the size
 * limit). It is handed over rather than dropped, so the consumer runtime can dead-letter it.
 */
export interface UndecodableDelivery extends DeliveryBase {
  readonly kind: 'undecodable';
  /** Why it could not be decoded (a SchemaError or MessageTooLargeError). */
  readonly error: CausewayError;
  /** What arrived, as far as the adapter could read it. */
  readonly raw: { readonly headers: Readonly<Record<string, string>>; readonly body: Uint8Array };
}

export type Delivery = EventDelivery | UndecodableDelivery;

/**
 * Handles one delivery. If it returns without settling, the delivery is acked; if it throws
 * without settling, it is nacked (no delay). Settling explicitly inside is always allowed.
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<void> | void;

/** The partition key a message travels with. */
export function messageKey(message: Message): string {
  return message.key ?? message.event.streamId ?? message.event.eventId;
}
