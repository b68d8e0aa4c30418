import { aggregateStream } from './aggregate.js';
import { backoffDelay, delay } from './backoff.js';
import type { Decider, DomainEvent } from './decider.js';
import { startCorrelation, type CausationContext, type Metadata, type NewEvent, type RecordedEvent } from './envelope.js';
import { InvalidOptionsError, isConcurrencyError } from './errors.js';
import type { AppendOptions, AppendResult, EventStore, StreamRef } from './event-store.js';

export interface CommandHandlerOptions<TState, TCommand, TEvent extends DomainEvent> {
  readonly store: Pick<EventStore, 'readStream' | 'loadSnapshot' | 'saveSnapshot'> & {
    append(stream: StreamRef, events: readonly NewEvent[], options?: AppendOptions<never>): Promise<AppendResult>;
  };
  readonly decider: Decider<TState, TCommand, TEvent>;
  /** Stream type recorded when the stream is created, e.g. 'order'. */
  readonly streamType?: string;
  /** Attempts in all when the append meets a concurrency conflict. Default 5. */
  readonly maxAttempts?: number;
  /** Backoff base and cap between attempts (full jitter). Default 5 ms and 250 ms. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Save a snapshot under `name` whenever the version crosses a multiple of `every`. */
  readonly snapshot?: { readonly name: string; readonly every: number };
}

export interface HandleOptions {
  readonly correlation?: CausationContext;
  readonly metadata?: Metadata;
}

export interface HandleResult<TState> {
  readonly state: TState;
  readonly nextExpectedVersion: number;
  /** Empty when the decider decided nothing. */
  readonly events: readonly RecordedEvent[];
  /** How many attempts it took (1 = no conflict). */
  readonly attempts: number;
}

export interface CommandHandler<TState, TCommand> {
  handle(stream: StreamRef, command: TCommand, options?: HandleOptions): Promise<HandleResult<TState>>;
}

/**
 * Load → decide → append with the loaded version as expectedVersion. On a concurrency conflict
 * the whole cycle runs again (bounded, with jittered backoff), so the decision is always made on
 * the state it is appended after. Domain errors thrown by `decide` propagate at once.
 */
export function createCommandHandler<TState, TCommand, TEvent extends DomainEvent>(
  options: CommandHandlerOptions<TState, TCommand, TEvent>,
): CommandHandler<TState, TCommand> {
  const maxAttempts = options.maxAttempts ?? 5;
  const baseMs = options.retryBaseMs ?? 5;
  const maxMs = options.retryMaxMs ?? 250;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new InvalidOptionsError('maxAttempts must be an integer >= 1');
  if (options.snapshot && !(Number.isInteger(options.snapshot.every) && options.snapshot.every >= 1)) {
    throw new InvalidOptionsError('snapshot.every must be an integer >= 1');
  }
  const { decider, store } = options;

  return {
    async handle(stream, command, handleOptions = {}) {
      // One correlation for every event of this command, across retries.
      const correlation = handleOptions.correlation ?? startCorrelation();
      for (let attempt = 1; ; attempt++) {
        const loaded = await aggregateStream<TState, TEvent>(store, stream, {
          evolve: decider.evolve,
          initialState: decider.initialState,
          ...(options.snapshot ? { snapshotName: options.snapshot.name } : {}),
        });
        const decided = decider.decide(command, loaded.state);
        const newEvents = (Array.isArray(decided) ? decided : [decided]) as readonly TEvent[];
        if (newEvents.length === 0) {
          return { state: loaded.state, nextExpectedVersion: loaded.version, events: [], attempts: attempt };
        }
        const toAppend: NewEvent[] = newEvents.map((e) => ({
          eventType: e.eventType,
          data: e.data,
          correlationId: correlation.correlationId,
          causationId: correlation.causationId,
          ...(handleOptions.metadata ? { metadata: handleOptions.metadata } : {}),
        }));
        try {
          const result = await store.append(stream, toAppend, {
            expectedVersion: loaded.version,
            ...(options.streamType ? { streamType: options.streamType } : {}),
          });
          let state = loaded.state;
          for (const e of result.events) state = decider.evolve(state, e as unknown as TEvent);
          const every = options.snapshot?.every;
          if (options.snapshot && every && Math.floor(result.nextExpectedVersion / every) > Math.floor(loaded.version / every)) {
            await store.saveSnapshot(stream, { name: options.snapshot.name, version: result.nextExpectedVersion, state });
          }
          return { state, nextExpectedVersion: result.nextExpectedVersion, events: result.events, attempts: attempt };
        } catch (e) {
          if (!isConcurrencyError(e) || attempt >= maxAttempts) throw e;
          await delay(backoffDelay(attempt - 1, baseMs, maxMs));
        }
      }
    },
  };
}
