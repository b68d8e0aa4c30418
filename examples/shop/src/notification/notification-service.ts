import {
  deadLetter,
  deduplicate,
  InvalidOptionsError,
  pipeline,
  replayDeadLetters,
  requireTenant,
  retry,
  type DeadLetterQueue,
  type DeadLetterReplayer,
  type DeliveryHandler,
  type ErrorReporter,
  type Middleware,
  type RetryPolicy,
  type Subscriber,
} from '@causeway/core';
import { PostgresDeadLetterQueue, PostgresDedupLedger, type SqlDatabase } from '@causeway/postgres';
import { ORDER_TOPIC } from '../contracts/order-events.js';
import { isoText } from '../read-models/read-model.js';
import { notificationTables } from './notification-tables.js';
import { NOTIFIED_EVENT_TYPES, orderNotifier } from './order-notifications.js';
import { RecipientDirectory } from './recipient-directory.js';

/** The consumer (and consumer group) name: keys the dedup ledger, the dead letters and the broker group. */
export const NOTIFICATION_CONSUMER = 'notifications';

export interface NotificationServiceOptions {
  /** The database of the ledger, the dead letters and this service's tables (one transaction spans them). */
  readonly db: SqlDatabase;
  /** Where the order events arrive (topic `shop.orders`). */
  readonly subscriber: Subscriber;
  /** Schema of Causeway's tables (inbox ledger and dead letters, migration 7). Default 'causeway'. */
  readonly causewaySchema?: string;
  /** Schema of this service's own tables (recipients, order customers, notifications_sent). Default 'notification'. */
  readonly schema?: string;
  /** The tenants this service serves; another tenant's event is dead-lettered before it is read. Default: every tenant. */
  readonly servesTenant?: (tenantId: string) => boolean;
  /** Retries of a send that failed for a passing reason (a permanent failure is never retried). Default: retry()'s defaults. */
  readonly retry?: RetryPolicy;
  /** Events handled at once; per-order order holds at any value (the broker hands out one per key). Default 8. */
  readonly concurrency?: number;
  /** How often the replay worker looks for letters an operator asked to replay. Default 1000 ms. */
  readonly replayPollMs?: number;
  /** More middleware, innermost (around the deduplicated send): metrics, or a test's fault injection. Default none. */
  readonly middleware?: readonly Middleware[];
  /** Where the replay worker reports store failures (it carries on). Default: stderr. */
  readonly onError?: ErrorReporter;
}

/** One email as the service recorded it. */
export interface SentNotification {
  readonly eventId: string;
  readonly eventType: string;
  readonly orderId: string;
  readonly customerId: string;
  readonly email: string;
  readonly subject: string;
  readonly body: string;
  /** RFC 3339 UTC, database clock. */
  readonly sentAt: string;
}

export interface NotificationService {
  readonly consumer: string;
  /** The DLQ operations (list, groups, inspect, replay, skip, purge): what an operator or the CLI calls. */
  readonly deadLetters: DeadLetterQueue;
  /** The handler the subscription runs, middleware and all; the replay worker feeds replayed letters to it. */
  readonly handler: DeliveryHandler;
  /** Replays what an operator marked for replay; `drain()` runs a pass now instead of at the next poll. */
  readonly replayer: DeadLetterReplayer;
  /** Deliveries the ledger found already handled (redeliveries) since start: acked, nothing sent again. */
  readonly duplicates: number;
  /** Records a customer's email address (the fix for an UnknownRecipientError letter). SchemaError for bad input. */
  registerEmail(tenantId: string, customerId: string, email: string): Promise<void>;
  /** The emails sent in a tenant, oldest first; only those of one order when `orderId` is given. */
  sent(tenantId: string, orderId?: string): Promise<SentNotification[]>;
  /** Stops the replay worker (it finishes what it claimed) and the subscription (in-flight handlers drain). Idempotent. */
  close(): Promise<void>;
}

/** Acks, untouched, the events this service has nothing to do with: no ledger row, no tenant check. */
function onlyEventTypes(types: readonly string[]): Middleware {
  const wanted = new Set(types);
  return (next) =>
    async function filteringEventTypes(delivery) {
      if (delivery.kind === 'event' && !wanted.has(delivery.event.eventType)) return;
      await next(delivery);
    };
}

