import type { RecordedEvent, LogPosition, NewEvent } from './envelope.js';
import { ConcurrencyError, InvalidOptionsError, SchemaError, StreamClosedError } from './errors.js';
import {
  ALL_TENANTS,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type ReadAllOptions,
  type ReadAllResult,
  type ReadStreamOptions,
  type Snapshot,
  type StreamInfo,
  type StreamRef,
  type SubscribeOptions,
  type Subscription,
} from './event-store.js';
import { runCatchUpSubscription } from './catch-up-subscription.js';
import { jsonProblem } from './json.js';
import { comparePositions, LOG_START } from './position.js';
import { DEFAULT_MAX_EVENT_BYTES, prepareAppend } from './prepare-append.js';
import { checkExpectedVersion, matchIdempotentAppend, streamKey, validateSubscribe, readStreamSlice, validateReadAll, validateReadStream, validateStreamRef } from './store-rules.js';

export interface InMemoryEventStoreOptions {
  /** Producer name stamped on events that do not carry one. Default 'causeway'. */
  readonly producer?: string;
  /** Largest serialized data + metadata per event. Default 1 MiB. */
  readonly maxEventBytes?: number;
  /** Accept event types that break the past-tense dot-notation rule. Default false. */
  readonly allowAnyTypeName?: boolean;
}

interface StreamState {
  info: { tenantId: string; streamId: string; version: number; streamType: string | null; archived: boolean; deleted: boolean };
  events: RecordedEvent[];
}

/**
 * The reference implementation of the EventStore port, kept in process memory. It models
 * transactions faithfully enough to run the whole conformance suite, gap test included: a write
 * takes its sequence numbers when it starts and becomes visible when it commits, and readAll only
 * returns transactions older than the oldest one still in flight.
 */
export class InMemoryEventStore implements EventStore<undefined> {
  private readonly streams = new Map<string, StreamState>();
  private readonly eventIds = new Map<string, RecordedEvent>();
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly streamLocks = new Map<string, Promise<unknown>>();
  private readonly inFlight = new Set<bigint>();
  private readonly wakeListeners = new Set<() => void>();
  private log: RecordedEvent[] = [];
  private lastTx = 0n;
  private lastSeq = 0n;
  private readonly producer: string;
  private readonly maxEventBytes: number;
  private readonly allowAnyTypeName: boolean;

  constructor(options: InMemoryEventStoreOptions = {}) {
    this.producer = options.producer ?? 'causeway';
    this.maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.allowAnyTypeName = options.allowAnyTypeName ?? false;
    if (!Number.isInteger(this.maxEventBytes) || this.maxEventBytes < 1) {
      throw new InvalidOptionsError('maxEventBytes must be a positive integer');
    }
  }

  async append(stream: StreamRef, events: readonly NewEvent[], options: AppendOptions<undefined> = {}): Promise<AppendResult> {
    const prepared = prepareAppend(stream, events, {
      producer: this.producer,
      maxEventBytes: this.maxEventBytes,
      allowAnyTypeName: this.allowAnyTypeName,
      expectedVersion: options.expectedVersion,
    });
    const expected = options.expectedVersion ?? 'any';
    const key = streamKey(stream);
    return this.withStreamLock(key, async () => {
      const tx = ++this.lastTx;
      this.inFlight.add(tx);
      try {
        const state = this.streams.get(key);
        const existing = prepared.map((p) => this.eventIds.get(`${stream.tenantId}\u0000${p.envelope.eventId}`) ?? null);
        const idempotent = matchIdempotentAppend(stream, existing, expected);
        if (idempotent) return idempotent;
        if (state?.info.deleted) throw new StreamClosedError(stream.streamId, 'deleted');
        if (state?.info.archived) throw new StreamClosedError(stream.streamId, 'archived');
        const current = state?.info.version ?? 0;
        if (!checkExpectedVersion(expected, state !== undefined, current)) {
          throw new ConcurrencyError(stream.tenantId, stream.streamId, expected, current);
        }
        const recordedAt = new Date().toISOString();
        const recorded: RecordedEvent[] = prepared.map((p, i) => ({
          ...p.envelope,
          data: JSON.parse(p.dataJson) as unknown,
          streamId: stream.streamId,
          streamVersion: current + i + 1,
          position: { tx, seq: ++this.lastSeq },
          recordedAt,
        }));
        const last = recorded[recorded.length - 1] as RecordedEvent;
        const result: AppendResult = { nextExpectedVersion: last.streamVersion, written: true, events: recorded, position: last.position };
        if (options.beforeCommit) await options.beforeCommit(undefined, result);
        // commit
        const target = state ?? {
          info: { tenantId: stream.tenantId, streamId: stream.streamId, version: 0, streamType: options.streamType ?? null, archived: false, deleted: false },
          events: [],
        };
        target.events.push(...recorded);
        target.info.version = last.streamVersion;
        this.streams.set(key, target);
        for (const e of recorded) this.eventIds.set(`${stream.tenantId}\u0000${e.eventId}`, e);
        this.insertIntoLog(recorded);
        return result;
      } finally {
        this.inFlight.delete(tx);
        for (const wake of this.wakeListeners) wake();
      }
    });
  }

