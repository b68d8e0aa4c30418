import { formatPosition, parsePosition, tenantIdProblem, type AskQueryOptions, type LogPosition } from '@causeway/core';
import type { IncomingMessage } from 'node:http';
import { customerOrdersQuery } from '../read-models/customer-orders.js';
import { orderSummaryQuery } from '../read-models/order-summary.js';
import { productSearchQuery } from '../read-models/product-search.js';
import type { CommandOptions, CommandOutcome, Shop } from '../shop.js';
import {
  addProductCommand,
  cancelOrderCommand,
  payOrderCommand,
  placeOrderCommand,
  shipOrderCommand,
  updateProductCommand,
} from './command-input.js';
import { HttpError, invalidInput } from './http-error.js';
import { InputReader } from './input-reader.js';
import { readJsonBody } from './json-body.js';
import type { Reply, RequestContext, Route } from './router.js';

export const TENANT_HEADER = 'x-tenant-id';

/** The tenant every request acts for; every read and write is scoped to it. */
export function tenantOf(req: IncomingMessage): string {
  const value = req.headers[TENANT_HEADER];
  const problem = tenantIdProblem(value);
  if (problem !== null) throw invalidInput([{ field: TENANT_HEADER, message: `header ${problem}` }]);
  return value as string;
}

/** `If-Match: "3"` (the ETag a GET or a command returned): decide only on that version. */
function commandOptions(req: IncomingMessage): CommandOptions {
  const value = req.headers['if-match'];
  if (value === undefined) return {};
  const m = /^(?:W\/)?"?(\d{1,9})"?$/.exec(value.trim());
  if (!m) throw invalidInput([{ field: 'if-match', message: `header must be a version ETag such as "3"; got ${JSON.stringify(value)}` }]);
  return { expectedVersion: Number(m[1]) };
}

/** `?after=<tx/seq>`: the position a command returned; the query waits until its read model has it. */
function readOptions(url: URL, input: InputReader): AskQueryOptions {
  const after = url.searchParams.get('after');
  if (after === null) return {};
  let afterPosition: LogPosition | null = null;
  try {
    afterPosition = parsePosition(after);
  } catch {
    input.problem('after', `must be a log position "<tx>/<seq>" as a command returned it; got ${JSON.stringify(after)}`);
  }
  return afterPosition === null ? {} : { afterPosition };
}

export function limitOf(url: URL, input: InputReader, fallback: number): number {
  const text = url.searchParams.get('limit');
  if (text === null) return fallback;
  return input.number(/^\d{1,4}$/.test(text) ? Number(text) : text, 'limit', { min: 1, max: 100, integer: true });
}

function commandReply(status: number, ids: Record<string, string>, outcome: CommandOutcome<string>, location?: string): Reply {
  return {
    status,
    body: { ...ids, status: outcome.status, version: outcome.version, position: outcome.position === null ? null : formatPosition(outcome.position) },
    headers: { etag: `"${outcome.version}"`, ...(location === undefined ? {} : { location }) },
  };
}

export interface ShopRoutesOptions {
  readonly shop: Shop;
  /** Largest request body, checked before parsing. */
  readonly maxBodyBytes: number;
}

/** The shop's HTTP API: commands as POST/PATCH, read models as GET. */
export function shopRoutes({ shop, maxBodyBytes }: ShopRoutesOptions): Route[] {
  const body = (ctx: RequestContext): Promise<unknown> => readJsonBody(ctx.req, maxBodyBytes);
  const pathId = (ctx: RequestContext, name: string): string => {
    const input = new InputReader();
    const id = input.id(ctx.params[name], name);
    input.done();
    return id;
  };
  const orderCommand = (path: string, make: (orderId: string, body: unknown) => Parameters<Shop['order']>[1]): Route => ({
    method: 'POST',
    path,
    async handle(ctx) {
      const tenantId = tenantOf(ctx.req);
      const orderId = pathId(ctx, 'orderId');
      const command = make(orderId, await body(ctx));
      return commandReply(200, { orderId }, await shop.order(tenantId, command, commandOptions(ctx.req)));
    },
  });

  return [
    {
      method: 'POST',
      path: '/orders',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const command = placeOrderCommand(await body(ctx));
        const outcome = await shop.order(tenantId, command, commandOptions(ctx.req));
        return commandReply(201, { orderId: command.orderId }, outcome, `/orders/${encodeURIComponent(command.orderId)}`);
      },
    },
    orderCommand('/orders/:orderId/pay', payOrderCommand),
    orderCommand('/orders/:orderId/ship', shipOrderCommand),
    orderCommand('/orders/:orderId/cancel', cancelOrderCommand),
    {
      method: 'POST',
      path: '/products',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const command = addProductCommand(await body(ctx));
        const outcome = await shop.catalog(tenantId, command, commandOptions(ctx.req));
        return commandReply(201, { sku: command.sku }, outcome, `/products/${encodeURIComponent(command.sku)}`);
      },
    },
    {
      method: 'PATCH',
      path: '/products/:sku',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const sku = pathId(ctx, 'sku');
        const outcome = await shop.catalog(tenantId, updateProductCommand(sku, await body(ctx)), commandOptions(ctx.req));
        return commandReply(200, { sku }, outcome);
      },
    },
    {
      method: 'GET',
      path: '/orders/:orderId',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const input = new InputReader();
        const orderId = input.id(ctx.params.orderId, 'orderId');
        const options = readOptions(ctx.url, input);
        input.done();
        const summary = await shop.queries.ask(orderSummaryQuery, { tenantId, orderId }, options);
        if (summary === null) throw new HttpError(404, 'NOT_FOUND', `order ${orderId} does not exist (tenant ${tenantId})`);
        return { status: 200, body: summary, headers: { etag: `"${summary.version}"` } };
      },
    },
    {
      method: 'GET',
      path: '/customers/:customerId/orders',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const input = new InputReader();
        const customerId = input.id(ctx.params.customerId, 'customerId');
        const limit = limitOf(ctx.url, input, 20);
        const options = readOptions(ctx.url, input);
        input.done();
        return { status: 200, body: await shop.queries.ask(customerOrdersQuery, { tenantId, customerId, limit }, options) };
      },
    },
    {
      method: 'GET',
      path: '/products/search',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const input = new InputReader();
        const text = input.text(ctx.url.searchParams.get('q') ?? undefined, 'q', { max: 200 });
        const limit = limitOf(ctx.url, input, 10);
        const options = readOptions(ctx.url, input);
        input.done();
        const { hits } = await shop.queries.ask(productSearchQuery, { tenantId, text, limit }, options);
        return { status: 200, body: { query: text, hits } };
      },
    },
  ];
}
