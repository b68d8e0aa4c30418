import { performance } from 'node:perf_hooks';
import { percentile, round } from '../stats.js';

/**
 * Per event of a latency run: when it started (append resolved, or raw publish call made), when
 * the relay's publish of it resolved (Causeway only) and when it was consumed; NaN until set.
 */
export class LatencyStamps {
  readonly from: Float64Array;
  readonly to: Float64Array;
  readonly published: Float64Array;
  done = 0;

  constructor(readonly total: number) {
    this.from = new Float64Array(total).fill(Number.NaN);
    this.to = new Float64Array(total).fill(Number.NaN);
    this.published = new Float64Array(total).fill(Number.NaN);
  }

  /** p50/p99 of commit -> publish resolved and publish resolved -> consumed, events from `first` on: where the time goes. */
  stages(first: number): Record<string, number> {
    const relay: number[] = [];
    const consume: number[] = [];
    for (let i = first; i < this.total; i++) {
      relay.push((this.published[i] as number) - (this.from[i] as number));
      consume.push((this.to[i] as number) - (this.published[i] as number));
    }
    const at = (xs: number[], p: number): number => round(percentile(xs.sort((a, b) => a - b), p), 2);
    return { commit_to_published_p50_ms: at(relay, 50), commit_to_published_p99_ms: at(relay, 99), published_to_consumed_p50_ms: at(consume, 50), published_to_consumed_p99_ms: at(consume, 99) };
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