  async readStream(stream: StreamRef, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    validateStreamRef(stream);
    validateReadStream(options);
    const state = this.streams.get(streamKey(stream));
    if (!state) return [];
    return readStreamSlice(state.events, options);
  }

  async readAll(options: ReadAllOptions): Promise<ReadAllResult> {
    const { after, limit } = validateReadAll(options);
    let horizon: bigint | null = null;
    for (const tx of this.inFlight) if (horizon === null || tx < horizon) horizon = tx;
    const types = options.eventTypes ? new Set(options.eventTypes) : null;
    const events: RecordedEvent[] = [];
    for (let i = this.firstIndexAfter(after); i < this.log.length && events.length < limit; i++) {
      const e = this.log[i] as RecordedEvent;
      if (horizon !== null && e.position.tx >= horizon) break;
      if (options.tenantId !== ALL_TENANTS && e.tenantId !== options.tenantId) continue;
      if (types && !types.has(e.eventType)) continue;
      events.push(e);
    }
    const last = events[events.length - 1];
    return { events, next: last ? last.position : after };
  }

  subscribe(options: SubscribeOptions, handler: (events: readonly RecordedEvent[]) => Promise<void>): Subscription {
    const settings = validateSubscribe(options);
    return runCatchUpSubscription(
      {
        read: (after, limit) => this.readAll({ ...options, after, limit }),
        onWake: (wake) => {
          this.wakeListeners.add(wake);
          return () => this.wakeListeners.delete(wake);
        },
      },
      settings,
      handler,
    );
  }

  async streamInfo(stream: StreamRef): Promise<StreamInfo | null> {
    validateStreamRef(stream);
    const state = this.streams.get(streamKey(stream));
    return state ? { ...state.info } : null;
  }

  async archiveStream(stream: StreamRef): Promise<void> {
    validateStreamRef(stream);
    const key = streamKey(stream);
    await this.withStreamLock(key, async () => {
      const state = this.streams.get(key);
      if (state && !state.info.deleted) state.info.archived = true;
    });
  }

  async deleteStream(stream: StreamRef): Promise<void> {
    validateStreamRef(stream);
    const key = streamKey(stream);
    await this.withStreamLock(key, async () => {
      const state = this.streams.get(key) ?? {
        info: { tenantId: stream.tenantId, streamId: stream.streamId, version: 0, streamType: null, archived: false, deleted: false },
        events: [],
      };
      const removed = new Set(state.events);
      for (const e of state.events) this.eventIds.delete(`${stream.tenantId}\u0000${e.eventId}`);
      this.log = this.log.filter((e) => !removed.has(e));
      state.events = [];
      state.info.deleted = true;
      this.streams.set(key, state);
      for (const name of [...this.snapshots.keys()]) if (name.startsWith(`${key}\u0000`)) this.snapshots.delete(name);
    });
  }

  async saveSnapshot(stream: StreamRef, snapshot: Snapshot): Promise<void> {
    validateStreamRef(stream);
    const name = snapshot.name ?? 'default';
    const problems: string[] = [];
    if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 1) problems.push('snapshot version must be an integer >= 1');
    const stateProblem = jsonProblem(snapshot.state, 'snapshot state');
    if (stateProblem) problems.push(stateProblem);
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) problems.push('snapshot name must be a string of 1 to 200 characters');
    if (problems.length > 0) throw new SchemaError(problems);
    const target = this.streams.get(streamKey(stream));
    if (!target || target.info.deleted || target.info.version < snapshot.version) {
      throw new SchemaError([`snapshot version ${snapshot.version} is beyond the end of stream "${stream.streamId}"`]);
    }
    const key = `${streamKey(stream)}\u0000${name}`;
    const current = this.snapshots.get(key);
    if (current && current.version >= snapshot.version) return;
    this.snapshots.set(key, { version: snapshot.version, name, state: structuredClone(snapshot.state) });
  }

  async loadSnapshot<TState = unknown>(stream: StreamRef, name = 'default'): Promise<Snapshot<TState> | null> {
    validateStreamRef(stream);
    const s = this.snapshots.get(`${streamKey(stream)}\u0000${name}`);
    return s ? { version: s.version, name, state: structuredClone(s.state) as TState } : null;
  }

  async close(): Promise<void> {}

  /** Every committed event in sequence order, for tests and tools that inspect the raw log. */
  committedEvents(): readonly RecordedEvent[] {
    return [...this.log].sort((a, b) => (a.position.seq < b.position.seq ? -1 : a.position.seq > b.position.seq ? 1 : 0));
  }

  private insertIntoLog(events: readonly RecordedEvent[]): void {
    const first = events[0] as RecordedEvent;
    let i = this.log.length;
    while (i > 0 && comparePositions((this.log[i - 1] as RecordedEvent).position, first.position) > 0) i--;
    this.log.splice(i, 0, ...events);
  }

  private firstIndexAfter(after: LogPosition): number {
    if (comparePositions(after, LOG_START) <= 0) return 0;
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions((this.log[mid] as RecordedEvent).position, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private async withStreamLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.streamLocks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.streamLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.streamLocks.get(key) === tail) this.streamLocks.delete(key);
    }
  }
}
