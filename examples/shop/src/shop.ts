import {
  createCommandHandler,
  createQueryBus,
  startCorrelation,
  type CausationContext,
  type Decider,
  type DomainEvent,
  type DeadLetterQueue,
  type HandleResult,
  type LogPosition,
  type Publisher,
  type QueryBus,
  type StreamRef,
  type Subscriber,
} from '@causeway/core';
import {
  createPGliteDatabase,
  createPostgresEventStore,
  createPostgresPublisher,
  createPostgresSubscriber,
  createProjectionRunner,
  type PostgresEventStore,
  type ProjectionRunner,
  type Relay,
  type SqlDatabase,
} from '@causeway/postgres';
import { catalogDecider, type CatalogCommand } from './catalog/catalog-decider.js';
import { expectingVersion } from './expected-version.js';
import { startNotificationService, type NotificationService, type NotificationServiceOptions } from './notification/notification-service.js';
import { orderDecider, type OrderCommand, type OrderStatus } from './order/order-decider.js';
import { startOrderRelay } from './order/order-relay.js';
import { customerOrdersReadModel } from './read-models/customer-orders.js';
import { orderSummaryReadModel } from './read-models/order-summary.js';
import { productSearchReadModel } from './read-models/product-search.js';
import { quotedSchema, type ShopReadModel } from './read-models/read-model.js';

export interface ShopOptions {
  /** Directory of the embedded database (PGlite). Default: in memory only, gone at close. Ignored when `db` is given. */
  readonly dataDir?: string;
  /** Run on this database instead (e.g. a `pg` server pool); the shop leaves it open at close. Default: PGlite. */
  readonly db?: SqlDatabase;
  /** Schema of the event store and the projections' checkpoints. Default 'causeway'. */
  readonly storeSchema?: string;
  /** Schema of the read models' tables. Default 'shop'. */
  readonly readSchema?: string;
  /** Bound on a read-your-writes wait (a query asked with `afterPosition`). Default 5000 ms. */
  readonly readYourWritesTimeoutMs?: number;
  /** Fallback poll of the read-model runners, the order relay and the broker's subscriber when no NOTIFY arrives. Default 1000 ms. */
  readonly pollIntervalMs?: number;
  /**
   * The broker the order service publishes to and the notification service consumes from. The
   * shop leaves a given broker open at close. Default: the PostgreSQL broker in the shop's own
   * database (tables in `storeSchema`), so the whole shop runs embedded with nothing to set up.
   */
  readonly broker?: { readonly publisher: Publisher; readonly subscriber: Subscriber };
  /** Schema of the notification service's tables. Default 'notification'. */
  readonly notificationSchema?: string;
  /** Tuning of the notification service (tenants served, retries, concurrency, replay poll, extra middleware). Default: its own defaults. */
  readonly notifications?: Pick<NotificationServiceOptions, 'servesTenant' | 'retry' | 'concurrency' | 'replayPollMs' | 'middleware' | 'onError'>;
}

/** What a command did: the stream's version after it, and where its last event sits in the log. */
export interface CommandOutcome<TStatus> {
  readonly status: TStatus;
  readonly version: number;
  /** Null when the command decided nothing (nothing was appended). Pass it as `afterPosition` to read your write. */
  readonly position: LogPosition | null;
}

export interface CommandOptions {
  /** Decide only if the stream is still at this version (HTTP If-Match); otherwise ConcurrencyError. */
  readonly expectedVersion?: number;
  readonly correlation?: CausationContext;
}

export type ReadModelName = 'orderSummary' | 'customerOrders' | 'productSearch';

/** The shop in one process: its store, its command side (orders, catalog) and its read side. */
export interface Shop {
  readonly store: PostgresEventStore;
  readonly db: SqlDatabase;
  /** Answers the read models' queries; `afterPosition` waits for the read model that answers. */
  readonly queries: QueryBus;
  readonly runners: Readonly<Record<ReadModelName, ProjectionRunner>>;
  /** Publishes the order events from the event log to the broker (topic `shop.orders`). */
  readonly orderRelay: Relay;
  /** Emails customers about their orders; consumes `shop.orders` as group `notifications`. */
  readonly notifications: NotificationService;
  /** The dead-letter queue's operations (the notification service's letters live there). */
  readonly deadLetters: DeadLetterQueue;
  order(tenantId: string, command: OrderCommand, options?: CommandOptions): Promise<CommandOutcome<OrderStatus>>;
  catalog(tenantId: string, command: CatalogCommand, options?: CommandOptions): Promise<CommandOutcome<'listed'>>;
  /**
   * Stops the order relay, the notification service (in-flight handlers drain), the broker it
   * opened and the runners (each finishes its batch), then closes the store and the database it opened.
   */
  close(): Promise<void>;
}

export const orderStream = (tenantId: string, orderId: string): StreamRef => ({ tenantId, streamId: `order-${orderId}` });
export const productStream = (tenantId: string, sku: string): StreamRef => ({ tenantId, streamId: `product-${sku}` });

