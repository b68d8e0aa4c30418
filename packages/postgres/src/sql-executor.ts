/**
 * The one port all of Causeway's SQL runs over. Two drivers implement it: `pg` (a server pool)
 * and PGlite (embedded). SQL written against it must work on both: bind every value as a
 * parameter, cast results whose JS type differs between drivers (int8, timestamptz) to text.
 */
export interface SqlResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

export interface SqlExecutor {
  /** `name` lets a driver keep the statement prepared per connection (pg); others ignore it. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], name?: string): Promise<SqlResult<R>>;
}

/** A connection of its own, outside the pool, for session state such as advisory locks. */
export interface SqlSession extends SqlExecutor {
  /** Aborted when the connection ends: closed, terminated by the server, or lost. */
  readonly ended: AbortSignal;
  /** Ends the connection (and with it every session lock); idempotent. */
  close(): Promise<void>;
}

export interface SqlDatabase extends SqlExecutor {
  readonly engine: 'postgres' | 'pglite';
  /** How many transactions can usefully run at once (the pool size; 1 for PGlite). */
  readonly maxConcurrency: number;
  /** Runs `fn` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** LISTEN on `channel`; survives reconnects where the driver can. Returns the unlisten function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Opens a dedicated connection (server driver only). PGlite has a single session shared by the
   * whole process, so it leaves this undefined and callers fall back to row-based coordination.
   */
  readonly openSession?: () => Promise<SqlSession>;
  /** Closes connections; idempotent. A database passed in by the caller is left open. */
  close(): Promise<void>;
}

/** SQLSTATE of a driver error, or undefined. Classify by this, never by message text. */
export function sqlState(e: unknown): string | undefined {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
