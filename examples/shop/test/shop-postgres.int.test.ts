import { createPgDatabase, type SqlDatabase } from '@causeway/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCT_SEED } from '../src/catalog/product-seed.js';
import { startTestShop, waitUntil, type TestShop } from './support.js';

/**
 * The same shop on the PostgreSQL server (the `pg` driver) instead of PGlite: the read models'
 * SQL must run unchanged on both. Store and read models live in schemas of their own, dropped after.
 */
const PG_URL = process.env.CAUSEWAY_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REQUIRE = process.env.CAUSEWAY_REQUIRE_SERVICES === '1';
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const storeSchema = `shop_store_${suffix}`;
const readSchema = `shop_read_${suffix}`;
const notificationSchema = `shop_notify_${suffix}`;

async function reachable(db: SqlDatabase): Promise<boolean> {
  if (REQUIRE) return true; // run and fail loudly
  try {
    await Promise.race([db.query('SELECT 1'), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000))]);
    return true;
  } catch {
    return false;
  }
}

const db = createPgDatabase({ connectionString: PG_URL, maxConnections: 4 });
const available = await reachable(db);
if (!available) await db.close();

// Without a server the tests are not registered; the one skipped test below says why.
if (available) describe('shop on the PostgreSQL server', () => {
  let t: TestShop;
  beforeAll(async () => {
    t = await startTestShop({ shop: { db, storeSchema, readSchema, notificationSchema } });
  });
  afterAll(async () => {
    await t?.close();
    await db.query(`DROP SCHEMA IF EXISTS "${storeSchema}" CASCADE`).catch(() => undefined);
    await db.query(`DROP SCHEMA IF EXISTS "${readSchema}" CASCADE`).catch(() => undefined);
    await db.query(`DROP SCHEMA IF EXISTS "${notificationSchema}" CASCADE`).catch(() => undefined);
    await db.close();
  });

  it('orders: summary and per-customer list, read after the write, scoped by tenant', async () => {
    const tenant = 'pg-a';
    const placed = await t.call('POST', '/orders', { tenant, body: { orderId: 'o-1', customerId: 'ada', lines: [{ sku: 'X1', quantity: 2, unitPrice: 12.5 }] } });
    const paid = await t.call('POST', '/orders/o-1/pay', { tenant, body: { amount: 25, paymentId: 'p1' } });
    await t.call('POST', '/orders', { tenant, body: { orderId: 'o-2', customerId: 'ada', lines: [{ sku: 'X2', quantity: 1, unitPrice: 5 }] } });
    const cancelled = await t.call('POST', '/orders/o-2/cancel', { tenant, body: { reason: 'no' } });
    expect([placed.status, paid.status, cancelled.status]).toEqual([201, 200, 200]);

    const summary = await t.call('GET', `/orders/o-1?after=${paid.body.position}`, { tenant });
    expect(summary.body).toMatchObject({ status: 'paid', total: 25, paid: 25, itemCount: 2, version: 2 });
    expect(summary.body.paidAt).toMatch(/Z$/);
    const list = await t.call('GET', `/customers/ada/orders?after=${cancelled.body.position}`, { tenant });
    expect(list.body).toMatchObject({ orderCount: 2, byStatus: { paid: 1, cancelled: 1, placed: 0 }, amountOrdered: 25, amountPaid: 25 });
    expect(list.body.orders.map((o: { orderId: string }) => o.orderId)).toEqual(['o-2', 'o-1']);
    expect((await t.call('GET', `/orders/o-1?after=${paid.body.position}`, { tenant: 'pg-b' })).status).toBe(404);
  });

  it('notifications: relayed through the broker in the same database, sent once; the poison order is dead-lettered, then replayed', async () => {
    const tenant = 'pg-n';
    expect((await t.call('PUT', '/customers/ada/email', { tenant, body: { email: 'ada@example.com' } })).status).toBe(200);
    const line = [{ sku: 'X1', quantity: 1, unitPrice: 10 }];
    await t.call('POST', '/orders', { tenant, body: { orderId: 'n-1', customerId: 'ada', lines: line } });
    await t.call('POST', '/orders', { tenant, body: { orderId: 'n-2', customerId: 'nobody', lines: line } });
    await waitUntil(async () => (await t.shop.notifications.sent(tenant)).length === 1 && (await t.shop.deadLetters.list({ tenantId: tenant })).items.length === 1, 'one email and one dead letter');
    const [letter] = (await t.shop.deadLetters.list({ tenantId: tenant })).items;
    expect(letter).toMatchObject({ key: 'order-n-2', reason: 'permanent', errorClass: 'UnknownRecipientError', status: 'dead' });

    await t.shop.notifications.registerEmail(tenant, 'nobody', 'nobody@example.com');
    expect((await t.shop.deadLetters.replay({ ids: [letter?.id as string] }, { by: 'test', reason: 'registered' })).ids).toEqual([letter?.id]);
    await t.shop.notifications.replayer.drain();
    await waitUntil(async () => (await t.shop.deadLetters.inspect(letter?.id as string))?.status === 'replayed', 'the replay');
    const sent = await t.shop.notifications.sent(tenant);
    expect(sent.map((e) => [e.orderId, e.email])).toEqual([
      ['n-1', 'ada@example.com'],
      ['n-2', 'nobody@example.com'],
    ]);
  });

  it('product search ranks with full-text search, per tenant', async () => {
    let position = '';
    for (const product of PRODUCT_SEED) position = (await t.call('POST', '/products', { tenant: 'pg-a', body: product })).body.position;
    const r = await t.call('GET', `/products/search?q=${encodeURIComponent('mechanical or keyboard')}&after=${position}`, { tenant: 'pg-a' });
    expect(r.body.hits[0].sku).toBe('KB-MECH-87');
    expect(r.body.hits).toHaveLength(5);
    const other = await t.call('GET', `/products/search?q=keyboard&after=${position}`, { tenant: 'pg-b' });
    expect(other.body.hits).toEqual([]);
  });
});

if (!available) {
  it.skip(`shop on the PostgreSQL server: skipped because PostgreSQL is not reachable at ${PG_URL} (set CAUSEWAY_REQUIRE_SERVICES=1 to fail instead)`, () => {});
}
