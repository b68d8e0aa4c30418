import type { LogPosition, NewEvent, RecordedEvent } from './envelope.js';
import type { ExpectedVersion } from './errors.js';

/**
 * A stream is named by its tenant and its id. Equal ids in two tenants are two streams.
 * Every read and write of the store is scoped by tenant; only `readAll`/`subscribe` may ask for
 * every tenant at once, and only by saying so with ALL_TENANTS.
 */
export interface StreamRef {
  readonly tenantId: string;
  readonly streamId: string;
}

export const ALL_TENANTS: unique symbol = Symbol('causeway.all-tenants');
export type TenantScope = string | typeof ALL_TENANTS;

export interface AppendOptions<TTx = unknown> {
  /**
   * number: the stream must be at exactly this version (0 = no events yet);
   * 'no_stream': the stream must not exist; 'exists': it must exist; 'any' (default): no check.
   * Enforced inside the database write, never by a read before it.
   */
  readonly expectedVersion?: ExpectedVersion;
  /** Recorded on the stream when it is created (e.g. `order`). */
  readonly streamType?: string;
  /**
   * Runs inside the write's transaction after the events are written and before commit, with the
   * store's transaction handle (SQL stores: an executor bound to the transaction). Throwing rolls
   * the append back. Appends with a hook are never coalesced with others.
   */
  readonly beforeCommit?: (tx: TTx, result: AppendResult) => Promise<void>;
}

export interface AppendResult {
  /** The stream's version after the append: pass it as the next expectedVersion. */
  readonly nextExpectedVersion: number;
  /** False when every event was already stored at this position (idempotent re-append): nothing written. */
  readonly written: boolean;
  readonly events: readonly RecordedEvent[];
  /** Position of the last event of this append. */
  readonly position: LogPosition;
}

export interface ReadStreamOptions {
  /** 'forward' (default) from the first version, or 'backward' from the last. */
  readonly direction?: 'forward' | 'backward';
  /** Lowest version returned (inclusive). */
  readonly fromVersion?: number;
  /** Highest version returned (inclusive). */
  readonly toVersion?: number;
  /** At most this many events. */
  readonly maxCount?: number;
  /** The stream as it was at this time (database clock): events recorded at or before it. */
  readonly asOf?: Date | string;
}

export interface ReadAllOptions {
  readonly tenantId: TenantScope;
  /** Exclusive start; LOG_START (default) for the beginning. */
  readonly after?: LogPosition;
  /** Batch size, default 500. */
  readonly limit?: number;
  /** Only these event types. */
  readonly eventTypes?: readonly string[];
}

export interface ReadAllResult {
  readonly events: readonly RecordedEvent[];
  /** Where the next read continues: the last event's position, or `after` when nothing was read. */
  readonly next: LogPosition;
}

export interface SubscribeOptions extends Omit<ReadAllOptions, 'limit'> {
  /** Events per handler call, default 500. */
  readonly batchSize?: number;
  /** Fallback poll when no wake-up arrives, default 1000 ms. */
  readonly pollIntervalMs?: number;
}

/**
 * A catch-up subscription: it reads from `after`, hands batches to the handler in log order and
 * then waits for a wake-up (NOTIFY or in-process) or the slow fallback poll. One batch at a time;
 * the next batch is read only after the handler's promise resolves. A handler error stops the
 * subscription and rejects `done`.
 */
export interface Subscription {
  /** Position of the last event handed to the handler and settled. */
  readonly position: LogPosition;
  /** Resolves when the subscription has stopped; rejects with the handler's error if it failed. */
  readonly done: Promise<void>;
  /** Stops after the current batch settles. Idempotent. */
  stop(): Promise<void>;
}

export interface StreamInfo {
  readonly streamId: string;
  readonly tenantId: string;
  readonly version: number;
  readonly streamType: string | null;
  readonly archived: boolean;
  readonly deleted: boolean;
}

export interface Snapshot<TState = unknown> {
  /** The stream version the state includes. */
  readonly version: number;
  readonly state: TState;
  /** Lets an aggregate keep several snapshot shapes (bump it when the state shape changes). Default 'default'. */
  readonly name?: string;
}

/**
 * The event store port.
 *
 * Ordering: events of one stream are totally ordered by streamVersion. Across streams the global
 * log is ordered by LogPosition (transaction id, then sequence); readAll and subscribe deliver in
 * that order and never skip an event whose transaction commits late (gap safety).
 * Durability: `append` resolves only after the transaction committed.
 * Concurrency: appends may run concurrently; each append is atomic and independent of others.
 */
export interface EventStore<TTx = unknown> {
  append(stream: StreamRef, events: readonly NewEvent[], options?: AppendOptions<TTx>): Promise<AppendResult>;
  readStream(stream: StreamRef, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options: ReadAllOptions): Promise<ReadAllResult>;
  subscribe(options: SubscribeOptions, handler: (events: readonly RecordedEvent[]) => Promise<void>): Subscription;
  streamInfo(stream: StreamRef): Promise<StreamInfo | null>;
  /** Archived streams stay readable and take no more appends. */
  archiveStream(stream: StreamRef): Promise<void>;
  /** Tombstone: removes the events and snapshots; the stream id can never be written again. */
  deleteStream(stream: StreamRef): Promise<void>;
  /** Keeps the snapshot unless a newer one (higher version) is already stored under the same name. */
  saveSnapshot(stream: StreamRef, snapshot: Snapshot): Promise<void>;
  loadSnapshot<TState = unknown>(stream: StreamRef, name?: string): Promise<Snapshot<TState> | null>;
  /** Flushes pending appends and releases connections. Idempotent. */
  close(): Promise<void>;
}
