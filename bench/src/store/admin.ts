import pg from 'pg';

/** Names the bench creates; checked so they are safe to splice into DDL. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,39}$/;

function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`bench: unsafe identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Runs `fn` on a single short-lived connection (DDL around the measured runs). */
export async function withAdmin<T>(connectionString: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function dropSchema(connectionString: string, schema: string): Promise<void> {
  await withAdmin(connectionString, (c) => c.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`));
}

export async function recreateDatabase(connectionString: string, database: string): Promise<void> {
  await withAdmin(connectionString, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${ident(database)}`);
  });
}

export async function dropDatabase(connectionString: string, database: string): Promise<void> {
  await withAdmin(connectionString, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`));
}

/**
 * Flushes dirty pages before a system's run, so no system pays for a checkpoint (and the full-page
 * writes after it) that an earlier system's writes caused. Best effort: needs a superuser.
 */
export async function checkpoint(connectionString: string): Promise<void> {
  await withAdmin(connectionString, (c) => c.query('CHECKPOINT')).catch(() => undefined);
}

export async function serverVersion(connectionString: string): Promise<string> {
  return withAdmin(connectionString, async (c) => {
    const { rows } = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return rows[0]?.v ?? 'unknown';
  });
}

/** The same server, another database: `postgres://…/test` -> `postgres://…/<database>`. */
export function withDatabase(connectionString: string, database: string): string {
  const url = new URL(connectionString);
  url.pathname = `/${database}`;
  return url.toString();
}
