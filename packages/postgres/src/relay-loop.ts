import {
  InvalidOptionsError,
  LeaseLostError,
  backoffDelay,
  delay,
  isClosedError,
  isLeaseLostError,
  reportToStderr,
  type ErrorReporter,
  type Message,
  type Publisher,
} from '@causeway/core';
import { acquireLease, type Lease } from './lease.js';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlDatabase, SqlExecutor } from './sql-executor.js';

/** What both relays (outbox and event log) take. */
export interface RelayOptions {
  /** The database holding the rows to relay, the lease and the relay's bookkeeping. */
  readonly db: SqlDatabase;
  /** Where messages go. A batch counts as sent only once `publish` resolved (the broker holds it durably). */
  readonly publisher: Publisher;
  /** Schema of the tables (migrations 5 and 6). Default 'causeway'. */
  readonly schema?: string;
  /** The relay's name (its lease and bookkeeping): 1-64 letters, digits, "_" or "-". Default 'default'. */
  readonly name?: string;
  /** Messages read and published per batch, 1 to 10,000. Default 500. */
  readonly batchSize?: number;
  /** Fallback poll when no NOTIFY arrives (an idle relay reads once per interval). Default 1,000 ms. */
  readonly pollIntervalMs?: number;
  /** Lease time to live; a holder that stops heartbeating is replaced after this. Default 10,000 ms. */
  readonly leaseTtlMs?: number;
  /** How often a standby tries to take the lease. Default 500 ms. */
  readonly leaseRetryMs?: number;
  /** Who holds the lease, as shown in the leases table. Default host:pid:random. */
  readonly holder?: string;
  /** First delay after a failed publish or database call; doubles (with jitter) per failure. Default 100 ms. */
  readonly retryBaseMs?: number;
  /** Longest delay between retries. Default 10,000 ms. */
  readonly retryMaxMs?: number;
  /** Told about every failure (failed publish, lost lease, database error); the relay carries on. Default: stderr. */
  readonly onError?: ErrorReporter;
  /**
   * Fault injection for tests: runs after a batch was published and before it is marked sent.
   * A throw ends the relay's turn without marking (as a crash would); the relay then stands by again.
   */
  readonly afterPublish?: (batch: RelayBatch) => Promise<void> | void;
}

/** A published batch, as `afterPublish` sees it. */
export interface RelayBatch {
  /** The batch's message (event) ids in log order; the event-log relay lists events its `topic` skips too. */
  readonly ids: readonly string[];
  /** The fence of the lease the batch was published under. */
  readonly fence: string;
}

/** How far behind a relay is. */
export interface RelayStats {
  /** Messages committed and not yet marked sent. */
  readonly pending: number;
  /** Age of the oldest pending message, from the database clock when it was written; 0 when nothing is pending. */
  readonly oldestPendingAgeMs: number;
}

/** A running relay: the active one publishes, others stand by until the lease is free. */
export interface Relay {
  readonly name: string;
  /** True while this relay holds the lease. */
  readonly active: boolean;
  /** Messages this relay published (a batch published again after a failure counts again). */
  readonly published: number;
  /** Messages this relay marked sent (moved its checkpoint past). */
  readonly marked: number;
  /** Resolves once stopped. */
  readonly done: Promise<void>;
  /** Pending count and oldest pending age, read from the database (works on a standby too). */
  stats(): Promise<RelayStats>;
  /** Finishes the batch in flight (unless its publish is still failing), releases the lease, stops. Idempotent. */
  stop(): Promise<void>;
}

export interface ResolvedRelayOptions {
  readonly db: SqlDatabase;
  readonly publisher: Publisher;
  readonly names: SchemaNames;
  readonly name: string;
  readonly batchSize: number;
  readonly pollIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly leaseRetryMs: number;
  readonly holder: string | undefined;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly report: ErrorReporter;
  readonly afterPublish: RelayOptions['afterPublish'];
}

