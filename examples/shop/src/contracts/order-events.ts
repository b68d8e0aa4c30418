import type { DomainEvent } from '@causeway/core';

/** The order service's published events: the contract other services read. */
export interface OrderLine {
  readonly sku: string;
  readonly quantity: number;
  readonly unitPrice: number;
}

export type OrderPlaced = DomainEvent<'shop.order.placed', { orderId: string; customerId: string; lines: OrderLine[]; total: number }>;
export type OrderPaid = DomainEvent<'shop.order.paid', { orderId: string; amount: number; paymentId: string }>;
export type OrderShipped = DomainEvent<'shop.order.shipped', { orderId: string; carrier: string; trackingNumber: string }>;
export type OrderCancelled = DomainEvent<'shop.order.cancelled', { orderId: string; reason: string }>;

export type OrderEvent = OrderPlaced | OrderPaid | OrderShipped | OrderCancelled;

/** The broker topic the order service publishes its events to (key: the order's stream id, so per-order order holds). */
export const ORDER_TOPIC = 'shop.orders';

/** Every event type the order service emits; a test checks each against the naming rule. */
export const ORDER_EVENT_TYPES: readonly OrderEvent['eventType'][] = ['shop.order.placed', 'shop.order.paid', 'shop.order.shipped', 'shop.order.cancelled'];
