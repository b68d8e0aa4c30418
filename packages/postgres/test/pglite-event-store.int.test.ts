import { storeSuite } from '@causeway/conformance';
import { createPGliteDatabase, createPostgresEventStore } from '@causeway/postgres';
import { naiveReader } from './naive-reader.js';

// Embedded engine: no server needed, so this always runs.
storeSuite({
  name: 'pglite',
  capabilities: { concurrentTransactions: false },
  async create() {
    const db = await createPGliteDatabase();
    const store = await createPostgresEventStore({ db, ownsDatabase: true });
    return { store, naiveReadAll: naiveReader(db, 'causeway'), close: () => store.close() };
  },
});
