import { storeSuite } from '@causeway/conformance';
import { createPgDatabase, createPostgresEventStore, type SqlDatabase } from '@causeway/postgres';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';
import { naiveReader } from './naive-reader.js';

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
} else {
  skipBecauseNoServer('storeSuite on PostgreSQL');
}
