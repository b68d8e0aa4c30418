import { defineQuery, type RecordedEvent } from '@causeway/core';
import type { SqlExecutor } from '@causeway/postgres';
import type { OrderPaid, OrderPlaced } from '../contracts/order-events.js';
import type { OrderStatus } from '../order/order-decider.js';
import { amount, dataOf, isoText, missingRow, quotedSchema, type ShopReadModel } from './read-model.js';

type Status = Exclude<OrderStatus, 'none'>;

export interface CustomerOrderItem {
  readonly orderId: string;
  readonly status: Status;
  readonly total: number;
  readonly paid: number;
  readonly placedAt: string;
}

/**
 * A customer's orders, newest first, with counters kept by the projection. `byStatus` counts
 * orders by their current status; `amountOrdered` and `amountPaid` cover orders not cancelled.
 */
export interface CustomerOrders {
  readonly customerId: string;
  readonly orderCount: number;
  readonly byStatus: Readonly<Record<Status, number>>;
  readonly amountOrdered: number;
  readonly amountPaid: number;
  readonly firstOrderAt: string | null;
  readonly lastOrderAt: string | null;
  /** At most `limit` of them, newest first. */
  readonly orders: readonly CustomerOrderItem[];
}

export const customerOrdersQuery = defineQuery<{ tenantId: string; customerId: string; limit: number }, CustomerOrders>('shop.customer-orders');

/** Column of each status's counter: identifiers from this fixed list only. */
const COUNTER: Readonly<Record<Status, string>> = { placed: 'placed_count', paid: 'paid_count', shipped: 'shipped_count', cancelled: 'cancelled_count' };

interface ListRow {
  customer_id: string;
  status: Status;
  total: string;
  paid: string;
}

interface TotalsRow {
  order_count: number;
  placed_count: number;
  paid_count: number;
  shipped_count: number;
  cancelled_count: number;
  amount_ordered: string;
  amount_paid: string;
  first_order_at: string;
  last_order_at: string;
  orders: Array<{ order_id: string; status: Status; total: string; paid: string; placed_at: string }>;
}

const VERSION = 1;

