import { hostname } from 'node:os';
import { ClosedError, delay, InvalidOptionsError, LeaseLostError } from '@causeway/core';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlDatabase, SqlExecutor, SqlSession } from './sql-executor.js';

export interface LeaseOptions {
  readonly db: SqlDatabase;
  /** Schema holding the `leases` table (migration 5). Default 'causeway'. */
  readonly schema?: string;
  /** What is leased, e.g. 'relay:outbox:orders' or 'projection:order-summary:2'. 1 to 200 characters. */
  readonly name: string;
  /** Who holds it, shown in the table and in errors. Default host:pid:random. */
  readonly holder?: string;
  /** How long a lease lives without a heartbeat. Default 10,000 ms; heartbeats go every ttlMs / 3. */
  readonly ttlMs?: number;
  /** How often a waiting contender tries again. Default 500 ms. */
  readonly retryMs?: number;
}

/**
 * One active holder per name: one relay per outbox, one runner per projection.
 *
 * On the PostgreSQL server the holder keeps a session advisory lock on a connection of its own,
 * so when its process dies the server frees the lock at once and a standby takes over without
 * waiting for the lease to expire. The `leases` row carries the fence and the heartbeat; a holder
 * that keeps its connection but stops heartbeating (paused, wedged) is ended by the contender
 * (`pg_terminate_backend`) once its row has expired. On PGlite (one process, one session) the row
 * alone decides: free, expired, or ours.
 *
 * Fencing: every write made under the lease calls `check(tx)` inside its own transaction, or
 * does the same in the statement that writes (the relays' checkpoint marks: see
 * advanceRelayCheckpointFenced). That locks the row FOR SHARE and compares fences; a takeover
 * updates the row, so it waits for such transactions to end, and every later one sees the new
 * fence. A holder that lost the lease can therefore never commit after its successor started.
 */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  /** Grows with every acquisition of this name. */
  readonly fence: string;
  /** Aborted when the lease is lost (taken over, heartbeat failed or late) or released. */
  readonly signal: AbortSignal;
  /** Inside a writing transaction: throws LeaseLostError unless this lease still holds the name. */
  check(tx: SqlExecutor): Promise<void>;
  /** Gives the lease up (a standby may take it at once); idempotent. */
  release(): Promise<void>;
}

export interface LeaseRow {
  readonly holder: string;
  readonly fence: string;
  readonly backendPid: number | null;
  readonly heartbeatAt: string;
  readonly expiresAt: string;
  readonly expired: boolean;
}

const NAME = /^[\x21-\x7e]{1,200}$/;
const TS = (col: string): string => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

interface Resolved {
  readonly db: SqlDatabase;
  readonly names: SchemaNames;
  readonly name: string;
  readonly holder: string;
  readonly ttlMs: number;
  readonly retryMs: number;
}

function resolve(options: LeaseOptions): Resolved {
  if (typeof options.name !== 'string' || !NAME.test(options.name)) {
    throw new InvalidOptionsError(`lease name must be 1 to 200 printable ASCII characters without spaces; got ${JSON.stringify(options.name)}`);
  }
  const ttlMs = options.ttlMs ?? 10_000;
  const retryMs = options.retryMs ?? 500;
  if (!Number.isInteger(ttlMs) || ttlMs < 300) throw new InvalidOptionsError(`lease ttlMs must be an integer >= 300; got ${String(ttlMs)}`);
  if (!Number.isInteger(retryMs) || retryMs < 1) throw new InvalidOptionsError(`lease retryMs must be an integer >= 1; got ${String(retryMs)}`);
  const holder = options.holder ?? `${hostname()}:${process.pid}:${Math.random().toString(16).slice(2, 8)}`;
  return { db: options.db, names: schemaNames(options.schema ?? 'causeway'), name: options.name, holder, ttlMs, retryMs };
}

/** Takes the lease if it is free (or its holder is dead); null when someone else holds it. */
export async function tryAcquireLease(options: LeaseOptions): Promise<Lease | null> {
  return attempt(resolve(options));
}

