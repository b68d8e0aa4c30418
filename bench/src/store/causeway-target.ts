import { aggregateStream, type DomainEvent, type StreamRef } from '@causeway/core';
import { createPGliteDatabase, createPgDatabase, createPostgresEventStore, type PostgresEventStore } from '@causeway/postgres';
import { checkpoint, dropSchema } from './admin.js';
import type { LoadResult, StoreTarget, SystemName } from './store-target.js';
import { EVENT_TYPE, TENANT, evolveCart, initialCart, type CartState, type ItemAdded } from './workload.js';

const SCHEMA = 'bench_causeway';

const ref = (streamId: string): StreamRef => ({ tenantId: TENANT, streamId });

/** Causeway on the PostgreSQL server, through its own pg driver (default settings, pool of `poolSize`). */
export async function createCausewayTarget(connectionString: string, poolSize: number): Promise<StoreTarget> {
  await dropSchema(connectionString, SCHEMA);
  const db = createPgDatabase({ connectionString, maxConnections: poolSize });
  const store = await createPostgresEventStore({ db, schema: SCHEMA, ownsDatabase: true });
  await checkpoint(connectionString);
  return causewayTarget('causeway', store, async () => {
    await store.close();
    await dropSchema(connectionString, SCHEMA);
  });
}

/** Causeway embedded: an in-memory PGlite database, same store code and SQL. */
export async function createCausewayPGliteTarget(): Promise<StoreTarget> {
  const db = await createPGliteDatabase();
  const store = await createPostgresEventStore({ db, schema: SCHEMA, ownsDatabase: true });
  return causewayTarget('causeway-pglite', store, () => store.close());
}

function causewayTarget(system: SystemName, store: PostgresEventStore, close: () => Promise<void>): StoreTarget {
  return {
    system,
    loadNote: 'aggregateStream with snapshotName: snapshot at 9,990 + 10-event tail',
    async append(streamId, version, events) {
      await store.append(ref(streamId), events.map((data) => ({ eventType: EVENT_TYPE, data })), { expectedVersion: version });
    },
    async read(streamId) {
      return (await store.readStream(ref(streamId))).length;
    },
    async saveSnapshot(streamId, version, state) {
      await store.saveSnapshot(ref(streamId), { version, state });
    },
    async load(streamId): Promise<LoadResult> {
      const r = await aggregateStream<CartState, DomainEvent<typeof EVENT_TYPE, ItemAdded>>(store, ref(streamId), {
        evolve: evolveCart,
        initialState: initialCart,
        snapshotName: 'default',
      });
      return { version: r.version, state: r.state };
    },
    close,
  };
}
