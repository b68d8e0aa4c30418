import { PGlite } from '@electric-sql/pglite';
import { insertParams, insertSql, loadSnapshotSql, rawSchemaStatements, readStreamSql, readTailSql, saveSnapshotSql } from './raw-sql.js';
import type { LoadResult, StoreTarget } from './store-target.js';
import { TENANT, evolveCart, initialCart, type CartState, type ItemAdded } from './workload.js';

const SCHEMA = 'bench_raw';

/** The same minimal SQL as raw-pg on an in-memory PGlite instance. */
export async function createRawPGliteTarget(): Promise<StoreTarget> {
  // Timestamps stay text, as in Causeway's PGlite driver (see raw-pg-target.ts).
  const identity = (value: string): string => value;
  const db = await PGlite.create({ parsers: { 1184: identity, 1114: identity } });
  for (const statement of rawSchemaStatements(SCHEMA)) await db.query(statement);
  const read = readStreamSql(SCHEMA);
  const tail = readTailSql(SCHEMA);
  const snapshot = loadSnapshotSql(SCHEMA);

  return {
    system: 'raw-pglite',
    loadNote: 'SELECT snapshot row + SELECT 10-event tail, fold in JS',
    async append(streamId, version, events) {
      await db.query(insertSql(SCHEMA, events.length), insertParams(streamId, version, events));
    },
    async read(streamId) {
      const r = await db.query(read, [TENANT, streamId]);
      return r.rows.length;
    },
    async saveSnapshot(streamId, version, state) {
      await db.query(saveSnapshotSql(SCHEMA), [TENANT, streamId, version, JSON.stringify(state)]);
    },
    async load(streamId): Promise<LoadResult> {
      const s = await db.query<{ version: number | bigint; state: CartState }>(snapshot, [TENANT, streamId]);
      const snap = s.rows[0];
      let version = snap ? Number(snap.version) : 0;
      let state = snap ? snap.state : initialCart();
      const t = await db.query<{ stream_version: number | bigint; data: ItemAdded }>(tail, [TENANT, streamId, version]);
      for (const row of t.rows) {
        state = evolveCart(state, row);
        version = Number(row.stream_version);
      }
      return { version, state };
    },
    async close() {
      await db.close();
    },
  };
}
