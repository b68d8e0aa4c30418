import { storeSuite } from '@causeway/conformance';
import { MIGRATIONS, createPgDatabase, createPostgresEventStore, migrate, type SqlDatabase } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import { naiveReader } from './naive-reader.js';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';

if (await postgresAvailable()) {
  for (const coalesce of [true, false]) {
    storeSuite({
      name: `postgres (${coalesce ? 'coalescing' : 'one transaction per append'})`,
      capabilities: { concurrentTransactions: true },
      async create() {
        const schema = uniqueSchema(coalesce ? 'store_c' : 'store');
        const db: SqlDatabase = createPgDatabase({ connectionString: PG_URL, maxConnections: 20 });
        const store = await createPostgresEventStore({ db, schema, ownsDatabase: true, ...(coalesce ? {} : { coalesce: false }) });
        return {
          store,
          naiveReadAll: naiveReader(db, schema),
          async close() {
            await store.close();
            await dropSchema(schema);
          },
        };
      },
    });
  }

  describe('migrations on the server', () => {
    it('concurrent migrators apply each version once', async () => {
      const schema = uniqueSchema('mig');
      const dbs = Array.from({ length: 4 }, () => createPgDatabase({ connectionString: PG_URL, maxConnections: 2 }));
      try {
        const results = await Promise.all(dbs.map((db) => migrate(db, { schema })));
        expect(results.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(MIGRATIONS.map((m) => m.version));
        expect((await migrate(dbs[0] as SqlDatabase, { schema })).applied).toEqual([]);
      } finally {
        await Promise.all(dbs.map((db) => db.close()));
        await dropSchema(schema);
      }
    });
  });
} else {
  skipBecauseNoServer('storeSuite and migrations on PostgreSQL');
}
