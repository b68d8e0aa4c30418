import { createDelivery, handleDelivery, InvalidOptionsError, type DeadLetterSummary, type Middleware, type ReceivedEvent } from '@causeway/core';
import type { SqlDatabase } from '@causeway/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNotificationService } from '../src/notification/notification-service.js';
import { orderStream } from '../src/shop.js';
import { startTestShop, waitUntil, type TestShop } from './support.js';

/**
 * The shop's delivery path end to end on one in-memory PGlite: commands over HTTP append order
 * events; the event-log relay publishes them to `shop.orders` on the PostgreSQL broker; the
 * notification service consumes them through deadLetter → retry → requireTenant → dedup and
 * writes one `notifications_sent` row per email in the ledger's transaction. Each test works in a
 * tenant of its own. A fault middleware (innermost) can make a delivery fail AFTER its
 * transaction committed and before the ack, as a crash there would: the broker redelivers it.
 */
const crashOnce = new Set<string>();
let crashes = 0;
const faultKey = (e: ReceivedEvent): string => `${e.tenantId}/${e.eventType}/${(e.data as { orderId?: string }).orderId}`;
const crashBeforeAck: Middleware = (next) =>
  async function crashingBeforeAck(delivery) {
    await next(delivery);
    if (delivery.kind === 'event' && crashOnce.delete(faultKey(delivery.event))) {
      crashes++;
      throw new Error('simulated crash: the email row committed, the ack never left');
    }
  };

let t: TestShop;
beforeAll(async () => {
  t = await startTestShop({
    shop: { notifications: { middleware: [crashBeforeAck], servesTenant: (tenantId) => !tenantId.startsWith('blocked-'), replayPollMs: 200 } },
  });
});
afterAll(async () => {
  await t?.close();
});

let tenants = 0;
const newTenant = (): string => `notif-${process.pid}-${++tenants}`;
const note = { by: 'ops@example.com', reason: 'email address registered' };

