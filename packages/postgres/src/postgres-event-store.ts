import {
  ALL_TENANTS,
  ConcurrencyError,
  DEFAULT_MAX_EVENT_BYTES,
  InvalidOptionsError,
  SchemaError,
  jsonProblem,
  matchIdempotentAppend,
  prepareAppend,
  runCatchUpSubscription,
  streamKey,
  validateReadAll,
  validateReadStream,
  validateStreamRef,
  validateSubscribe,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type LogPosition,
  type NewEvent,
  type Projection,
  type ReadAllOptions,
  type ReadAllResult,
  type ReadStreamOptions,
  type RecordedEvent,
  type Snapshot,
  type StreamInfo,
  type StreamRef,
  type SubscribeOptions,
  type Subscription,
} from '@causeway/core';
import { AppendCoalescer, type CoalescerOptions } from './append-coalescer.js';
import { type AppendOutcome, type AppendRequest } from './append-outcome.js';
import { AppendWriter } from './append-writer.js';
import { CommitNotifier } from './commit-notifier.js';
import { eventStoreSql, type EventStoreSql } from './event-store-sql.js';
import { rowToEvent, type EventRow } from './event-rows.js';
import { inlineProjections, type InlineProjectionHook } from './inline-projections.js';
import { migrate } from './migrate.js';
import { schemaNames, type SchemaNames } from './schema.js';
import { sqlState, type SqlDatabase, type SqlExecutor } from './sql-executor.js';
import { WakeHub } from './wake-hub.js';

export interface PostgresEventStoreOptions {
  readonly db: SqlDatabase;
  /** Schema holding the tables. Default 'causeway'. */
  readonly schema?: string;
  /** Producer stamped on events that carry none. Default 'causeway'. */
  readonly producer?: string;
  /** Largest serialized data + metadata per event, checked before writing. Default 1 MiB. */
  readonly maxEventBytes?: number;
  /** Accept event types that break the past-tense dot-notation rule. Default false. */
  readonly allowAnyTypeName?: boolean;
  /** Group concurrent appends into shared transactions (see append-coalescer.ts). Default on; false turns it off. */
  readonly coalesce?: Partial<CoalescerOptions> | false;
  /** Run migrate() on creation. Default true. */
  readonly migrate?: boolean;
  /** Close `db` when the store closes. Default false. */
  readonly ownsDatabase?: boolean;
  /** Projections applied inside each append's transaction (see inline-projections.ts). Default none. */
  readonly inlineProjections?: readonly Projection<SqlExecutor>[];
}

/** Creates the store (running migrations unless told not to). */
export async function createPostgresEventStore(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
  const store = new PostgresEventStore(options);
  if (options.migrate ?? true) await migrate(options.db, { schema: store.names.raw });
  return store;
}

/**
 * The EventStore port on PostgreSQL, over the SqlDatabase port, so the same SQL serves the server
 * (pg) and the embedded engine (PGlite). All checks of an append happen inside one database
 * call (append_batch); nothing is decided on a read made before the write.
 */
export class PostgresEventStore implements EventStore<SqlExecutor> {
  readonly names: SchemaNames;
  private readonly db: SqlDatabase;
  private readonly producer: string;
  private readonly maxEventBytes: number;
  private readonly allowAnyTypeName: boolean;
  private readonly coalescer: AppendCoalescer<AppendRequest, AppendOutcome> | null;
  private readonly wakes: WakeHub;
  private readonly sql: EventStoreSql;
  private readonly inline: InlineProjectionHook | null;
  private readonly writer: AppendWriter;
  /** Server only: the subscribers' NOTIFY, sent after commit (PGlite's statements send their own). */
  private readonly notifier: CommitNotifier | null;
  private closed = false;