export async function openShop(options: ShopOptions = {}): Promise<Shop> {
  const ownsDb = options.db === undefined;
  const db = options.db ?? (await createPGliteDatabase(options.dataDir === undefined ? {} : { dataDir: options.dataDir }));
  const runners: Partial<Record<ReadModelName, ProjectionRunner>> = {};
  let store: PostgresEventStore | null = null;
  let publisher: Publisher | null = null;
  let subscriber: Subscriber | null = null;
  let orderRelay: Relay | null = null;
  let notifications: NotificationService | null = null;
  const close = async (): Promise<void> => {
    await orderRelay?.stop();
    await notifications?.close();
    if (options.broker === undefined) await Promise.all([subscriber?.close(), publisher?.close()]);
    await Promise.all(Object.values(runners).map((r) => r.stop()));
    if (store) await store.close();
    if (ownsDb) await db.close();
  };

  try {
    const schema = options.storeSchema ?? 'causeway';
    store = await createPostgresEventStore({ db, schema, producer: 'shop' });
    const readSchema = options.readSchema ?? 'shop';
    const models: Record<ReadModelName, ShopReadModel> = {
      orderSummary: orderSummaryReadModel(readSchema),
      customerOrders: customerOrdersReadModel(readSchema),
      productSearch: productSearchReadModel(readSchema),
    };
    await db.transaction(async (tx) => {
      await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quotedSchema(readSchema)}`);
      for (const model of Object.values(models)) for (const statement of model.ddl) await tx.query(statement);
    });

    const queries = createQueryBus({ defaultTimeoutMs: options.readYourWritesTimeoutMs ?? 5000 });
    const poll = options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs };
    for (const [name, model] of Object.entries(models) as Array<[ReadModelName, ShopReadModel]>) {
      const runner = await createProjectionRunner({ db, store, schema, projection: model.projection, ...poll });
      // The runner reports its own failure on stderr; a stopped runner fails read-your-writes waits.
      runner.done.catch(() => undefined);
      runners[name] = runner;
      model.registerQueries(queries, db, (position, timeoutMs) => runner.waitFor(position, timeoutMs));
    }
    const openStore = store;

    // Delivery: the order service's events go out through the event-log relay (see order-relay.ts);
    // the notification service consumes them with dedup, retries and a dead-letter queue.
    const pollIntervalMs = options.pollIntervalMs ?? 1000;
    publisher = options.broker?.publisher ?? (await createPostgresPublisher({ db, schema, migrate: false }));
    subscriber = options.broker?.subscriber ?? (await createPostgresSubscriber({ db, schema, migrate: false, pollIntervalMs }));
    notifications = await startNotificationService({
      db,
      subscriber,
      causewaySchema: schema,
      ...(options.notificationSchema === undefined ? {} : { schema: options.notificationSchema }),
      ...options.notifications,
    });
    orderRelay = startOrderRelay({ db, store, publisher, schema, pollIntervalMs });
    orderRelay.done.catch(() => undefined); // the relay reports its own failures on stderr
    const openNotifications = notifications;

    return {
      store: openStore,
      db,
      queries,
      runners: runners as Record<ReadModelName, ProjectionRunner>,
      orderRelay,
      notifications: openNotifications,
      deadLetters: openNotifications.deadLetters,
      async order(tenantId, command, commandOptions = {}) {
        const r = await handle(openStore, orderDecider, 'order', orderStream(tenantId, command.orderId), command, commandOptions);
        return outcome(r, r.state.status);
      },
      async catalog(tenantId, command, commandOptions = {}) {
        const r = await handle(openStore, catalogDecider, 'product', productStream(tenantId, command.sku), command, commandOptions);
        return outcome(r, 'listed');
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Load, decide, append; with an expected version, decided on that version only and never retried. */
async function handle<TState, TCommand, TEvent extends DomainEvent>(
  store: PostgresEventStore,
  decider: Decider<TState, TCommand, TEvent>,
  streamType: string,
  stream: StreamRef,
  command: TCommand,
  options: CommandOptions,
): Promise<HandleResult<TState>> {
  const handleOptions = { correlation: options.correlation ?? startCorrelation() };
  if (options.expectedVersion === undefined) {
    return createCommandHandler({ store, decider, streamType }).handle(stream, command, handleOptions);
  }
  const checked = createCommandHandler({ store, decider: expectingVersion(decider, stream, options.expectedVersion), streamType, maxAttempts: 1 });
  const r = await checked.handle(stream, command, handleOptions);
  return { ...r, state: r.state.state };
}

function outcome<TStatus>(r: HandleResult<unknown>, status: TStatus): CommandOutcome<TStatus> {
  const last = r.events[r.events.length - 1];
  return { status, version: r.nextExpectedVersion, position: last === undefined ? null : last.position };
}
