import { performance } from 'node:perf_hooks';

/** Latencies of the measured calls and the wall time they took together. */
export interface Sample {
  readonly latenciesMs: number[];
  readonly wallMs: number;
  /** Events (appends) or calls (reads, loads) done: the numerator of the rate. */
  readonly units: number;
}

export interface RunOptions {
  readonly workers: number;
  readonly callsPerWorker: number;
  /** No call starts after this much wall time; the rate stays honest, the count shrinks. */
  readonly budgetMs: number;
}

/**
 * Runs `call(worker, i)` from `workers` concurrent loops, each call awaited before that worker's
 * next. `call` resolves to the units it did. One worker = sequential.
 */
export async function measure(options: RunOptions, call: (worker: number, i: number) => Promise<number>): Promise<Sample> {
  const latenciesMs: number[] = [];
  let units = 0;
  const start = performance.now();
  const loop = async (worker: number): Promise<void> => {
    for (let i = 0; i < options.callsPerWorker; i++) {
      if (performance.now() - start > options.budgetMs) return;
      const t0 = performance.now();
      const done = await call(worker, i); // not `units += await …`: that reads `units` before the await
      latenciesMs.push(performance.now() - t0);
      units += done;
    }
  };
  await Promise.all(Array.from({ length: options.workers }, (_, w) => loop(w)));
  return { latenciesMs, wallMs: performance.now() - start, units };
}
