import { ALL_TENANTS, createCommandHandler, startCorrelation, uuidv7, type StreamRef } from '@causeway/core';
import { openEmbeddedEventStore } from '@causeway/postgres';
import { orderDecider, OrderRuleError, type OrderCommand } from './order/order-decider.js';

/**
 * The shop, first glimpse: the order service on the embedded store (PostgreSQL in process, in
 * ./.data), no server and no configuration. Places a few orders through the decider and prints
 * their streams. Run it twice: the store keeps what earlier runs wrote.
 */
const dataDir = process.env.CAUSEWAY_SHOP_DATA ?? new URL('../.data/store', import.meta.url).pathname;
const store = await openEmbeddedEventStore({ dataDir, producer: 'shop.orders' });
const orders = createCommandHandler({ store, decider: orderDecider, streamType: 'order' });
const tenantId = 'demo-shop';
const ref = (orderId: string): StreamRef => ({ tenantId, streamId: `order-${orderId}` });

async function send(command: OrderCommand): Promise<void> {
  try {
    const r = await orders.handle(ref(command.orderId), command, { correlation: startCorrelation() });
    console.log(`  ${command.type.padEnd(11)} ${command.orderId.slice(-8)} -> ${r.state.status} (v${r.nextExpectedVersion})`);
  } catch (e) {
    if (!(e instanceof OrderRuleError)) throw e;
    console.log(`  ${command.type.padEnd(11)} ${command.orderId.slice(-8)} refused: ${e.message}`);
  }
}

try {
  const [a, b, c] = [uuidv7(), uuidv7(), uuidv7()];
  console.log(`Causeway shop on the embedded store (${dataDir})\n\nCommands:`);
  await send({ type: 'PlaceOrder', orderId: a, customerId: 'ada', lines: [{ sku: 'KEYBOARD', quantity: 1, unitPrice: 89 }, { sku: 'CABLE', quantity: 2, unitPrice: 6 }] });
  await send({ type: 'PlaceOrder', orderId: b, customerId: 'grace', lines: [{ sku: 'MONITOR', quantity: 2, unitPrice: 199 }] });
  await send({ type: 'PlaceOrder', orderId: c, customerId: 'linus', lines: [{ sku: 'MOUSE', quantity: 1, unitPrice: 25 }] });
  await send({ type: 'PayOrder', orderId: a, amount: 101, paymentId: 'pay-1' });
  await send({ type: 'ShipOrder', orderId: a, carrier: 'DHL', trackingNumber: 'JD0146' });
  await send({ type: 'ShipOrder', orderId: b, carrier: 'UPS', trackingNumber: '1Z999' });
  await send({ type: 'CancelOrder', orderId: c, reason: 'customer changed their mind' });

  console.log('\nStreams:');
  for (const id of [a, b, c]) {
    const events = await store.readStream(ref(id));
    console.log(`  order-${id}`);
    for (const e of events) {
      console.log(`    v${e.streamVersion} ${e.eventType.padEnd(21)} at ${e.recordedAt}  ${JSON.stringify(e.data)}`);
    }
  }
  let total = 0;
  for (let after = undefined as Parameters<typeof store.readAll>[0]['after']; ; ) {
    const batch = await store.readAll({ tenantId: ALL_TENANTS, ...(after ? { after } : {}), limit: 1000 });
    if (batch.events.length === 0) break;
    total += batch.events.length;
    after = batch.next;
  }
  console.log(`\nThe store holds ${total} events in all (earlier runs included).`);
} finally {
  await store.close();
}
