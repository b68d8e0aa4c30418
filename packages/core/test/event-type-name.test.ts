import { describe, expect, it } from 'vitest';
import { checkEventTypeName } from '@causeway/core';

describe('checkEventTypeName', () => {
  it.each(['shop.order.placed', 'payments.card-payment.refunded', 'shop.order.paid', 'shop.order.placed.v2', 'shop.order.shipped'])(
    'accepts %s',
    (name) => {
      expect(checkEventTypeName(name)).toEqual({ ok: true, problems: [] });
    },
  );

  // Each rejected name with a fragment of the rule it must be told it broke.
  const rejected: readonly (readonly [string, unknown, readonly RegExp[]])[] = [
    ['OrderPlaced', 'OrderPlaced', [/dot notation with at least two segments/, /lower-case/]],
    ['a present-tense verb', 'shop.order.place', [/past-tense verb.*"place" is not/]],
    ['a single segment', 'shop', [/at least two segments/]],
    ['an empty segment', 'shop..placed', [/segment "" in "shop\.\.placed" must be lower-case/]],
    ['upper case', 'Shop.Order.Placed', [/segment "Shop".*lower-case/, /segment "Order".*lower-case/, /segment "Placed".*lower-case/]],
    ['an underscore', 'shop.order_placed', [/segment "order_placed".*lower-case letters and digits, words joined by "-"/]],
    ['only a version after one segment', 'shop.v2', [/at least two segments/]],
    ['the empty string', '', [/event type is missing/]],
    ['a number', 42, [/event type is missing/]],
    ['undefined', undefined, [/event type is missing/]],
    ['null', null, [/event type is missing/]],
    ['an object', { name: 'shop.order.placed' }, [/event type is missing/]],
  ];

  it.each(rejected)('rejects %s, naming the rule', (_label, name, rules) => {
    const check = checkEventTypeName(name);
    expect(check.ok).toBe(false);
    expect(check.problems.length).toBeGreaterThan(0);
    for (const rule of rules) expect(check.problems.some((p) => rule.test(p)), `${String(rule)} in ${JSON.stringify(check.problems)}`).toBe(true);
  });

  it('rejects a name over 200 characters, naming the limit and the length', () => {
    const name = `shop.${'a'.repeat(200)}.placed`;
    const check = checkEventTypeName(name);
    expect(check.ok).toBe(false);
    expect(check.problems).toContain(`event type must be at most 200 characters; got ${name.length}`);
  });

  it('accepts extra past-tense verbs when given', () => {
    expect(checkEventTypeName('shop.order.dispatch').ok).toBe(false);
    expect(checkEventTypeName('shop.order.dispatch', { extraPastTense: ['dispatch'] })).toEqual({ ok: true, problems: [] });
  });
});