const sent = (tenant: string, orderId?: string) => t.shop.notifications.sent(tenant, orderId);
async function letters(tenant: string): Promise<DeadLetterSummary[]> {
  const page = await t.shop.deadLetters.list({ tenantId: tenant }, { limit: 100 });
  return [...page.items].sort((a, b) => Number(a.id) - Number(b.id)); // oldest first
}
async function ledgerKeys(db: SqlDatabase, tenant: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM causeway.inbox WHERE consumer = 'notifications' AND tenant_id = $1`, [tenant]);
  return rows[0]?.n ?? -1;
}
const place = (tenant: string, orderId: string, customerId: string) =>
  t.call('POST', '/orders', { tenant, body: { orderId, customerId, lines: [{ sku: 'KB-MECH-87', quantity: 1, unitPrice: 89 }, { sku: 'CB-USBC-1M', quantity: 2, unitPrice: 9 }] } });
async function placePayShip(tenant: string, orderId: string, customerId: string): Promise<void> {
  const steps = [
    await place(tenant, orderId, customerId),
    await t.call('POST', `/orders/${orderId}/pay`, { tenant, body: { amount: 107, paymentId: `pay-${orderId}` } }),
    await t.call('POST', `/orders/${orderId}/ship`, { tenant, body: { carrier: 'DHL', trackingNumber: 'JD0146' } }),
  ];
  expect(steps.map((s) => s.status)).toEqual([201, 200, 200]);
}

describe('notifications over the relay and the broker', () => {
  it('emails once when an order is placed and once when it ships; a redelivery after a crash before the ack sends nothing', async () => {
    const tenant = newTenant();
    const registered = await t.call('PUT', '/customers/ada/email', { tenant, body: { email: 'ada@example.com' } });
    expect(registered.status).toBe(200);
    expect(registered.body).toEqual({ customerId: 'ada', email: 'ada@example.com' });
    const refused = await t.call('PUT', '/customers/ada/email', { tenant, body: { email: 'ada at example' } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.problems.map((p: { field: string }) => p.field)).toEqual(['email']);

    const duplicatesBefore = t.shop.notifications.duplicates;
    const crashesBefore = crashes;
    const publishedBefore = t.shop.orderRelay.published;
    crashOnce.add(`${tenant}/shop.order.placed/o-1`);
    await placePayShip(tenant, 'o-1', 'ada');

    // Per-order order on the broker: OrderShipped is handed out only after the redelivered OrderPlaced was acked.
    await waitUntil(async () => (await sent(tenant)).length >= 2, 'two emails');
    const emails = await sent(tenant);
    expect(emails.map((e) => [e.eventType, e.orderId, e.customerId, e.email, e.subject])).toEqual([
      ['shop.order.placed', 'o-1', 'ada', 'ada@example.com', 'Order o-1 received'],
      ['shop.order.shipped', 'o-1', 'ada', 'ada@example.com', 'Order o-1 shipped'],
    ]);
    expect(emails[0]?.body).toContain('107.00');
    expect(emails[1]?.body).toContain('DHL, tracking number JD0146');
    const events = await t.shop.store.readStream(orderStream(tenant, 'o-1'));
    const byType = new Map(events.map((e) => [e.eventType, e.eventId]));
    expect(emails.map((e) => e.eventId)).toEqual([byType.get('shop.order.placed'), byType.get('shop.order.shipped')]);

    expect(crashes - crashesBefore).toBe(1);
    expect(t.shop.notifications.duplicates - duplicatesBefore).toBe(1); // the redelivery, absorbed by the ledger
    expect(t.shop.orderRelay.published - publishedBefore).toBeGreaterThanOrEqual(3); // placed, paid, shipped went out through the relay
    expect(await ledgerKeys(t.shop.db, tenant)).toBe(2); // OrderPaid is not the service's business: acked without a ledger row
    expect(await letters(tenant)).toEqual([]);
    expect(await sent(tenant)).toHaveLength(2);
  });

  it('poison: no email on file → dead-lettered once with reason and fingerprint; after the fix a replay sends exactly once, a second changes nothing', async () => {
    const tenant = newTenant();
    await placePayShip(tenant, 'o-p', 'newcomer');

    // OrderPlaced fails for good (no address); OrderShipped then finds no applied placement.
    await waitUntil(async () => (await letters(tenant)).length >= 2, 'two dead letters');
    const [placed, shipped] = await letters(tenant);
    expect(placed).toMatchObject({
      consumer: 'notifications',
      status: 'dead',
      topic: 'shop.orders',
      group: 'notifications',
      key: 'order-o-p',
      tenantId: tenant,
      eventType: 'shop.order.placed',
      reason: 'permanent',
      errorClass: 'UnknownRecipientError',
      attempts: 1, // permanent: never retried
    });
    expect(placed?.errorMessage).toContain('no email address on file for customer "newcomer"');
    expect(placed?.fingerprint).toMatch(/^UnknownRecipientError:[0-9a-f]{8}$/);
    expect(shipped).toMatchObject({ eventType: 'shop.order.shipped', reason: 'permanent', errorClass: 'UnknownOrderError', attempts: 1, status: 'dead' });
    expect(shipped?.fingerprint).toMatch(/^UnknownOrderError:/);
    const placedId = placed?.id as string;
    const shippedId = shipped?.id as string;
    expect(await sent(tenant)).toEqual([]);
    expect(await ledgerKeys(t.shop.db, tenant)).toBe(0); // the failed transactions left no key behind

    const view = await t.call('GET', '/dead-letters', { tenant });
    expect(view.status).toBe(200);
    expect(view.body.items.map((l: DeadLetterSummary) => l.id)).toEqual([shippedId, placedId]); // newest first
    expect(view.body.groups.map((g: { fingerprint: string; count: number }) => [g.fingerprint, g.count]).sort()).toEqual(
      [[placed?.fingerprint, 1], [shipped?.fingerprint, 1]].sort(),
    );
    expect((await t.call('GET', '/dead-letters?status=replayed', { tenant })).body.items).toEqual([]);
    expect((await t.call('GET', '/dead-letters', { tenant: newTenant() })).body).toEqual({ items: [], next: null, groups: [] });
    const bad = await t.call('GET', '/dead-letters?status=lost&limit=0', { tenant });
    expect(bad.status).toBe(400);
    expect(bad.body.error.problems.map((p: { field: string }) => p.field).sort()).toEqual(['limit', 'status']);

    // A replay before the fix fails the same way: the same letter comes back, not a new one.
    expect((await t.shop.deadLetters.replay({ ids: [placedId] }, { by: 'ops@example.com', reason: 'try again' })).ids).toEqual([placedId]);
    await t.shop.notifications.replayer.drain();
    await waitUntil(async () => (await t.shop.deadLetters.history(placedId)).some((h) => h.action === 'replay_failed'), 'the failed replay');
    expect((await letters(tenant)).map((l) => [l.id, l.status, l.attempts])).toEqual([[placedId, 'dead', 2], [shippedId, 'dead', 1]]);
    expect(await sent(tenant)).toEqual([]);

    // The fix, then one replay of both letters: oldest first, so the placement is applied before the shipment.
    expect((await t.call('PUT', '/customers/newcomer/email', { tenant, body: { email: 'newcomer@example.com' } })).status).toBe(200);
    const replay = await t.shop.deadLetters.replay({ consumer: 'notifications', tenantId: tenant, status: 'dead' }, note);
    expect(replay).toEqual({ ids: [placedId, shippedId], notReplayable: [] });
    await t.shop.notifications.replayer.drain();
    await waitUntil(async () => (await letters(tenant)).every((l) => l.status === 'replayed'), 'both letters replayed');
    const emails = await sent(tenant);
    expect(emails.map((e) => [e.eventType, e.orderId, e.customerId, e.email])).toEqual([
      ['shop.order.placed', 'o-p', 'newcomer', 'newcomer@example.com'],
      ['shop.order.shipped', 'o-p', 'newcomer', 'newcomer@example.com'],
    ]);
    expect(await ledgerKeys(t.shop.db, tenant)).toBe(2);
    expect((await t.shop.deadLetters.history(placedId)).map((h) => h.action)).toEqual([
      'dead_lettered',
      'replay_requested',
      'dead_lettered',
      'replay_failed',
      'replay_requested',
      'replayed',
    ]);

    // A second replay selects nothing: a replayed letter is not replayed twice.
    expect(await t.shop.deadLetters.replay({ ids: [placedId, shippedId] }, note)).toEqual({ ids: [], notReplayable: [] });
    expect(await t.shop.notifications.replayer.drain()).toBe(0);

    // And if the same event arrives once more anyway (a relay republishing past the broker's dedup), the ledger absorbs it.
    const event = (await t.shop.deadLetters.inspect(placedId))?.event as ReceivedEvent;
    const duplicatesBefore = t.shop.notifications.duplicates;
    const settled: string[] = [];
    const { delivery } = createDelivery(
      { topic: 'shop.orders', group: 'notifications', key: 'order-o-p', attempt: 1, brokerId: 'test', kind: 'event', event },
      { ack: async () => void settled.push('ack'), nack: async () => void settled.push('nack') },
    );
    await handleDelivery(t.shop.notifications.handler, delivery, (error) => settled.push(`error: ${String(error)}`));
    expect(t.shop.notifications.duplicates - duplicatesBefore).toBe(1);
    expect(settled).toEqual(['ack']);
    expect(await sent(tenant)).toHaveLength(2);
    expect((await letters(tenant)).map((l) => l.status)).toEqual(['replayed', 'replayed']);
  });

  it("an event of a tenant the service does not serve is dead-lettered before it is read; nothing is sent", async () => {
    const tenant = `blocked-${process.pid}`;
    await t.shop.notifications.registerEmail(tenant, 'ada', 'ada@example.com');
    expect((await place(tenant, 'o-b', 'ada')).status).toBe(201);
    await waitUntil(async () => (await letters(tenant)).length >= 1, 'the dead letter');
    const [letter] = await letters(tenant);
    expect(letter).toMatchObject({ eventType: 'shop.order.placed', reason: 'permanent', errorClass: 'PermanentError', attempts: 1 });
    expect(letter?.errorMessage).toContain('is not served by this consumer');
    expect(await sent(tenant)).toEqual([]);
    expect(await ledgerKeys(t.shop.db, tenant)).toBe(0);
  });

  it('refuses bad options and bad addresses before touching anything', async () => {
    const db = { transaction: () => Promise.reject(new Error('must not be called')) } as unknown as SqlDatabase;
    const subscriber = { subscribe: () => Promise.reject(new Error('must not be called')), close: async () => undefined };
    await expect(startNotificationService({ db, subscriber, concurrency: 0 })).rejects.toThrow(InvalidOptionsError);
    await expect(startNotificationService({ db, subscriber, replayPollMs: 1.5 })).rejects.toThrow(/replayPollMs/);
    await expect(startNotificationService({ db, subscriber, schema: 'Bad-Name' })).rejects.toThrow(InvalidOptionsError);
    await expect(startNotificationService({ db, subscriber, retry: { maxAttempts: 0 } })).rejects.toThrow(/maxAttempts/);
    await expect(t.shop.notifications.registerEmail(newTenant(), 'ada', 'ada@')).rejects.toMatchObject({ code: 'SCHEMA_INVALID' });
    await expect(t.shop.notifications.registerEmail(newTenant(), '', 'ada@example.com')).rejects.toThrow(/customerId/);
  });
});
