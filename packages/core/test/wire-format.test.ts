import { CloudEvent, HTTP } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import {
  createEvent,
  decodeBinary,
  decodeStructured,
  encodeBinary,
  encodeStructured,
  isMessageTooLargeError,
  isSchemaError,
  percentDecode,
  percentEncode,
  type Message,
} from '@causeway/core';

const limits = { maxMessageBytes: 64 * 1024 };
const event = {
  ...createEvent(
    { eventType: 'shop.order.placed', data: { total: 12.5, note: 'grüße\r\nline two' }, metadata: { region: 'eu' } },
    { tenantId: 'acme', producer: 'shop.orders' },
  ),
  streamId: 'order-1',
  streamVersion: 3,
};
const message: Message = { event, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };

describe('wire format', () => {
  it('binary mode puts every attribute in a prefixed header and round-trips', () => {
    const wire = encodeBinary(message, { prefix: 'ce-', percentEncode: true }, limits);
    expect(wire.headers['ce-id']).toBe(event.eventId);
    expect(wire.headers['ce-specversion']).toBe('1.0');
    expect(wire.headers['ce-subject']).toBe('order-1');
    expect(wire.headers['ce-partitionkey']).toBe('order-1');
    expect(wire.headers['content-type']).toBe('application/json');
    expect(wire.headers.traceparent).toBe(message.traceparent);
    const back = decodeBinary(wire.headers, wire.body, { prefix: 'ce-', percentEncode: true }, limits);
    expect(back.event).toEqual(event);
    expect(back.key).toBe('order-1');
    expect(back.traceparent).toBe(message.traceparent);
  });

  it('percent-encoding keeps header values printable ASCII and decodes exactly', () => {
    for (const value of ['plain', 'a b', 'ü→😀', 'line\r\nbreak', '100%', '"q"']) {
      const encoded = percentEncode(value);
      expect(encoded).toMatch(/^[\x21-\x7e]*$/);
      expect(percentDecode(encoded)).toBe(value);
    }
  });

  it('structured mode is a CloudEvent the official SDK accepts', () => {
    const { text, key } = encodeStructured(message, limits);
    expect(key).toBe('order-1');
    const received = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: text }) as CloudEvent<unknown>;
    expect(received.id).toBe(event.eventId);
    expect(received.type).toBe('shop.order.placed');
    expect(received.subject).toBe('order-1');
    expect(received.data).toEqual(event.data);
    expect(decodeStructured(text, limits).event).toEqual(event);
  });

  it('checks the size limit before sending and before parsing', () => {
    const big: Message = { event: { ...event, data: 'x'.repeat(70_000) } };
    expect(() => encodeBinary(big, { prefix: 'ce_' }, limits)).toThrow(/limit is 65536 bytes/);
    expect(() => encodeStructured(big, limits)).toThrow(/limit is 65536 bytes/);
    const huge = new TextEncoder().encode(`{"a":"${'y'.repeat(70_000)}"`); // not even valid JSON: size wins first
    const error = (() => {
      try {
        decodeStructured(huge, limits);
      } catch (e) {
        return e;
      }
    })();
    expect(isMessageTooLargeError(error)).toBe(true);
  });

  it('names what is wrong with an undecodable message', () => {
    const error = (() => {
      try {
        decodeBinary({ 'ce-id': 'x' }, new TextEncoder().encode('{"ok":1}'), { prefix: 'ce-' }, limits);
      } catch (e) {
        return e;
      }
    })();
    expect(isSchemaError(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/specversion/);
    expect(() => decodeStructured('not json', limits)).toThrow(/not valid JSON/);
    expect(() => decodeBinary({}, new Uint8Array([0xff, 0xfe]), { prefix: 'ce-' }, limits)).toThrow(/UTF-8/);
  });
});
