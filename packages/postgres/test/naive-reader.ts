import { rowToEvent, type EventRow } from '../src/event-rows.js';
import type { SqlExecutor } from '@causeway/postgres';
import type { RecordedEvent } from '@causeway/core';

/** The reader every gap bug report starts from: `seq > last`, no transaction horizon. For the gap test only. */
export function naiveReader(db: SqlExecutor, schema: string) {
  return async (tenantId: string, afterSeq: bigint, limit: number): Promise<RecordedEvent[]> => {
    const { rows } = await db.query<EventRow>(
      `SELECT seq::text AS seq, tx::text AS tx, tenant_id, stream_id, stream_version::integer AS stream_version,
         event_id::text AS event_id, event_type, event_version,
         to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS occurred_at,
         to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
         correlation_id, causation_id, producer, data, metadata
       FROM "${schema}".events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [tenantId, afterSeq.toString(), limit],
    );
    return rows.map(rowToEvent);
  };
}
