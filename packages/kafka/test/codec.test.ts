import { isMessageTooLargeError, isSchemaError, uuidv7, type Message } from '@causeway/core';
import { decodeRecord, encodeRecord, KAFKA_BINDING, type KafkaRecordIn } from '@causeway/kafka';
import { CloudEvent, Kafka, type KafkaMessage } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { decodeDelivery } from '../src/codec.js';

/**
 * The Kafka binary-mode mapping, checked against the official CloudEvents SDK's Kafka binding
 * (cloudevents 10.0.0): what we write, the SDK reads as the same event; what the SDK writes
 * (binary or structured), we read back as the original message.
 */

const limits = { maxMessageBytes: 64 * 1024 };

function fullMessage(): Message {
  return {
    event: {
      eventId: uuidv7(),
      eventType: 'shop.order.placed.v2',
      eventVersion: 3,
      tenantId: 'tenant-a',
      occurredAt: '2026-01-02T03:04:05.678Z',
      correlationId: uuidv7(),
      causationId: uuidv7(),
      producer: '/svc/orders',
      data: { orderId: 'o-1', lines: [{ sku: 'A', qty: 2, price: 9.5 }], note: 'grüße 👋 "quoted"', none: null },
      metadata: { region: 'eu-west', note: 'tab\there ü' },
      streamId: 'order-1 ü',
      streamVersion: 7,
      recordedAt: '2026-01-02T03:04:06.000Z',
    },
    key: 'customer-42 ü',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    tracestate: 'congo=t61rcWkgMzE',
  };
}

/** What a Kafka client hands over for our record: string headers, bytes in the value. */
function asSdkMessage(record: ReturnType<typeof encodeRecord>): KafkaMessage {
  const value = Buffer.from(record.value);
  return { key: record.key, value, body: value, headers: { ...record.headers } };
}

/** What the wire carries for an SDK-made Kafka message: bytes everywhere (the SDK leaves the value unserialized). */
function asRecord(message: KafkaMessage, extraHeaders: Record<string, string> = {}): KafkaRecordIn {
  const value = typeof message.value === 'string' ? message.value : JSON.stringify(message.value);
  const headers = new Map<Buffer, Buffer>();
  for (const [name, v] of Object.entries({ ...message.headers, ...extraHeaders })) {
    if (v !== undefined) headers.set(Buffer.from(name), Buffer.from(String(v)));
  }
  return { key: Buffer.from(String(message.key)), value: Buffer.from(value), headers };
}

function single(event: ReturnType<typeof Kafka.toEvent>): CloudEvent<unknown> {
  expect(Array.isArray(event)).toBe(false);
  return event as CloudEvent<unknown>;
}

