import pg from 'pg';
import { percentile, round } from '../stats.js';

const EVERY_MS = 20;

/** Ages of the oldest transaction holding an xid, on the whole server, over the samples. */
export interface AgeFigures {
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  /** Share of samples in which it was older than the threshold. */
  readonly over_threshold: number;
}

/** What the sampler saw: every writer, and the bench's own (application_name) apart. */
export interface HorizonFigures {
  readonly samples: number;
  readonly any: AgeFigures;
  readonly own: AgeFigures;
}

/**
 * The event log and the PostgreSQL broker read only below pg_snapshot_xmin(pg_current_snapshot()):
 * the oldest running transaction that wrote anything, on the whole server, not just this bench's
 * database or schema. Any long writer (another process's test, a migration) holds every commit
 * after it back from the relay. This samples that writer's age every EVERY_MS on a connection of
 * its own, so a latency run can say how much of its tail the server's other work explains, and
 * how much the bench's own transactions (the consumer's ledger batches) hold it.
 */
export interface HorizonSampler {
  /** Stops sampling (idempotent) and sums up; `thresholdMs` is the age whose share is counted. */
  stop(thresholdMs: number): Promise<HorizonFigures>;
}

export async function startHorizonSampler(connectionString: string, ownApplication: string): Promise<HorizonSampler> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  const ages: number[] = [];
  const ownAges: number[] = [];
  let stopping = false;
  let ended: Promise<void> | undefined;
  const loop = (async () => {
    while (!stopping) {
      const { rows } = await client.query<{ age: string; own: string }>({
        name: 'bench.horizon',
        text: `SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start) * 1000), 0)::text AS age,
                 coalesce(max(extract(epoch FROM clock_timestamp() - xact_start) * 1000) FILTER (WHERE application_name = $1), 0)::text AS own
               FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()`,
        values: [ownApplication],
      });
      ages.push(Number(rows[0]?.age ?? 0));
      ownAges.push(Number(rows[0]?.own ?? 0));
      await new Promise((resolve) => setTimeout(resolve, EVERY_MS));
    }
  })();
  return {
    async stop(thresholdMs) {
      stopping = true;
      ended ??= loop.catch(() => undefined).then(() => client.end().catch(() => undefined));
      await ended;
      return { samples: ages.length, any: figures(ages, thresholdMs), own: figures(ownAges, thresholdMs) };
    },
  };
}

function figures(ages: readonly number[], thresholdMs: number): AgeFigures {
  const sorted = [...ages].sort((a, b) => a - b);
  return {
    p50_ms: round(percentile(sorted, 50), 1),
    p99_ms: round(percentile(sorted, 99), 1),
    max_ms: round(sorted[sorted.length - 1] ?? Number.NaN, 1),
    over_threshold: round(sorted.filter((a) => a > thresholdMs).length / Math.max(1, sorted.length), 3),
  };
}
