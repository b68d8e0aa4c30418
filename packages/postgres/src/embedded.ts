import { createPGliteDatabase } from './drivers/pglite-driver.js';
import { createPostgresEventStore, type PostgresEventStore, type PostgresEventStoreOptions } from './postgres-event-store.js';

export interface EmbeddedEventStoreOptions extends Omit<PostgresEventStoreOptions, 'db' | 'ownsDatabase'> {
  /** Directory of the embedded database. Default `.causeway/data`; omit with `inMemory: true`. */
  readonly dataDir?: string;
  /** Keep the database in memory only (tests, demos). Default false. */
  readonly inMemory?: boolean;
}

/** Zero setup: PostgreSQL in process (PGlite) in a local directory, migrated and ready. */
export async function openEmbeddedEventStore(options: EmbeddedEventStoreOptions = {}): Promise<PostgresEventStore> {
  const { dataDir, inMemory, ...storeOptions } = options;
  const db = await createPGliteDatabase(inMemory ? {} : { dataDir: dataDir ?? '.causeway/data' });
  try {
    return await createPostgresEventStore({ ...storeOptions, db, ownsDatabase: true });
  } catch (e) {
    await db.close();
    throw e;
  }
}
