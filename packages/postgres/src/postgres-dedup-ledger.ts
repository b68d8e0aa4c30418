import {
  checkRetention,
  DEFAULT_DEDUP_RETENTION_MS,
  InvalidOptionsError,
  isUuid,
  SchemaError,
  type BatchDedupLedger,
  type DedupKey,
  type RetryPolicy,
} from '@causeway/core';
import { AppendCoalescer } from './append-coalescer.js';
import { schemaNames, type SchemaNames } from './schema.js';
import { sqlState, type SqlDatabase, type SqlExecutor } from './sql-executor.js';

export interface PostgresDedupLedgerOptions {
  /** The database the handlers write to: the key and the handler's writes commit in one of its transactions. */
  readonly db: SqlDatabase;
  /** Schema holding Causeway's tables, migrated to version 7 or later. Default 'causeway'. */
  readonly schema?: string;
  /** How long a handled event's key is kept (the dedup window). Default 7 days (DEFAULT_DEDUP_RETENTION_MS). */
  readonly retentionMs?: number;
  /**
   * The retry policy of the consumers using this ledger: a `retentionMs` shorter than its horizon
   * (retryHorizonMs) is refused. Default: retry()'s defaults.
   */
  readonly retryPolicy?: RetryPolicy;
  /**
   * Most once() calls coalesced into one transaction when they overlap (a lone call goes at once,
   * alone). Default 1: no batching. With batching a handler runs beside others in a shared
   * transaction, and runs again (alone) if another handler of its batch throws and the batch
   * rolls back: only its writes to `tx` are guaranteed once, so keep other side effects out of it.
   */
  readonly batchSize?: number;
  /** Batched transactions in flight at once. Default min(4, db.maxConcurrency). */
  readonly maxInFlight?: number;
}

export interface DedupCleanupOptions {
  /** Rows deleted per statement (each its own short transaction). Default 1,000. */
  readonly batchSize?: number;
  /** Stop after this many statements (the rest waits for the next run). Default: until no expired row is left. */
  readonly maxBatches?: number;
}

interface Job {
  readonly key: DedupKey;
  /** The key as one string (consumer, tenant, event id joined by NUL, which PostgreSQL text never holds). */
  readonly id: string;
  /** The job alone (a lone call, or a retry after its batch rolled back). */
  readonly work: (tx: SqlExecutor) => Promise<void>;
  /** From onceInBatch: the fresh jobs of a batch sharing `work` run as ONE call with all their items. */
  readonly shared?: { readonly work: (tx: SqlExecutor, items: readonly unknown[]) => Promise<void>; readonly item: unknown };
}

interface Outcome {
  readonly duplicate: boolean;
}

/** Thrown inside the transaction to roll it back when the key is already there (carries a code, so drivers pass it through unwrapped). */
const DUPLICATE = Object.freeze({ code: 'CAUSEWAY_DEDUP_DUPLICATE' });

/**
 * The inbox ledger on PostgreSQL/PGlite (`<schema>.inbox`, migration 7), keyed by (consumer,
 * tenant, event id). once() inserts the key and runs the handler in ONE transaction; a unique
 * violation (SQLSTATE 23505) on that insert means a duplicate and the handler does not run.
 * Two deliveries of one event at once: the second insert waits on the first's row lock, then
 * fails (first committed) or goes ahead (first rolled back), so exactly one handler commits.
 *
 * With `batchSize` > 1 overlapping calls share a transaction: every key inserted with ON CONFLICT
 * DO NOTHING RETURNING, handlers run for the keys that came back. If any handler throws, nothing
 * of the batch commits and each call is run again alone, so only the failing one fails.
 */
export class PostgresDedupLedger implements BatchDedupLedger<SqlExecutor> {
  readonly retentionMs: number;
  private readonly db: SqlDatabase;
  private readonly names: SchemaNames;
  private readonly coalescer: AppendCoalescer<Job, Outcome> | null;

  constructor(options: PostgresDedupLedgerOptions) {
    this.db = options.db;
    this.names = schemaNames(options.schema ?? 'causeway');
    this.retentionMs = checkRetention(options.retentionMs ?? DEFAULT_DEDUP_RETENTION_MS, options.retryPolicy ?? {});
    const batchSize = options.batchSize ?? 1;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new InvalidOptionsError(`dedup ledger batchSize must be an integer 1-10000; got ${String(batchSize)}`);
    const maxInFlight = options.maxInFlight ?? Math.min(4, this.db.maxConcurrency);
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new InvalidOptionsError(`dedup ledger maxInFlight must be an integer >= 1; got ${String(maxInFlight)}`);
    this.coalescer =
      batchSize === 1
        ? null
        : new AppendCoalescer<Job, Outcome>((jobs) => this.runBatch(jobs), { maxInFlight, maxAppends: batchSize, maxEvents: batchSize }, () => 1, (job) => job.id);
  }

  once(key: DedupKey, work: (tx: SqlExecutor) => Promise<void>): Promise<Outcome> {
    return this.submit(key, work, undefined);
  }

