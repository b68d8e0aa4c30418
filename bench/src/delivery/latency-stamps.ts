import { performance } from 'node:perf_hooks';
import { percentile, round } from '../stats.js';

/**
 * Per event of a latency run: when it started (append resolved, or raw publish call made), when
 * the relay's batch handler got it and when the relay's publish of it resolved (Causeway only),
 * and when it was consumed; NaN until set. `tx` is the event's transaction id (Causeway only).
 */
export class LatencyStamps {
  readonly from: Float64Array;
  readonly to: Float64Array;
  readonly relayed: Float64Array;
  readonly published: Float64Array;
  readonly tx: Float64Array;
  done = 0;

  constructor(readonly total: number) {
    this.from = new Float64Array(total).fill(Number.NaN);
    this.to = new Float64Array(total).fill(Number.NaN);
    this.relayed = new Float64Array(total).fill(Number.NaN);
    this.published = new Float64Array(total).fill(Number.NaN);
    this.tx = new Float64Array(total).fill(Number.NaN);
  }

  /**
   * p50/p99 of where the time goes, events from `first` on: commit -> the relay's handler has it
   * (reading the log, waiting for the horizon), -> publish resolved, -> consumed.
   */
  stages(first: number): Record<string, number> {
    const read: number[] = [];
    const publish: number[] = [];
    const relay: number[] = [];
    const consume: number[] = [];
    for (let i = first; i < this.total; i++) {
      read.push((this.relayed[i] as number) - (this.from[i] as number));
      publish.push((this.published[i] as number) - (this.relayed[i] as number));
      relay.push((this.published[i] as number) - (this.from[i] as number));
      consume.push((this.to[i] as number) - (this.published[i] as number));
    }
    return {
      commit_to_published_p50_ms: at(relay, 50),
      commit_to_published_p99_ms: at(relay, 99),
      commit_to_relay_handler_p50_ms: at(read, 50),
      commit_to_relay_handler_p99_ms: at(read, 99),
      relay_handler_to_published_p50_ms: at(publish, 50),
      relay_handler_to_published_p99_ms: at(publish, 99),
      published_to_consumed_p50_ms: at(consume, 50),
      published_to_consumed_p99_ms: at(consume, 99),
    };
  }

  /**
   * With a horizon trace: commit -> the read horizon passed the event's transaction (what gap
   * safety costs), and horizon passed -> the relay's handler had it (what the relay's reading
   * adds); which kind of transaction held the horizon for the slowest 1% (share of those events).
   */
  horizonStages(first: number, passedAt: (tx: number) => number, holderAt: (time: number) => string): Record<string, number | string> {
    const waits: { wait: number; i: number }[] = [];
    const reaction: number[] = [];
    for (let i = first; i < this.total; i++) {
      const passed = passedAt(this.tx[i] as number);
      const from = this.from[i] as number;
      waits.push({ wait: Math.max(0, passed - from), i });
      reaction.push((this.relayed[i] as number) - Math.max(passed, from));
    }
    const sorted = waits.map((w) => w.wait);
    waits.sort((a, b) => b.wait - a.wait);
    const slowest = waits.slice(0, Math.max(1, Math.ceil(waits.length / 100)));
    const kinds = new Map<string, number>();
    for (const w of slowest) {
      const kind = holderAt(this.from[w.i] as number);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    const holders = [...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${Math.round((100 * n) / slowest.length)}%`);
    return {
      commit_to_horizon_passed_p50_ms: at(sorted, 50),
      commit_to_horizon_passed_p99_ms: at(sorted, 99),
      horizon_passed_to_relay_handler_p50_ms: at(reaction, 50),
      horizon_passed_to_relay_handler_p99_ms: at(reaction, 99),
      slowest_1pct_horizon_held_by: holders.join(', '),
    };
  }

  /** Marks event `i` done (the first time only). */
  end(i: number | undefined): void {
    if (i === undefined || !Number.isNaN(this.to[i] as number)) return;
    this.to[i] = performance.now();
    this.done++;
  }

  /** Latencies of events from `first` on, and their rate from the first start to the last end. */
  measured(first: number): { latenciesMs: number[]; opsPerS: number } {
    const latenciesMs: number[] = [];
    let begin = Number.POSITIVE_INFINITY;
    let end = 0;
    for (let i = first; i < this.total; i++) {
      const a = this.from[i] as number;
      const b = this.to[i] as number;
      latenciesMs.push(b - a);
      begin = Math.min(begin, a);
      end = Math.max(end, b);
    }
    return { latenciesMs, opsPerS: (this.total - first) / ((end - begin) / 1000) };
  }
}

const at = (xs: number[], p: number): number => round(percentile(xs.sort((a, b) => a - b), p), 2);
