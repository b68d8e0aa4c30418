import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { AdapterError } from '@causeway/core';
import type { SqlDatabase, SqlExecutor, SqlResult } from '../sql-executor.js';
import { acquireDirectoryLock, type DirectoryLock } from './directory-lock.js';

export interface PGliteDatabaseOptions {
  /**
   * Directory holding the database; created when missing. Omit for a database in memory only
   * (tests). A directory is locked to this process until close.
   */
  readonly dataDir?: string;
  /** Bring your own PGlite instance; Causeway will not close it. */
  readonly pglite?: PGlite;
}

const identity = (value: string): string => value;

/**
 * The embedded driver: PostgreSQL compiled to WebAssembly, in process, no server. One connection:
 * PGlite runs one query or transaction at a time, so concurrent appends queue behind each other.
 */
export async function createPGliteDatabase(options: PGliteDatabaseOptions = {}): Promise<SqlDatabase> {
  let lock: DirectoryLock | null = null;
  let db: PGlite;
  const owns = options.pglite === undefined;
  if (options.pglite) {
    db = options.pglite;
  } else {
    const parsers = { 1184: identity, 1114: identity };
    if (options.dataDir !== undefined) {
      const dir = resolve(options.dataDir);
      mkdirSync(dirname(dir), { recursive: true });
      lock = acquireDirectoryLock(`${dir}.lock`);
      try {
        db = await PGlite.create(dir, { parsers });
      } catch (e) {
        lock.release();
        throw new AdapterError('pglite', `cannot open ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    } else {
      db = await PGlite.create({ parsers });
    }
  }
  let closed = false;
  // PGlite has one backend: a query issued while a transaction is open would run inside that
  // transaction (and vanish with its rollback). Every statement and transaction therefore queues
  // behind one lock; statements inside a transaction use its handle and do not queue.
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = tail.then(fn, fn);
    tail = next.catch(() => undefined);
    return next;
  };

  const run = async <R>(target: Pick<PGlite, 'query'>, sql: string, params: readonly unknown[]): Promise<SqlResult<R>> => {
    const r = await target.query<R>(sql, params as unknown[]);
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
  };

  return {
    engine: 'pglite',
    maxConcurrency: 1,
    query: (sql, params = []) => exclusive(() => run(db, sql, params)),
    transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      return exclusive(() => db.transaction(async (t) => fn({ query: (sql, params = []) => run(t, sql, params) })));
    },
    async listen(channel, onNotify) {
      const unlisten = await exclusive(() => db.listen(channel, onNotify));
      return async () => {
        if (!db.closed) await exclusive(() => unlisten());
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        if (owns) await db.close();
      } finally {
        lock?.release();
      }
    },
  };
}
