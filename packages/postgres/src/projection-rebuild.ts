import { ClosedError, InvalidOptionsError, comparePositions, parsePosition, projectionLabel, type LogPosition, type ProjectionKey } from '@causeway/core';
import { measureProjectionLag, type ProjectionLagMeasurement } from './projection-lag.js';
import { createProjectionRunner, type ProjectionRunner, type ProjectionRunnerOptions } from './projection-runner.js';
import { setLiveProjectionVersion } from './projection-versions.js';

export interface ProjectionRebuildOptions extends Omit<ProjectionRunnerOptions, 'errorPolicy'> {
  /** Retries of a failing batch before the rebuild stops (a rebuild never skips). Default 3. */
  readonly retries?: number;
  /** A progress line every this many ms. Default 2,000 ms. */
  readonly progressIntervalMs?: number;
  /** Where progress goes. Default: the line on stderr. */
  readonly onProgress?: (progress: RebuildProgress, line: string) => void;
  /**
   * Caught up means: past the log's head as it was when the rebuild started, and at most this
   * many events behind the current head, i.e. in the live tail like any running projection (while
   * writes go on, "zero behind" may never be seen). Default: batchSize.
   */
  readonly caughtUpWithin?: number;
}

export interface RebuildProgress {
  readonly projection: string;
  readonly version: number;
  readonly tenantId?: string;
  /** The rebuilt version's checkpoint, `tx/seq`. */
  readonly checkpoint: string | null;
  /** The newest event of the log (the high-water mark to reach), `tx/seq`. */
  readonly head: string | null;
  /** Events the new version's checkpoint has moved past (over every run, so a resumed rebuild counts on). */
  readonly applied: number;
  readonly eventsBehind: number;
  /** Averaged over this run of the rebuild. */
  readonly eventsPerSecond: number;
  /** At the current rate; null while nothing moves. */
  readonly etaSeconds: number | null;
  readonly caughtUp: boolean;
}

/**
 * A blue/green rebuild: runs the projection's new `version` from the log's start into its own
 * tables (own checkpoint, own lease) while the old version keeps serving and its runner keeps
 * running. The error policy is always 'stop'. A crash or stop loses nothing: starting the rebuild
 * again resumes from the new version's checkpoint.
 */
export interface ProjectionRebuild {
  /** The new version's runner; after the switch it is simply that version's runner (keep it running). */
  readonly runner: ProjectionRunner;
  /** Resolves the first time the new version is caught up (see caughtUpWithin); rejects if its runner stops first. */
  readonly caughtUp: Promise<RebuildProgress>;
  /** After `caughtUp`: records the new version as live (queries read its tables from now on); returns the previous live version. */
  switchLive(): Promise<number | null>;
  /** Stops progress reporting and the new version's runner. */
  stop(): Promise<void>;
}

const etaText = (s: number | null): string => (s === null ? '?' : s < 90 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);

/** The progress line: position against the high-water mark, events/s and ETA. */
export function formatRebuildProgress(p: RebuildProgress): string {
  const total = p.applied + p.eventsBehind;
  const pct = total === 0 ? 100 : (100 * p.applied) / total;
  const who = projectionLabel({ name: p.projection, version: p.version, ...(p.tenantId === undefined ? {} : { tenantId: p.tenantId }) });
  return p.caughtUp
    ? `rebuild ${who}: caught up at ${p.checkpoint ?? '-'} of ${p.head ?? '-'} (${p.applied} events, ${p.eventsBehind} behind)`
    : `rebuild ${who}: ${p.applied}/${total} events (${pct.toFixed(1)}%), at ${p.checkpoint ?? '-'} of ${p.head ?? '-'}, ` +
        `${Math.round(p.eventsPerSecond)} events/s, ETA ${etaText(p.etaSeconds)}`;
}

