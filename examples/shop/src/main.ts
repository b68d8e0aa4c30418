import { startShopServer } from './http/shop-server.js';
import { CatalogRuleError } from './catalog/catalog-decider.js';
import { PRODUCT_SEED } from './catalog/product-seed.js';
import { runDeliveryDemo } from './delivery-demo.js';
import { openShop } from './shop.js';

/**
 * The shop, end to end on the embedded store (PostgreSQL in process, in ./.data): the catalogue
 * seeded, the HTTP API on loopback, a few orders placed through it, and the read models'
 * answers printed; then delivery: the order events published through the event-log relay, the
 * notification service's emails, and a poison message dead-lettered, fixed and replayed. Run it
 * twice: the store keeps what earlier runs wrote, and the read models are rebuilt from it.
 * `SHOP_SERVE=1` keeps the server running; `SHOP_PORT` picks its port.
 */
const dataDir = process.env.CAUSEWAY_SHOP_DATA ?? new URL('../.data/store', import.meta.url).pathname;
const port = Number(process.env.SHOP_PORT ?? 0);
const tenant = 'demo-shop';

const shop = await openShop({ dataDir });
const server = await startShopServer({ shop, port });
let serving = false;

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'x-tenant-id': tenant, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer: any = await res.json(); // a demo: the shapes are printed, not checked
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status} ${answer.error?.message}`);
  return answer;
}

const money = (n: number): string => n.toFixed(2);

try {
  console.log(`Causeway shop on the embedded store (${dataDir})\nHTTP API at ${server.url} (tenant header x-tenant-id: ${tenant})\n`);

  let added = 0;
  for (const product of PRODUCT_SEED) {
    try {
      await shop.catalog(tenant, { type: 'AddProduct', ...product });
      added++;
    } catch (e) {
      if (!(e instanceof CatalogRuleError)) throw e; // added by an earlier run
    }
  }
  console.log(`Catalogue: ${added} of ${PRODUCT_SEED.length} products added (the rest were already there)`);
  for (const customer of ['ada', 'grace']) await call('PUT', `/customers/${customer}/email`, { email: `${customer}@example.com` });
  // A customer new in every run, whose address nobody registered: the notification service cannot email them.
  const newcomer = `newcomer-${Date.now().toString(36)}`;
  console.log(`Email addresses on file for ada and grace (PUT /customers/:id/email); none for ${newcomer}\n\nCommands over HTTP:`);

  const place = (customerId: string, lines: Array<[string, number, number]>) =>
    call('POST', '/orders', { customerId, lines: lines.map(([sku, quantity, unitPrice]) => ({ sku, quantity, unitPrice })) });
  const a = await place('ada', [['KB-MECH-87', 1, 89], ['CB-USBC-1M', 2, 9]]);
  const b = await place('grace', [['MN-4K-27', 2, 329]]);
  const c = await place('ada', [['MS-ERGO-10', 1, 45]]);
  const steps = [
    a,
    b,
    c,
    await call('POST', `/orders/${a.orderId}/pay`, { amount: 107, paymentId: `pay-${a.orderId.slice(-6)}` }),
    await call('POST', `/orders/${a.orderId}/ship`, { carrier: 'DHL', trackingNumber: 'JD0146' }),
    await call('POST', `/orders/${c.orderId}/cancel`, { reason: 'customer changed their mind' }),
  ];
  const poison = await place(newcomer, [['MS-PAD-12', 1, 25]]);
  steps.push(poison);
  for (const s of steps) console.log(`  order ${s.orderId.slice(-8)} -> ${s.status.padEnd(9)} v${s.version} at log position ${s.position}`);
  const last = steps[steps.length - 1].position as string;

  console.log(`\nRead models (each GET passes ?after=${last}, so it waits until the projection has the writes):`);
  const summary = await call('GET', `/orders/${a.orderId}?after=${last}`);
  console.log(`  GET /orders/${a.orderId.slice(-8)}: ${summary.status}, ${summary.itemCount} items, total ${money(summary.total)}, paid ${money(summary.paid)}, shipped ${summary.shippedAt} by ${summary.carrier}`);
  for (const customer of ['ada', 'grace']) {
    const list = await call('GET', `/customers/${customer}/orders?limit=3&after=${last}`);
    const counts = Object.entries(list.byStatus).map(([k, v]) => `${v} ${k}`).join(', ');
    console.log(`  GET /customers/${customer}/orders: ${list.orderCount} order${list.orderCount === 1 ? '' : 's'} (${counts}); ordered ${money(list.amountOrdered)}, paid ${money(list.amountPaid)}`);
    for (const o of list.orders) console.log(`      ${o.orderId.slice(-8)} ${o.status.padEnd(9)} ${money(o.total).padStart(8)}  ${o.placedAt}`);
  }
  for (const q of ['mechanical keyboard', 'usb-c', 'ergonomic', '"desk mat" or headphones']) {
    const found = await call('GET', `/products/search?q=${encodeURIComponent(q)}&limit=3&after=${last}`);
    const hits = found.hits.map((h: { name: string; rank: number }) => `${h.name} (${h.rank.toFixed(3)})`).join(', ');
    console.log(`  GET /products/search?q=${q}: ${hits || 'nothing'}`);
  }

  await runDeliveryDemo({
    shop,
    call,
    tenant,
    expected: [
      { orderId: a.orderId, emails: 2 }, // placed, shipped
      { orderId: b.orderId, emails: 1 },
      { orderId: c.orderId, emails: 1 }, // cancelled afterwards: no email for that
    ],
    poison: { orderId: poison.orderId, customerId: newcomer },
  });

  if (process.env.SHOP_SERVE === '1') {
    serving = true;
    console.log(`\nServing at ${server.url} until Ctrl-C, e.g.\n  curl -H 'x-tenant-id: ${tenant}' '${server.url}/products/search?q=keyboard'`);
    const stop = (): void => {
      void server.close().then(() => shop.close());
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
} finally {
  if (!serving) {
    await server.close();
    await shop.close();
  }
}