const RELAY_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function resolveRelayOptions(o: RelayOptions): ResolvedRelayOptions {
  if (typeof o.db?.transaction !== 'function') throw new InvalidOptionsError('db must be a SqlDatabase');
  if (typeof o.publisher?.publish !== 'function') throw new InvalidOptionsError('publisher must be a Publisher');
  const name = o.name ?? 'default';
  if (typeof name !== 'string' || !RELAY_NAME.test(name)) {
    throw new InvalidOptionsError(`relay name must be 1-64 letters, digits, "_" or "-"; got ${JSON.stringify(name)}`);
  }
  const int = (value: number | undefined, fallback: number, min: number, max: number, what: string): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < min || v > max) throw new InvalidOptionsError(`${what} must be an integer from ${min} to ${max}; got ${String(value)}`);
    return v;
  };
  const retryBaseMs = int(o.retryBaseMs, 100, 1, 600_000, 'retryBaseMs');
  return {
    db: o.db,
    publisher: o.publisher,
    names: schemaNames(o.schema ?? 'causeway'),
    name,
    batchSize: int(o.batchSize, 500, 1, 10_000, 'batchSize'),
    pollIntervalMs: int(o.pollIntervalMs, 1000, 10, 3_600_000, 'pollIntervalMs'),
    leaseTtlMs: int(o.leaseTtlMs, 10_000, 300, 3_600_000, 'leaseTtlMs'),
    leaseRetryMs: int(o.leaseRetryMs, 500, 1, 600_000, 'leaseRetryMs'),
    holder: o.holder,
    retryBaseMs,
    retryMaxMs: int(o.retryMaxMs, 10_000, retryBaseMs, 3_600_000, 'retryMaxMs'),
    report: safely(o.onError ?? reportToStderr),
    afterPublish: o.afterPublish,
  };
}

/** A reporter that throws must not stop the relay it reports for. */
function safely(report: ErrorReporter): ErrorReporter {
  return (error, context) => {
    try {
      report(error, context);
    } catch {
      // nothing sensible to do: the relay carries on
    }
  };
}

/** One turn as lease holder. */
export interface RelayTurn {
  readonly lease: Lease;
  /** Aborted when stop() is called: start no new batch. */
  readonly stopping: AbortSignal;
  /** Aborted on stop() or when the lease is lost: cut every wait short. */
  readonly interrupt: AbortSignal;
}

export interface RelayCounters {
  published: number;
  marked: number;
}

/**
 * The lease loop both relays share: stand by until the lease is ours, run `turn` while it is,
 * release it, and stand by again (after a lost lease or a failed turn) until stopped.
 */
export function runRelay(
  o: ResolvedRelayOptions,
  leaseName: string,
  label: string,
  turn: (t: RelayTurn, counters: RelayCounters) => Promise<void>,
  stats: () => Promise<RelayStats>,
): Relay {
  const stopping = new AbortController();
  const counters: RelayCounters = { published: 0, marked: 0 };
  let active = false;
  const loop = async (): Promise<void> => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      let lease: Lease;
      try {
        lease = await acquireLease(
          { db: o.db, schema: o.names.raw, name: leaseName, ttlMs: o.leaseTtlMs, retryMs: o.leaseRetryMs, ...(o.holder === undefined ? {} : { holder: o.holder }) },
          stopping.signal,
        );
      } catch (error) {
        if (stopping.signal.aborted && isClosedError(error)) break;
        o.report(error, `${label}: cannot take the lease "${leaseName}"`);
        await delay(backoffDelay(failures++, o.retryBaseMs, o.retryMaxMs), stopping.signal);
        continue;
      }
      active = true;
      let failed = false;
      try {
        await turn({ lease, stopping: stopping.signal, interrupt: AbortSignal.any([stopping.signal, lease.signal]) }, counters);
      } catch (error) {
        failed = true;
        o.report(error, isLeaseLostError(error) ? `${label} lost its lease; standing by` : `${label} failed; standing by`);
      } finally {
        active = false;
        if (!failed && lease.signal.aborted && !stopping.signal.aborted) {
          o.report(new LeaseLostError(lease.name, lease.fence, String(lease.signal.reason ?? 'lost')), `${label} lost its lease; standing by`);
        }
        await lease.release().catch((error: unknown) => o.report(error, `${label}: releasing the lease failed (it expires by itself)`));
      }
      failures = failed ? failures + 1 : 0;
      if (failed) await delay(backoffDelay(failures, o.retryBaseMs, o.retryMaxMs), stopping.signal);
    }
  };
  const done = loop();
  return {
    name: o.name,
    get active() {
      return active;
    },
    get published() {
      return counters.published;
    },
    get marked() {
      return counters.marked;
    },
    done,
    stats,
    async stop() {
      stopping.abort('stopped');
      await done;
    },
  };
}

