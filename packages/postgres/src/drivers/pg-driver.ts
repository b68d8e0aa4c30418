import pg from 'pg';
import { AdapterError, InvalidOptionsError } from '@causeway/core';
import type { SqlDatabase, SqlExecutor, SqlResult, SqlSession } from '../sql-executor.js';

export interface PgDatabaseOptions {
  /** postgres://… ; ignored when `pool` is given. Default: PG* environment variables. */
  readonly connectionString?: string;
  /** Bring your own pool; Causeway will not end it on close. */
  readonly pool?: pg.Pool;
  /** Pool size when Causeway creates the pool. Default 10. */
  readonly maxConnections?: number;
}

// Causeway's SQL casts what it needs; keep the driver from turning timestamps into Dates it would
// then have to format back.
const identity = (value: string): string => value;

/** The `pg` (node-postgres) driver: a Pool for queries, a dedicated client for LISTEN. */
export function createPgDatabase(options: PgDatabaseOptions = {}): SqlDatabase {
  const max = options.maxConnections ?? 10;
  if (!Number.isInteger(max) || max < 1) throw new InvalidOptionsError('maxConnections must be an integer >= 1');
  const ownsPool = options.pool === undefined;
  const pool =
    options.pool ??
    new pg.Pool({
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
      max,
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 1184 || oid === 1114 ? identity : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
    });
  // An idle client's error (server restart) must not crash the process; the pool drops that client.
  pool.on('error', () => undefined);
  const listeners = new Set<PgListener>();
  const sessions = new Set<SqlSession>();
  let closed = false;

  const wrap = (e: unknown): never => {
    if (typeof e === 'object' && e !== null && 'code' in e) throw e; // SQLSTATE errors keep their shape for classification
    throw new AdapterError('postgres', e instanceof Error ? e.message : String(e), { cause: e });
  };

  return {
    engine: 'postgres',
    maxConcurrency: ownsPool ? max : (pool.options.max ?? 10),
    async query<R>(sql: string, params: readonly unknown[] = [], name?: string): Promise<SqlResult<R>> {
      try {
        const r = await pool.query(name ? { name, text: sql, values: params as unknown[] } : { text: sql, values: params as unknown[] });
        return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
      } catch (e) {
        return wrap(e);
      }
    },
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (e) {
        return wrap(e);
      }
      let broken = false;
      try {
        await client.query('BEGIN');
        const tx: SqlExecutor = {
          async query<R>(sql: string, params: readonly unknown[] = [], name?: string) {
            const r = await client.query(name ? { name, text: sql, values: params as unknown[] } : { text: sql, values: params as unknown[] });
            return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
          },
        };
        const result = await fn(tx);
        const done = await client.query('COMMIT');
        // A statement failed and the caller caught its error: PostgreSQL answers COMMIT with a
        // ROLLBACK and no error. Reporting success would ack work that was never stored.
        if (done.command === 'ROLLBACK') {
          throw new AdapterError('postgres', 'transaction rolled back at COMMIT: a statement in it failed and its error was caught');
        }
        return result;
      } catch (e) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        return wrap(e);
      } finally {
        client.release(broken);
      }
    },
    async listen(channel, onNotify) {
      const listener = new PgListener(pool.options, channel, onNotify);
      listeners.add(listener);
      await listener.start();
      return async () => {
        listeners.delete(listener);
        await listener.stop();
      };
    },
    async openSession() {
      if (closed) throw new AdapterError('postgres', 'the database is closed');
      const session = await openPgSession(pool.options);
      sessions.add(session);
      session.ended.addEventListener('abort', () => sessions.delete(session), { once: true });
      return session;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...listeners].map((l) => l.stop()));
      await Promise.all([...sessions].map((s) => s.close()));
      if (ownsPool) await pool.end();
    },
  };
}

/** A client of its own (not from the pool): its session state lives exactly as long as it does. */
async function openPgSession(config: pg.PoolConfig): Promise<SqlSession> {
  const client = new pg.Client(config);
  const ended = new AbortController();
  client.on('error', () => ended.abort());
  client.on('end', () => ended.abort());
  try {
    await client.connect();
  } catch (e) {
    ended.abort();
    throw new AdapterError('postgres', e instanceof Error ? e.message : String(e), { cause: e });
  }
  let closing: Promise<void> | null = null;
  return {
    ended: ended.signal,
    async query<R>(sql: string, params: readonly unknown[] = []) {
      const r = await client.query({ text: sql, values: params as unknown[] });
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
    close() {
      ended.abort();
      closing ??= client.end().catch(() => undefined);
      return closing;
    },
  };
}

/**
 * LISTEN on a dedicated connection (a pooled one would be handed to others). When the connection
 * drops it reconnects with backoff and fires one wake-up, since notifications sent meanwhile are lost.
 */
class PgListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private retryMs = 50;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: pg.PoolConfig,
    private readonly channel: string,
    private readonly onNotify: (payload: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('notification', (msg) => {
      if (msg.channel === this.channel) this.onNotify(msg.payload ?? '');
    });
    client.on('error', () => this.reconnectLater(client));
    client.on('end', () => this.reconnectLater(client));
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);
    this.client = client;
    this.retryMs = 50;
  }

  private reconnectLater(client: pg.Client): void {
    if (this.stopped || this.client !== client) return;
    this.client = null;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    const attempt = (): void => {
      this.timer = null;
      if (this.stopped) return;
      this.connect().then(
        () => this.onNotify(''),
        () => {
          this.retryMs = Math.min(this.retryMs * 2, 5000);
          this.timer = setTimeout(attempt, this.retryMs);
        },
      );
    };
    this.timer = setTimeout(attempt, this.retryMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
