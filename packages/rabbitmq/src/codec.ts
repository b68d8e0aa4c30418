import {
  CONTENT_TYPE_JSON,
  decodeArrival,
  decodeBinary,
  encodeBinary,
  MessageTooLargeError,
  SchemaError,
  type DeliveryFacts,
  type DeliveryInfo,
  type Message,
  type WireLimits,
} from '@causeway/core';
import type { ConsumeMessage, Options } from 'amqplib';

/**
 * CloudEvents AMQP binding, binary mode, on AMQP 0-9-1 (RabbitMQ):
 * - body: the JSON of `data`; `content-type` basic property: application/json
 * - every other attribute: a string header `cloudEvents:<name>` in the headers table
 *   (id, source, type, time, specversion, subject, sequence, tenantid, correlationid, ...)
 * - `traceparent` / `tracestate`: plain headers, where OpenTelemetry's AMQP propagators look
 * - `message-id` basic property: the event id; delivery mode 2 (persistent)
 * - routing key: the event type (groups bind `#` today; the key leaves room for type filters)
 * - `causeway-attempts`: deliveries before a delayed nack, carried by the re-published copy
 */
export const AMQP_BINDING = { prefix: 'cloudEvents:' } as const;
export const ATTEMPTS_HEADER = 'causeway-attempts';
/** Set by quorum queues on redelivery: times the message was returned before. */
export const DELIVERY_COUNT_HEADER = 'x-delivery-count';

/**
 * amqplib encodes a headers table into a 64 KiB buffer and throws RangeError past it; refuse
 * before anything is sent instead. Header names and values of our events are short unless
 * metadata is huge.
 */
export const MAX_HEADER_TABLE_BYTES = 60 * 1024;
const MAX_ROUTING_KEY_BYTES = 255;

export interface OutgoingMessage {
  readonly routingKey: string;
  readonly body: Buffer;
  readonly options: Options.Publish;
}

export function encodeMessage(message: Message, limits: WireLimits): OutgoingMessage {
  const { headers, body } = encodeBinary(message, AMQP_BINDING, limits);
  // Every header but content-type (a basic property) goes into the table, counted as it goes:
  // one copy, no entry arrays, no byteLength call per string unless the table could be too big.
  const table: Record<string, string> = {};
  let contentType = CONTENT_TYPE_JSON;
  let count = 0;
  let chars = 0;
  for (const name in headers) {
    const value = headers[name] as string;
    if (name === 'content-type') {
      contentType = value;
      continue;
    }
    table[name] = value;
    count++;
    chars += name.length + value.length;
  }
  // Per entry: a name length byte, a type byte and a 4-byte value length. A string's UTF-8 size
  // is at most 3 bytes per UTF-16 unit: count the bytes only when that bound passes the limit.
  let tableBytes = 6 * count + 3 * chars;
  if (tableBytes > MAX_HEADER_TABLE_BYTES) {
    tableBytes = 6 * count;
    for (const name in table) tableBytes += Buffer.byteLength(name) + Buffer.byteLength(table[name] as string);
  }
  if (tableBytes > MAX_HEADER_TABLE_BYTES) {
    throw new MessageTooLargeError(`the AMQP headers table of message ${message.event.eventId}`, tableBytes, MAX_HEADER_TABLE_BYTES);
  }
  const routingKey = message.event.eventType;
  if (typeof routingKey !== 'string' || (routingKey.length * 3 > MAX_ROUTING_KEY_BYTES && Buffer.byteLength(routingKey) > MAX_ROUTING_KEY_BYTES)) {
    throw new SchemaError([`eventType of message ${message.event.eventId} must be a string of at most ${MAX_ROUTING_KEY_BYTES} bytes (the AMQP routing key)`]);
  }
  return {
    routingKey,
    body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    options: {
      persistent: true,
      contentType,
      messageId: message.event.eventId,
      headers: table,
    },
  };
}

/** Which delivery this is for the group: 1 + returns counted by the queue + deliveries before a delayed nack. */
export function attemptOf(msg: ConsumeMessage): number {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  return 1 + count(headers[DELIVERY_COUNT_HEADER]) + count(headers[ATTEMPTS_HEADER]);
}

/** Decodes a delivery; anything wrong with it comes back as `kind: 'undecodable'`, never as a throw. */
export function decodeDelivery(msg: ConsumeMessage, facts: DeliveryFacts, limits: WireLimits): DeliveryInfo {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const wire: Record<string, string> = {};
  if (typeof msg.properties.contentType === 'string') wire['content-type'] = msg.properties.contentType;
  for (const name in headers) {
    const value = headers[name];
    if (typeof value === 'string' && isWireHeader(name)) wire[name] = value;
  }
  return decodeArrival(
    facts,
    () => {
      if (msg.content.length > limits.maxMessageBytes) {
        throw new MessageTooLargeError('received message', msg.content.length, limits.maxMessageBytes);
      }
      return decodeBinary(wire, msg.content, AMQP_BINDING, limits);
    },
    () => {
      const key = headers[`${AMQP_BINDING.prefix}partitionkey`];
      return { key: typeof key === 'string' ? key : '', headers: rawHeaders(msg), body: new Uint8Array(msg.content) };
    },
  );
}

const PREFIX_LOWER = AMQP_BINDING.prefix.toLowerCase();

/** A CloudEvents attribute or trace header, names compared case-insensitively (the exact spelling first: no lower-cased copy). */
function isWireHeader(name: string): boolean {
  if (name.startsWith(AMQP_BINDING.prefix) || name === 'traceparent' || name === 'tracestate') return true;
  const lower = name.toLowerCase();
  return lower.startsWith(PREFIX_LOWER) || lower === 'traceparent' || lower === 'tracestate';
}

/** The headers as text, for an undecodable delivery: strings as they are, scalars printed, tables as JSON. */
function rawHeaders(msg: ConsumeMessage): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof msg.properties.contentType === 'string') out['content-type'] = msg.properties.contentType;
  if (typeof msg.properties.messageId === 'string') out['message-id'] = msg.properties.messageId;
  for (const [name, value] of Object.entries((msg.properties.headers ?? {}) as Record<string, unknown>)) {
    if (typeof value === 'string') out[name] = value;
    else if (Buffer.isBuffer(value)) out[name] = value.toString('utf8');
    else if (value !== undefined) out[name] = typeof value === 'object' ? safeJson(value) : String(value);
  }
  return out;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return String(value);
  }
}

function count(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/**
 * The copy a delayed nack re-publishes: same body and properties, the CloudEvents and trace
 * headers, and the deliveries so far in `causeway-attempts`. Broker headers (`x-death`,
 * `x-delivery-count`...) are left behind: the copy's count restarts in the group queue.
 */
export function delayedCopy(msg: ConsumeMessage, attempt: number): Options.Publish {
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries((msg.properties.headers ?? {}) as Record<string, unknown>)) {
    if (!name.toLowerCase().startsWith('x-') && name !== ATTEMPTS_HEADER) headers[name] = value;
  }
  headers[ATTEMPTS_HEADER] = attempt;
  const p = msg.properties;
  const options: Options.Publish = { persistent: true, headers };
  if (p.contentType !== undefined) options.contentType = p.contentType as string;
  if (p.messageId !== undefined) options.messageId = p.messageId as string;
  if (p.type !== undefined) options.type = p.type as string;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId as string;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp as number;
  if (p.appId !== undefined) options.appId = p.appId as string;
  return options;
}
