import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestShop, type TestShop } from './support.js';

/**
 * Orders through the HTTP API: commands return the append's position, and every read passes it
 * back as `?after=` so the answer includes the write (read-your-writes through the query bus).
 * One shop (in-memory PGlite) for the file; each test works in a tenant of its own.
 */
let t: TestShop;
beforeAll(async () => {
  t = await startTestShop();
});
afterAll(async () => {
  await t?.close();
});

let tenants = 0;
const newTenant = (): string => `orders-${process.pid}-${++tenants}`;

describe('orders over HTTP', () => {
  it('places, pays, ships and cancels orders; each read sees the command just made', async () => {
    const tenant = newTenant();
    const place = (orderId: string, customerId: string, lines: unknown) =>
      t.call('POST', '/orders', { tenant, body: { orderId, customerId, lines } });

    const a = await place('o-1', 'ada', [
      { sku: 'KB-MECH-87', quantity: 1, unitPrice: 89 },
      { sku: 'CB-USBC-1M', quantity: 2, unitPrice: 9 },
    ]);
    expect(a.status).toBe(201);
    expect(a.body).toMatchObject({ orderId: 'o-1', status: 'placed', version: 1 });
    expect(a.body.position).toMatch(/^\d+\/\d+$/);
    expect(a.headers.get('location')).toBe('/orders/o-1');
    expect(a.headers.get('etag')).toBe('"1"');

    let summary = await t.call('GET', `/orders/o-1?after=${a.body.position}`, { tenant });
    expect(summary.status).toBe(200);
    expect(summary.body).toMatchObject({ orderId: 'o-1', customerId: 'ada', status: 'placed', total: 107, paid: 0, itemCount: 3, version: 1, paidAt: null });
    expect(summary.body.lines).toEqual([
      { sku: 'KB-MECH-87', quantity: 1, unitPrice: 89 },
      { sku: 'CB-USBC-1M', quantity: 2, unitPrice: 9 },
    ]);
    expect(summary.body.placedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(summary.headers.get('etag')).toBe('"1"');

    const paid = await t.call('POST', '/orders/o-1/pay', { tenant, body: { amount: 107, paymentId: 'pay-1' } });
    expect(paid.status).toBe(200);
    expect(paid.body).toMatchObject({ orderId: 'o-1', status: 'paid', version: 2 });
    summary = await t.call('GET', `/orders/o-1?after=${paid.body.position}`, { tenant });
    expect(summary.body).toMatchObject({ status: 'paid', paid: 107, paymentId: 'pay-1', version: 2 });
    expect(summary.body.paidAt).not.toBeNull();

    const shipped = await t.call('POST', '/orders/o-1/ship', { tenant, body: { carrier: 'DHL', trackingNumber: 'JD0146' } });
    expect(shipped.body).toMatchObject({ status: 'shipped', version: 3 });
    summary = await t.call('GET', `/orders/o-1?after=${shipped.body.position}`, { tenant });
    expect(summary.body).toMatchObject({ status: 'shipped', carrier: 'DHL', trackingNumber: 'JD0146', version: 3 });
    expect(Date.parse(summary.body.shippedAt)).toBeGreaterThanOrEqual(Date.parse(summary.body.paidAt));

    const b = await place('o-2', 'ada', [{ sku: 'MN-4K-27', quantity: 1, unitPrice: 329 }]);
    const cancelled = await t.call('POST', '/orders/o-2/cancel', { tenant, body: { reason: 'found it cheaper' } });
    expect(b.status).toBe(201);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', version: 2 });
    summary = await t.call('GET', `/orders/o-2?after=${cancelled.body.position}`, { tenant });
    expect(summary.body).toMatchObject({ status: 'cancelled', cancelReason: 'found it cheaper', total: 329 });

    const c = await place('o-3', 'grace', [{ sku: 'AU-HEAD-20', quantity: 2, unitPrice: 199 }]);
    const d = await place('o-4', 'ada', [{ sku: 'MS-ERGO-10', quantity: 1, unitPrice: 45 }]);
    expect([c.status, d.status]).toEqual([201, 201]);

    const ada = await t.call('GET', `/customers/ada/orders?after=${d.body.position}`, { tenant });
    expect(ada.status).toBe(200);
    expect(ada.body).toMatchObject({
      customerId: 'ada',
      orderCount: 3,
      byStatus: { placed: 1, paid: 0, shipped: 1, cancelled: 1 },
      amountOrdered: 107 + 45, // the cancelled order is not counted
      amountPaid: 107,
    });
    expect(ada.body.orders.map((o: { orderId: string; status: string }) => [o.orderId, o.status])).toEqual([
      ['o-4', 'placed'],
      ['o-2', 'cancelled'],
      ['o-1', 'shipped'],
    ]);
    expect(ada.body.firstOrderAt <= ada.body.lastOrderAt).toBe(true);

    const limited = await t.call('GET', `/customers/ada/orders?limit=1`, { tenant });
    expect(limited.body.orders.map((o: { orderId: string }) => o.orderId)).toEqual(['o-4']);
    expect(limited.body.orderCount).toBe(3);

    const grace = await t.call('GET', `/customers/grace/orders?after=${d.body.position}`, { tenant });
    expect(grace.body).toMatchObject({ orderCount: 1, byStatus: { placed: 1 }, amountOrdered: 398, amountPaid: 0 });

    const nobody = await t.call('GET', '/customers/nobody/orders', { tenant });
    expect(nobody.body).toEqual({
      customerId: 'nobody',
      orderCount: 0,
      byStatus: { placed: 0, paid: 0, shipped: 0, cancelled: 0 },
      amountOrdered: 0,
      amountPaid: 0,
      firstOrderAt: null,
      lastOrderAt: null,
      orders: [],
    });
  });

  it('places an order without an id: the shop makes one and reports where to read it', async () => {
    const tenant = newTenant();
    const r = await t.call('POST', '/orders', { tenant, body: { customerId: 'linus', lines: [{ sku: 'MS-PAD-12', quantity: 1, unitPrice: 25 }] } });
    expect(r.status).toBe(201);
    expect(r.body.orderId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
    const read = await t.call('GET', `${r.headers.get('location')}?after=${r.body.position}`, { tenant });
    expect(read.body).toMatchObject({ orderId: r.body.orderId, customerId: 'linus', total: 25 });
  });

  it("tenant isolation: another tenant cannot see an order or a customer's list, even with the same ids", async () => {
    const a = newTenant();
    const b = newTenant();
    const placed = await t.call('POST', '/orders', { tenant: a, body: { orderId: 'shared-1', customerId: 'ada', lines: [{ sku: 'X1', quantity: 1, unitPrice: 10 }] } });
    const pos = placed.body.position;

    const fromB = await t.call('GET', `/orders/shared-1?after=${pos}`, { tenant: b });
    expect(fromB.status).toBe(404);
    expect(fromB.body.error.code).toBe('NOT_FOUND');
    expect((await t.call('GET', `/customers/ada/orders?after=${pos}`, { tenant: b })).body.orderCount).toBe(0);
    // Paying A's order as B finds no order in B: the decider refuses, nothing touches A's stream.
    const payAsB = await t.call('POST', '/orders/shared-1/pay', { tenant: b, body: { amount: 10, paymentId: 'p' } });
    expect(payAsB.status).toBe(409);
    expect(payAsB.body.error.code).toBe('RULE_VIOLATED');

    // B may use the same order id and customer id: its own stream, its own rows.
    const placedB = await t.call('POST', '/orders', { tenant: b, body: { orderId: 'shared-1', customerId: 'ada', lines: [{ sku: 'Y2', quantity: 3, unitPrice: 5 }] } });
    expect(placedB.status).toBe(201);
    const readA = await t.call('GET', `/orders/shared-1?after=${placedB.body.position}`, { tenant: a });
    const readB = await t.call('GET', `/orders/shared-1?after=${placedB.body.position}`, { tenant: b });
    expect([readA.body.total, readA.body.status]).toEqual([10, 'placed']);
    expect([readB.body.total, readB.body.lines[0].sku]).toEqual([15, 'Y2']);
    const listA = await t.call('GET', `/customers/ada/orders?after=${placedB.body.position}`, { tenant: a });
    expect([listA.body.orderCount, listA.body.amountOrdered]).toEqual([1, 10]);
  });

  it('refuses commands that break the order rules (409) and commands on a stale version (If-Match, 409)', async () => {
    const tenant = newTenant();
    const placed = await t.call('POST', '/orders', { tenant, body: { orderId: 'o-9', customerId: 'ada', lines: [{ sku: 'X1', quantity: 1, unitPrice: 10 }] } });

    const shipUnpaid = await t.call('POST', '/orders/o-9/ship', { tenant, body: { carrier: 'UPS', trackingNumber: '1Z' } });
    expect(shipUnpaid.status).toBe(409);
    expect(shipUnpaid.body.error).toMatchObject({ code: 'RULE_VIOLATED', message: 'order o-9 cannot ship while placed' });
    const wrongAmount = await t.call('POST', '/orders/o-9/pay', { tenant, body: { amount: 9, paymentId: 'p' } });
    expect(wrongAmount.body.error.message).toBe('payment 9 does not match the total 10');
    const placeAgain = await t.call('POST', '/orders', { tenant, body: { orderId: 'o-9', customerId: 'ada', lines: [{ sku: 'X1', quantity: 1, unitPrice: 10 }] } });
    expect(placeAgain.status).toBe(409);

    const seen = await t.call('GET', `/orders/o-9?after=${placed.body.position}`, { tenant });
    const etag = seen.headers.get('etag') as string;
    expect(etag).toBe('"1"');
    const paid = await t.call('POST', '/orders/o-9/pay', { tenant, body: { amount: 10, paymentId: 'p1' }, headers: { 'if-match': etag } });
    expect(paid.status).toBe(200);
    // A second client still holding ETag "1" is told the order moved on, with both versions.
    const stale = await t.call('POST', '/orders/o-9/cancel', { tenant, body: { reason: 'too late' }, headers: { 'if-match': etag } });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: 'CONCURRENCY_CONFLICT', expected: 1, actual: 2 });

    const events = await t.shop.store.readStream({ tenantId: tenant, streamId: 'order-o-9' });
    expect(events.map((e) => e.eventType)).toEqual(['shop.order.placed', 'shop.order.paid']);
    const final = await t.call('GET', `/orders/o-9?after=${paid.body.position}`, { tenant });
    expect(final.body).toMatchObject({ status: 'paid', version: 2 });
  });
});