/**
 * The notification service: emails the customer when an order is placed and when it ships.
 *
 * Every delivery, live or replayed, runs one pipeline: deadLetter (outermost: takes what cannot
 * succeed) → retry (nacks passing failures with backoff) → event-type filter → requireTenant →
 * deduplicate (the ledger key and the email row commit in one transaction, so a redelivery finds
 * the key and sends nothing). A customer without an address on file is a permanent failure: the
 * event goes to the DLQ with its reason and fingerprint; once the address is registered, an
 * operator's replay sends it through the same pipeline, exactly once.
 */
export async function startNotificationService(options: NotificationServiceOptions): Promise<NotificationService> {
  if (typeof options?.db?.transaction !== 'function') throw new InvalidOptionsError('db must be a SqlDatabase');
  if (typeof options.subscriber?.subscribe !== 'function') throw new InvalidOptionsError('subscriber must be a Subscriber');
  if (options.servesTenant !== undefined && typeof options.servesTenant !== 'function') throw new InvalidOptionsError('servesTenant must be a function of a tenant id');
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000) throw new InvalidOptionsError(`concurrency must be an integer from 1 to 1000; got ${String(options.concurrency)}`);
  const replayPollMs = options.replayPollMs ?? 1000;
  if (!Number.isInteger(replayPollMs) || replayPollMs < 1) throw new InvalidOptionsError(`replayPollMs must be an integer >= 1; got ${String(options.replayPollMs)}`);
  const { db } = options;
  const causewaySchema = options.causewaySchema ?? 'causeway';
  const tables = notificationTables(options.schema ?? 'notification');
  const retryPolicy = options.retry ?? {};
  const retrying = retry(retryPolicy); // validates the policy
  const ledger = new PostgresDedupLedger({ db, schema: causewaySchema, retryPolicy });
  const dlq = new PostgresDeadLetterQueue(db, causewaySchema);
  const recipients = new RecipientDirectory(db, tables.recipients);

  await db.transaction(async (tx) => {
    for (const statement of tables.ddl) await tx.query(statement);
  });

  let duplicates = 0;
  const consumer = NOTIFICATION_CONSUMER;
  const handler = pipeline(
    deduplicate(ledger, { consumer, onDuplicate: () => {
      duplicates++;
    } }, orderNotifier(tables, recipients)),
    deadLetter(dlq, { consumer }),
    retrying,
    onlyEventTypes(NOTIFIED_EVENT_TYPES),
    requireTenant(options.servesTenant ?? (() => true)),
    ...(options.middleware ?? []),
  );
  // 'earliest': on the very first start the group also gets what the relay published before it existed.
  const subscription = await options.subscriber.subscribe(ORDER_TOPIC, { group: consumer, startFrom: 'earliest', concurrency }, handler);
  const replayer = replayDeadLetters(dlq, handler, {
    consumer,
    pollMs: replayPollMs,
    ...(options.onError === undefined ? {} : { onError: options.onError }),
  });
  let closing: Promise<void> | null = null;

  return {
    consumer,
    deadLetters: dlq,
    handler,
    replayer,
    get duplicates() {
      return duplicates;
    },
    registerEmail: (tenantId, customerId, email) => recipients.register(tenantId, customerId, email),
    async sent(tenantId, orderId) {
      const { rows } = await db.query<{
        event_id: string;
        event_type: string;
        order_id: string;
        customer_id: string;
        email: string;
        subject: string;
        body: string;
        sent_at: string;
      }>(
        `SELECT event_id::text AS event_id, event_type, order_id, customer_id, email, subject, body, ${isoText('sent_at')} AS sent_at
           FROM ${tables.sent} WHERE tenant_id = $1 AND ($2::text IS NULL OR order_id = $2) ORDER BY id`,
        [tenantId, orderId ?? null],
      );
      return rows.map((r) => ({
        eventId: r.event_id,
        eventType: r.event_type,
        orderId: r.order_id,
        customerId: r.customer_id,
        email: r.email,
        subject: r.subject,
        body: r.body,
        sentAt: r.sent_at,
      }));
    },
    close() {
      closing ??= Promise.all([replayer.stop(), subscription.close()]).then(() => undefined);
      return closing;
    },
  };
}