describe('Kafka binary mode against the cloudevents SDK', () => {
  it('writes key, value and ce_ headers as the binding says', () => {
    const m = fullMessage();
    const record = encodeRecord(m, limits);
    expect(KAFKA_BINDING.prefix).toBe('ce_');
    expect(record.key).toBe('customer-42 ü');
    expect(JSON.parse(Buffer.from(record.value).toString('utf8'))).toEqual(m.event.data);
    expect(record.headers['content-type']).toBe('application/json');
    expect(record.headers.traceparent).toBe(m.traceparent);
    expect(record.headers.tracestate).toBe(m.tracestate);
    expect(record.headers.ce_partitionkey).toBe(record.key);
    for (const name of Object.keys(record.headers)) {
      expect(['content-type', 'traceparent', 'tracestate'].includes(name) || /^ce_[a-z0-9]{1,20}$/.test(name), name).toBe(true);
    }
  });

  it('the SDK reads our record as the same CloudEvent', () => {
    const m = fullMessage();
    const record = encodeRecord(m, limits);
    const sdkMessage = asSdkMessage(record);
    expect(Kafka.isEvent(sdkMessage)).toBe(true);
    const ce = single(Kafka.toEvent(sdkMessage));
    expect(ce.specversion).toBe('1.0');
    expect(ce.id).toBe(m.event.eventId);
    expect(ce.type).toBe('shop.order.placed.v2');
    expect(ce.source).toBe('/svc/orders');
    expect(ce.time).toBe('2026-01-02T03:04:05.678Z');
    expect(ce.subject).toBe('order-1 ü');
    expect(ce.datacontenttype).toBe('application/json');
    expect(ce.data).toEqual(m.event.data);
    expect(ce).toMatchObject({
      tenantid: 'tenant-a',
      correlationid: m.event.correlationId,
      causationid: m.event.causationId,
      eventversion: '3',
      sequence: '7',
      recordedtime: '2026-01-02T03:04:06.000Z',
      region: 'eu-west',
      note: 'tab\there ü',
      partitionkey: 'customer-42 ü',
    });
    // Trace context travels in plain W3C headers, not as ce_ attributes.
    expect((ce as unknown as Record<string, unknown>).traceparent).toBeUndefined();
  });

  it('what the SDK writes back in binary mode decodes to the original message', () => {
    const m = fullMessage();
    const ce = single(Kafka.toEvent(asSdkMessage(encodeRecord(m, limits))));
    const again = Kafka.binary(ce);
    const decoded = decodeRecord(asRecord(again, { traceparent: m.traceparent ?? '', tracestate: m.tracestate ?? '' }), limits);
    expect(decoded.event).toEqual(m.event);
    expect(decoded.key).toBe(m.key);
    expect(decoded.traceparent).toBe(m.traceparent);
    expect(decoded.tracestate).toBe(m.tracestate);
    // And our own encoding of the decoded message is byte-for-byte what we first wrote.
    const first = encodeRecord(m, limits);
    const second = encodeRecord({ ...decoded, event: decoded.event, key: decoded.key }, limits);
    expect(Buffer.from(second.value).equals(Buffer.from(first.value))).toBe(true);
    expect(second.headers).toEqual(first.headers);
  });

  it('reads an event the SDK made from scratch, in binary and in structured mode', () => {
    const id = uuidv7();
    const correlationid = uuidv7();
    const ce = new CloudEvent({
      id,
      type: 'billing.invoice.issued.v1',
      source: 'urn:svc:billing',
      time: '2026-03-04T05:06:07.089Z',
      subject: 'invoice-9',
      datacontenttype: 'application/json',
      data: { amount: 12.5, currency: 'EUR' },
      tenantid: 'tenant-b',
      correlationid,
      partitionkey: 'invoice-9',
    });
    const expected = {
      eventId: id,
      eventType: 'billing.invoice.issued.v1',
      eventVersion: 1,
      tenantId: 'tenant-b',
      occurredAt: '2026-03-04T05:06:07.089Z',
      correlationId: correlationid,
      causationId: null,
      producer: 'urn:svc:billing',
      data: { amount: 12.5, currency: 'EUR' },
      metadata: {},
      streamId: 'invoice-9',
    };
    const binary = decodeRecord(asRecord(Kafka.binary(ce)), limits);
    expect(binary.event).toEqual(expected);
    expect(binary.key).toBe('invoice-9');
    const structuredMessage = Kafka.structured(ce);
    expect(structuredMessage.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    const structured = decodeRecord(asRecord(structuredMessage), limits);
    expect(structured.event).toEqual(expected);
    expect(structured.key).toBe('invoice-9');
  });

  it('takes the record key as the partition key when a producer sets no ce_partitionkey', () => {
    const m = fullMessage();
    const record = encodeRecord(m, limits);
    const { ce_partitionkey: _dropped, ...headers } = record.headers;
    const input: KafkaRecordIn = { key: Buffer.from('from-the-key'), value: Buffer.from(record.value), headers: Object.entries(headers) };
    expect(decodeRecord(input, limits).key).toBe('from-the-key');
  });
});

describe('records that are not events of ours', () => {
  const context = { topic: 't', group: 'g', attempt: 1, brokerId: '0:5' };

  it('become undecodable deliveries with the error and the raw record, never a throw', () => {
    const bad: KafkaRecordIn = { value: Buffer.from('{"specversion": "1.0", this is not JSON'), headers: [] };
    const info = decodeDelivery(context, bad, limits);
    expect(info.kind).toBe('undecodable');
    if (info.kind !== 'undecodable') return;
    expect(isSchemaError(info.error)).toBe(true);
    expect(info.error.message).toMatch(/not valid JSON/);
    expect(Buffer.from(info.raw.body).toString()).toContain('this is not JSON');
    expect(info.key).toBe('');
    expect(info.attempt).toBe(1);

    const nullValue = decodeDelivery(context, { key: Buffer.from('k'), value: null, headers: [] }, limits);
    expect(nullValue.kind).toBe('undecodable');
    expect(nullValue.key).toBe('k');

    const m = fullMessage();
    const record = encodeRecord(m, limits);
    const badHeader: KafkaRecordIn = {
      value: Buffer.from(record.value),
      headers: [...Object.entries(record.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as const), [Buffer.from('ce_region'), Buffer.from([0xff, 0xfe])] as const],
    };
    const info2 = decodeDelivery(context, badHeader, limits);
    expect(info2.kind).toBe('undecodable');
    if (info2.kind === 'undecodable') {
      expect(info2.error.message).toMatch(/not valid UTF-8/);
      expect(info2.raw.headers.ce_id).toBe(m.event.eventId);
    }
  });

  it('checks the size before parsing, on both sides', () => {
    const m = fullMessage();
    const big: Message = { ...m, event: { ...m.event, data: { blob: 'x'.repeat(limits.maxMessageBytes) } } };
    let thrown: unknown;
    try {
      encodeRecord(big, limits);
    } catch (error) {
      thrown = error;
    }
    expect(isMessageTooLargeError(thrown)).toBe(true);
    // Garbage over the limit is refused for its size, so it was never parsed.
    const huge = decodeDelivery(context, { value: Buffer.from(`{${'x'.repeat(limits.maxMessageBytes)}`), headers: [] }, limits);
    expect(huge.kind === 'undecodable' && isMessageTooLargeError(huge.error)).toBe(true);
  });

  it('names each missing attribute', () => {
    const info = decodeDelivery(context, { value: Buffer.from('{"a":1}'), headers: [[Buffer.from('ce_specversion'), Buffer.from('1.0')]] }, limits);
    expect(info.kind).toBe('undecodable');
    if (info.kind === 'undecodable') expect(info.error.message).toMatch(/id|type|source/);
  });
});
