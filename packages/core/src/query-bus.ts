import type { LogPosition } from './envelope.js';
import { CausewayError, InvalidOptionsError } from './errors.js';

/**
 * A named question a read model answers: `TParams` in, `TResult` out. The two type parameters
 * exist only for the compiler (nothing is stored for them), so that
 * `bus.ask(ordersByCustomer, { customerId })` is checked against the handler registered for it.
 */
export interface Query<TParams, TResult> {
  readonly name: string;
  /** Never set; carries the types. */
  readonly types?: { readonly params: TParams; readonly result: TResult };
}

/** Answers one query by reading its read model. Errors propagate to the caller unchanged. */
export type QueryHandler<TParams, TResult> = (params: TParams) => Promise<TResult>;

/** Read-your-writes: resolves once the read model has applied every event up to `position`. */
export type WaitForPosition = (position: LogPosition, timeoutMs: number) => Promise<void>;

export interface RegisterQueryOptions {
  /**
   * How this query's read model reports progress (e.g. its projection runner's `waitFor`).
   * Default: the bus's `waitFor`.
   */
  readonly waitFor?: WaitForPosition;
}

export interface AskQueryOptions {
  /**
   * Read-your-writes: the handler runs only after the read model has caught up to this log
   * position (e.g. the `position` an append returned). Default: no wait (eventual consistency).
   */
  readonly afterPosition?: LogPosition;
  /** Bound on that wait; the wait rejects with TimeoutError past it. Default: the bus's `defaultTimeoutMs`. */
  readonly timeoutMs?: number;
}

export interface QueryBusOptions {
  /** Used by queries registered without their own `waitFor`. Default none: `afterPosition` is then refused. */
  readonly waitFor?: WaitForPosition;
  /** Wait bound for `afterPosition` when a call gives none. Default 5000 ms. */
  readonly defaultTimeoutMs?: number;
}

/**
 * Routes each query to the one handler registered under its name. A query that carries
 * `afterPosition` first waits for its read model to reach that position, so a caller can read
 * what it has just written; without it, the answer is whatever the read model holds now.
 */
export interface QueryBus {
  /** Registers the handler; throws InvalidOptionsError when the name is taken. Returns the unregister function. */
  register<TParams, TResult>(query: Query<TParams, TResult>, handler: QueryHandler<TParams, TResult>, options?: RegisterQueryOptions): () => void;
  /** Runs the query; throws UnknownQueryError when nothing is registered under its name. */
  ask<TParams, TResult>(query: Query<TParams, TResult>, params: TParams, options?: AskQueryOptions): Promise<TResult>;
  has(query: Query<unknown, unknown> | string): boolean;
}

/** No handler is registered under the query's name. */
export class UnknownQueryError extends CausewayError {
  readonly query: string;
  constructor(query: string, known: readonly string[]) {
    const list = known.length === 0 ? 'none are registered' : `registered: ${known.join(', ')}`;
    super('UNKNOWN_QUERY', `no handler is registered for query "${query}" (${list})`);
    this.query = query;
  }
}

export const isUnknownQueryError = (e: unknown): e is UnknownQueryError =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'UNKNOWN_QUERY';

const QUERY_NAME = /^[a-z0-9][a-z0-9_.-]{0,99}$/;
const MAX_TIMEOUT_MS = 2 ** 31 - 1; // setTimeout's limit

/** Names a query and fixes its types: `defineQuery<{ customerId: string }, CustomerOrders>('shop.orders-by-customer')`. */
export function defineQuery<TParams, TResult>(name: string): Query<TParams, TResult> {
  if (typeof name !== 'string' || !QUERY_NAME.test(name)) {
    throw new InvalidOptionsError(`query name must match ${QUERY_NAME.source}; got ${JSON.stringify(name)}`);
  }
  return Object.freeze({ name });
}

function checkTimeout(what: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_TIMEOUT_MS) {
    throw new InvalidOptionsError(`${what} must be an integer from 0 to ${MAX_TIMEOUT_MS} ms; got ${String(ms)}`);
  }
  return ms;
}

interface Registration {
  readonly handler: QueryHandler<never, unknown>;
  readonly waitFor: WaitForPosition | undefined;
}

export function createQueryBus(options: QueryBusOptions = {}): QueryBus {
  const defaultTimeoutMs = checkTimeout('defaultTimeoutMs', options.defaultTimeoutMs ?? 5000);
  if (options.waitFor !== undefined && typeof options.waitFor !== 'function') throw new InvalidOptionsError('waitFor must be a function');
  const registry = new Map<string, Registration>();

  return {
    register(query, handler, registerOptions = {}) {
      const name = query.name;
      if (typeof handler !== 'function') throw new InvalidOptionsError(`handler for query "${name}" must be a function`);
      if (registry.has(name)) throw new InvalidOptionsError(`query "${name}" already has a handler; each query has exactly one`);
      const entry: Registration = { handler: handler as QueryHandler<never, unknown>, waitFor: registerOptions.waitFor ?? options.waitFor };
      registry.set(name, entry);
      return () => {
        if (registry.get(name) === entry) registry.delete(name);
      };
    },

    async ask<TParams, TResult>(query: Query<TParams, TResult>, params: TParams, askOptions: AskQueryOptions = {}): Promise<TResult> {
      const entry = registry.get(query.name);
      if (entry === undefined) throw new UnknownQueryError(query.name, [...registry.keys()]);
      const after = askOptions.afterPosition;
      if (after !== undefined) {
        const timeoutMs = checkTimeout('timeoutMs', askOptions.timeoutMs ?? defaultTimeoutMs);
        // Answering anyway would hand back a read the caller asked us not to give: refuse instead.
        if (entry.waitFor === undefined) {
          throw new InvalidOptionsError(`query "${query.name}" was asked with afterPosition, but neither it nor the bus has a waitFor`);
        }
        await entry.waitFor(after, timeoutMs);
      }
      return (entry.handler as QueryHandler<TParams, TResult>)(params);
    },

    has(query) {
      return registry.has(typeof query === 'string' ? query : query.name);
    },
  };
}
