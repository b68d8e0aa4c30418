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
