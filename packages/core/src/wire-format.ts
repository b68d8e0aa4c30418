import { fromCloudEvent, toCloudEvent } from './cloudevents.js';
import { MessageTooLargeError, SchemaError } from './errors.js';
import { utf8Length } from './json.js';
import { messageKey, type Message, type ReceivedEvent } from './message.js';

/**
 * CloudEvents 1.0 on the wire, shared by every adapter's codec.ts.
 *
 * Binary mode (RabbitMQ, NATS, Kafka): each attribute becomes a header `<prefix><name>` (string
 * value), the body is the JSON of `data`, `content-type` is `application/json`. The bindings
 * differ only in the prefix (`cloudEvents:` AMQP, `ce-` NATS, `ce_` Kafka) and NATS
 * percent-encodes values. W3C `traceparent`/`tracestate` go in plain headers, where
 * OpenTelemetry propagators look for them. The partition key travels as `partitionkey`.
 *
 * Structured mode (Redis Streams, PostgreSQL): one JSON object with every attribute and `data`.
 */
export interface BinaryBinding {
  readonly prefix: string;
  /** Percent-encode header values outside printable ASCII (NATS binding). Default false. */
  readonly percentEncode?: boolean;
}

export interface WireLimits {
  /** Largest encoded message accepted, headers included. Checked before sending and before parsing. */
  readonly maxMessageBytes: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
export const CONTENT_TYPE_JSON = 'application/json';
export const CONTENT_TYPE_CLOUDEVENTS_JSON = 'application/cloudevents+json';

export interface BinaryMessage {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  readonly key: string;
}

/** What a codec gets back from the wire. */
export interface DecodedMessage {
  readonly event: ReceivedEvent;
  readonly key: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeBinary(message: Message, binding: BinaryBinding, limits: WireLimits): BinaryMessage {
  const attributes = toCloudEvent(message.event);
  const key = messageKey(message);
  const headers: Record<string, string> = { 'content-type': CONTENT_TYPE_JSON };
  const encode = binding.percentEncode === true;
  let size = 0;
  for (const name in attributes) {
    if (name === 'data' || name === 'datacontenttype') continue;
    const value = attributes[name];
    if (value === undefined) continue;
    const v = encode ? percentEncode(String(value)) : String(value);
    const header = binding.prefix + name;
    headers[header] = v;
    size += header.length + v.length;
  }
  const k = encode ? percentEncode(key) : key;
  headers[`${binding.prefix}partitionkey`] = k;
  size += binding.prefix.length + 12 + k.length;
  if (message.traceparent !== undefined) {
    headers.traceparent = encode ? percentEncode(message.traceparent) : message.traceparent;
    size += 11 + headers.traceparent.length;
  }
  if (message.tracestate !== undefined) {
    headers.tracestate = encode ? percentEncode(message.tracestate) : message.tracestate;
    size += 10 + headers.tracestate.length;
  }
  const data = attributes.data;
  const body = encoder.encode(JSON.stringify(data === undefined ? null : data));
  size += body.length;
  if (size > limits.maxMessageBytes) throw new MessageTooLargeError(`message ${message.event.eventId}`, size, limits.maxMessageBytes);
  return { headers, body, key };
}

/**
 * Reads a binary-mode message. Throws MessageTooLargeError (checked before parsing) or
 * SchemaError naming every bad or missing attribute.
 */
export function decodeBinary(
  headers: Readonly<Record<string, string | undefined>>,
  body: Uint8Array,
  binding: BinaryBinding,
  limits: WireLimits,
): DecodedMessage {
  let size = body.length;
  const attributes: Record<string, unknown> = {};
  let key: string | undefined;
  let traceparent: string | undefined;
  let tracestate: string | undefined;
  for (const [rawName, rawValue] of Object.entries(headers)) {
    if (rawValue === undefined) continue;
    size += rawName.length + rawValue.length;
    const value = binding.percentEncode === true ? percentDecode(rawValue) : rawValue;
    const name = rawName.toLowerCase();
    if (name === 'traceparent') traceparent = value;
    else if (name === 'tracestate') tracestate = value;
    else if (name === 'content-type') attributes.datacontenttype = value;
    else if (name.startsWith(binding.prefix.toLowerCase())) {
      const attribute = name.slice(binding.prefix.length);
      if (attribute === 'partitionkey') key = value;
      else attributes[attribute] = value;
    }
  }
  if (size > limits.maxMessageBytes) throw new MessageTooLargeError('received message', size, limits.maxMessageBytes);
  attributes.data = parseJson(body, 'body');
  const decoded = fromCloudEvent(attributes, FROM_JSON);
  return withTrace({ event: received(decoded), key: key ?? decoded.streamId ?? decoded.envelope.eventId }, traceparent, tracestate);
}

/** Structured mode: the whole CloudEvent as one JSON text, plus `partitionkey`, `traceparent`, `tracestate`. */
export function encodeStructured(message: Message, limits: WireLimits): { readonly text: string; readonly key: string } {
  const key = messageKey(message);
  const attributes: Record<string, unknown> = { ...toCloudEvent(message.event), partitionkey: key };
  if (message.traceparent !== undefined) attributes.traceparent = message.traceparent;
  if (message.tracestate !== undefined) attributes.tracestate = message.tracestate;
  const text = JSON.stringify(attributes);
  const size = text.length * 3 <= limits.maxMessageBytes ? text.length : utf8Length(text);
  if (size > limits.maxMessageBytes) throw new MessageTooLargeError(`message ${message.event.eventId}`, size, limits.maxMessageBytes);
  return { text, key };
}

export function decodeStructured(input: string | Uint8Array, limits: WireLimits): DecodedMessage {
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit: count only when that could exceed the limit.
  const size = typeof input !== 'string' ? input.length : input.length * 3 <= limits.maxMessageBytes ? input.length : utf8Length(input);
  if (size > limits.maxMessageBytes) throw new MessageTooLargeError('received message', size, limits.maxMessageBytes);
  const parsed = typeof input === 'string' ? parseJsonText(input, 'message') : parseJson(input, 'message');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SchemaError(['cloudevent: a structured message must be a JSON object']);
  }
  const { partitionkey, traceparent, tracestate, ...attributes } = parsed as Record<string, unknown>;
  const decoded = fromCloudEvent(attributes, FROM_JSON);
  const key = typeof partitionkey === 'string' ? partitionkey : decoded.streamId ?? decoded.envelope.eventId;
  return withTrace(
    { event: received(decoded), key },
    typeof traceparent === 'string' ? traceparent : undefined,
    typeof tracestate === 'string' ? tracestate : undefined,
  );
}

const FROM_JSON = { dataFromJsonText: true } as const;

function received(decoded: ReturnType<typeof fromCloudEvent>): ReceivedEvent {
  const e = decoded.envelope;
  // One literal, one shape: spreading and then adding keys was the slowest step of decoding.
  const event: { -readonly [K in keyof ReceivedEvent]: ReceivedEvent[K] } = {
    eventId: e.eventId,
    eventType: e.eventType,
    eventVersion: e.eventVersion,
    tenantId: e.tenantId,
    occurredAt: e.occurredAt,
    correlationId: e.correlationId,
    causationId: e.causationId,
    producer: e.producer,
    data: e.data,
    metadata: e.metadata,
  };
  if (decoded.streamId !== undefined) event.streamId = decoded.streamId;
  if (decoded.streamVersion !== undefined) event.streamVersion = decoded.streamVersion;
  if (decoded.recordedAt !== undefined) event.recordedAt = decoded.recordedAt;
  if (decoded.dataschema !== undefined) event.dataschema = decoded.dataschema;
  return event;
}

function withTrace(m: DecodedMessage, traceparent: string | undefined, tracestate: string | undefined): DecodedMessage {
  if (traceparent === undefined && tracestate === undefined) return m;
  const out: { -readonly [K in keyof DecodedMessage]: DecodedMessage[K] } = { ...m };
  if (traceparent !== undefined) out.traceparent = traceparent;
  if (tracestate !== undefined) out.tracestate = tracestate;
  return out;
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (cause) {
    throw new SchemaError([`cloudevent: ${what} is not valid UTF-8`], { cause });
  }
  return parseJsonText(text, what);
}

function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new SchemaError([`cloudevent: ${what} is not valid JSON (${(cause as Error).message})`], { cause });
  }
}

/** Percent-encodes `%`, controls, and everything outside printable ASCII (as UTF-8 bytes). */
export function percentEncode(value: string): string {
  let plain = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x25 || c === 0x22) {
      plain = false;
      break;
    }
  }
  if (plain) return value;
  let out = '';
  for (const byte of encoder.encode(value)) {
    out += byte < 0x21 || byte > 0x7e || byte === 0x25 || byte === 0x22 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

export function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch (cause) {
    throw new SchemaError([`cloudevent: header value ${JSON.stringify(value.slice(0, 40))} is not valid percent-encoding`], { cause });
  }
}
