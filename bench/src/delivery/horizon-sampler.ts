import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { percentile, round } from '../stats.js';

/** Sampling period: coarse by default; BENCH_HORIZON_TRACE=1 samples every 2 ms to time each event's wait. */
const EVERY_MS = 20;
const TRACE_EVERY_MS = 2;

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
  /** Share of samples in which each kind of transaction held the horizon (had the oldest xid), e.g. { ledger: 0.4 }. */
  readonly holders: Readonly<Record<string, number>>;
}

/**
 * The event log and the PostgreSQL broker read only below pg_snapshot_xmin(pg_current_snapshot()):
 * the oldest running transaction that wrote anything, on the whole server, not just this bench's
 * database or schema. Any long writer (another process's test, a migration) holds every commit
 * after it back from the relay. This samples that writer's age every EVERY_MS on a connection of
 * its own, so a latency run can say how much of its tail the server's other work explains, how
 * much the bench's own transactions (the consumer's ledger batches) hold it, and which kind of
 * transaction held it (from its statement text).
 *
 * With `trace`, it also keeps (time, horizon) pairs every TRACE_EVERY_MS, so `passedAt` can tell
 * when an event's transaction became readable to a gap-safe reader: the run can then split an
 * event's latency into waiting for the horizon and what the relay took after that.
 */
export interface HorizonSampler {
  /** Stops sampling (idempotent) and sums up; `thresholdMs` is the age whose share is counted. */
  stop(thresholdMs: number): Promise<HorizonFigures>;
  /** Trace mode: the first sample time (performance.now()) at which the horizon had passed `tx`; NaN if none did. */
  passedAt(tx: number): number;
  /** Trace mode: the kind of transaction holding the horizon in the first sample at or after `time`. */
  holderAt(time: number): string;
}

export async function startHorizonSampler(connectionString: string, ownApplication: string, trace = false): Promise<HorizonSampler> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  const ages: number[] = [];
  const ownAges: number[] = [];
  const holderCounts = new Map<string, number>();
  const times: number[] = [];
  const horizons: number[] = [];
  const holders: string[] = [];
  let stopping = false;
  let ended: Promise<void> | undefined;
  const loop = (async () => {
    while (!stopping) {
      const sent = performance.now();
      const { rows } = await client.query<{ age: string; own: string; xmin: string; app: string | null; state: string | null; query: string | null }>({
        name: 'bench.horizon',
        text: `SELECT a.age, a.own, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, h.app, h.state, h.query
               FROM (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start) * 1000), 0)::text AS age,
                            coalesce(max(extract(epoch FROM clock_timestamp() - xact_start) * 1000) FILTER (WHERE application_name = $1), 0)::text AS own
                     FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()) a
               LEFT JOIN LATERAL (SELECT application_name AS app, state, left(query, 400) AS query FROM pg_stat_activity
                                  WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY age(backend_xid) DESC LIMIT 1) h ON true`,
        values: [ownApplication],
      });
      const at = (sent + performance.now()) / 2;
      const r = rows[0];
      ages.push(Number(r?.age ?? 0));
      ownAges.push(Number(r?.own ?? 0));
      const holder = r?.query == null ? 'none' : kindOf(r.app, r.state, r.query, ownApplication);
      holderCounts.set(holder, (holderCounts.get(holder) ?? 0) + 1);
      if (trace) {
        times.push(at);
        horizons.push(Number(r?.xmin ?? 0));
        holders.push(holder);
      }
      await new Promise((resolve) => setTimeout(resolve, trace ? TRACE_EVERY_MS : EVERY_MS));
    }
  })();
  // Horizons only grow: the first sample past `tx` is found by bisection.
  const firstIndex = (ok: (i: number) => boolean): number => {
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ok(mid)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  return {
    async stop(thresholdMs) {
      stopping = true;
      ended ??= loop.catch(() => undefined).then(() => client.end().catch(() => undefined));
      await ended;
      const n = Math.max(1, ages.length);
      const shares = Object.fromEntries([...holderCounts].sort((a, b) => b[1] - a[1]).map(([k, c]) => [k, round(c / n, 3)]));
      return { samples: ages.length, any: figures(ages, thresholdMs), own: figures(ownAges, thresholdMs), holders: shares };
    },
    passedAt(tx) {
      const i = firstIndex((j) => (horizons[j] as number) > tx);
      return i < times.length ? (times[i] as number) : Number.NaN;
    },
    holderAt(time) {
      const i = firstIndex((j) => (times[j] as number) >= time);
      return holders[i] ?? 'none';
    },
  };
}

/** What kind of transaction a backend runs, from its (current or last) statement. */
function kindOf(app: string | null, state: string | null, query: string, own: string): string {
  if (app !== own) return 'other process';
  const idle = state === 'idle in transaction' ? ' (idle in tx)' : '';
  const q = query.replace(/\s+/g, ' ');
  const kind = /inbox|bench_effects/.test(q)
    ? 'dedup ledger'
    : /relay_checkpoints|leases/.test(q)
      ? 'relay mark'
      : /broker_messages/.test(q) && /INSERT/i.test(q)
        ? 'broker publish'
        : /out_message_id|broker_/.test(q)
          ? 'broker claim/ack'
          : /append_batch|out_version|stream_id|INTO \S+\.events|INTO \S+\.streams/.test(q)
            ? 'append'
            : /^(COMMIT|BEGIN)\b/i.test(q)
              ? 'a multi-statement transaction at its COMMIT'
              : `other: ${q.slice(0, 40)}`;
  return kind + idle;
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