/** A message and the topic it goes to. */
export interface RelayEntry {
  readonly topic: string;
  readonly message: Message;
}

/**
 * Publishes a batch, grouped by topic in batch order (so each key keeps its order), topics in
 * parallel. A failed topic is retried with backoff, never dropped; topics already published are
 * not sent again. `prepare` is re-run after a throw (e.g. a topic function that fails).
 * Returns false when interrupted before everything was published.
 */
export async function publishBatch(
  o: ResolvedRelayOptions,
  t: RelayTurn,
  label: string,
  prepare: () => readonly RelayEntry[],
  counters: RelayCounters,
): Promise<boolean> {
  let remaining: Map<string, Message[]> | null = null;
  for (let attempt = 0; ; attempt++) {
    if (t.interrupt.aborted) return false;
    try {
      remaining ??= groupByTopic(prepare());
      const groups: [string, Message[]][] = [...remaining];
      const outcomes = await Promise.allSettled(groups.map(([topic, messages]) => o.publisher.publish(topic, messages)));
      outcomes.forEach((outcome, i) => {
        const [topic, messages] = groups[i] as [string, Message[]];
        if (outcome.status === 'fulfilled') {
          (remaining as Map<string, Message[]>).delete(topic);
          counters.published += messages.length;
        }
      });
      const failure = outcomes.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failure === undefined) return true;
      throw failure.reason;
    } catch (error) {
      if (t.interrupt.aborted) return false;
      const wait = backoffDelay(attempt, o.retryBaseMs, o.retryMaxMs);
      o.report(error, `${label}: publish failed (attempt ${attempt + 1}); nothing marked, retrying in ${wait} ms`);
      await delay(wait, t.interrupt);
    }
  }
}

function groupByTopic(entries: readonly RelayEntry[]): Map<string, Message[]> {
  const groups = new Map<string, Message[]>();
  for (const { topic, message } of entries) {
    const list = groups.get(topic);
    if (list) list.push(message);
    else groups.set(topic, [message]);
  }
  return groups;
}

/**
 * Runs `write` in a transaction that first checks the lease (fencing): once another holder took
 * over, it throws LeaseLostError and nothing is written. A CHECKPOINT_CONFLICT from `write` is
 * thrown too (it will not heal by retrying); other failures are retried with backoff.
 *
 * `fast`, when given, does the same check and write in one statement and says whether it wrote;
 * on the server it is tried first (see advanceRelayCheckpointFenced). When it wrote nothing, the
 * transaction runs to find out why, so a lost lease or a moved checkpoint fails exactly as
 * without it. PGlite runs one statement at a time, so it has no read horizon to spare and keeps
 * the transaction alone (whose check also marks the lease lost before the next read can run).
 * Returns false when interrupted before it committed.
 */
export async function commitFenced(
  o: ResolvedRelayOptions,
  t: RelayTurn,
  label: string,
  write: (tx: SqlExecutor) => Promise<void>,
  fast?: (db: SqlExecutor) => Promise<boolean>,
): Promise<boolean> {
  let tryFast = fast !== undefined && o.db.engine === 'postgres';
  for (let attempt = 0; ; attempt++) {
    try {
      if (tryFast && fast !== undefined && !t.lease.signal.aborted) {
        if (await fast(o.db)) return true;
        tryFast = false;
      }
      await o.db.transaction(async (tx) => {
        await t.lease.check(tx);
        await write(tx);
      });
      return true;
    } catch (error) {
      if (isLeaseLostError(error) || (error as { code?: unknown } | null)?.code === 'CHECKPOINT_CONFLICT') throw error;
      if (t.lease.signal.aborted) throw new LeaseLostError(t.lease.name, t.lease.fence, String(t.lease.signal.reason ?? 'lost'), { cause: error });
      if (t.interrupt.aborted) return false;
      const wait = backoffDelay(attempt, o.retryBaseMs, o.retryMaxMs);
      o.report(error, `${label}: marking a published batch failed (attempt ${attempt + 1}); retrying in ${wait} ms`);
      await delay(wait, t.interrupt);
    }
  }
}

/** Stats from a row of text columns (count and age are cast to text so both drivers return the same). */
export function statsFromRow(row: { pending: string; age: string } | undefined): RelayStats {
  return { pending: Number(row?.pending ?? 0), oldestPendingAgeMs: Math.max(0, Number(row?.age ?? 0)) };
}
