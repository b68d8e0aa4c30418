import { EVENT_COLUMNS, rowToEvent, type EventRow } from '../src/event-rows.js';
import type { SqlExecutor } from '@causeway/postgres';
import type { RecordedEvent } from '@causeway/core';

/** The reader every gap bug report starts from: `seq > last`, no transaction horizon. For the gap test only. */
export function naiveReader(db: SqlExecutor, schema: string) {
  return async (tenantId: string, afterSeq: bigint, limit: number): Promise<RecordedEvent[]> => {
    const { rows } = await db.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM "${schema}".events ev WHERE ev.tenant_id = $1 AND ev.seq > $2 ORDER BY ev.seq LIMIT $3`,
      [tenantId, afterSeq.toString(), limit],
    );
    return rows.map(rowToEvent);
  };
}
