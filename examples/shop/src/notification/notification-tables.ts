import { schemaNames } from '@causeway/postgres';

/** The notification service's own tables (qualified, quoted names) and the DDL creating them. */
export interface NotificationTables {
  /** Where each customer's email address is kept: (tenant, customer) → email. */
  readonly recipients: string;
  /** The customer of each order this service has seen placed (an OrderShipped does not carry it). */
  readonly orderCustomers: string;
  /** One row per email sent: the service's side effect, written in the dedup ledger's transaction. */
  readonly sent: string;
  /** Idempotent statements creating the schema, the tables and their index. */
  readonly ddl: readonly string[];
}

export function notificationTables(schema = 'notification'): NotificationTables {
  const s = schemaNames(schema).schema; // checked against the identifier allow-list, then quoted
  const recipients = `${s}.recipients`;
  const orderCustomers = `${s}.order_customers`;
  const sent = `${s}.notifications_sent`;
  return {
    recipients,
    orderCustomers,
    sent,
    ddl: [
      `CREATE SCHEMA IF NOT EXISTS ${s}`,
      `CREATE TABLE IF NOT EXISTS ${recipients} (
        tenant_id text NOT NULL,
        customer_id text NOT NULL,
        email text NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, customer_id)
      )`,
      `CREATE TABLE IF NOT EXISTS ${orderCustomers} (
        tenant_id text NOT NULL,
        order_id text NOT NULL,
        customer_id text NOT NULL,
        PRIMARY KEY (tenant_id, order_id)
      )`,
      // No unique key on event_id, on purpose: the dedup ledger is the one guard against sending
      // twice, and a test that counts rows per event sees it at once if that guard ever fails.
      `CREATE TABLE IF NOT EXISTS ${sent} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id text NOT NULL,
        event_id uuid NOT NULL,
        event_type text NOT NULL,
        order_id text NOT NULL,
        customer_id text NOT NULL,
        email text NOT NULL,
        subject text NOT NULL,
        body text NOT NULL,
        sent_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS notifications_sent_orders ON ${sent} (tenant_id, order_id, id)`,
    ],
  };
}
