import { problemsOf } from './schema-problems.js';
import { CloudEvent, HTTP, type Message } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import {
  SchemaError,
  causedBy,
  createEvent,
  fromCloudEvent,
  isSchemaError,
  toCloudEvent,
  type DecodedCloudEvent,
  type EventEnvelope,
  type RecordedEvent,
  type ToCloudEventOptions,
} from '@causeway/core';

const defaults = { tenantId: 'acme', producer: 'shop.orders' };

/** A real HTTP hop turns every header into text; the SDK leaves numbers as numbers, so do it here. */
function overTheWire(message: Message): Message {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) headers[name] = String(value);
  return { headers, body: message.body };
}

function receive(message: Message): Readonly<Record<string, unknown>> {
  const received = HTTP.toEvent(overTheWire(message));
  const events = Array.isArray(received) ? received : [received];
  expect(events).toHaveLength(1);
  return (events[0] as CloudEvent<unknown>).toJSON();
}

type Mode = 'binary' | 'structured';

function roundTrip(event: EventEnvelope & Partial<RecordedEvent>, mode: Mode, options: ToCloudEventOptions = {}): DecodedCloudEvent {
  const ce = new CloudEvent<unknown>(toCloudEvent(event, options));
  return fromCloudEvent(receive(HTTP[mode](ce)));
}


const first = createEvent(
  { eventType: 'shop.order.placed', data: { orderId: 'o-1', lines: [{ sku: 'A-1', qty: 2 }], note: 'café 🚀 "quoted"', total: 19.99, gift: false, coupon: null } },
  defaults,
);
const caused = createEvent(
  {
    eventType: 'payments.card-payment.refunded',
    eventVersion: 2,
    data: { paymentId: 'p-9', amount: 5 },
    metadata: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', region: 'eu-west-1', retry: '3' },
  },
  { ...defaults, producer: 'payments', correlation: causedBy(first) },
);
const recorded: RecordedEvent = {
  ...first,
  streamId: 'order-1',
  streamVersion: 7,
  position: { tx: 12n, seq: 34n },
  recordedAt: '2025-01-02T03:04:05.678Z',
};

describe.each<Mode>(['binary', 'structured'])('CloudEvents round trip through the SDK in %s mode', (mode) => {
  it('keeps an envelope with causationId null', () => {
    expect(first.causationId).toBeNull();
    const decoded = roundTrip(first, mode);
    expect(decoded.envelope).toEqual(first);
    expect(decoded.envelope.causationId).toBeNull();
    expect(decoded.streamId).toBeUndefined();
    expect(decoded.streamVersion).toBeUndefined();
    expect(decoded.recordedAt).toBeUndefined();
    expect(decoded.dataschema).toBeUndefined();
  });

  it('keeps causation, correlation, eventVersion and metadata', () => {
    expect(caused.causationId).toBe(first.eventId);
    const decoded = roundTrip(caused, mode);
    expect(decoded.envelope).toEqual(caused);
    expect(decoded.envelope.eventVersion).toBe(2);
    expect(decoded.envelope.correlationId).toBe(first.correlationId);
    expect(decoded.envelope.metadata).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      region: 'eu-west-1',
      retry: '3',
    });
  });

  it('carries stream facts of a recorded event as subject, sequence and recordedtime', () => {
    const decoded = roundTrip(recorded, mode);
    expect(decoded.envelope).toEqual(first);
    expect(decoded.streamId).toBe('order-1');
    expect(decoded.streamVersion).toBe(7);
    expect(decoded.recordedAt).toBe('2025-01-02T03:04:05.678Z');
  });

  it('carries a dataschema', () => {
    const dataschema = 'https://schemas.example.com/shop.order.placed/1.json';
    const decoded = roundTrip(first, mode, { dataschema });
    expect(decoded.envelope).toEqual(first);
    expect(decoded.dataschema).toBe(dataschema);
  });
});