  constructor(private readonly options: PostgresEventStoreOptions) {
    this.db = options.db;
    this.names = schemaNames(options.schema ?? 'causeway');
    this.producer = options.producer ?? 'causeway';
    this.maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.allowAnyTypeName = options.allowAnyTypeName ?? false;
    if (!Number.isInteger(this.maxEventBytes) || this.maxEventBytes < 1) throw new InvalidOptionsError('maxEventBytes must be a positive integer');
    const server = this.db.engine === 'postgres';
    this.sql = eventStoreSql(this.names, !server);
    this.writer = new AppendWriter(this.sql, this.names.raw, server);
    this.notifier = server ? new CommitNotifier(this.db, this.names.channel) : null;
    this.inline = inlineProjections(options.inlineProjections ?? []);
    const c = options.coalesce;
    if (c === false) {
      this.coalescer = null;
    } else {
      // PGlite runs one statement at a time, so it takes one batch in flight: appends that queue
      // behind it then share the next statement instead of paying for one each.
      const settings: CoalescerOptions = {
        maxInFlight: c?.maxInFlight ?? Math.min(4, this.db.maxConcurrency),
        maxAppends: c?.maxAppends ?? 64,
        maxEvents: c?.maxEvents ?? 2000,
      };
      for (const [k, v] of Object.entries(settings)) {
        if (!Number.isInteger(v) || v < 1) throw new InvalidOptionsError(`coalesce.${k} must be an integer >= 1`);
      }
      this.coalescer = new AppendCoalescer((reqs) => this.runBatch(this.db, reqs), settings, (r) => r.prepared.length, (r) => streamKey(r.stream));
    }
    this.wakes = new WakeHub(this.db, this.names.channel);
  }

  async append(stream: StreamRef, events: readonly NewEvent[], options: AppendOptions<SqlExecutor> = {}): Promise<AppendResult> {
    this.assertOpen();
    const prepared = prepareAppend(stream, events, {
      producer: this.producer,
      maxEventBytes: this.maxEventBytes,
      allowAnyTypeName: this.allowAnyTypeName,
      expectedVersion: options.expectedVersion,
    });
    const expected = options.expectedVersion ?? 'any';
    const request: AppendRequest = {
      stream,
      prepared,
      expected,
      streamType: options.streamType ?? null,
      idsSupplied: events.some((e) => e.eventId !== undefined),
    };
    const hook = options.beforeCommit;
    try {
      if (hook) {
        return await this.db.transaction(async (tx) => {
          const [outcome] = await this.runBatch(tx, [request]);
          if (outcome && 'result' in outcome) await hook(tx, outcome.result);
          return outcome as AppendOutcome;
        }).then((outcome) => this.settle(request, outcome));
      }
      const outcome = this.coalescer ? await this.coalescer.submit(request) : ((await this.runBatch(this.db, [request]))[0] as AppendOutcome);
      return await this.settle(request, outcome);
    } catch (e) {
      // An event id is stored already (the insert hit the unique key, SQLSTATE 23505): nothing
      // was written. Decide whether this is a re-append of the same events or a duplicate id.
      if (sqlState(e) === '23505') return this.classifyStoredIds(request, null);
      throw e;
    }
  }

  async readStream(stream: StreamRef, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    validateStreamRef(stream);
    validateReadStream(options);
    const backward = options.direction === 'backward';
    const asOf = options.asOf === undefined ? null : options.asOf instanceof Date ? options.asOf.toISOString() : options.asOf;
    const params = [stream.tenantId, stream.streamId, options.fromVersion ?? 0, options.toVersion ?? Number.MAX_SAFE_INTEGER, options.maxCount ?? null];
    const { rows } = asOf === null
      ? await this.db.query<EventRow>(backward ? this.sql.readStreamBackward : this.sql.readStreamForward, params, backward ? `${this.names.raw}.rsb` : `${this.names.raw}.rsf`)
      : await this.db.query<EventRow>(backward ? this.sql.readStreamAsOfBackward : this.sql.readStreamAsOfForward, [...params, asOf]);
    return rows.map(rowToEvent);
  }

