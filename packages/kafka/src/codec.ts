import {
  CONTENT_TYPE_CLOUDEVENTS_JSON,
  decodeBinary,
  decodeStructured,
  decodeArrival,
  encodeBinary,
  SchemaError,
  type BinaryBinding,
  type DecodedMessage,
  type DeliveryInfo,
  type Message,
  type WireLimits,
} from '@causeway/core';

/**
 * One event = one Kafka record, in the CloudEvents Kafka binding's binary content mode:
 *
 * - record key   = the partition key (the binding maps `partitionkey` to the key), so one key
 *                  always lands in one partition, where Kafka keeps order;
 * - record value = the JSON of `data` (never double-encoded);
 * - headers      = `ce_<attribute>` for every other attribute (`ce_id`, `ce_type`, `ce_source`,
 *                  `ce_specversion`, `ce_time`, `ce_subject`, extensions such as `ce_tenantid`,
 *                  and `ce_partitionkey` as well), `content-type: application/json`, and the W3C
 *                  `traceparent` / `tracestate` as plain headers, where tracing propagators look.
 *
 * Reading also accepts the structured mode (`content-type: application/cloudevents+json`, the
 * whole event in the value) that other CloudEvents producers may use.
 */
export const KAFKA_BINDING: BinaryBinding = { prefix: 'ce_' };

export interface KafkaRecordOut {
  readonly key: string;
  readonly value: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** A record as the consumer hands it over (no deserializers: bytes everywhere). */
export interface KafkaRecordIn {
  readonly key?: Uint8Array | null | undefined;
  readonly value?: Uint8Array | null | undefined;
  readonly headers?: Iterable<readonly [Uint8Array | string | undefined, Uint8Array | string | undefined]>;
}

/** Encodes and size-checks one message. Throws MessageTooLargeError before anything is sent. */
export function encodeRecord(message: Message, limits: WireLimits): KafkaRecordOut {
  const { headers, body, key } = encodeBinary(message, KAFKA_BINDING, limits);
  return { key, value: body, headers };
}

const strict = new TextDecoder('utf-8', { fatal: true });
const lenient = new TextDecoder('utf-8');
const EMPTY = new Uint8Array(0);

/**
 * Reads a record. Throws MessageTooLargeError (checked before parsing) or SchemaError naming
 * what is wrong (bad UTF-8 in a header, bad JSON, missing or invalid attributes).
 */
export function decodeRecord(record: KafkaRecordIn, limits: WireLimits): DecodedMessage {
  const headers = headerStrings(record.headers, true);
  const body = record.value ?? EMPTY;
  const contentType = headers['content-type'];
  const recordKey = record.key === undefined || record.key === null || record.key.length === 0 ? undefined : text(record.key, 'record key');
  if (contentType !== undefined && contentType.startsWith(CONTENT_TYPE_CLOUDEVENTS_JSON)) {
    const m = decodeStructured(body, limits);
    return recordKey === undefined ? m : { ...m, key: recordKey };
  }
  const m = decodeBinary(headers, body, KAFKA_BINDING, limits);
  // A foreign producer may set only the record key: the binding makes it the partition key.
  if (headers[`${KAFKA_BINDING.prefix}partitionkey`] === undefined && recordKey !== undefined) return { ...m, key: recordKey };
  return m;
}

/** Where a record sits and how often it was delivered: what decodeDelivery adds to the record. */
export interface RecordContext {
  readonly topic: string;
  readonly group: string;
  readonly attempt: number;
  /** `<partition>:<offset>`. */
  readonly brokerId: string;
}

/**
 * Turns a record into what createDelivery needs. Never throws: a record that is not a CloudEvent
 * of ours becomes an 'undecodable' delivery carrying the error and the raw headers and value.
 */
export function decodeDelivery(context: RecordContext, record: KafkaRecordIn, limits: WireLimits): DeliveryInfo {
  return decodeArrival(
    context,
    () => decodeRecord(record, limits),
    () => ({
      key: record.key === undefined || record.key === null ? '' : lenient.decode(record.key),
      headers: headerStrings(record.headers, false),
      body: record.value ?? EMPTY,
    }),
  );
}

/**
 * Header names lower-cased, values as UTF-8 text; a repeated name keeps its last value. With
 * `fatal`, a name or value that is not UTF-8 is a SchemaError; otherwise it is read leniently.
 */
export function headerStrings(
  headers: KafkaRecordIn['headers'],
  fatal: boolean,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  for (const [name, value] of headers) {
    if (name === undefined || value === undefined) continue;
    const n = typeof name === 'string' ? name : fatal ? text(name, 'a header name') : lenient.decode(name);
    const key = n.toLowerCase();
    out[key] = typeof value === 'string' ? value : fatal ? text(value, `header ${JSON.stringify(key)}`) : lenient.decode(value);
  }
  return out;
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return strict.decode(bytes);
  } catch (cause) {
    throw new SchemaError([`kafka record: ${what} is not valid UTF-8`], { cause });
  }
}