/** Starts (or resumes) rebuilding `options.projection` at its version; see ProjectionRebuild. */
export async function startProjectionRebuild(options: ProjectionRebuildOptions): Promise<ProjectionRebuild> {
  const intervalMs = options.progressIntervalMs ?? 2000;
  if (!Number.isInteger(intervalMs) || intervalMs < 10) throw new InvalidOptionsError(`progressIntervalMs must be an integer >= 10; got ${String(intervalMs)}`);
  const within = options.caughtUpWithin ?? options.batchSize ?? 500;
  if (!Number.isInteger(within) || within < 0) throw new InvalidOptionsError(`caughtUpWithin must be an integer >= 0; got ${String(within)}`);
  const { retries, progressIntervalMs: _interval, onProgress, caughtUpWithin: _within, ...runnerOptions } = options;
  const runner = await createProjectionRunner({ ...runnerOptions, errorPolicy: { onFailure: 'stop', ...(retries === undefined ? {} : { retries }) } });
  const schema = options.schema ?? 'causeway';
  const key: ProjectionKey = { name: options.projection.name, version: options.projection.version, ...(options.tenantId === undefined ? {} : { tenantId: options.tenantId }) };
  const emit = onProgress ?? ((_p: RebuildProgress, line: string) => console.error(`[causeway] ${line}`));

  let first: { at: number; applied: number } | null = null;
  // The high-water mark to pass: the head at the first measurement (null: the log was empty).
  let target: LogPosition | null | undefined;
  let timer: ReturnType<typeof setInterval> | null = null;
  let emittedAt = 0;
  let measuring = false;
  const caughtUp = new Promise<RebuildProgress>((resolve, reject) => {
    const progressOf = (m: ProjectionLagMeasurement, now: number): RebuildProgress => {
      // Averaged over this run so far: steadier than the last interval, which may hold no commit.
      first ??= { at: now, applied: m.applied };
      const rate = now <= first.at ? 0 : ((m.applied - first.applied) * 1000) / (now - first.at);
      if (target === undefined) target = m.head === null ? null : parsePosition(m.head);
      const passed = m.checkpoint !== null && (target === null || comparePositions(parsePosition(m.checkpoint), target) >= 0);
      return {
        projection: key.name,
        version: key.version,
        ...(key.tenantId === undefined ? {} : { tenantId: key.tenantId }),
        checkpoint: m.checkpoint,
        head: m.head,
        applied: m.applied,
        eventsBehind: m.eventsBehind,
        eventsPerSecond: rate,
        etaSeconds: rate > 0 ? m.eventsBehind / rate : null,
        caughtUp: passed && m.eventsBehind <= within,
      };
    };
    const tick = async (): Promise<void> => {
      if (measuring) return;
      measuring = true;
      try {
        const now = Date.now();
        const progress = progressOf(await measureProjectionLag(options.db, schema, key), now);
        if (progress.caughtUp || now - emittedAt >= intervalMs) {
          emittedAt = now;
          emit(progress, formatRebuildProgress(progress));
        }
        if (progress.caughtUp) {
          stopProgress();
          resolve(progress);
        }
      } catch {
        // A failed measurement only skips a progress line; the runner reports its own errors.
      } finally {
        measuring = false;
      }
    };
    // Catching up is checked more often than progress is printed, so the switch is not held back.
    timer = setInterval(() => void tick(), Math.min(intervalMs, 250));
    void tick();
    runner.done.then(
      () => {
        stopProgress();
        reject(new ClosedError(`rebuild of ${projectionLabel(key)} (stopped before it caught up)`));
      },
      (error: unknown) => {
        stopProgress();
        reject(error);
      },
    );
  });
  caughtUp.catch(() => undefined);
  function stopProgress(): void {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  return {
    runner,
    caughtUp,
    async switchLive() {
      await caughtUp;
      return setLiveProjectionVersion(options.db, { schema, name: key.name, version: key.version });
    },
    async stop() {
      stopProgress();
      await runner.stop();
    },
  };
}
