import type { Event } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore, postgreSQLProjection } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import { checkpoint, dropDatabase, recreateDatabase, withDatabase } from '../store/admin.js';
import type { CatchUpTarget } from './catch-up-target.js';
import { digestSql, readModelTableSql, toDigest, upsertOneSql, type ReadModelDigest } from './read-model.js';
import { EVENT_TYPES, seedLog, streamId, totalDelta, type CartEventData, type ProjectionWorkload } from './workload.js';

/** Emmett names its tables unqualified, so it gets a database of its own. */
const DATABASE = 'bench_emmett_projections';
const POOL_SIZE = 16;
const TABLE = 'summary';

type CartEvent = Event<string, CartEventData>;

const projectionName = (round: number): string => `bench-summary-r${round}`;
/** Emmett's projector id for a projection name (getProjectorId in @event-driven-io/emmett 0.42). */
const processorId = (round: number): string => `emt:processor:projector:${projectionName(round)}`;

/**
 * Emmett 0.42's async projection on PostgreSQL, over Emmett's own store:
 * `store.consumer({ pulling, stopWhen: { noMessagesLeft: true } }).projector({ projection: postgreSQLProjection(...) })`.
 * Its consumer reads batches of `batchSize` (gap-safe, like Causeway) and runs each batch in one
 * transaction, but its projector calls the projection's `handle` once per event and stores the
 * checkpoint once per event (store_processor_checkpoint). The handler runs the same prepared
 * upsert as Causeway's per-event form through the transaction's pg client that Emmett passes in.
 * Emmett waits `pullingFrequencyInMs` after every batch (default 50 ms); it gets 0 here, and the
 * same batch size as the others (its default is 100). Its batch read filters on global_position but
 * orders by (transaction_id, global_position), which no index of its 0.42 schema serves: PostgreSQL
 * scans and sorts the rest of the partition for every batch, so the read cost grows with the log.
 * Its log is written by one appender (see ProjectionWorkload.seedWorkers).
 *
 * Creating it installs process-wide pg type parsers; the others pin pg's defaults per pool
 * (pinned-pool.ts), so the order systems are created in does not matter.
 */
export async function createEmmettCatchUp(
  connectionString: string,
  workload: ProjectionWorkload,
  progress: (appended: number) => void,
): Promise<CatchUpTarget> {
  const url = withDatabase(connectionString, DATABASE);
  await recreateDatabase(connectionString, DATABASE);
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE });
  pool.on('error', () => undefined);
  const store = getPostgreSQLEventStore(url, { connectionOptions: { connectionString: url, pool } });
  const closeAll = async (): Promise<void> => {
    await store.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await dropDatabase(connectionString, DATABASE);
  };
  try {
    await store.schema.migrate();
    await pool.query(readModelTableSql(TABLE));
    await seedLog(
      workload,
      async (stream, expectedVersion, events) => {
        const batch: CartEvent[] = events.map((e) => ({ type: e.type, data: e.data }));
        await store.appendToStream<CartEvent>(streamId(stream), batch, { expectedStreamVersion: BigInt(expectedVersion) });
      },
      progress,
    );
    const { rows } = await pool.query<{ last: string; n: string }>('SELECT max(global_position)::text AS last, count(*)::text AS n FROM emt_messages');
    const end = rows[0]?.last ?? '0';
    if (Number(rows[0]?.n) !== workload.events) throw new Error(`emmett: seeded ${rows[0]?.n ?? 0} events, expected ${workload.events}`);
    await pool.query('VACUUM ANALYZE emt_messages');
    await checkpoint(connectionString);
    const upsert = upsertOneSql(TABLE);

    const runOnce = async (round: number, applied: (events: number) => void): Promise<void> => {
      const consumer = store.consumer<CartEvent>({
        stopWhen: { noMessagesLeft: true },
        pulling: { batchSize: workload.batchSize, pullingFrequencyInMs: 0 },
      });
      consumer.projector({
        processorId: processorId(round),
        projection: postgreSQLProjection<CartEvent>({
          name: projectionName(round),
          canHandle: [...EVENT_TYPES],
          async handle(events, context) {
            for (const e of events) {
              await context.connection.client.query({ name: 'bench.summary.one', text: upsert, values: [e.metadata.streamName, e.type, totalDelta(e.type, e.data)] });
            }
            applied(events.length);
          },
        }),
      });
      await consumer.start();
      await consumer.stop(); // not close(): that would end the store's pool
    };
    const position = async (round: number): Promise<string | null> => {
      const r = await pool.query<{ cp: string }>('SELECT last_processed_checkpoint AS cp FROM emt_processors WHERE processor_id = $1', [processorId(round)]);
      return r.rows[0] ? BigInt(r.rows[0].cp).toString() : null;
    };

    return {
      system: 'emmett',
      note: `@event-driven-io/emmett-postgresql 0.42 consumer + projector with postgreSQLProjection (pulling batchSize ${workload.batchSize}, pullingFrequencyInMs 0): one transaction per batch, handle() and store_processor_checkpoint() once per event; the same prepared upsert per event through ctx.connection.client`,
      async reset() {
        await pool.query(`TRUNCATE ${TABLE}`);
      },
      async catchUp(round, applied) {
        // The consumer stops at the first short read; if another session's open transaction held the
        // read horizon back then, it stopped early: start it again from its checkpoint.
        const deadline = Date.now() + workload.timeoutMs;
        while (Date.now() < deadline) {
          await runOnce(round, applied);
          if ((await position(round)) === end) return;
        }
        throw new Error(`emmett did not reach ${end} within ${workload.timeoutMs} ms`);
      },
      async verify(round): Promise<ReadModelDigest> {
        const at = await position(round);
        if (at !== end) throw new Error(`checkpoint at ${at ?? 'missing'}, expected ${end}`);
        const r = await pool.query<{ rows: number; events: string; total_cents: string; md5: string }>(digestSql(TABLE));
        return toDigest(r.rows[0] as { rows: number; events: string; total_cents: string; md5: string });
      },
      close: closeAll,
    };
  } catch (e) {
    await closeAll().catch(() => undefined);
    throw e;
  }
}
