import { uuidv7 } from '@causeway/core';
import type { CatalogCommand } from '../catalog/catalog-decider.js';
import type { ProductDetails } from '../contracts/catalog-events.js';
import type { OrderLine } from '../contracts/order-events.js';
import type { OrderCommand } from '../order/order-decider.js';
import { InputReader } from './input-reader.js';

/** Limits on what a request may carry; the decider's business rules come after these. */
const MAX_LINES = 100;
const QUANTITY = { min: 1, max: 10_000, integer: true } as const;
const MONEY = { min: 0, max: 10_000_000 } as const;
const SHORT = { max: 64 } as const;
const NAME = { max: 200 } as const;
const LONG = { max: 2000 } as const;

/** Body of POST /orders. `orderId` is optional: the shop makes one (UUIDv7) when it is missing. */
export function placeOrderCommand(body: unknown): Extract<OrderCommand, { type: 'PlaceOrder' }> {
  const input = new InputReader();
  const o = input.body(body, ['orderId', 'customerId', 'lines']);
  const orderId = o.orderId === undefined ? uuidv7() : input.id(o.orderId, 'orderId');
  const customerId = input.id(o.customerId, 'customerId');
  const lines = input.list(o.lines, 'lines', 1, MAX_LINES, (value, field): OrderLine => {
    const l = input.object(value, field, ['sku', 'quantity', 'unitPrice']);
    if (l === null) return { sku: '', quantity: 0, unitPrice: 0 }; // reported; done() throws below
    return {
      sku: input.id(l.sku, `${field}.sku`),
      quantity: input.number(l.quantity, `${field}.quantity`, QUANTITY),
      unitPrice: input.number(l.unitPrice, `${field}.unitPrice`, MONEY),
    };
  });
  input.done();
  return { type: 'PlaceOrder', orderId, customerId, lines };
}

/** Body of POST /orders/:orderId/pay. */
export function payOrderCommand(orderId: string, body: unknown): OrderCommand {
  const input = new InputReader();
  const o = input.body(body, ['amount', 'paymentId']);
  const command = { type: 'PayOrder' as const, orderId, amount: input.number(o.amount, 'amount', MONEY), paymentId: input.id(o.paymentId, 'paymentId') };
  input.done();
  return command;
}

/** Body of POST /orders/:orderId/ship. */
export function shipOrderCommand(orderId: string, body: unknown): OrderCommand {
  const input = new InputReader();
  const o = input.body(body, ['carrier', 'trackingNumber']);
  const command = {
    type: 'ShipOrder' as const,
    orderId,
    carrier: input.text(o.carrier, 'carrier', SHORT),
    trackingNumber: input.text(o.trackingNumber, 'trackingNumber', SHORT),
  };
  input.done();
  return command;
}

/** Body of POST /orders/:orderId/cancel. */
export function cancelOrderCommand(orderId: string, body: unknown): OrderCommand {
  const input = new InputReader();
  const o = input.body(body, ['reason']);
  const command = { type: 'CancelOrder' as const, orderId, reason: input.text(o.reason, 'reason', { max: 500 }) };
  input.done();
  return command;
}

/** Body of POST /products. */
export function addProductCommand(body: unknown): Extract<CatalogCommand, { type: 'AddProduct' }> {
  const input = new InputReader();
  const o = input.body(body, ['sku', 'name', 'description', 'category', 'price']);
  const command = {
    type: 'AddProduct' as const,
    sku: input.id(o.sku, 'sku'),
    name: input.text(o.name, 'name', NAME),
    description: input.text(o.description, 'description', LONG),
    category: input.text(o.category, 'category', SHORT),
    price: input.number(o.price, 'price', MONEY),
  };
  input.done();
  return command;
}

/** Body of PATCH /products/:sku: any of the details, at least one. */
export function updateProductCommand(sku: string, body: unknown): CatalogCommand {
  const input = new InputReader();
  const o = input.body(body, ['name', 'description', 'category', 'price']);
  const changes: { -readonly [K in keyof ProductDetails]?: ProductDetails[K] } = {};
  if (o.name !== undefined) changes.name = input.text(o.name, 'name', NAME);
  if (o.description !== undefined) changes.description = input.text(o.description, 'description', LONG);
  if (o.category !== undefined) changes.category = input.text(o.category, 'category', SHORT);
  if (o.price !== undefined) changes.price = input.number(o.price, 'price', MONEY);
  if (Object.keys(o).length === 0) input.problem('body', 'must change at least one of name, description, category, price');
  input.done();
  return { type: 'UpdateProduct', sku, changes };
}
