import { isClosedError, isLeaseLostError } from '@causeway/core';
import { acquireLease, createPGliteDatabase, createPgDatabase, migrate, readLease, tryAcquireLease, type SqlDatabase } from '@causeway/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';

/** Leases: one holder per name, fences that grow, takeover after a holder dies, writes fenced. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Env {
  readonly db: SqlDatabase;
  readonly schema: string;
  close(): Promise<void>;
}

function leaseCases(engine: string, open: () => Promise<Env>): void {
  describe(`leases on ${engine}`, () => {
    let env: Env;
    beforeAll(async () => {
      env = await open();
    });
    afterAll(async () => {
      await env?.close();
    });
    let n = 0;
    const name = (): string => `test:lease:${++n}`;

    it('one holder at a time; the fence grows with each acquisition', async () => {
      const lease = name();
      const a = await tryAcquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'a' });
      expect(a?.fence).toBe('1');
      expect(await tryAcquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'b' })).toBeNull();
      expect((await readLease(env.db, { schema: env.schema, name: lease }))?.holder).toBe('a');
      await a?.release();
      expect(a?.signal.aborted).toBe(true);
      const b = await tryAcquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'b' });
      expect(b?.fence).toBe('2');
      await b?.release();
    });

    it('a write checked under a lost lease fails with LeaseLostError; the new holder writes', async () => {
      const lease = name();
      const a = await tryAcquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'a', ttlMs: 60_000 });
      if (!a) throw new Error('a did not get the lease');
      await env.db.transaction((tx) => a.check(tx));
      // Simulate a holder that stopped heartbeating: its row expires.
      await env.db.query(`UPDATE "${env.schema}".leases SET expires_at = clock_timestamp() - interval '1 second' WHERE name = $1`, [lease]);
      let b = await tryAcquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'b' });
      // On the server the first attempt ends the stale holder's session; the next one takes the lock.
      if (b === null) b = await acquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'b', retryMs: 20 });
      expect(b.fence).toBe('2');
      const refused = await env.db.transaction((tx) => a.check(tx)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isLeaseLostError(refused)).toBe(true);
      await until('a to know it lost the lease', () => a.signal.aborted);
      await env.db.transaction((tx) => b.check(tx));
      await b.release();
      await a.release();
    });

    it('a standby waits and takes over when the holder releases; aborting the wait rejects', async () => {
      const lease = name();
      const a = await acquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'a' });
      const waiting = acquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'b', retryMs: 20 });
      let got = false;
      void waiting.then(() => {
        got = true;
      });
      await new Promise((r) => setTimeout(r, 150));
      expect(got).toBe(false);
      await a.release();
      const b = await waiting;
      expect(b.fence).toBe('2');
      const stop = new AbortController();
      const c = acquireLease({ db: env.db, schema: env.schema, name: lease, holder: 'c', retryMs: 20 }, stop.signal);
      stop.abort();
      expect(isClosedError(await c.catch((e: unknown) => e))).toBe(true);
      await b.release();
    });

    it('refuses bad options with a clear error', async () => {
      await expect(tryAcquireLease({ db: env.db, schema: env.schema, name: 'has space' })).rejects.toThrow(/lease name/);
      await expect(tryAcquireLease({ db: env.db, schema: env.schema, name: 'x', ttlMs: 10 })).rejects.toThrow(/ttlMs/);
    });
  });
}

const serverUp = await postgresAvailable();
if (serverUp) {
  leaseCases('PostgreSQL', async () => {
    const schema = uniqueSchema('lease');
    const db = createPgDatabase({ connectionString: PG_URL, maxConnections: 4 });
    await migrate(db, { schema });
    return {
      db,
      schema,
      async close() {
        await db.close();
        await dropSchema(schema);
      },
    };
  });

  describe('leases on the PostgreSQL server: crashes and fencing', () => {
    let db: SqlDatabase;
    let schema: string;
    beforeAll(async () => {
      schema = uniqueSchema('lease_srv');
      db = createPgDatabase({ connectionString: PG_URL, maxConnections: 4 });
      await migrate(db, { schema });
    });
    afterAll(async () => {
      await db?.close();
      if (schema) await dropSchema(schema);
    });

    it('a holder whose connection dies (process killed) is replaced at once, without waiting for expiry', async () => {
      const a = await tryAcquireLease({ db, schema, name: 'crash', holder: 'a', ttlMs: 60_000 });
      const row = await readLease(db, { schema, name: 'crash' });
      // What the server does when the holder's process is killed: its backend goes away.
      await db.query('SELECT pg_terminate_backend($1)', [row?.backendPid]);
      const started = Date.now();
      const b = await acquireLease({ db, schema, name: 'crash', holder: 'b', retryMs: 20 });
      expect(Date.now() - started).toBeLessThan(5_000); // far below the 60 s ttl
      expect(b.fence).toBe('2');
      await until('a to see its session end', () => a?.signal.aborted === true);
      await b.release();
      await a?.release();
    });

    it('a takeover waits for the old holder’s open write; after it, the old holder cannot commit', async () => {
      const a = await tryAcquireLease({ db, schema, name: 'fence', holder: 'a', ttlMs: 60_000 });
      if (!a) throw new Error('a did not get the lease');
      let releaseWrite!: () => void;
      const writeHeld = new Promise<void>((r) => {
        releaseWrite = r;
      });
      let checked!: () => void;
      const inside = new Promise<void>((r) => {
        checked = r;
      });
      const order: string[] = [];
      const write = db.transaction(async (tx) => {
        await a.check(tx);
        checked();
        await writeHeld;
        order.push('a committed');
      });
      await inside;
      const pid = (await readLease(db, { schema, name: 'fence' }))?.backendPid;
      await db.query('SELECT pg_terminate_backend($1)', [pid]);
      const takeover = acquireLease({ db, schema, name: 'fence', holder: 'b', retryMs: 20 }).then((b) => {
        order.push('b holds');
        return b;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(order).toEqual([]); // b's claim waits behind a's open write
      releaseWrite();
      await write;
      const b = await takeover;
      expect(order).toEqual(['a committed', 'b holds']);
      const late = await db.transaction((tx) => a.check(tx)).catch((e: unknown) => e);
      expect(isLeaseLostError(late)).toBe(true);
      await b.release();
      await a.release();
    });
  });
} else {
  skipBecauseNoServer('leases on PostgreSQL');
}

leaseCases('PGlite', async () => {
  const db = await createPGliteDatabase();
  await migrate(db, { schema: 'causeway' });
  return { db, schema: 'causeway', close: () => db.close() };
});