/** Waits until the lease is ours (a standby), trying every `retryMs`. Rejects with ClosedError when `signal` aborts. */
export async function acquireLease(options: LeaseOptions, signal?: AbortSignal): Promise<Lease> {
  const r = resolve(options);
  for (;;) {
    if (signal?.aborted) throw new ClosedError(`waiting for lease "${r.name}"`);
    const lease = await attempt(r);
    if (lease !== null) {
      if (signal?.aborted) {
        await lease.release();
        throw new ClosedError(`waiting for lease "${r.name}"`);
      }
      return lease;
    }
    await delay(r.retryMs, signal);
  }
}

/** The lease's row, for health checks and the CLI. */
export async function readLease(db: SqlDatabase, options: { readonly schema?: string; readonly name: string }): Promise<LeaseRow | null> {
  const { schema } = schemaNames(options.schema ?? 'causeway');
  const { rows } = await db.query<{ holder: string; fence: string; pid: number | null; hb: string; exp: string; expired: boolean }>(
    `SELECT holder, fence::text AS fence, backend_pid AS pid, ${TS('heartbeat_at')} AS hb, ${TS('expires_at')} AS exp,
            expires_at < clock_timestamp() AS expired
       FROM ${schema}.leases WHERE name = $1`,
    [options.name],
  );
  const row = rows[0];
  return row ? { holder: row.holder, fence: row.fence, backendPid: row.pid, heartbeatAt: row.hb, expiresAt: row.exp, expired: row.expired } : null;
}

async function attempt(r: Resolved): Promise<Lease | null> {
  if (r.db.openSession === undefined) {
    // PGlite: one session for the whole process; the row alone decides.
    const fence = await claimRow(r.db, r, null, true);
    return fence === null ? null : new HeldLease(r, fence, null);
  }
  const session = await r.db.openSession();
  try {
    if (await tryAdvisoryLock(session, r)) {
      // The lock is ours, so any earlier holder's session is gone: take the row unconditionally.
      const fence = (await claimRow(session, r, 'pg_backend_pid()', false)) as string;
      return new HeldLease(r, fence, session);
    }
    if (await endStaleHolder(session, r)) {
      // Its lock goes with its session: take it as soon as the server frees it, before the
      // ended holder (now a standby) tries again, or the two would hand the lease back and forth.
      for (let i = 0; i < 100; i++) {
        if (await tryAdvisoryLock(session, r)) return new HeldLease(r, (await claimRow(session, r, 'pg_backend_pid()', false)) as string, session);
        await delay(10);
      }
    }
    await session.close();
    return null;
  } catch (e) {
    await session.close();
    throw e;
  }
}

function lockKeys(r: Resolved): [string, string] {
  return [`${r.names.raw}.lease`, r.name];
}

async function tryAdvisoryLock(session: SqlSession, r: Resolved): Promise<boolean> {
  const { rows } = await session.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS ok', lockKeys(r));
  return rows[0]?.ok === true;
}

/**
 * A holder whose row expired while it still holds the advisory lock is alive but not working
 * (paused, wedged): end its session, so its lock is freed and its writes fail the fence check.
 * The pid must still hold this very lock, so a recycled pid is never touched.
 */
async function endStaleHolder(session: SqlSession, r: Resolved): Promise<boolean> {
  const { rows } = await session.query<{ ended: boolean }>(
    `SELECT pg_terminate_backend(l.backend_pid) AS ended
       FROM ${r.names.schema}.leases l
      WHERE l.name = $3 AND l.expires_at < clock_timestamp() AND l.backend_pid IS NOT NULL
        AND EXISTS (SELECT 1 FROM pg_locks k
                     WHERE k.locktype = 'advisory' AND k.granted AND k.pid = l.backend_pid AND k.objsubid = 2
                       AND k.classid = (hashtext($1)::bigint & 4294967295)::oid
                       AND k.objid = (hashtext($2)::bigint & 4294967295)::oid)`,
    [...lockKeys(r), r.name],
  );
  return rows.some((x) => x.ended);
}

