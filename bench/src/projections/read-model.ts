import { createHash } from 'node:crypto';
import { cartEvent, streamId, totalDelta, type ProjectionWorkload } from './workload.js';

/**
 * The read model all three systems build, with the same table shape: one summary row per cart
 * stream (events seen, the last event's type, the running total in cents).
 */
export const readModelTableSql = (table: string): string => `CREATE TABLE ${table} (
  stream_id       text   PRIMARY KEY,
  event_count     bigint NOT NULL,
  last_event_type text   NOT NULL,
  total_cents     bigint NOT NULL
)`;

/** One event: $1 stream, $2 type, $3 total delta. */
export const upsertOneSql = (table: string): string => `INSERT INTO ${table} AS t (stream_id, event_count, last_event_type, total_cents)
  VALUES ($1, 1, $2, $3)
  ON CONFLICT (stream_id) DO UPDATE SET event_count = t.event_count + 1, last_event_type = excluded.last_event_type,
    total_cents = t.total_cents + excluded.total_cents`;

/**
 * Many streams in one statement: arrays of stream, count, last type, total delta, one entry per
 * stream (ON CONFLICT cannot touch a row twice in one statement, so a batch is folded per stream first).
 */
export const upsertManySql = (table: string): string => `INSERT INTO ${table} AS t (stream_id, event_count, last_event_type, total_cents)
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])
  ON CONFLICT (stream_id) DO UPDATE SET event_count = t.event_count + excluded.event_count,
    last_event_type = excluded.last_event_type, total_cents = t.total_cents + excluded.total_cents`;

/** A batch folded per stream, in log order, as the four arrays upsertManySql binds. */
export function foldBatch(events: Iterable<{ readonly stream: string; readonly type: string; readonly data: unknown }>): [string[], number[], string[], number[]] {
  const index = new Map<string, number>();
  const streams: string[] = [];
  const counts: number[] = [];
  const types: string[] = [];
  const totals: number[] = [];
  for (const e of events) {
    const delta = totalDelta(e.type, e.data);
    const at = index.get(e.stream);
    if (at === undefined) {
      index.set(e.stream, streams.length);
      streams.push(e.stream);
      counts.push(1);
      types.push(e.type);
      totals.push(delta);
    } else {
      counts[at] = (counts[at] as number) + 1;
      types[at] = e.type;
      totals[at] = (totals[at] as number) + delta;
    }
  }
  return [streams, counts, types, totals];
}

export interface ReadModelDigest {
  readonly rows: number;
  readonly events: string;
  readonly totalCents: string;
  /** md5 over every row, ordered by stream id: equal digests = equal read models. */
  readonly md5: string;
}

/** Computes the digest in the database (int8 sums as text: no driver type parser involved). */
export const digestSql = (table: string): string => `SELECT count(*)::int AS rows, coalesce(sum(event_count), 0)::text AS events,
  coalesce(sum(total_cents), 0)::text AS total_cents,
  md5(coalesce(string_agg(stream_id || ':' || event_count || ':' || last_event_type || ':' || total_cents, ',' ORDER BY stream_id COLLATE "C"), '')) AS md5
  FROM ${table}`;

export function toDigest(row: { rows: number; events: string; total_cents: string; md5: string }): ReadModelDigest {
  return { rows: row.rows, events: row.events, totalCents: row.total_cents, md5: row.md5 };
}

/** What the read model must hold after a full catch-up, from the workload alone. */
export function expectedDigest(w: ProjectionWorkload): ReadModelDigest {
  const perStream = w.events / w.streams;
  const lines: string[] = [];
  let total = 0;
  for (let s = 0; s < w.streams; s++) {
    let sum = 0;
    let last = '';
    for (let v = 1; v <= perStream; v++) {
      const e = cartEvent(s, v);
      sum += totalDelta(e.type, e.data);
      last = e.type;
    }
    total += sum;
    lines.push(`${streamId(s)}:${perStream}:${last}:${sum}`);
  }
  lines.sort();
  return { rows: w.streams, events: String(w.events), totalCents: String(total), md5: createHash('md5').update(lines.join(',')).digest('hex') };
}

export const sameDigest = (a: ReadModelDigest, b: ReadModelDigest): boolean =>
  a.rows === b.rows && a.events === b.events && a.totalCents === b.totalCents && a.md5 === b.md5;