export function customerOrdersReadModel(schema = 'shop'): ShopReadModel {
  const s = quotedSchema(schema);
  const list = `${s}.customer_order_list_v${VERSION}`;
  const totals = `${s}.customer_totals_v${VERSION}`;
  const model = 'customer orders';

  /**
   * Moves one order to `to`: its list row, then its customer's counters (one down for the old
   * status, one up for the new) and amounts. `paid` is the order's paid amount afterwards.
   */
  const move = async (tx: SqlExecutor, event: RecordedEvent, to: Status, paid: (row: ListRow) => string | number): Promise<void> => {
    const { orderId } = event.data as { orderId: string };
    const { rows } = await tx.query<ListRow>(
      `SELECT customer_id, status, total::text AS total, paid::text AS paid FROM ${list} WHERE tenant_id = $1 AND order_id = $2`,
      [event.tenantId, orderId],
    );
    const row = rows[0];
    if (row === undefined) throw missingRow(model, `order ${orderId}`, event);
    if (row.status === to) throw new Error(`${model}: ${event.eventType} ${event.eventId} finds order ${orderId} already ${to}`);
    const newPaid = paid(row);
    await tx.query(`UPDATE ${list} SET status = $3, paid = $4, updated_at = $5 WHERE tenant_id = $1 AND order_id = $2`, [
      event.tenantId,
      orderId,
      to,
      newPaid,
      event.occurredAt,
    ]);
    // A cancelled order leaves both amounts; any other move only changes what was paid.
    const cancelled = to === 'cancelled';
    const r = await tx.query(
      `UPDATE ${totals} SET ${COUNTER[row.status]} = ${COUNTER[row.status]} - 1, ${COUNTER[to]} = ${COUNTER[to]} + 1,
              amount_ordered = amount_ordered - $3::numeric, amount_paid = amount_paid - $4::numeric + $5::numeric
        WHERE tenant_id = $1 AND customer_id = $2`,
      [event.tenantId, row.customer_id, cancelled ? row.total : '0', row.paid, cancelled ? '0' : newPaid],
    );
    if (r.rowCount !== 1) throw missingRow(model, `customer ${row.customer_id}`, event);
  };

  return {
    projection: {
      name: 'shop.customer-orders',
      version: VERSION,
      handlers: {
        async 'shop.order.placed'(event, tx) {
          const { orderId, customerId, total } = dataOf<OrderPlaced>(event);
          await tx.query(
            `INSERT INTO ${list} (tenant_id, order_id, customer_id, status, total, placed_at, updated_at) VALUES ($1, $2, $3, 'placed', $4, $5, $5)`,
            [event.tenantId, orderId, customerId, total, event.occurredAt],
          );
          await tx.query(
            `INSERT INTO ${totals} AS t (tenant_id, customer_id, order_count, placed_count, amount_ordered, first_order_at, last_order_at)
             VALUES ($1, $2, 1, 1, $3, $4, $4)
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
               order_count = t.order_count + 1, placed_count = t.placed_count + 1,
               amount_ordered = t.amount_ordered + EXCLUDED.amount_ordered,
               first_order_at = least(t.first_order_at, EXCLUDED.first_order_at),
               last_order_at = greatest(t.last_order_at, EXCLUDED.last_order_at)`,
            [event.tenantId, customerId, total, event.occurredAt],
          );
        },
        async 'shop.order.paid'(event, tx) {
          const { amount: paid } = dataOf<OrderPaid>(event);
          await move(tx, event, 'paid', () => paid);
        },
        async 'shop.order.shipped'(event, tx) {
          await move(tx, event, 'shipped', (row) => row.paid);
        },
        async 'shop.order.cancelled'(event, tx) {
          await move(tx, event, 'cancelled', (row) => row.paid);
        },
      },
    },

    ddl: [
      `CREATE TABLE IF NOT EXISTS ${list} (
        tenant_id text NOT NULL,
        order_id text NOT NULL,
        customer_id text NOT NULL,
        status text NOT NULL,
        total numeric NOT NULL,
        paid numeric NOT NULL DEFAULT 0,
        placed_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, order_id)
      )`,
      `CREATE INDEX IF NOT EXISTS customer_order_list_v${VERSION}_by_customer ON ${list} (tenant_id, customer_id, placed_at DESC, order_id DESC)`,
      `CREATE TABLE IF NOT EXISTS ${totals} (
        tenant_id text NOT NULL,
        customer_id text NOT NULL,
        order_count integer NOT NULL DEFAULT 0,
        placed_count integer NOT NULL DEFAULT 0,
        paid_count integer NOT NULL DEFAULT 0,
        shipped_count integer NOT NULL DEFAULT 0,
        cancelled_count integer NOT NULL DEFAULT 0,
        amount_ordered numeric NOT NULL DEFAULT 0,
        amount_paid numeric NOT NULL DEFAULT 0,
        first_order_at timestamptz NOT NULL,
        last_order_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, customer_id)
      )`,
    ],

    registerQueries(bus, db, waitFor) {
      bus.register(
        customerOrdersQuery,
        async ({ tenantId, customerId, limit }) => {
          // One statement, so the counters and the list come from the same snapshot.
          const { rows } = await db.query<TotalsRow>(
            `SELECT t.order_count, t.placed_count, t.paid_count, t.shipped_count, t.cancelled_count,
                    t.amount_ordered::text AS amount_ordered, t.amount_paid::text AS amount_paid,
                    ${isoText('t.first_order_at')} AS first_order_at, ${isoText('t.last_order_at')} AS last_order_at,
                    (SELECT coalesce(json_agg(o), '[]'::json) FROM (
                       SELECT order_id, status, total::text AS total, paid::text AS paid, ${isoText('placed_at')} AS placed_at
                         FROM ${list} WHERE tenant_id = $1 AND customer_id = $2
                        ORDER BY placed_at DESC, order_id DESC LIMIT $3) o) AS orders
               FROM ${totals} t WHERE t.tenant_id = $1 AND t.customer_id = $2`,
            [tenantId, customerId, limit],
          );
          const r = rows[0];
          if (r === undefined) {
            const byStatus = { placed: 0, paid: 0, shipped: 0, cancelled: 0 };
            return { customerId, orderCount: 0, byStatus, amountOrdered: 0, amountPaid: 0, firstOrderAt: null, lastOrderAt: null, orders: [] };
          }
          return {
            customerId,
            orderCount: r.order_count,
            byStatus: { placed: r.placed_count, paid: r.paid_count, shipped: r.shipped_count, cancelled: r.cancelled_count },
            amountOrdered: amount(r.amount_ordered),
            amountPaid: amount(r.amount_paid),
            firstOrderAt: r.first_order_at,
            lastOrderAt: r.last_order_at,
            orders: r.orders.map((o) => ({ orderId: o.order_id, status: o.status, total: amount(o.total), paid: amount(o.paid), placedAt: o.placed_at })),
          };
        },
        { waitFor },
      );
    },
  };
}
