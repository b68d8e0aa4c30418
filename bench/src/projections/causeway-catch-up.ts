import { formatPosition, type Projection, type RecordedEvent } from '@causeway/core';
import { createProjectionRunner, type SqlExecutor } from '@causeway/postgres';
import type { CatchUpTarget } from './catch-up-target.js';
import type { CausewayLog } from './causeway-log.js';
import { digestSql, foldBatch, readModelTableSql, toDigest, upsertManySql, upsertOneSql, type ReadModelDigest } from './read-model.js';
import { EVENT_TYPES, totalDelta, type ProjectionWorkload } from './workload.js';

/** `batch`: one applyBatch call per runner batch (one multi-row upsert); `per-event`: one handler call (one upsert) per event. */
export type CausewayHandlerForm = 'batch' | 'per-event';

const projectionName = (form: CausewayHandlerForm, round: number): string => `bench-summary-${form}-r${round}`;

/** Causeway's createProjectionRunner over its own store's gap-safe log, one read model table per handler form. */
export async function createCausewayCatchUp(log: CausewayLog, workload: ProjectionWorkload, form: CausewayHandlerForm): Promise<CatchUpTarget> {
  const table = `"${log.schema}"."summary_${form === 'batch' ? 'batch' : 'per_event'}"`;
  await log.db.query(readModelTableSql(table));
  const upsertMany = upsertManySql(table);
  const upsertOne = upsertOneSql(table);

  const projection = (round: number, applied: (events: number) => void): Projection<SqlExecutor> => {
    const name = projectionName(form, round);
    if (form === 'batch') {
      return {
        name,
        version: 1,
        batchTypes: EVENT_TYPES,
        async applyBatch(events: readonly RecordedEvent[], tx: SqlExecutor) {
          const rows = foldBatch(events.map((e) => ({ stream: e.streamId, type: e.eventType, data: e.data })));
          await tx.query(upsertMany, rows, 'bench.summary.many');
          applied(events.length);
        },
      };
    }
    const handler = async (e: RecordedEvent, tx: SqlExecutor): Promise<void> => {
      await tx.query(upsertOne, [e.streamId, e.eventType, totalDelta(e.eventType, e.data)], 'bench.summary.one');
      applied(1);
    };
    return { name, version: 1, handlers: Object.fromEntries(EVENT_TYPES.map((t) => [t, handler])) };
  };

  return {
    system: form === 'batch' ? 'causeway' : 'causeway per-event',
    note:
      form === 'batch'
        ? `createProjectionRunner (batchSize ${workload.batchSize}) with applyBatch: each batch folded per stream in JS, one multi-row INSERT ... ON CONFLICT DO UPDATE; checkpoint lock, advance and lease fence check in the same transaction (runner defaults otherwise: lease on, lag watch every 1 s)`
        : `createProjectionRunner (batchSize ${workload.batchSize}) with per-event handlers: one INSERT ... ON CONFLICT DO UPDATE per event; checkpoint lock, advance and lease fence check once per batch, same transaction`,
    async reset() {
      await log.db.query(`TRUNCATE ${table}`);
    },
    async catchUp(round, applied) {
      const runner = await createProjectionRunner({
        db: log.db,
        store: log.store,
        schema: log.schema,
        projection: projection(round, applied),
        batchSize: workload.batchSize,
      });
      try {
        await runner.waitFor(log.end, workload.timeoutMs);
      } finally {
        await runner.stop();
      }
    },
    async verify(round): Promise<ReadModelDigest> {
      const { rows } = await log.db.query<{ tx: string; seq: string; applied: string }>(
        `SELECT position_tx::text AS tx, position_seq::text AS seq, applied::text AS applied
         FROM "${log.schema}".projection_checkpoints WHERE name = $1 AND version = 1`,
        [projectionName(form, round)],
      );
      const cp = rows[0];
      const at = cp ? `${cp.tx}/${cp.seq}` : 'missing';
      if (at !== formatPosition(log.end) || cp?.applied !== String(workload.events)) {
        throw new Error(`checkpoint at ${at} (${cp?.applied ?? 0} applied), expected ${formatPosition(log.end)} (${workload.events})`);
      }
      const digest = await log.db.query<{ rows: number; events: string; total_cents: string; md5: string }>(digestSql(table));
      return toDigest(digest.rows[0] as { rows: number; events: string; total_cents: string; md5: string });
    },
    async close() {
      // The log (and its schema) is closed by its owner.
    },
  };
}
