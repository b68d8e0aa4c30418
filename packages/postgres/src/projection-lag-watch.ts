import type { ProjectionKey, ProjectionLagHook } from '@causeway/core';
import { describeHorizonHolder, findHorizonHolder } from './projection-health.js';
import { measureProjectionLag } from './projection-lag.js';
import type { SqlDatabase } from './sql-executor.js';

const POKE_MS = 100;

export interface LagWatchOptions {
  readonly db: SqlDatabase;
  readonly schema: string;
  readonly key: ProjectionKey;
  readonly label: string;
  readonly intervalMs: number;
  /** 0: no horizon watch. */
  readonly horizonWarnAfterMs: number;
  readonly warn: (message: string) => void;
  readonly onLag?: ProjectionLagHook;
}

/**
 * While a runner is active: measures its lag every `intervalMs` (and shortly after each batch)
 * for the metric hook, and on the server watches for waiting events that stay unreadable behind
 * an open transaction, naming that transaction's process once it has held them
 * `horizonWarnAfterMs` (once per holder).
 * Measurements never overlap; a failed one is skipped (the runner reports its own errors).
 */
export function watchProjectionLag(options: LagWatchOptions): { poke(): void; stop(): void } {
  const { db, schema, key, onLag } = options;
  const horizon = db.engine === 'postgres' && options.horizonWarnAfterMs > 0;
  if (onLag === undefined && !horizon) return { poke: () => undefined, stop: () => undefined };
  let running = false;
  let lastTick = 0;
  let soon: ReturnType<typeof setTimeout> | null = null;
  let blockedSince: number | null = null;
  let warnedAbout = '';
  let again = false;
  let stopped = false;
  const tick = async (): Promise<void> => {
    if (running) {
      again = true; // measured before the latest batch, maybe: measure once more after this one
      return;
    }
    running = true;
    try {
      const measuredAt = Date.now();
      lastTick = measuredAt;
      const lag = await measureProjectionLag(db, schema, key, { count: onLag !== undefined });
      onLag?.({
        projection: key.name,
        version: key.version,
        ...(key.tenantId === undefined ? {} : { tenantId: key.tenantId }),
        eventsBehind: lag.eventsBehind,
        secondsBehind: lag.secondsBehind,
        measuredAt,
      });
      if (!horizon) return;
      blockedSince = lag.blocked ? (blockedSince ?? measuredAt) : null;
      if (blockedSince === null || measuredAt - blockedSince < options.horizonWarnAfterMs) return;
      const holder = await findHorizonHolder(db);
      const id = holder ? `${holder.pid}@${holder.xactStart ?? ''}` : '';
      if (holder && id !== warnedAbout) {
        warnedAbout = id;
        options.warn(`${options.label}: events have waited ${((measuredAt - blockedSince) / 1000).toFixed(1)} s behind an open transaction: ${describeHorizonHolder(holder)}`);
      }
    } catch {
      // Measuring is best effort: a failed query here must not stop or slow the runner.
    } finally {
      running = false;
      if (again) {
        again = false;
        poke();
      }
    }
  };
  const poke = (): void => {
    if (onLag === undefined || soon !== null || stopped) return;
    soon = setTimeout(() => {
      soon = null;
      void tick();
    }, Math.max(0, lastTick + POKE_MS - Date.now()));
  };
  const timer = setInterval(() => void tick(), options.intervalMs);
  timer.unref?.();
  void tick();
  return {
    // After a batch: measure soon (at most every POKE_MS), so a return to zero lag is reported
    // when it happens rather than up to a whole interval later.
    poke,
    stop() {
      stopped = true;
      clearInterval(timer);
      if (soon !== null) clearTimeout(soon);
    },
  };
}
