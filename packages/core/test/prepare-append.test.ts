import { problemsOf } from './schema-problems.js';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_EVENT_BYTES,
  MAX_STREAM_ID_BYTES,
  SchemaError,
  isSchemaError,
  prepareAppend,
  uuidv7,
  type NewEvent,
  type PrepareOptions,
} from '@causeway/core';

const options: PrepareOptions = { producer: 'shop.orders', maxEventBytes: DEFAULT_MAX_EVENT_BYTES, allowAnyTypeName: false };
const placed: NewEvent = { eventType: 'shop.order.placed', data: { orderId: 'o-1' } };
const stream = (streamId: string) => ({ tenantId: 'acme', streamId });


describe('prepareAppend stream ids', () => {
  it.each([
    ['double quotes', 'order-"1"'],
    ['single quotes', "order-'1'; DROP TABLE events; --"],
    ['a semicolon', 'order;1'],
    ['a backslash and percent', 'order\\1%_'],
    ['an emoji', 'order-🚀-1'],
    ['CJK', '注文-一'],
    ['RTL text', 'طلب-١'],
    ['mixed direction marks', 'order\u202e1'],
    ['leading and trailing spaces', '  order-1  '],
    ['a tab', 'order\t1'],
    ['a newline', 'order\n1\r\n'],
    ['a single space', ' '],
    ['exactly 1024 ASCII bytes', 'a'.repeat(1024)],
    ['341 CJK characters (1023 bytes)', '注'.repeat(341)],
    ['256 emoji (1024 bytes)', '🚀'.repeat(256)],
  ])('accepts %s unchanged', (_label, streamId) => {
    const prepared = prepareAppend(stream(streamId), [placed], options);
    expect(prepared).toHaveLength(1);
    expect(prepared[0]?.envelope.tenantId).toBe('acme');
    expect(prepared[0]?.dataJson).toBe('{"orderId":"o-1"}');
  });

  it.each([
    ['a NUL character', 'order\u00001', /^stream id must not contain the NUL character \(U\+0000\)$/],
    ['a lone high surrogate', 'order-\ud83d', /^stream id must be well-formed Unicode \(no lone surrogates\)$/],
    ['a lone low surrogate', '\ude80-order', /^stream id must be well-formed Unicode \(no lone surrogates\)$/],
    ['reversed surrogates', '\ude80\ud83d', /no lone surrogates/],
    ['the empty string', '', /^stream id must be a non-empty string$/],
    ['1025 ASCII bytes', 'a'.repeat(1025), /^stream id must be at most 1024 bytes of UTF-8; got 1025 bytes$/],
    ['342 CJK characters (1026 bytes)', '注'.repeat(342), /^stream id must be at most 1024 bytes of UTF-8; got 1026 bytes$/],
    ['a 10 KB string', 'x'.repeat(10 * 1024), /^stream id must be at most 1024 bytes of UTF-8; got 10240 bytes$/],
  ])('rejects %s, naming the rule and the limit', (_label, streamId, rule) => {
    const problems = problemsOf(() => prepareAppend(stream(streamId), [placed], options));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(rule);
  });

  it('rejects a non-string stream id and a missing stream', () => {
    expect(problemsOf(() => prepareAppend({ tenantId: 'acme', streamId: 7 as unknown as string }, [placed], options))).toEqual([
      'stream id must be a non-empty string',
    ]);
    const problems = problemsOf(() => prepareAppend(undefined as never, [placed], options));
    expect(problems).toContain('tenant id is missing');
    expect(problems).toContain('stream id must be a non-empty string');
  });

  it('exports the stream id limit', () => {
    expect(MAX_STREAM_ID_BYTES).toBe(1024);
  });
});

