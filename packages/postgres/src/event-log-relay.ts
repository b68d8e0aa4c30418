import {
  ALL_TENANTS,
  CausewayError,
  InvalidOptionsError,
  type EventStore,
  type LogPosition,
  type RecordedEvent,
} from '@causeway/core';
import {
  commitFenced,
  publishBatch,
  resolveRelayOptions,
  runRelay,
  statsFromRow,
  type Relay,
  type RelayCounters,
  type RelayEntry,
  type RelayOptions,
  type RelayStats,
  type RelayTurn,
} from './relay-loop.js';
import { MarkPipeline, advanceRelayCheckpoint, advanceRelayCheckpointFenced, checkpointOf, loadRelayCheckpoint } from './relay-checkpoint.js';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlDatabase } from './sql-executor.js';

export interface EventLogRelayOptions extends RelayOptions {
  /** The store whose gap-safe global log is relayed (its `subscribe`); it must live in `db` and `schema`. */
  readonly store: Pick<EventStore, 'subscribe'>;
  /** `name` keys the checkpoint ('log:<name>') and the lease ('relay:log:<name>'). Default 'default'. */
  readonly name?: string;
  /** The topic an event goes to; null leaves it unpublished (the checkpoint still moves past it). */
  readonly topic: (event: RecordedEvent) => string | null;
  /** The partition key. Default: the stream id. */
  readonly key?: (event: RecordedEvent) => string;
  /** Relay only these event types (filtered in the read). Default: all. */
  readonly eventTypes?: readonly string[];
}

function statsSql(names: SchemaNames): string {
  return `SELECT count(*)::text AS pending,
      coalesce(floor(extract(epoch FROM clock_timestamp() - min(ev.recorded_at)) * 1000), 0)::text AS age
    FROM ${names.schema}.events ev, ${checkpointOf(names, 1)} c WHERE (ev.tx, ev.seq) > (c.tx, c.seq)`;
}

const checkpointKey = (name: string): string => `log:${name}`;

/**
 * Events after an event-log relay's checkpoint and the oldest one's age (from recorded_at), without
 * a running relay (CLI, health checks). Counts every event after it, also those its `topic` skips.
 */
export async function eventLogRelayStats(db: SqlDatabase, options: { readonly schema?: string; readonly name?: string } = {}): Promise<RelayStats> {
  const { rows } = await db.query<{ pending: string; age: string }>(statsSql(schemaNames(options.schema ?? 'causeway')), [checkpointKey(options.name ?? 'default')]);
  return statsFromRow(rows[0]);
}

/**
 * For event-sourced services the event log is the outbox: this relay tails the store's gap-safe
 * global log from its own checkpoint and publishes every event to `topic(event)`.
 *
 * Same lease, backoff and at-least-once rules as the outbox relay: one batch at a time in log
 * order (per key order holds across batches), published grouped by topic, and only after
 * `publish` resolved the checkpoint moves past the batch, in a write that checks the lease (and
 * that the checkpoint is where this holder left it); batches published while such a mark is in
 * flight are marked together by the next one (see MarkPipeline). After a crash the events after
 * the checkpoint are published again, with the same ids.
 */
export function createEventLogRelay(options: EventLogRelayOptions): Relay {
  const o = resolveRelayOptions(options);
  if (typeof options.store?.subscribe !== 'function') throw new InvalidOptionsError('store must be an EventStore (it needs subscribe)');
  if (typeof options.topic !== 'function') throw new InvalidOptionsError('topic must be a function from an event to a topic name');
  if (options.key !== undefined && typeof options.key !== 'function') throw new InvalidOptionsError('key must be a function from an event to a key');
  const { store, topic, key, eventTypes } = options;
  const checkpoint = checkpointKey(o.name);
  const label = `event-log relay "${o.name}"`;

  const prepare = (events: readonly RecordedEvent[]) => (): RelayEntry[] => {
    const entries: RelayEntry[] = [];
    for (const event of events) {
      const t = topic(event);
      if (t === null) continue;
      entries.push({ topic: t, message: key === undefined ? { event } : { event, key: key(event) } });
    }
    return entries;
  };

  const turn = async (t: RelayTurn, counters: RelayCounters): Promise<void> => {
    const stored = await loadRelayCheckpoint(o.db, o.names, checkpoint);
    let position: LogPosition = { tx: BigInt(stored.tx), seq: BigInt(stored.seq) };
    const interrupted = new CausewayError('INTERRUPTED', `${label}: interrupted`);
    const text = (p: LogPosition) => ({ tx: p.tx.toString(), seq: p.seq.toString() });
    const marks = new MarkPipeline(o.batchSize, async ({ from, to, count }) => {
      const step = { from, to, fence: t.lease.fence, count };
      const committed = await commitFenced(
        o,
        t,
        label,
        (tx) => advanceRelayCheckpoint(tx, o.names, checkpoint, step),
        (db) => advanceRelayCheckpointFenced(db, o.names, checkpoint, t.lease.name, step),
      );
      if (committed) counters.marked += count;
      return committed;
    });
    const subscription = store.subscribe(
      {
        tenantId: ALL_TENANTS,
        after: position,
        batchSize: o.batchSize,
        pollIntervalMs: o.pollIntervalMs,
        ...(eventTypes === undefined ? {} : { eventTypes }),
      },
      async (events) => {
        if (t.interrupt.aborted || !(await marks.room(events.length))) throw interrupted;
        if (!(await publishBatch(o, t, label, prepare(events), counters))) throw interrupted;
        await o.afterPublish?.({ ids: events.map((e) => e.eventId), fence: t.lease.fence });
        const to = (events[events.length - 1] as RecordedEvent).position;
        marks.published({ from: text(position), to: text(to), count: events.length, ids: [] });
        position = to; // the next mark starts here; a failed one ends the turn
      },
    );
    const ended = new Promise<void>((resolve) => {
      if (t.interrupt.aborted) resolve();
      else t.interrupt.addEventListener('abort', () => resolve(), { once: true });
    });
    let failure: unknown = null;
    await Promise.race([subscription.done, ended]).catch((error: unknown) => {
      if (error !== interrupted) failure = error;
    });
    await subscription.stop();
    if (failure !== null) {
      await marks.settle().catch(() => false); // the turn's own error comes first
      throw failure;
    }
    await marks.settle(); // the last batch's checkpoint; a lost lease surfaces here
  };
  return runRelay(o, `relay:log:${o.name}`, label, turn, () => eventLogRelayStats(o.db, { schema: o.names.raw, name: o.name }));
}
