import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestShop, type TestShop } from './support.js';

/** Bad requests get JSON errors that name what was wrong, with the right status; nothing is stored. */
const MAX_BODY = 2048;
const WAIT_MS = 300;
let t: TestShop;
beforeAll(async () => {
  t = await startTestShop({ shop: { readYourWritesTimeoutMs: WAIT_MS }, server: { maxBodyBytes: MAX_BODY } });
});
afterAll(async () => {
  await t?.close();
});

const lines = [{ sku: 'X1', quantity: 1, unitPrice: 10 }];

async function eventsOf(tenantId: string): Promise<number> {
  const r = await t.shop.store.readAll({ tenantId, limit: 100 });
  return r.events.length;
}

/** Sends a raw body (bytes as given) with fetch. */
async function rawPost(path: string, body: string | Uint8Array | ReadableStream<Uint8Array>, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${t.server.url}${path}`, {
    method: 'POST',
    headers: { 'x-tenant-id': 'errors', 'content-type': 'application/json', ...headers },
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('HTTP errors', () => {
  it('400 when the tenant header is missing or malformed, naming the header', async () => {
    const missing = await t.call('GET', '/orders/o-1');
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('INVALID_INPUT');
    expect(missing.body.error.problems).toEqual([{ field: 'x-tenant-id', message: 'header tenant id is missing' }]);
    const bad = await t.call('POST', '/orders', { tenant: 'a b', body: { customerId: 'ada', lines } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.problems[0].field).toBe('x-tenant-id');
    expect(bad.body.error.message).toMatch(/tenant id must match/);
  });

  it('400 naming every bad field of a command, including nested lines and unknown fields', async () => {
    const tenant = 'bad-fields';
    const r = await t.call('POST', '/orders', {
      tenant,
      body: { customerID: 'ada', lines: [{ sku: 'X1', quantity: 1, unitPrice: 10 }, { sku: 'X 2', quantity: 0.5, unitPrice: -1 }] },
    });
    expect(r.status).toBe(400);
    const fields = r.body.error.problems.map((p: { field: string }) => p.field);
    expect(fields).toEqual(['customerID', 'customerId', 'lines[1].sku', 'lines[1].quantity', 'lines[1].unitPrice']);
    expect(r.body.error.message).toContain('lines[1].quantity: must be an integer; got number 0.5');
    expect(r.body.error.message).toContain('customerID: is not a known field');

    const lineNotObject = await t.call('POST', '/orders', { tenant, body: { customerId: 'ada', lines: [lines[0], 'X1'] } });
    expect(lineNotObject.body.error.problems).toEqual([{ field: 'lines[1]', message: 'must be a JSON object; got "X1"' }]);
    const noLines = await t.call('POST', '/orders', { tenant, body: { customerId: 'ada', lines: [] } });
    expect(noLines.body.error.problems).toEqual([{ field: 'lines', message: 'must hold 1 to 100 items; got 0' }]);
    const pay = await t.call('POST', '/orders/o-1/pay', { tenant, body: { amount: '10' } });
    expect(pay.body.error.problems.map((p: { field: string }) => p.field)).toEqual(['amount', 'paymentId']);
    const notObject = await t.call('POST', '/products', { tenant, body: [1, 2] });
    expect(notObject.body.error.problems).toEqual([{ field: 'body', message: 'must be a JSON object; got an array' }]);
    const emptyPatch = await t.call('PATCH', '/products/KB-1', { tenant, body: {} });
    expect(emptyPatch.status).toBe(400);
    const badPathId = await t.call('GET', `/orders/${encodeURIComponent('o 1')}`, { tenant });
    expect(badPathId.body.error.problems[0].field).toBe('orderId');
    expect(await eventsOf(tenant)).toBe(0);
  });

  it('400 for bodies that are not JSON, 415 for another content type', async () => {
    const broken = await rawPost('/orders', '{"customerId": ');
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('INVALID_JSON');
    const empty = await rawPost('/orders', '');
    expect(empty.body.error.message).toBe('request body is empty; expected a JSON object');
    const latin1 = await rawPost('/orders', new Uint8Array([0x7b, 0xff, 0x7d]));
    expect(latin1.body.error.message).toBe('request body is not valid UTF-8');
    const form = await rawPost('/orders', 'customerId=ada', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    expect(form.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('413 for a body over the limit, by Content-Length before reading, or counted when chunked; the limit itself is accepted', async () => {
    const tenant = 'big-bodies';
    const order = JSON.stringify({ customerId: 'ada', lines });
    const atLimit = order + ' '.repeat(MAX_BODY - order.length); // JSON allows trailing whitespace
    expect(Buffer.byteLength(atLimit)).toBe(MAX_BODY);
    const ok = await rawPost('/orders', atLimit, { 'x-tenant-id': tenant });
    expect(ok.status).toBe(201);

    const over = await rawPost('/orders', `${atLimit} `, { 'x-tenant-id': tenant });
    expect(over.status).toBe(413);
    expect(over.body.error).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: `request body is ${MAX_BODY + 1} bytes; the limit is ${MAX_BODY} bytes`,
      limitBytes: MAX_BODY,
    });
    expect(over.headers.get('connection')).toBe('close');

    const huge = await rawPost('/orders', JSON.stringify({ customerId: 'x'.repeat(1_000_000), lines }), { 'x-tenant-id': tenant });
    expect(huge.status).toBe(413);

    // No Content-Length: the body streams in chunks and is cut off once past the limit.
    const chunk = new TextEncoder().encode(`${' '.repeat(999)}\n`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 200) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const chunked = await rawPost('/orders', stream, { 'x-tenant-id': tenant });
    expect(chunked.status).toBe(413);
    expect(chunked.body.error.message).toBe(`request body is more than ${MAX_BODY} bytes; the limit is ${MAX_BODY} bytes`);

    // Only the order at the limit was stored; the server still answers on new connections.
    expect(await eventsOf(tenant)).toBe(1);
    expect((await t.call('GET', `/orders/${ok.body.orderId}?after=${ok.body.position}`, { tenant })).status).toBe(200);
  });

  it('404 for unknown routes and orders, 405 with Allow for a wrong method', async () => {
    const route = await t.call('GET', '/nowhere', { tenant: 'errors' });
    expect(route.status).toBe(404);
    expect(route.body.error).toEqual({ code: 'NOT_FOUND', message: 'no route for GET /nowhere' });
    const order = await t.call('GET', '/orders/never-placed', { tenant: 'errors' });
    expect(order.status).toBe(404);
    expect(order.body.error.message).toBe('order never-placed does not exist (tenant errors)');
    const method = await t.call('DELETE', '/orders', { tenant: 'errors' });
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toBe('POST');
  });

  it('400 naming a bad query parameter: after, limit, q, and a bad If-Match header', async () => {
    const tenant = 'errors';
    const after = await t.call('GET', '/orders/o-1?after=yesterday', { tenant });
    expect(after.status).toBe(400);
    expect(after.body.error.problems[0]).toEqual({ field: 'after', message: 'must be a log position "<tx>/<seq>" as a command returned it; got "yesterday"' });
    const limit = await t.call('GET', '/customers/ada/orders?limit=1000', { tenant });
    expect(limit.body.error.problems).toEqual([{ field: 'limit', message: 'must be an integer from 1 to 100; got 1000' }]);
    const q = await t.call('GET', '/products/search', { tenant });
    expect(q.body.error.problems[0].field).toBe('q');
    const ifMatch = await t.call('POST', '/orders/o-1/cancel', { tenant, body: { reason: 'x' }, headers: { 'if-match': 'banana' } });
    expect(ifMatch.body.error.problems[0].field).toBe('if-match');
  });

  it('503 with Retry-After when the read model does not reach ?after= in time', async () => {
    const placed = await t.call('POST', '/orders', { tenant: 'slow', body: { customerId: 'ada', lines } });
    const [tx] = (placed.body.position as string).split('/');
    const future = `${BigInt(tx as string) + 1_000_000n}/0`;
    const started = performance.now();
    const r = await t.call('GET', `/orders/${placed.body.orderId}?after=${future}`, { tenant: 'slow' });
    const waited = performance.now() - started;
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('NOT_CAUGHT_UP');
    expect(r.headers.get('retry-after')).toBe('1');
    expect(waited).toBeGreaterThanOrEqual(WAIT_MS - 5);
    // The position it did reach is enough for the write itself.
    expect((await t.call('GET', `/orders/${placed.body.orderId}?after=${placed.body.position}`, { tenant: 'slow' })).status).toBe(200);
  });
});