describe('prepareAppend event size', () => {
  const small: PrepareOptions = { ...options, maxEventBytes: 1000 };
  // {"s":"<n chars>"} is n + 8 bytes, and the empty metadata {} adds 2.
  const sized = (n: number, char = 'x'): NewEvent => ({ eventType: 'shop.order.placed', data: { s: char.repeat(n) } });

  it('accepts data + metadata of exactly the limit', () => {
    const [p] = prepareAppend(stream('order-1'), [sized(990)], small);
    expect(p?.dataJson.length).toBe(998);
    expect(p?.metadataJson).toBe('{}');
  });

  it('rejects one byte over the limit, naming both byte counts', () => {
    const problems = problemsOf(() => prepareAppend(stream('order-1'), [sized(991)], small));
    expect(problems).toEqual(['event #0 (shop.order.placed) is 1001 bytes; the limit is 1000 bytes']);
  });

  it('counts UTF-8 bytes, not characters', () => {
    // 330 × "é" is 660 bytes: 330 + 10 would fit, 660 + 10 does not.
    expect(() => prepareAppend(stream('order-1'), [sized(330, 'é')], small)).not.toThrow();
    expect(problemsOf(() => prepareAppend(stream('order-1'), [sized(496, 'é')], small))).toEqual([
      'event #0 (shop.order.placed) is 1002 bytes; the limit is 1000 bytes',
    ]);
    expect(problemsOf(() => prepareAppend(stream('order-1'), [sized(248, '🚀')], small))).toEqual([
      'event #0 (shop.order.placed) is 1002 bytes; the limit is 1000 bytes',
    ]);
  });

  it('counts metadata towards the limit', () => {
    // {"region":"<n>"} is n + 13 bytes.
    const event: NewEvent = { ...sized(900), metadata: { region: 'y'.repeat(80) } };
    expect(problemsOf(() => prepareAppend(stream('order-1'), [event], small))).toEqual([
      'event #0 (shop.order.placed) is 1001 bytes; the limit is 1000 bytes',
    ]);
  });

  it('names the position of the oversized event in the batch', () => {
    const problems = problemsOf(() => prepareAppend(stream('order-1'), [sized(10), sized(10), sized(2000)], small));
    expect(problems).toEqual(['event #2 (shop.order.placed) is 2010 bytes; the limit is 1000 bytes']);
  });

  it('defaults to 1 MiB', () => {
    expect(DEFAULT_MAX_EVENT_BYTES).toBe(1_048_576);
    expect(() => prepareAppend(stream('order-1'), [sized(1_048_576 - 10)], options)).not.toThrow();
    expect(problemsOf(() => prepareAppend(stream('order-1'), [sized(1_048_576 - 9)], options))).toEqual([
      'event #0 (shop.order.placed) is 1048577 bytes; the limit is 1048576 bytes',
    ]);
  });
});

describe('prepareAppend batches', () => {
  it('rejects an event id used twice in one append', () => {
    const eventId = uuidv7();
    const problems = problemsOf(() =>
      prepareAppend(stream('order-1'), [{ ...placed, eventId }, { ...placed, data: { orderId: 'o-2' } }, { ...placed, eventId }], options),
    );
    expect(problems).toEqual([`event #2: eventId ${eventId} appears twice in one append`]);
  });

  it('rejects an empty event list', () => {
    expect(problemsOf(() => prepareAppend(stream('order-1'), [], options))).toEqual(['append needs at least one event']);
  });

  it('rejects more than 10,000 events', () => {
    const events = Array.from({ length: 10_001 }, () => placed);
    expect(problemsOf(() => prepareAppend(stream('order-1'), events, options))).toEqual(['append takes at most 10000 events; got 10001']);
  });

  it('prefixes envelope problems with the event position', () => {
    const problems = problemsOf(() => prepareAppend(stream('order-1'), [placed, { eventType: 'OrderPlaced', data: {} }], options));
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/^event #1: /);
  });

  it('prepares every event in order with distinct ids, JSON text and the producer', () => {
    const events: NewEvent[] = [1, 2, 3].map((n) => ({ eventType: 'shop.order.placed', data: { n }, metadata: { region: 'eu' } }));
    const prepared = prepareAppend(stream('order-1'), events, options);
    expect(prepared.map((p) => p.dataJson)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
    expect(prepared.map((p) => p.metadataJson)).toEqual(['{"region":"eu"}', '{"region":"eu"}', '{"region":"eu"}']);
    expect(new Set(prepared.map((p) => p.envelope.eventId)).size).toBe(3);
    expect(prepared.every((p) => p.envelope.producer === 'shop.orders')).toBe(true);
  });
});
