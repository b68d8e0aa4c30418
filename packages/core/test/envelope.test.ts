import { problemsOf } from './schema-problems.js';
import { describe, expect, it } from 'vitest';
import {
  SchemaError,
  causedBy,
  createEvent,
  isSchemaError,
  isUuid,
  startCorrelation,
  type EnvelopeDefaults,
  type NewEvent,
} from '@causeway/core';

const defaults: EnvelopeDefaults = { tenantId: 'acme', producer: 'shop.orders' };
const placed = { eventType: 'shop.order.placed', data: { orderId: 'o-1', total: 42 } } as const;


function expectProblem(problems: readonly string[], rule: RegExp): void {
  expect(problems.some((p) => rule.test(p)), `${String(rule)} in ${JSON.stringify(problems)}`).toBe(true);
}

describe('createEvent defaults', () => {
  it('fills id, version, time, correlation and causation', () => {
    const before = Date.now();
    const e = createEvent(placed, defaults);
    const after = Date.now();
    expect(isUuid(e.eventId)).toBe(true);
    expect(e.eventId[14]).toBe('7');
    expect(e.eventType).toBe('shop.order.placed');
    expect(e.eventVersion).toBe(1);
    expect(e.tenantId).toBe('acme');
    expect(e.producer).toBe('shop.orders');
    expect(e.occurredAt).toBe(new Date(Date.parse(e.occurredAt)).toISOString());
    expect(e.occurredAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(e.occurredAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(e.occurredAt)).toBeLessThanOrEqual(after);
    expect(e.correlationId).toBe(e.eventId);
    expect(e.causationId).toBeNull();
    expect(e.data).toEqual({ orderId: 'o-1', total: 42 });
    expect(e.metadata).toEqual({});
  });

  it('gives each event its own id', () => {
    const ids = new Set(Array.from({ length: 100 }, () => createEvent(placed, defaults).eventId));
    expect(ids.size).toBe(100);
  });

  it('keeps given fields and normalizes occurredAt to the canonical ISO form', () => {
    const e = createEvent(
      {
        ...placed,
        eventId: '01890a5d-ac96-774b-bcce-b302099a8057',
        eventVersion: 3,
        tenantId: 'acme',
        occurredAt: '2024-05-06T09:10:11+02:00',
        correlationId: 'corr-1',
        causationId: 'cause-1',
        producer: 'shop.checkout',
        metadata: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      },
      defaults,
    );
    expect(e).toEqual({
      eventId: '01890a5d-ac96-774b-bcce-b302099a8057',
      eventType: 'shop.order.placed',
      eventVersion: 3,
      tenantId: 'acme',
      occurredAt: '2024-05-06T07:10:11.000Z',
      correlationId: 'corr-1',
      causationId: 'cause-1',
      producer: 'shop.checkout',
      data: { orderId: 'o-1', total: 42 },
      metadata: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
  });
});

describe('correlation and causation', () => {
  it('startCorrelation begins a chain with no cause', () => {
    expect(startCorrelation('req-7')).toEqual({ correlationId: 'req-7', causationId: null });
    const fresh = startCorrelation();
    expect(isUuid(fresh.correlationId)).toBe(true);
    expect(fresh.causationId).toBeNull();
    expect(startCorrelation().correlationId).not.toBe(fresh.correlationId);
  });

  it('events in a started correlation carry it and have no cause', () => {
    const e = createEvent(placed, { ...defaults, correlation: startCorrelation('req-7') });
    expect(e.correlationId).toBe('req-7');
    expect(e.causationId).toBeNull();
  });

  it('causedBy makes the cause the causation and carries the correlation along a chain', () => {
    const first = createEvent(placed, { ...defaults, correlation: startCorrelation('req-7') });
    const second = createEvent({ eventType: 'payments.payment.requested', data: {} }, { ...defaults, correlation: causedBy(first) });
    const third = createEvent({ eventType: 'payments.payment.captured', data: {} }, { ...defaults, correlation: causedBy(second) });
    expect(causedBy(first)).toEqual({ correlationId: 'req-7', causationId: first.eventId });
    expect(second.correlationId).toBe('req-7');
    expect(second.causationId).toBe(first.eventId);
    expect(third.correlationId).toBe('req-7');
    expect(third.causationId).toBe(second.eventId);
    expect(new Set([first.eventId, second.eventId, third.eventId]).size).toBe(3);
  });

  it('an explicit causationId: null wins over the context', () => {
    const cause = createEvent(placed, defaults);
    const e = createEvent({ ...placed, causationId: null }, { ...defaults, correlation: causedBy(cause) });
    expect(e.causationId).toBeNull();
    expect(e.correlationId).toBe(cause.correlationId);
  });
});

describe('createEvent rejects', () => {
  it.each([
    ['an empty tenant', ''],
    ['an undefined tenant', undefined],
  ])('%s as a missing tenant', (_label, tenantId) => {
    const problems = problemsOf(() => createEvent(placed, { ...defaults, tenantId: tenantId as string }));
    expectProblem(problems, /^tenant id is missing$/);
  });

  it.each([
    ['a double quote', 'ac"me'],
    ['a single quote', "o'brien"],
    ['a semicolon', 'acme;drop'],
    ['a space', 'ac me'],
    ['a leading space', ' acme'],
    ['a tab', 'acme\t'],
    ['a newline', 'acme\n'],
    ['unicode', 'acmé'],
    ['an emoji', 'acme🚀'],
    ['CJK', '商店'],
    ['a dot', 'acme.eu'],
    ['a leading dash', '-acme'],
    ['10 KB', 'a'.repeat(10 * 1024)],
    ['65 characters', 'a'.repeat(65)],
  ])('a tenant with %s, naming the tenant rule', (_label, tenantId) => {
    const problems = problemsOf(() => createEvent(placed, { ...defaults, tenantId }));
    expectProblem(problems, /^tenant id must match \^\[A-Za-z0-9\]\[A-Za-z0-9_-\]\{0,63\}\$ .*at most 64\); got /);
    // The echo of the bad value is cut short, so a 10 KB tenant id does not make a 10 KB message.
    for (const p of problems) expect(p.length).toBeLessThan(300);
  });

  it('accepts a 64-character tenant with digits, "_" and "-"', () => {
    const tenantId = `A1_-${'x'.repeat(60)}`;
    expect(createEvent(placed, { ...defaults, tenantId }).tenantId).toBe(tenantId);
  });

  it('a bad event type name, naming the naming rule', () => {
    expectProblem(problemsOf(() => createEvent({ ...placed, eventType: 'OrderPlaced' }, defaults)), /dot notation/);
    expectProblem(problemsOf(() => createEvent({ ...placed, eventType: 'shop.order.place' }, defaults)), /past-tense verb/);
  });

  it('a legacy type name is accepted only with allowAnyTypeName', () => {
    expect(createEvent({ ...placed, eventType: 'OrderPlaced' }, { ...defaults, allowAnyTypeName: true }).eventType).toBe('OrderPlaced');
  });

  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  let deep: unknown = 'bottom';
  for (let i = 0; i < 100; i++) deep = { next: deep };
  let deepArray: unknown = 1;
  for (let i = 0; i < 100; i++) deepArray = [deepArray];

  it.each([
    ['undefined', undefined, /^data is missing$/],
    ['a function', () => 1, /^data is function, which is not JSON$/],
    ['a BigInt', 10n, /^data is bigint, which is not JSON$/],
    ['NaN', Number.NaN, /^data is NaN, which is not JSON$/],
    ['Infinity', Number.POSITIVE_INFINITY, /^data is Infinity, which is not JSON$/],
    ['-Infinity nested', { amount: Number.NEGATIVE_INFINITY }, /^data\.amount is -Infinity, which is not JSON$/],
    ['a Date instance', new Date(0), /^data is a Date instance; only plain objects/],
    ['a Map', new Map([['a', 1]]), /^data is a Map instance/],
    ['a Set nested in an array', { items: [1, new Set([1])] }, /^data\.items\[1\] is a Set instance/],
    ['a symbol', { s: Symbol('x') }, /^data\.s is symbol, which is not JSON$/],
    ['an undefined property', { a: undefined }, /^data\.a is undefined, which is not JSON$/],
    ['a circular object', circular, /^data\.self is a circular reference$/],
    ['an object nested 100 deep', deep, /nests deeper than 64 levels/],
    ['an array nested 100 deep', deepArray, /nests deeper than 64 levels/],
    ['a string with NUL', { note: 'a\u0000b' }, /^data\.note contains the NUL character/],
  ])('data that is %s, naming the path', (_label, data, rule) => {
    expectProblem(
      problemsOf(() => createEvent({ ...placed, data }, defaults)),
      rule,
    );
  });

  it('accepts JSON data: nested objects, arrays, null, shared (non-circular) references', () => {
    const shared = { sku: 'A' };
    const data = { lines: [shared, shared], note: null, ok: true, n: -1.5, nested: { a: [[1], { b: 'é🚀' }] } };
    expect(createEvent({ ...placed, data }, defaults).data).toBe(data);
    expect(createEvent({ ...placed, data: null }, defaults).data).toBeNull();
    expect(createEvent({ ...placed, data: Object.create(null) as object }, defaults).data).toEqual({});
  });

  it.each([
    ['an uppercase key', { Region: 'eu' }, /metadata key "Region" must match \^\[a-z0-9\]\{1,20\}\$/],
    ['a key over 20 characters', { abcdefghijklmnopqrstu: 'x' }, /metadata key "abcdefghijklmnopqrstu" must match \^\[a-z0-9\]\{1,20\}\$/],
    ['a key with a dash', { 'trace-id': 'x' }, /metadata key "trace-id" must match/],
    ['the reserved key id', { id: 'x' }, /metadata key "id" is reserved for a CloudEvents attribute/],
    ['the reserved key tenantid', { tenantid: 'other' }, /metadata key "tenantid" is reserved/],
    ['the reserved key type', { type: 'x' }, /metadata key "type" is reserved/],
  ])('metadata with %s', (_label, metadata, rule) => {
    expectProblem(problemsOf(() => createEvent({ ...placed, metadata }, defaults)), rule);
  });

  it('accepts a 20-character metadata key', () => {
    expect(createEvent({ ...placed, metadata: { abcdefghijklmnopqrst: 'x' } }, defaults).metadata).toEqual({ abcdefghijklmnopqrst: 'x' });
  });

  it.each([
    ['a number', 1],
    ['a boolean', true],
    ['null', null],
    ['an object', { a: 'b' }],
  ])('a metadata value that is %s', (_label, value) => {
    const metadata = { region: value } as unknown as Record<string, string>;
    expectProblem(problemsOf(() => createEvent({ ...placed, metadata }, defaults)), /^metadata "region" must be a string$/);
  });

  it('a metadata value over 4096 characters', () => {
    const metadata = { note: 'x'.repeat(4097) };
    expectProblem(problemsOf(() => createEvent({ ...placed, metadata }, defaults)), /metadata "note" must be at most 4096 characters/);
  });

  it('an event whose tenant differs from the stream tenant', () => {
    const problems = problemsOf(() => createEvent({ ...placed, tenantId: 'globex' }, defaults));
    expect(problems).toContain('event tenant "globex" differs from the stream\'s tenant "acme"');
  });

  it.each([
    ['eventVersion 0', { eventVersion: 0 }, /eventVersion must be an integer >= 1; got 0/],
    ['eventVersion 1.5', { eventVersion: 1.5 }, /eventVersion must be an integer >= 1; got 1.5/],
    ['an upper-case eventId', { eventId: '01890A5D-AC96-774B-BCCE-B302099A8057' }, /eventId must be a lower-case UUID/],
    ['a non-UUID eventId', { eventId: 'evt-1' }, /eventId must be a lower-case UUID; got "evt-1"/],
    ['a non-RFC 3339 time', { occurredAt: '06/05/2024' }, /occurredAt must be an RFC 3339 timestamp; got "06\/05\/2024"/],
    ['an impossible month', { occurredAt: '2024-13-01T00:00:00Z' }, /occurredAt must be an RFC 3339 timestamp/],
    ['an empty correlationId', { correlationId: '' }, /correlationId must be a string of 1 to 200 characters/],
    ['an empty producer', { producer: '' }, /producer must be a string of 1 to 200 characters/],
  ])('%s', (_label, overrides, rule) => {
    const input: NewEvent = { ...placed, ...overrides };
    expectProblem(problemsOf(() => createEvent(input, defaults)), rule);
  });

  // RFC 3339 section 5.7: the day must exist in its month. Date.parse rolls 2024-02-30 over to
  // March 1st, so without a calendar check the event's time silently moves to another day.
  it('an occurredAt on a day or hour that does not exist, instead of shifting it', () => {
    const impossible = ['2024-02-30T10:00:00Z', '2023-04-31T10:00:00Z', '2024-01-01T24:00:00Z'];
    const accepted: string[] = [];
    for (const occurredAt of impossible) {
      try {
        accepted.push(`${occurredAt} -> ${createEvent({ ...placed, occurredAt }, defaults).occurredAt}`);
      } catch (e) {
        expect(isSchemaError(e)).toBe(true);
        expectProblem((e as SchemaError).problems, /occurredAt must be an RFC 3339 timestamp/);
      }
    }
    expect(accepted).toEqual([]);
  });

  // The rule json.ts and names.ts already apply to data (NUL) and stream ids (NUL, lone surrogates):
  // PostgreSQL text and jsonb cannot hold these, so they must fail here as a SchemaError, not later
  // as a driver error in one store while the in-memory store accepts them.
  it('text PostgreSQL cannot store: NUL or lone surrogates in any stored string', () => {
    const unstorable: readonly (readonly [string, Partial<NewEvent>])[] = [
      ['NUL in correlationId', { correlationId: 'req\u00001' }],
      ['NUL in causationId', { causationId: 'evt\u00001' }],
      ['NUL in producer', { producer: 'shop\u0000orders' }],
      ['NUL in a metadata value', { metadata: { region: 'eu\u0000west' } }],
      ['a lone surrogate in a data string', { data: { note: 'caf\ud800' } }],
      ['a lone surrogate in a data key', { data: { ['k\udc00']: 1 } }],
      ['a lone surrogate in a metadata value', { metadata: { region: '\ud83d' } }],
      ['a lone surrogate in correlationId', { correlationId: 'req-\ud83d' }],
    ];
    const accepted: string[] = [];
    for (const [label, overrides] of unstorable) {
      try {
        createEvent({ ...placed, ...overrides }, defaults);
        accepted.push(label);
      } catch (e) {
        expect(isSchemaError(e), label).toBe(true);
      }
    }
    expect(accepted).toEqual([]);
  });

  it('names every rule broken at once', () => {
    const problems = problemsOf(() =>
      createEvent({ eventType: 'Bad', data: undefined, metadata: { ID: 'x' } }, { ...defaults, tenantId: 'a b' }),
    );
    expectProblem(problems, /dot notation/);
    expectProblem(problems, /^tenant id must match/);
    expectProblem(problems, /^data is missing$/);
    expectProblem(problems, /metadata key "ID"/);
  });
});
