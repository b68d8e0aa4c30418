import type { RecordedEvent } from './envelope.js';
import type { EventStore, StreamRef } from './event-store.js';
import type { DomainEvent } from './decider.js';

export interface AggregateOptions<TState, TEvent extends DomainEvent> {
  readonly evolve: (state: TState, event: TEvent) => TState;
  readonly initialState: () => TState;
  /** Start from the latest snapshot of this name, then read only the tail. Omit to read the whole stream. */
  readonly snapshotName?: string;
}

export interface AggregateResult<TState> {
  readonly state: TState;
  /** The stream version the state reflects: the expectedVersion for the next append. */
  readonly version: number;
  /** False when the stream has no events and no snapshot. */
  readonly exists: boolean;
  /** Events read after the snapshot (all events when there was none). */
  readonly eventsRead: number;
}

/** Folds a stream into state: latest snapshot (when asked) plus the events after it. */
export async function aggregateStream<TState, TEvent extends DomainEvent>(
  store: Pick<EventStore, 'readStream' | 'loadSnapshot'>,
  stream: StreamRef,
  options: AggregateOptions<TState, TEvent>,
): Promise<AggregateResult<TState>> {
  const snapshot = options.snapshotName !== undefined ? await store.loadSnapshot<TState>(stream, options.snapshotName) : null;
  let state = snapshot ? snapshot.state : options.initialState();
  let version = snapshot ? snapshot.version : 0;
  const events: RecordedEvent[] = await store.readStream(stream, snapshot ? { fromVersion: snapshot.version + 1 } : {});
  for (const e of events) {
    state = options.evolve(state, e as unknown as TEvent);
    version = e.streamVersion;
  }
  return { state, version, exists: version > 0, eventsRead: events.length };
}
