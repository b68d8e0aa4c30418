import { checkEventTypeName, createCommandHandler, InMemoryEventStore } from '@causeway/core';
import { describe, expect, it } from 'vitest';
import { ORDER_EVENT_TYPES } from '../src/contracts/order-events.js';
import { orderDecider, OrderRuleError } from '../src/order/order-decider.js';

describe('order service contract', () => {
  it('every event type follows the naming rule (past tense, dot notation)', () => {
    for (const type of ORDER_EVENT_TYPES) expect(checkEventTypeName(type), type).toEqual({ ok: true, problems: [] });
  });
});

describe('order decider', () => {
  const lines = [{ sku: 'A', quantity: 2, unitPrice: 10 }];
  it('given nothing, PlaceOrder emits shop.order.placed with the total', () => {
    const events = orderDecider.decide({ type: 'PlaceOrder', orderId: 'o1', customerId: 'c1', lines }, orderDecider.initialState());
    expect(events).toEqual({ eventType: 'shop.order.placed', data: { orderId: 'o1', customerId: 'c1', lines, total: 20 } });
  });

  it('refuses to ship an unpaid order and to pay the wrong amount', () => {
    const placed = orderDecider.evolve(orderDecider.initialState(), { eventType: 'shop.order.placed', data: { orderId: 'o1', customerId: 'c1', lines, total: 20 } });
    expect(() => orderDecider.decide({ type: 'ShipOrder', orderId: 'o1', carrier: 'x', trackingNumber: 't' }, placed)).toThrow(OrderRuleError);
    expect(() => orderDecider.decide({ type: 'PayOrder', orderId: 'o1', amount: 19, paymentId: 'p' }, placed)).toThrow(/does not match/);
  });

  it('runs a full order life through the command handler on the in-memory store', async () => {
    const store = new InMemoryEventStore({ producer: 'shop.orders' });
    const handler = createCommandHandler({ store, decider: orderDecider, streamType: 'order' });
    const ref = { tenantId: 'shop', streamId: 'order-o1' };
    await handler.handle(ref, { type: 'PlaceOrder', orderId: 'o1', customerId: 'c1', lines });
    await handler.handle(ref, { type: 'PayOrder', orderId: 'o1', amount: 20, paymentId: 'p1' });
    const shipped = await handler.handle(ref, { type: 'ShipOrder', orderId: 'o1', carrier: 'DHL', trackingNumber: 'T1' });
    expect(shipped.state.status).toBe('shipped');
    const events = await store.readStream(ref);
    expect(events.map((e) => e.eventType)).toEqual(['shop.order.placed', 'shop.order.paid', 'shop.order.shipped']);
    expect(events.every((e) => e.producer === 'shop.orders')).toBe(true);
    expect((await store.streamInfo(ref))?.streamType).toBe('order');
  });
});
