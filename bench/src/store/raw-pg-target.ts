import pg from 'pg';
import { checkpoint, dropSchema } from './admin.js';
import { insertParams, insertSql, loadSnapshotSql, rawSchemaStatements, readStreamSql, readTailSql, saveSnapshotSql } from './raw-sql.js';
import type { LoadResult, StoreTarget } from './store-target.js';
import { TENANT, evolveCart, initialCart, type CartState, type ItemAdded } from './workload.js';

const SCHEMA = 'bench_raw';

// Timestamps stay text, as Causeway's driver keeps them: parsing 2,000 Dates per read would make
// the floor slower than the thing measured against it.
const identity = (value: string): string => value;
const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
  oid === 1184 || oid === 1114 ? identity : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser;

interface RawRow {
  stream_version: string | number;
  data: ItemAdded;
}

/**
 * The raw `pg` driver into the equivalent tables: autocommit INSERTs, plain SELECTs, named
 * (prepared) statements like Causeway's, a Pool of the same size. No version checks.
 */
export async function createRawPgTarget(connectionString: string, poolSize: number): Promise<StoreTarget> {
  await dropSchema(connectionString, SCHEMA);
  const pool = new pg.Pool({ connectionString, max: poolSize, types: { getTypeParser } });
  pool.on('error', () => undefined);
  for (const statement of rawSchemaStatements(SCHEMA)) await pool.query(statement);
  await checkpoint(connectionString);
  const read = readStreamSql(SCHEMA);
  const tail = readTailSql(SCHEMA);
  const snapshot = loadSnapshotSql(SCHEMA);

  return {
    system: 'raw-pg',
    loadNote: 'SELECT snapshot row + SELECT 10-event tail, fold in JS',
    async append(streamId, version, events) {
      await pool.query({ name: `raw.insert.${events.length}`, text: insertSql(SCHEMA, events.length), values: insertParams(streamId, version, events) });
    },
    async read(streamId) {
      const r = await pool.query({ name: 'raw.read', text: read, values: [TENANT, streamId] });
      return r.rows.length;
    },
    async saveSnapshot(streamId, version, state) {
      await pool.query(saveSnapshotSql(SCHEMA), [TENANT, streamId, version, JSON.stringify(state)]);
    },
    async load(streamId): Promise<LoadResult> {
      const s = await pool.query<{ version: string; state: CartState }>({ name: 'raw.snapshot', text: snapshot, values: [TENANT, streamId] });
      const snap = s.rows[0];
      let version = snap ? Number(snap.version) : 0;
      let state = snap ? snap.state : initialCart();
      const t = await pool.query<RawRow>({ name: 'raw.tail', text: tail, values: [TENANT, streamId, version] });
      for (const row of t.rows) {
        state = evolveCart(state, row);
        version = Number(row.stream_version);
      }
      return { version, state };
    },
    async close() {
      await pool.end();
      await dropSchema(connectionString, SCHEMA);
    },
  };
}
