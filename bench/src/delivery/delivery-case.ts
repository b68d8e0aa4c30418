import { performance } from 'node:perf_hooks';
import type { ErrorReporter, Publisher } from '@causeway/core';
import type { DeliveryBroker } from './delivery-broker.js';

/** What each case gets from the suite. */
export interface CaseContext {
  readonly quick: boolean;
  readonly connectionString: string;
  /** Progress on stderr. */
  log(line: string): void;
}

/** One system's figures in one case. */
export interface Measured {
  readonly system: string;
  readonly opsPerS: number;
  /** What a row's p50/p99 are taken from; each case says what one sample is. */
  readonly latenciesMs: readonly number[];
  /** Case-specific figures for the JSON (counts, checks). */
  readonly notes?: Readonly<Record<string, number | string>>;
}

/**
 * Which system a result is: the raw client (the baseline), Causeway's full path (what the targets
 * are about), or a Causeway part run alone for reference (to split a cost).
 */
export type Side = 'raw' | 'causeway' | 'reference';

/** A case on one broker: Causeway beside the raw client. A side that failed is missing, with its reason in `failures`. */
export interface CaseOutcome {
  readonly results: readonly { readonly side: Side; readonly measured: Measured }[];
  readonly failures: readonly string[];
}

/** A case of the suite, run once per broker. */
export interface DeliveryCase {
  readonly name: string;
  /** What is measured, for the JSON's method. */
  readonly method: string;
  /** Sizes for the JSON's `cases`. */
  readonly sizes: (quick: boolean) => Readonly<Record<string, number>>;
  run(broker: DeliveryBroker, ctx: CaseContext): Promise<CaseOutcome>;
  /** Releases what the case kept between brokers; called once after its last broker. */
  finish?(): Promise<void>;
}

let topics = 0;

/** A fresh topic name (topic grammar: letters, digits, dots, dashes). */
export function freshTopic(adapter: string, what: string): string {
  return `delivery.${adapter}.${what}.${process.pid}.${Date.now().toString(36)}-${++topics}`;
}

/** Keeps each system's best of several alternating rounds (the machine is shared and noisy). */
export class BestOf {
  readonly #best = new Map<Side, Measured>();
  readonly failures: string[] = [];

  /** Runs one side's round; a throw is recorded as a failure of the case and the round is dropped. */
  async round(side: Side, label: string, ctx: CaseContext, run: () => Promise<Measured>): Promise<void> {
    try {
      const m = await run();
      ctx.log(`${label} ${m.system}: ${Math.round(m.opsPerS).toLocaleString('en-US')}/s`);
      const prev = this.#best.get(side);
      if (prev === undefined || m.opsPerS > prev.opsPerS) this.#best.set(side, m);
    } catch (e) {
      const reason = `${label} ${side}: ${e instanceof Error ? e.message : String(e)}`;
      this.failures.push(reason);
      ctx.log(`FAILED ${reason}`);
    }
  }

  /** Raw first, then Causeway, then references. */
  outcome(): CaseOutcome {
    const order: readonly Side[] = ['raw', 'causeway', 'reference'];
    const results = order.flatMap((side) => {
      const measured = this.#best.get(side);
      return measured === undefined ? [] : [{ side, measured }];
    });
    return { results, failures: this.failures };
  }
}

/** A Publisher that records how long each publish() call took. */
export function timedPublisher(inner: Publisher, callsMs: number[]): Publisher {
  return {
    async publish(topic, messages) {
      const t0 = performance.now();
      await inner.publish(topic, messages);
      callsMs.push(performance.now() - t0);
    },
    close: (options) => inner.close(options),
  };
}

/**
 * This process's CPU time (user + system) from now on, in microseconds per event when read: the
 * Node side's cost per event, which the machine's load changes far less than a wall-clock rate.
 * (The database server's and the broker's CPU are not in it.)
 */
export function cpuMeter(): (events: number) => number {
  const start = process.cpuUsage();
  return (events) => {
    const used = process.cpuUsage(start);
    return Math.round((used.user + used.system) / events);
  };
}

/** The relay's error reporter: counts and logs (a failed publish is retried by the relay, but the run is suspect). */
export function countingReporter(ctx: CaseContext, label: string): { readonly report: ErrorReporter; readonly count: () => number } {
  let n = 0;
  return {
    report: (error, context) => {
      n++;
      if (n <= 5) ctx.log(`${label}: ${context}: ${error instanceof Error ? error.message : String(error)}`);
    },
    count: () => n,
  };
}
