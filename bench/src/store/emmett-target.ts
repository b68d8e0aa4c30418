import type { Event } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import { checkpoint, dropDatabase, recreateDatabase, withDatabase } from './admin.js';
import type { LoadResult, StoreTarget } from './store-target.js';
import { EVENT_TYPE, evolveCart, initialCart, type CartState, type ItemAdded } from './workload.js';

/** Emmett has no schema option (its SQL names tables unqualified), so it gets a database of its own. */
const DATABASE = 'bench_emmett';

type ItemAddedEvent = Event<typeof EVENT_TYPE, ItemAdded>;

/** Emmett stream names carry their type before the first '-'. */
const streamName = (streamId: string): string => `bench-${streamId}`;

/**
 * Emmett's PostgreSQL event store with a pg Pool of the same size as the others.
 * Must run after every other pg-based system: creating it installs process-wide pg type parsers
 * (int8 -> BigInt, jsonb -> its own JSON parser) that would change the others' results.
 */
export async function createEmmettTarget(connectionString: string, poolSize: number): Promise<StoreTarget> {
  const url = withDatabase(connectionString, DATABASE);
  await recreateDatabase(connectionString, DATABASE);
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on('error', () => undefined);
  const store = getPostgreSQLEventStore(url, { connectionOptions: { connectionString: url, pool } });
  await store.schema.migrate(); // otherwise the first append migrates, inside the measured time
  await checkpoint(connectionString);

  return {
    system: 'emmett',
    loadNote: 'no snapshots: aggregateStream folds all 10,000 events',
    async append(streamId, version, events) {
      const batch: ItemAddedEvent[] = events.map((data) => ({ type: EVENT_TYPE, data }));
      await store.appendToStream<ItemAddedEvent>(streamName(streamId), batch, { expectedStreamVersion: BigInt(version) });
    },
    async read(streamId) {
      return (await store.readStream<ItemAddedEvent>(streamName(streamId))).events.length;
    },
    async load(streamId): Promise<LoadResult> {
      const r = await store.aggregateStream<CartState, ItemAddedEvent>(streamName(streamId), { evolve: evolveCart, initialState: initialCart });
      return { version: Number(r.currentStreamVersion), state: r.state };
    },
    async close() {
      await store.close();
      await pool.end();
      await dropDatabase(connectionString, DATABASE);
    },
  };
}