  /**
   * Like once(), but the fresh keys of one batch that share `work` are handled by ONE call of
   * `work` with all their items (e.g. one multi-row INSERT of the effects): a statement per batch
   * instead of one per message. Alone, or retried after its batch rolled back, `work` gets one item.
   */
  onceInBatch<TItem>(key: DedupKey, item: TItem, work: (tx: SqlExecutor, items: readonly TItem[]) => Promise<void>): Promise<Outcome> {
    return this.submit(key, (tx) => work(tx, [item]), { work: work as (tx: SqlExecutor, items: readonly unknown[]) => Promise<void>, item });
  }

  private submit(key: DedupKey, work: Job['work'], shared: Job['shared']): Promise<Outcome> {
    if (!isUuid(key.eventId)) return Promise.reject(new SchemaError([`dedup key eventId must be a lower-case UUID; got ${JSON.stringify(key.eventId)}`]));
    if (this.coalescer === null) return this.runOne({ key, id: '', work });
    return this.coalescer.submit({ key, id: keyText(key), work, ...(shared === undefined ? {} : { shared }) });
  }

  /**
   * Deletes keys whose window has passed, `batchSize` rows per statement, each statement its own
   * short transaction. Rows locked by a running transaction are skipped (SKIP LOCKED), so handlers
   * never wait on the cleanup, nor it on them. Run it on a timer; returns the rows deleted.
   */
  async cleanup(options: DedupCleanupOptions = {}): Promise<number> {
    const batchSize = options.batchSize ?? 1_000;
    const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidOptionsError(`cleanup batchSize must be an integer >= 1; got ${String(batchSize)}`);
    const s = this.names.schema;
    let total = 0;
    for (let n = 0; n < maxBatches; n++) {
      const { rowCount } = await this.db.query(
        `DELETE FROM ${s}.inbox WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM ${s}.inbox WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        [batchSize],
      );
      total += rowCount;
      if (rowCount < batchSize) break;
    }
    return total;
  }

  /** Waits until no batched call is queued or running. */
  async drain(): Promise<void> {
    await this.coalescer?.drain();
  }

  private async runOne(job: Job): Promise<Outcome> {
    let workError: { readonly error: unknown } | undefined;
    try {
      await this.db.transaction(async (tx) => {
        try {
          await tx.query(
            `INSERT INTO ${this.names.schema}.inbox (consumer, tenant_id, event_id, expires_at)
             VALUES ($1, $2, $3::uuid, now() + $4::bigint * interval '1 millisecond')`,
            [job.key.consumer, job.key.tenantId, job.key.eventId, this.retentionMs],
            `${this.names.raw}.inbox-once`,
          );
        } catch (e) {
          if (sqlState(e) === '23505') throw DUPLICATE;
          throw e;
        }
        try {
          await job.work(tx);
        } catch (error) {
          workError = { error };
          throw error;
        }
      });
      return { duplicate: false };
    } catch (e) {
      if (e === DUPLICATE) return { duplicate: true };
      // The handler's own error, as it threw it (not a driver's wrapper): retry() and deadLetter() classify it.
      if (workError !== undefined) throw workError.error;
      throw e;
    }
  }

  private async runBatch(jobs: readonly Job[]): Promise<Outcome[]> {
    if (jobs.length === 1) return [await this.runOne(jobs[0] as Job)];
    return this.db.transaction(async (tx) => {
      // Keys in one order, so two batches with overlapping keys wait on each other instead of deadlocking.
      const sorted = [...jobs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const { rows } = await tx.query<{ consumer: string; tenant_id: string; event_id: string }>(
        `INSERT INTO ${this.names.schema}.inbox (consumer, tenant_id, event_id, expires_at)
         SELECT c, t, e::uuid, now() + $4::bigint * interval '1 millisecond'
         FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k (c, t, e, i) ORDER BY i
         ON CONFLICT DO NOTHING
         RETURNING consumer, tenant_id, event_id::text AS event_id`,
        [sorted.map((j) => j.key.consumer), sorted.map((j) => j.key.tenantId), sorted.map((j) => j.key.eventId), this.retentionMs],
        `${this.names.raw}.inbox-batch`,
      );
      const fresh = new Set(rows.map((r) => keyText({ consumer: r.consumer, tenantId: r.tenant_id, eventId: r.event_id })));
      const outcomes: Outcome[] = [];
      const shared = new Map<(tx: SqlExecutor, items: readonly unknown[]) => Promise<void>, unknown[]>();
      for (const job of jobs) {
        const isNew = fresh.has(job.id);
        outcomes.push({ duplicate: !isNew });
        if (!isNew) continue;
        if (job.shared === undefined) await job.work(tx);
        else {
          const items = shared.get(job.shared.work);
          if (items === undefined) shared.set(job.shared.work, [job.shared.item]);
          else items.push(job.shared.item);
        }
      }
      for (const [work, items] of shared) await work(tx, items);
      return outcomes;
    });
  }
}

const keyText = (k: DedupKey): string => `${k.consumer}\u0000${k.tenantId}\u0000${k.eventId}`;