/** Writes the row with a new fence; with `onlyIfFree`, only when the row is expired or ours. */
async function claimRow(db: SqlExecutor, r: Resolved, pidSql: string | null, onlyIfFree: boolean): Promise<string | null> {
  const { rows } = await db.query<{ fence: string }>(
    `INSERT INTO ${r.names.schema}.leases AS l (name, holder, fence, backend_pid, expires_at)
     VALUES ($1, $2, 1, ${pidSql ?? 'NULL'}, clock_timestamp() + $3 * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, fence = l.fence + 1, backend_pid = excluded.backend_pid,
       acquired_at = clock_timestamp(), heartbeat_at = clock_timestamp(), expires_at = excluded.expires_at
     ${onlyIfFree ? 'WHERE l.expires_at < clock_timestamp() OR l.holder = excluded.holder' : ''}
     RETURNING l.fence::text AS fence`,
    [r.name, r.holder, r.ttlMs],
  );
  return rows[0]?.fence ?? null;
}

class HeldLease implements Lease {
  readonly #r: Resolved;
  readonly #session: SqlSession | null;
  readonly #lost = new AbortController();
  readonly #timer: ReturnType<typeof setInterval>;
  #lastBeat = Date.now();
  #beating = false;
  #released: Promise<void> | null = null;
  readonly fence: string;

  constructor(r: Resolved, fence: string, session: SqlSession | null) {
    this.#r = r;
    this.fence = fence;
    this.#session = session;
    this.#timer = setInterval(() => void this.#beat(), Math.max(100, Math.floor(r.ttlMs / 3)));
    this.#timer.unref?.();
    session?.ended.addEventListener('abort', () => this.#lose('its database session ended'), { once: true });
  }

  get name(): string {
    return this.#r.name;
  }
  get holder(): string {
    return this.#r.holder;
  }
  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  async check(tx: SqlExecutor): Promise<void> {
    if (this.#lost.signal.aborted) throw this.#error(String(this.#lost.signal.reason ?? 'lost'));
    const { rows } = await tx.query<{ fence: string }>(`SELECT fence::text AS fence FROM ${this.#r.names.schema}.leases WHERE name = $1 FOR SHARE`, [
      this.#r.name,
    ]);
    const current = rows[0]?.fence;
    if (current !== this.fence) {
      this.#lose(`taken over (fence now ${current ?? 'none'})`);
      throw this.#error(`taken over (fence now ${current ?? 'none'})`);
    }
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      const held = !this.#lost.signal.aborted;
      this.#lose('released');
      if (held) {
        const db = this.#session ?? this.#r.db;
        await db
          .query(`UPDATE ${this.#r.names.schema}.leases SET expires_at = clock_timestamp(), backend_pid = NULL WHERE name = $1 AND fence = $2`, [
            this.#r.name,
            this.fence,
          ])
          .catch(() => undefined);
      }
      await this.#session?.close();
    })();
    return this.#released;
  }

  async #beat(): Promise<void> {
    if (this.#lost.signal.aborted || this.#beating) {
      // A heartbeat stuck for a whole ttl means others may already see the lease expired: stop first.
      if (this.#beating && Date.now() - this.#lastBeat > this.#r.ttlMs) this.#lose(`no heartbeat for ${this.#r.ttlMs} ms`);
      return;
    }
    this.#beating = true;
    try {
      const db = this.#session ?? this.#r.db;
      const { rowCount } = await db.query(
        `UPDATE ${this.#r.names.schema}.leases SET heartbeat_at = clock_timestamp(), expires_at = clock_timestamp() + $3 * interval '1 millisecond'
          WHERE name = $1 AND fence = $2`,
        [this.#r.name, this.fence, this.#r.ttlMs],
      );
      if (rowCount === 0) this.#lose('taken over');
      else this.#lastBeat = Date.now();
    } catch (e) {
      if (Date.now() - this.#lastBeat > this.#r.ttlMs) this.#lose(`heartbeat failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.#beating = false;
    }
  }

  #lose(why: string): void {
    if (this.#lost.signal.aborted) return;
    clearInterval(this.#timer);
    this.#lost.abort(why);
    // A holder that merely lost the lease also gives up its session lock, so the successor's
    // advisory lock attempt succeeds.
    if (why !== 'released') void this.#session?.close();
  }

  #error(why: string): LeaseLostError {
    return new LeaseLostError(this.#r.name, this.fence, why);
  }
}
