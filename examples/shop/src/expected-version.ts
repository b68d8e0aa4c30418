import { ConcurrencyError, type Decider, type DomainEvent, type StreamRef } from '@causeway/core';

/** A decider's state together with the stream version it was built from. */
export interface Versioned<TState> {
  readonly state: TState;
  readonly version: number;
}

/**
 * Wraps a decider so a command is decided only on the stream version the caller last saw
 * (HTTP `If-Match`). A stale caller gets ConcurrencyError before anything is decided; a write
 * that slips in between the load and the append is caught by the store, because the command
 * handler appends with the loaded version as expectedVersion (run it with maxAttempts 1, so
 * that conflict is not retried on the newer state).
 */
export function expectingVersion<TState, TCommand, TEvent extends DomainEvent>(
  decider: Decider<TState, TCommand, TEvent>,
  stream: StreamRef,
  expected: number,
): Decider<Versioned<TState>, TCommand, TEvent> {
  return {
    initialState: () => ({ state: decider.initialState(), version: 0 }),
    decide(command, current) {
      if (current.version !== expected) throw new ConcurrencyError(stream.tenantId, stream.streamId, expected, current.version);
      return decider.decide(command, current.state);
    },
    // One recorded event per stream version: counting them gives the version.
    evolve: (current, event) => ({ state: decider.evolve(current.state, event), version: current.version + 1 }),
  };
}