describe('toCloudEvent', () => {
  it('maps the envelope to CloudEvents 1.0 attributes', () => {
    expect(toCloudEvent({ ...caused, streamId: 'payment-p-9', streamVersion: 2, recordedAt: '2025-01-02T03:04:05.678Z' })).toEqual({
      specversion: '1.0',
      id: caused.eventId,
      source: 'payments',
      type: 'payments.card-payment.refunded',
      time: caused.occurredAt,
      datacontenttype: 'application/json',
      data: { paymentId: 'p-9', amount: 5 },
      subject: 'payment-p-9',
      tenantid: 'acme',
      correlationid: first.correlationId,
      causationid: first.eventId,
      eventversion: 2,
      sequence: '2',
      recordedtime: '2025-01-02T03:04:05.678Z',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      region: 'eu-west-1',
      retry: '3',
    });
  });

  it('omits causationid when there is no cause', () => {
    expect(Object.keys(toCloudEvent(first))).not.toContain('causationid');
  });

  it('puts the attributes on the wire under their CloudEvents names in binary mode', () => {
    const message = overTheWire(HTTP.binary(new CloudEvent<unknown>(toCloudEvent(recorded))));
    expect(message.headers).toMatchObject({
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': first.eventId,
      'ce-type': 'shop.order.placed',
      'ce-source': 'shop.orders',
      'ce-time': first.occurredAt,
      'ce-subject': 'order-1',
      'ce-tenantid': 'acme',
      'ce-correlationid': first.correlationId,
      'ce-eventversion': '1',
      'ce-sequence': '7',
      'ce-recordedtime': '2025-01-02T03:04:05.678Z',
    });
    expect(Object.keys(message.headers)).not.toContain('ce-causationid');
    expect(JSON.parse(message.body as string)).toEqual(first.data);
  });

  it('puts metadata on the wire as one ce- header per key', () => {
    const message = HTTP.binary(new CloudEvent<unknown>(toCloudEvent(caused)));
    expect(message.headers).toMatchObject({
      'ce-causationid': first.eventId,
      'ce-traceparent': '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'ce-region': 'eu-west-1',
      'ce-retry': '3',
    });
  });
});

describe('fromCloudEvent rejects', () => {
  const valid = (): Record<string, unknown> => ({ ...toCloudEvent(caused) });

  it('accepts the attributes toCloudEvent made', () => {
    expect(fromCloudEvent(valid()).envelope).toEqual(caused);
  });

  it('a CloudEvent without tenantid', () => {
    const attributes = valid();
    delete attributes.tenantid;
    expect(problemsOf(() => fromCloudEvent(attributes))).toContain('cloudevent: tenant id is missing');
  });

  it('a CloudEvent without tenantid that came through the SDK', () => {
    const attributes = valid();
    delete attributes.tenantid;
    const received = receive(HTTP.binary(new CloudEvent<unknown>(attributes)));
    expect(problemsOf(() => fromCloudEvent(received))).toContain('cloudevent: tenant id is missing');
  });

  it('specversion 0.3', () => {
    const problems = problemsOf(() => fromCloudEvent({ ...valid(), specversion: '0.3' }));
    expect(problems).toContain('cloudevent: specversion must be "1.0"; got "0.3"');
  });

  it('a missing specversion', () => {
    const attributes = valid();
    delete attributes.specversion;
    expect(problemsOf(() => fromCloudEvent(attributes))).toContain('cloudevent: specversion must be "1.0"; got undefined');
  });

  it.each(['text/plain', 'application/xml', 'application/octet-stream', 'application/jsonx'])('datacontenttype %s', (datacontenttype) => {
    const problems = problemsOf(() => fromCloudEvent({ ...valid(), datacontenttype }));
    expect(problems).toContain(`cloudevent: datacontenttype must be JSON; got ${JSON.stringify(datacontenttype)}`);
  });

  it.each(['application/json; charset=utf-8', 'application/cloudevents+json', 'application/vnd.shop.order+json'])(
    'but accepts datacontenttype %s',
    (datacontenttype) => {
      expect(fromCloudEvent({ ...valid(), datacontenttype }).envelope).toEqual(caused);
    },
  );

  it('a non-numeric eventversion', () => {
    const problems = problemsOf(() => fromCloudEvent({ ...valid(), eventversion: 'two' }));
    expect(problems).toContain('cloudevent: eventVersion must be an integer >= 1; got NaN');
  });

  it('a sequence that is not a stream version (integer >= 1)', () => {
    const accepted: string[] = [];
    for (const sequence of ['abc', '', '0', '-1', '1.5']) {
      try {
        const decoded = fromCloudEvent({ ...valid(), sequence });
        accepted.push(`${JSON.stringify(sequence)} -> streamVersion ${String(decoded.streamVersion)}`);
      } catch (e) {
        expect(isSchemaError(e)).toBe(true);
      }
    }
    expect(accepted).toEqual([]);
  });

  it('a missing id and source, naming both', () => {
    const attributes = valid();
    delete attributes.id;
    delete attributes.source;
    const problems = problemsOf(() => fromCloudEvent(attributes));
    expect(problems.some((p) => p.startsWith('cloudevent: eventId must be a lower-case UUID'))).toBe(true);
    expect(problems).toContain('cloudevent: producer must be a string of 1 to 200 characters');
  });
});
