import { setTimeout as delay } from 'node:timers/promises';
import type { CatchUpTarget } from './catch-up-target.js';
import type { CausewayLog } from './causeway-log.js';
import { createPinnedPool } from './pinned-pool.js';
import { digestSql, foldBatch, readModelTableSql, toDigest, upsertManySql, type ReadModelDigest } from './read-model.js';
import type { ProjectionWorkload } from './workload.js';

interface LogRow {
  readonly tx: string;
  readonly seq: string;
  readonly stream_id: string;
  readonly event_type: string;
  readonly data: unknown;
}

const NAME = (round: number): string => `raw-summary-r${round}`;

/**
 * The floor: plain `pg` over the same log Causeway's runner reads. Per batch: one SELECT of the
 * columns the read model needs (gap-safe: only transactions below the snapshot's xmin, in
 * (tx, seq) order, like every catch-up reader must), then BEGIN, one multi-row upsert of the
 * batch folded per stream, one checkpoint UPDATE, COMMIT. No lock, no envelope, no framework.
 */
export async function createRawCatchUp(log: CausewayLog, workload: ProjectionWorkload): Promise<CatchUpTarget> {
  const s = `"${log.schema}"`;
  const table = `${s}.raw_summary`;
  const pool = createPinnedPool(log.connectionString, 2);
  try {
    await pool.query(readModelTableSql(table));
    await pool.query(`CREATE TABLE ${s}.raw_checkpoints (name text PRIMARY KEY, position_tx xid8 NOT NULL, position_seq bigint NOT NULL)`);
  } catch (e) {
    await pool.end();
    throw e;
  }
  // Qualified names: unqualified, ORDER BY would sort by the text aliases ('1000' before '999').
  const read = `SELECT ev.tx::text AS tx, ev.seq::text AS seq, ev.stream_id, ev.event_type, ev.data FROM ${s}.events ev
    WHERE (ev.tx, ev.seq) > ($1::text::xid8, $2::bigint) AND ev.tx < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY ev.tx, ev.seq LIMIT $3`;
  const upsert = upsertManySql(table);
  const advance = `UPDATE ${s}.raw_checkpoints SET position_tx = $2::text::xid8, position_seq = $3::bigint WHERE name = $1`;
  const endTx = log.end.tx;
  const endSeq = log.end.seq;

  return {
    system: 'raw-pg',
    note: `pg, batches of ${workload.batchSize}: SELECT 5 columns (gap-safe), then BEGIN; one multi-row INSERT ... ON CONFLICT DO UPDATE (batch folded per stream); checkpoint UPDATE; COMMIT`,
    async reset(round) {
      await pool.query(`TRUNCATE ${table}`);
      await pool.query(`INSERT INTO ${s}.raw_checkpoints VALUES ($1, '0', 0) ON CONFLICT (name) DO UPDATE SET position_tx = '0', position_seq = 0`, [NAME(round)]);
    },
    async catchUp(round, applied) {
      const name = NAME(round);
      const start = await pool.query<{ tx: string; seq: string }>(`SELECT position_tx::text AS tx, position_seq::text AS seq FROM ${s}.raw_checkpoints WHERE name = $1`, [name]);
      let tx = start.rows[0]?.tx ?? '0';
      let seq = start.rows[0]?.seq ?? '0';
      while (!(BigInt(tx) === endTx && BigInt(seq) === endSeq)) {
        const { rows } = await pool.query<LogRow>({ name: 'raw.read', text: read, values: [tx, seq, workload.batchSize] });
        const last = rows[rows.length - 1];
        if (last === undefined) {
          // Another session's open transaction holds the read horizon (the server is shared): look again shortly.
          await delay(5);
          continue;
        }
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query({ name: 'raw.upsert', text: upsert, values: foldBatch(rows.map((r) => ({ stream: r.stream_id, type: r.event_type, data: r.data }))) });
          await client.query({ name: 'raw.advance', text: advance, values: [name, last.tx, last.seq] });
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw e;
        } finally {
          client.release();
        }
        tx = last.tx;
        seq = last.seq;
        applied(rows.length);
      }
    },
    async verify(round): Promise<ReadModelDigest> {
      const cp = await pool.query<{ tx: string; seq: string }>(`SELECT position_tx::text AS tx, position_seq::text AS seq FROM ${s}.raw_checkpoints WHERE name = $1`, [NAME(round)]);
      const at = cp.rows[0] ? `${cp.rows[0].tx}/${cp.rows[0].seq}` : 'missing';
      if (at !== `${endTx}/${endSeq}`) throw new Error(`checkpoint at ${at}, expected ${endTx}/${endSeq}`);
      const { rows } = await pool.query<{ rows: number; events: string; total_cents: string; md5: string }>(digestSql(table));
      return toDigest(rows[0] as { rows: number; events: string; total_cents: string; md5: string });
    },
    async close() {
      await pool.end();
    },
  };
}