  async readAll(options: ReadAllOptions): Promise<ReadAllResult> {
    const { after, limit } = validateReadAll(options);
    const tenant = options.tenantId === ALL_TENANTS ? null : options.tenantId;
    const { rows } = await this.db.query<EventRow>(
      this.sql.readAll,
      [after.tx.toString(), after.seq.toString(), tenant, options.eventTypes ?? null, limit],
      `${this.names.raw}.ra`,
    );
    const events = rows.map(rowToEvent);
    const last = events[events.length - 1];
    return { events, next: last ? last.position : after };
  }

  subscribe(options: SubscribeOptions, handler: (events: readonly RecordedEvent[]) => Promise<void>): Subscription {
    this.assertOpen();
    return runCatchUpSubscription(
      {
        read: (from, limit) => this.readAll({ ...options, after: from, limit }),
        onWake: (wake) => this.wakes.add(wake),
        heldBack: (after) => this.heldBack(after, options),
      },
      validateSubscribe(options),
      handler,
    );
  }

  /** Events after `after` (matching the subscription's filters) that are committed, readable or not yet. */
  private async heldBack(after: LogPosition, options: SubscribeOptions): Promise<boolean> {
    const tenant = options.tenantId === ALL_TENANTS ? null : options.tenantId;
    const { rows } = await this.db.query<{ held: boolean }>(
      this.sql.heldBack,
      [after.tx.toString(), after.seq.toString(), tenant, options.eventTypes ?? null],
      `${this.names.raw}.held`,
    );
    return rows[0]?.held === true;
  }

  async streamInfo(stream: StreamRef): Promise<StreamInfo | null> {
    validateStreamRef(stream);
    const { rows } = await this.db.query<{ version: string; stream_type: string | null; archived: boolean; deleted: boolean }>(
      `SELECT version::text AS version, stream_type, archived, deleted FROM ${this.names.schema}.streams WHERE tenant_id = $1 AND stream_id = $2`,
      [stream.tenantId, stream.streamId],
    );
    const r = rows[0];
    return r
      ? { tenantId: stream.tenantId, streamId: stream.streamId, version: Number(r.version), streamType: r.stream_type, archived: r.archived, deleted: r.deleted }
      : null;
  }

  async archiveStream(stream: StreamRef): Promise<void> {
    validateStreamRef(stream);
    await this.db.query(
      `UPDATE ${this.names.schema}.streams SET archived = true, updated_at = clock_timestamp() WHERE tenant_id = $1 AND stream_id = $2 AND NOT deleted`,
      [stream.tenantId, stream.streamId],
    );
  }

  async deleteStream(stream: StreamRef): Promise<void> {
    validateStreamRef(stream);
    const s = this.names.schema;
    const params = [stream.tenantId, stream.streamId];
    await this.db.transaction(async (tx) => {
      // The upsert takes the stream's row lock first, so no append can slip in between.
      await tx.query(
        `INSERT INTO ${s}.streams AS st (tenant_id, stream_id, version, deleted) VALUES ($1, $2, 0, true)
         ON CONFLICT (tenant_id, stream_id) DO UPDATE SET deleted = true, updated_at = clock_timestamp()`,
        params,
      );
      await tx.query(`DELETE FROM ${s}.events WHERE tenant_id = $1 AND stream_id = $2`, params);
      await tx.query(`DELETE FROM ${s}.snapshots WHERE tenant_id = $1 AND stream_id = $2`, params);
    });
  }

