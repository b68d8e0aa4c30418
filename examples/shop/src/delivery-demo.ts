import type { DeadLetterGroup, DeadLetterSummary } from '@causeway/core';
import { ORDER_TOPIC } from './contracts/order-events.js';
import { ORDER_RELAY_NAME } from './order/order-relay.js';
import type { Shop } from './shop.js';

/** An HTTP call of the demo (tenant header included); throws on a non-2xx answer. */
export type DemoCall = (method: string, path: string, body?: unknown) => Promise<any>;

export interface DeliveryDemoInput {
  readonly shop: Shop;
  readonly call: DemoCall;
  readonly tenant: string;
  /** Orders placed in this run, and how many emails each should get (placed: 1, shipped: +1). */
  readonly expected: ReadonlyArray<{ readonly orderId: string; readonly emails: number }>;
  /** An order of this run whose customer has no email address on file: the poison message. */
  readonly poison: { readonly orderId: string; readonly customerId: string };
}

/** Polls `check` until it returns something other than undefined/false, or fails after `timeoutMs`. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`demo: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const short = (id: string): string => id.slice(-8);
const groupText = (g: DeadLetterGroup): string => `${g.fingerprint} x${g.count}`;

/**
 * The delivery half of `npm start`: order events leave through the event-log relay, the
 * notification service emails each customer once, the poison order lands in the DLQ with its
 * reason and fingerprint, the operator registers the missing address and replays it (sent once),
 * and a second replay changes nothing. Every step waits for a condition with a deadline.
 */
export async function runDeliveryDemo({ shop, call, tenant, expected, poison }: DeliveryDemoInput): Promise<void> {
  const n = shop.notifications;
  console.log(`\nDelivery: order service -> event-log relay "${ORDER_RELAY_NAME}" -> topic ${ORDER_TOPIC} (PostgreSQL broker) -> notification service (group ${n.consumer})`);

  await waitFor('every email of this run', async () => {
    for (const o of expected) if ((await n.sent(tenant, o.orderId)).length < o.emails) return false;
    return (await shop.orderRelay.stats()).pending === 0;
  });
  console.log(`  relay: ${shop.orderRelay.published} order events published via the relay in this run; 0 pending behind its checkpoint`);
  for (const o of expected) {
    for (const e of await n.sent(tenant, o.orderId)) console.log(`  email sent to ${e.email.padEnd(18)} "${e.subject.replace(o.orderId, short(o.orderId))}" (event ${short(e.eventId)})`);
  }

  const key = `order-${poison.orderId}`;
  const letter = await waitFor('the poison message in the DLQ', async () => {
    const { items } = await shop.deadLetters.list({ tenantId: tenant, consumer: n.consumer, status: 'dead', eventType: 'shop.order.placed' });
    return items.find((l) => l.key === key);
  });
  console.log(`  poison: order ${short(poison.orderId)} of customer ${poison.customerId}, who has no email address on file:`);
  console.log(`    dead-lettered as letter #${letter.id}: ${letter.reason}, ${letter.errorClass}: ${letter.errorMessage}`);
  console.log(`    fingerprint ${letter.fingerprint}, attempts ${letter.attempts} (a permanent failure is not retried)`);
  const view: { items: DeadLetterSummary[]; groups: DeadLetterGroup[] } = await call('GET', '/dead-letters?status=dead');
  const total = view.groups.reduce((sum, g) => sum + g.count, 0);
  console.log(`    GET /dead-letters?status=dead: ${total} dead letter(s) in ${view.groups.length} group(s): ${view.groups.map(groupText).join(', ')}`);
  if (total > 1) console.log('    (the others are older: e.g. orders stored before the notification service existed, whose customers had no address then)');

  const email = `${poison.customerId}@example.com`;
  await call('PUT', `/customers/${poison.customerId}/email`, { email });
  console.log(`  operator: PUT /customers/${poison.customerId}/email ${email}`);
  const note = { by: 'ops@demo-shop', reason: 'email address registered' };
  const first = await shop.deadLetters.replay({ ids: [letter.id] }, note);
  console.log(`  operator: replay letter #${letter.id} -> marked ${JSON.stringify(first.ids)}; the replay worker feeds it through the consumer's own pipeline`);
  await waitFor('the replay', async () => (await shop.deadLetters.inspect(letter.id))?.status === 'replayed');
  const sent = await n.sent(tenant, poison.orderId);
  console.log(`    replayed: ${sent.length} email sent to ${sent.map((e) => e.email).join(', ')} for order ${short(poison.orderId)}`);

  const second = await shop.deadLetters.replay({ ids: [letter.id] }, note);
  await n.replayer.drain();
  const after = await n.sent(tenant, poison.orderId);
  console.log(`  operator: replay letter #${letter.id} again -> marked ${JSON.stringify(second.ids)} (a replayed letter is not replayed twice); emails for the order: still ${after.length}`);
  const history = await shop.deadLetters.history(letter.id);
  console.log(`    history of #${letter.id}: ${history.map((h) => h.action).join(' -> ')}`);
  console.log(`  redeliveries absorbed by the dedup ledger in this run: ${n.duplicates}`);
  if (sent.length !== 1 || after.length !== 1 || second.ids.length !== 0) throw new Error('demo: the replayed notification was not sent exactly once');
}
