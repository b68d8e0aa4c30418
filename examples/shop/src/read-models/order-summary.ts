import { defineQuery, type RecordedEvent } from '@causeway/core';
import type { SqlExecutor } from '@causeway/postgres';
import type { OrderCancelled, OrderLine, OrderPaid, OrderPlaced, OrderShipped } from '../contracts/order-events.js';
import type { OrderStatus } from '../order/order-decider.js';
import { amount, dataOf, isoText, missingRow, quotedSchema, type ShopReadModel } from './read-model.js';

/** One order as a customer or support agent sees it. Times are RFC 3339 UTC (the events' occurredAt). */
export interface OrderSummary {
  readonly orderId: string;
  readonly customerId: string;
  readonly status: Exclude<OrderStatus, 'none'>;
  readonly lines: readonly OrderLine[];
  readonly itemCount: number;
  readonly total: number;
  readonly paid: number;
  readonly paymentId: string | null;
  readonly carrier: string | null;
  readonly trackingNumber: string | null;
  readonly cancelReason: string | null;
  readonly placedAt: string;
  readonly paidAt: string | null;
  readonly shippedAt: string | null;
  readonly cancelledAt: string | null;
  /** The order stream's version this summary reflects (an ETag for `If-Match`). */
  readonly version: number;
}

export const orderSummaryQuery = defineQuery<{ tenantId: string; orderId: string }, OrderSummary | null>('shop.order-summary');

interface SummaryRow {
  order_id: string;
  customer_id: string;
  status: OrderSummary['status'];
  lines: OrderLine[];
  item_count: number;
  total: string;
  paid: string;
  payment_id: string | null;
  carrier: string | null;
  tracking_number: string | null;
  cancel_reason: string | null;
  placed_at: string;
  paid_at: string | null;
  shipped_at: string | null;
  cancelled_at: string | null;
  version: number;
}

const VERSION = 1;

export function orderSummaryReadModel(schema = 'shop'): ShopReadModel {
  const table = `${quotedSchema(schema)}.order_summary_v${VERSION}`;
  const model = 'order summary';

  /** Every later event of an order updates its one row, and must find it. */
  const update = async (tx: SqlExecutor, event: RecordedEvent, set: string, params: readonly unknown[]): Promise<void> => {
    const { orderId } = event.data as { orderId: string };
    const r = await tx.query(
      `UPDATE ${table} SET ${set}, version = $3, updated_at = $4 WHERE tenant_id = $1 AND order_id = $2`,
      [event.tenantId, orderId, event.streamVersion, event.occurredAt, ...params],
    );
    if (r.rowCount !== 1) throw missingRow(model, `order ${orderId}`, event);
  };

  return {
    projection: {
      name: 'shop.order-summary',
      version: VERSION,
      handlers: {
        async 'shop.order.placed'(event, tx) {
          const { orderId, customerId, lines, total } = dataOf<OrderPlaced>(event);
          const items = lines.reduce((n, l) => n + l.quantity, 0);
          await tx.query(
            `INSERT INTO ${table} (tenant_id, order_id, customer_id, status, lines, item_count, total, placed_at, updated_at, version)
             VALUES ($1, $2, $3, 'placed', $4::jsonb, $5, $6, $7, $7, $8)`,
            [event.tenantId, orderId, customerId, JSON.stringify(lines), items, total, event.occurredAt, event.streamVersion],
          );
        },
        async 'shop.order.paid'(event, tx) {
          const { amount: paid, paymentId } = dataOf<OrderPaid>(event);
          await update(tx, event, `status = 'paid', paid = $5, payment_id = $6, paid_at = $4`, [paid, paymentId]);
        },
        async 'shop.order.shipped'(event, tx) {
          const { carrier, trackingNumber } = dataOf<OrderShipped>(event);
          await update(tx, event, `status = 'shipped', carrier = $5, tracking_number = $6, shipped_at = $4`, [carrier, trackingNumber]);
        },
        async 'shop.order.cancelled'(event, tx) {
          const { reason } = dataOf<OrderCancelled>(event);
          await update(tx, event, `status = 'cancelled', cancel_reason = $5, cancelled_at = $4`, [reason]);
        },
      },
    },

    ddl: [
      `CREATE TABLE IF NOT EXISTS ${table} (
        tenant_id text NOT NULL,
        order_id text NOT NULL,
        customer_id text NOT NULL,
        status text NOT NULL,
        lines jsonb NOT NULL,
        item_count integer NOT NULL,
        total numeric NOT NULL,
        paid numeric NOT NULL DEFAULT 0,
        payment_id text,
        carrier text,
        tracking_number text,
        cancel_reason text,
        placed_at timestamptz NOT NULL,
        paid_at timestamptz,
        shipped_at timestamptz,
        cancelled_at timestamptz,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL,
        PRIMARY KEY (tenant_id, order_id)
      )`,
    ],

    registerQueries(bus, db, waitFor) {
      bus.register(
        orderSummaryQuery,
        async ({ tenantId, orderId }) => {
          const { rows } = await db.query<SummaryRow>(
            `SELECT order_id, customer_id, status, lines, item_count, total::text AS total, paid::text AS paid,
                    payment_id, carrier, tracking_number, cancel_reason, version,
                    ${isoText('placed_at')} AS placed_at, ${isoText('paid_at')} AS paid_at,
                    ${isoText('shipped_at')} AS shipped_at, ${isoText('cancelled_at')} AS cancelled_at
               FROM ${table} WHERE tenant_id = $1 AND order_id = $2`,
            [tenantId, orderId],
          );
          const r = rows[0];
          if (r === undefined) return null;
          return {
            orderId: r.order_id,
            customerId: r.customer_id,
            status: r.status,
            lines: r.lines,
            itemCount: r.item_count,
            total: amount(r.total),
            paid: amount(r.paid),
            paymentId: r.payment_id,
            carrier: r.carrier,
            trackingNumber: r.tracking_number,
            cancelReason: r.cancel_reason,
            placedAt: r.placed_at,
            paidAt: r.paid_at,
            shippedAt: r.shipped_at,
            cancelledAt: r.cancelled_at,
            version: r.version,
          };
        },
        { waitFor },
      );
    },
  };
}