  async saveSnapshot(stream: StreamRef, snapshot: Snapshot): Promise<void> {
    validateStreamRef(stream);
    const problems: string[] = [];
    if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 1) problems.push('snapshot version must be an integer >= 1');
    const stateProblem = jsonProblem(snapshot.state, 'snapshot state');
    if (stateProblem) problems.push(stateProblem);
    const name = snapshot.name ?? 'default';
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) problems.push('snapshot name must be a string of 1 to 200 characters');
    if (problems.length > 0) throw new SchemaError(problems);
    const s = this.names.schema;
    const { rows } = await this.db.query<{ ok: boolean }>(
      `WITH target AS (
         SELECT version FROM ${s}.streams WHERE tenant_id = $1 AND stream_id = $2 AND NOT deleted AND version >= $4
       ), saved AS (
         INSERT INTO ${s}.snapshots (tenant_id, stream_id, name, version, state)
         SELECT $1, $2, $3, $4, $5::jsonb FROM target
         ON CONFLICT (tenant_id, stream_id, name) DO UPDATE
           SET version = excluded.version, state = excluded.state, created_at = clock_timestamp()
           WHERE ${s}.snapshots.version < excluded.version
         RETURNING 1
       )
       SELECT EXISTS (SELECT 1 FROM target) AS ok`,
      [stream.tenantId, stream.streamId, name, snapshot.version, JSON.stringify(snapshot.state)],
    );
    if (!rows[0]?.ok) throw new SchemaError([`snapshot version ${snapshot.version} is beyond the end of stream "${stream.streamId}"`]);
  }

  async loadSnapshot<TState = unknown>(stream: StreamRef, name = 'default'): Promise<Snapshot<TState> | null> {
    validateStreamRef(stream);
    const { rows } = await this.db.query<{ version: number; state: TState }>(
      `SELECT version::integer AS version, state FROM ${this.names.schema}.snapshots WHERE tenant_id = $1 AND stream_id = $2 AND name = $3`,
      [stream.tenantId, stream.streamId, name],
      `${this.names.raw}.ls`,
    );
    const r = rows[0];
    return r ? { version: r.version, state: r.state, name } : null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.coalescer?.drain();
    await this.notifier?.drain();
    await this.wakes.close();
    if (this.options.ownsDatabase) await this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new InvalidOptionsError('the event store is closed');
  }

  /** The appends' write, plus the inline projections in the same transaction when there are any. */
  private runBatch(executor: SqlExecutor, requests: readonly AppendRequest[]): Promise<AppendOutcome[]> {
    const inline = this.inline;
    if (inline === null) return this.writer.write(executor, requests);
    const run = async (tx: SqlExecutor): Promise<AppendOutcome[]> => {
      const outcomes = await this.writer.write(tx, requests);
      const written = outcomes.flatMap((o) => ('result' in o ? o.result.events : []));
      if (written.length > 0) await inline(written, tx);
      return outcomes;
    };
    // `executor` is the pool itself unless the caller's beforeCommit already opened a transaction.
    return executor === this.db ? this.db.transaction(run) : run(executor);
  }

  /** Turns an outcome into the caller's result or error. */
  private async settle(request: AppendRequest, outcome: AppendOutcome): Promise<AppendResult> {
    if ('result' in outcome) {
      // Only called once the append's transaction has committed.
      this.notifier?.committed();
      return outcome.result;
    }
    if ('error' in outcome) throw outcome.error;
    // A conflict with caller-chosen ids may be a retry of an append that already landed.
    if (request.idsSupplied) return this.classifyStoredIds(request, outcome.conflict);
    throw outcome.conflict;
  }

  /** Idempotent re-append (same ids, same place: success without writing), duplicate id, or `otherwise`. */
  private async classifyStoredIds(request: AppendRequest, otherwise: ConcurrencyError | null): Promise<AppendResult> {
    const ids = request.prepared.map((p) => p.envelope.eventId);
    const { rows } = await this.db.query<EventRow>(this.sql.eventsById, [request.stream.tenantId, ids]);
    const byId = new Map(rows.map((r) => [r.event_id, rowToEvent(r)]));
    const result = matchIdempotentAppend(request.stream, ids.map((id) => byId.get(id) ?? null), request.expected);
    if (result) return result;
    if (otherwise) throw otherwise;
    // The ids were deleted (tombstone) between the failed insert and this lookup: let the caller retry.
    throw new ConcurrencyError(request.stream.tenantId, request.stream.streamId, request.expected, -1);
  }
}
