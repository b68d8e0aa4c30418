import {
  decodeArrival,
  decodeStructured,
  encodeStructured,
  MessageTooLargeError,
  SchemaError,
  type DeliveryInfo,
  type Message,
  type WireLimits,
} from '@causeway/core';

/**
 * PostgreSQL carries CloudEvents in structured mode: one JSON text per row (`body`), holding
 * every attribute, `data`, and `partitionkey`/`traceparent`/`tracestate`. The key and the event id
 * are copied into their own columns: the key for per-key order, the event id for broker dedup.
 */
export interface EncodedBatch {
  readonly keys: string[];
  readonly bodies: string[];
  readonly eventIds: string[];
}

/** Encodes and size-checks every message before anything is written; throws on the first bad one. */
export function encodeMessages(messages: readonly Message[], limits: WireLimits): EncodedBatch {
  const batch: EncodedBatch = { keys: [], bodies: [], eventIds: [] };
  for (const message of messages) {
    const { text, key } = encodeStructured(message, limits);
    batch.keys.push(key);
    batch.bodies.push(text);
    batch.eventIds.push(message.event.eventId);
  }
  return batch;
}

/** A claimed row as the codec needs it. */
export interface StoredMessage {
  readonly id: string;
  readonly key: string;
  readonly attempt: number;
  /** The JSON text; a prefix only when `bytes` is over the limit; null if the log row is gone. */
  readonly body: string | null;
  readonly bytes: number;
}

const encoder = new TextEncoder();

/**
 * Decodes a claimed row for a delivery. A row that is not a valid CloudEvent of ours (bad JSON,
 * missing attributes, over the limit: checked before parsing) becomes an `undecodable` delivery
 * carrying the error and what could be read, never an exception.
 */
export function decodeMessage(row: StoredMessage, topic: string, group: string, limits: WireLimits): DeliveryInfo {
  return decodeArrival(
    { topic, group, attempt: row.attempt, brokerId: row.id },
    () => {
      if (row.body === null) throw new SchemaError([`message ${row.id} is no longer in the log`]);
      if (row.bytes > limits.maxMessageBytes) throw new MessageTooLargeError('received message', row.bytes, limits.maxMessageBytes);
      return decodeStructured(row.body, limits);
    },
    () => ({ key: row.key, headers: {}, body: encoder.encode(row.body ?? '') }),
  );
}
