import { PermanentError, SchemaError, type EventDelivery, type ReceivedEvent } from '@causeway/core';
import type { SqlExecutor } from '@causeway/postgres';
import type { OrderEvent } from '../contracts/order-events.js';
import type { NotificationTables } from './notification-tables.js';
import type { RecipientDirectory } from './recipient-directory.js';

/** The order events a customer gets an email for; the service acks the others without a look. */
export const NOTIFIED_EVENT_TYPES: readonly OrderEvent['eventType'][] = ['shop.order.placed', 'shop.order.shipped'];

/**
 * An OrderShipped for an order whose OrderPlaced this service never applied (it is still in
 * the dead-letter queue, most likely). Permanent until that letter is replayed: replay both,
 * oldest first (the replay worker takes them in that order).
 */
export class UnknownOrderError extends PermanentError {
  constructor(tenantId: string, orderId: string) {
    super(`order ${JSON.stringify(orderId)} (tenant ${tenantId}) was never notified as placed, so its customer is unknown here; replay its OrderPlaced first`);
  }
}

/** What an event asks to be written, before the address is looked up. */
interface Draft {
  readonly orderId: string;
  readonly customerId: string;
  readonly subject: string;
  readonly body: string;
}

const money = (n: number): string => n.toFixed(2);

/**
 * The service's work for one event, run by deduplicate() inside the ledger's transaction `tx`:
 * every read and write goes through `tx`, so the email row, the order's customer and the ledger
 * key commit together or not at all. Throws a PermanentError (dead-lettered at once) when the
 * event can never be sent as it stands; any other error is retried.
 */
export function orderNotifier(tables: NotificationTables, recipients: RecipientDirectory): (delivery: EventDelivery, tx: SqlExecutor) => Promise<void> {
  const draft = async (tx: SqlExecutor, event: ReceivedEvent): Promise<Draft> => {
    const { tenantId } = event;
    const data = event.data as Record<string, unknown> | null;
    switch (event.eventType) {
      case 'shop.order.placed': {
        const orderId = field(event, data, 'orderId', 'string');
        const customerId = field(event, data, 'customerId', 'string');
        const total = field(event, data, 'total', 'number');
        await tx.query(
          `INSERT INTO ${tables.orderCustomers} (tenant_id, order_id, customer_id) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, order_id) DO NOTHING`,
          [tenantId, orderId, customerId],
        );
        return {
          orderId,
          customerId,
          subject: `Order ${orderId} received`,
          body: `Thank you for your order ${orderId}: ${money(total)} in total. We will write again when it ships.`,
        };
      }
      case 'shop.order.shipped': {
        const orderId = field(event, data, 'orderId', 'string');
        const carrier = field(event, data, 'carrier', 'string');
        const trackingNumber = field(event, data, 'trackingNumber', 'string');
        const { rows } = await tx.query<{ customer_id: string }>(
          `SELECT customer_id FROM ${tables.orderCustomers} WHERE tenant_id = $1 AND order_id = $2`,
          [tenantId, orderId],
        );
        const customerId = rows[0]?.customer_id;
        if (customerId === undefined) throw new UnknownOrderError(tenantId, orderId);
        return { orderId, customerId, subject: `Order ${orderId} shipped`, body: `Your order ${orderId} is on its way with ${carrier}, tracking number ${trackingNumber}.` };
      }
      default:
        throw new PermanentError(`the notification service does not send email for ${event.eventType}`);
    }
  };

  return async function sendOrderEmail(delivery, tx) {
    const event = delivery.event;
    const d = await draft(tx, event);
    const email = await recipients.emailOf(tx, event.tenantId, d.customerId);
    await tx.query(
      `INSERT INTO ${tables.sent} (tenant_id, event_id, event_type, order_id, customer_id, email, subject, body)
       VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8)`,
      [event.tenantId, event.eventId, event.eventType, d.orderId, d.customerId, email, d.subject, d.body],
    );
  };
}

/** A field of the event's data, checked: a malformed event is a SchemaError (dead-lettered, never retried). */
function field<T extends 'string' | 'number'>(event: ReceivedEvent, data: Record<string, unknown> | null, name: string, type: T): T extends 'string' ? string : number {
  const value = typeof data === 'object' && data !== null ? data[name] : undefined;
  if (typeof value !== type || (type === 'string' && value === '') || (type === 'number' && !Number.isFinite(value))) {
    throw new SchemaError([`${event.eventType} ${event.eventId}: data.${name} must be a ${type === 'string' ? 'non-empty string' : 'finite number'}`]);
  }
  return value as T extends 'string' ? string : number;
}
