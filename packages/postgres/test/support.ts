import { createPGliteDatabase, createPgDatabase, createPostgresEventStore, type PostgresEventStore, type SqlDatabase } from '@causeway/postgres';
import pg from 'pg';
import { it } from 'vitest';

/** The PostgreSQL server the integration tests use. */
export const PG_URL = process.env.CAUSEWAY_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** In CI (CAUSEWAY_REQUIRE_SERVICES=1) a missing server fails the tests instead of skipping them. */
export const REQUIRE_SERVICES = process.env.CAUSEWAY_REQUIRE_SERVICES === '1';

export async function postgresAvailable(): Promise<boolean> {
  if (REQUIRE_SERVICES) return true; // let the tests run and fail loudly
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Registers one skipped test that says why the file's tests did not run. */
export function skipBecauseNoServer(what: string): void {
  it.skip(`${what}: skipped because PostgreSQL is not reachable at ${PG_URL} (set CAUSEWAY_REQUIRE_SERVICES=1 to fail instead)`, () => {});
}

export function uniqueSchema(label: string): string {
  return `t_${label}_${process.pid}_${Date.now().toString(36)}`.slice(0, 40).toLowerCase();
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** A database for one test with an event store: its own PGlite instance, or its own schema on the server. */
export interface StoreEnv {
  readonly engine: 'pglite' | 'postgres';
  readonly db: SqlDatabase;
  readonly schema: string;
  readonly store: PostgresEventStore;
  close(): Promise<void>;
}

export async function openStoreEnv(engine: 'pglite' | 'postgres', label: string, maxConnections: number): Promise<StoreEnv> {
  if (engine === 'pglite') {
    const db = await createPGliteDatabase();
    const store = await createPostgresEventStore({ db, ownsDatabase: true });
    return { engine, db, schema: 'causeway', store, close: () => store.close() };
  }
  const schema = uniqueSchema(label);
  const db = createPgDatabase({ connectionString: PG_URL, maxConnections });
  const store = await createPostgresEventStore({ db, schema });
  return {
    engine,
    db,
    schema,
    store,
    async close() {
      await store.close();
      await db.close();
      await dropSchema(schema);
    },
  };
}
