import type { LogPosition, RecordedEvent } from './envelope.js';
import type { ReadAllResult, Subscription } from './event-store.js';

export interface CatchUpSource {
  read(after: LogPosition, limit: number): Promise<ReadAllResult>;
  /** Registers a wake-up callback (NOTIFY, in-process signal); returns the unregister function. */
  onWake(wake: () => void): () => void;
  /**
   * Optional, for gap-safe stores: whether entries after `after` are committed but not readable
   * yet (held below the read horizon by an older transaction still running). With it, a read
   * that comes back empty right after a batch is followed by this check instead of a sleep until
   * the next wake-up (the NOTIFY of those entries has come already), and the loop re-reads soon
   * only while entries wait.
   */
  heldBack?(after: LogPosition): Promise<boolean>;
}

/** Re-reads while entries wait below the horizon (sources with heldBack): 5, 10, 20, 40, then every 50 ms. */
const CHASE_MIN_MS = 5;
const CHASE_MAX_MS = 50;

export interface CatchUpOptions {
  readonly after: LogPosition;
  readonly batchSize: number;
  readonly pollIntervalMs: number;
}

/**
 * The catch-up loop shared by every store. Idle cost: one read per `pollIntervalMs`, nothing
 * more. After a wake-up that finds nothing readable (an older transaction still holds the read
 * horizon back), it re-reads at 5, 10, 20 ... ms until the poll interval, so a late commit is
 * picked up quickly without a busy loop. A source with `heldBack` is asked after a read that
 * found nothing (following a wake-up or a batch): the loop re-reads at 5, 10, 20, 40, then every
 * 50 ms while entries wait, and sleeps until a wake-up or the poll once none does. Read errors
 * are retried with the same backoff; a handler error ends the subscription. After a full batch
 * the next read starts while the handler runs (one read ahead, same positions and order), so a
 * reader that is catching up, such as a relay, reads and publishes at the same time.
 */
export function runCatchUpSubscription(
  source: CatchUpSource,
  options: CatchUpOptions,
  handler: (events: readonly RecordedEvent[]) => Promise<void>,
): Subscription {
  let position = options.after;
  let stopped = false;
  let wakeSignal: (() => void) | null = null;
  let woken = false;
  const unregister = source.onWake(() => {
    woken = true;
    wakeSignal?.();
  });

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wakeSignal = null;
        resolve();
      }
      wakeSignal = done;
    });

  // A wake-up counts from when a read starts: one that arrives while a read-ahead is out is kept.
  const read = (after: LogPosition): Promise<ReadAllResult> => {
    woken = false;
    return source.read(after, options.batchSize);
  };

  const loop = async (): Promise<void> => {
    let chase = 0;
    let ahead: Promise<ReadAllResult> | null = null;
    try {
      while (!stopped) {
        let result: ReadAllResult;
        try {
          result = await (ahead ?? read(position));
        } catch {
          ahead = null;
          if (stopped) break;
          chase = chase === 0 ? 5 : Math.min(chase * 2, options.pollIntervalMs);
          await sleep(chase);
          continue;
        }
        ahead = null;
        if (result.events.length > 0) {
          if (result.events.length >= options.batchSize) {
            ahead = read(result.next);
            ahead.catch(() => undefined); // awaited on the next turn; unobserved if the handler throws
          }
          await handler(result.events);
          position = result.next;
          // Should the next read find nothing, entries committed meanwhile may wait below the
          // horizon, their wake-up spent: with heldBack the loop checks rather than sleeps.
          chase = source.heldBack === undefined ? 0 : CHASE_MIN_MS;
          continue;
        }
        if (stopped) break;
        if (woken) {
          chase = CHASE_MIN_MS;
          continue;
        }
        if (chase > 0 && source.heldBack !== undefined && !(await source.heldBack(position).catch(() => true))) chase = 0;
        if (stopped) break;
        if (chase > 0) {
          await sleep(chase);
          if (source.heldBack === undefined) chase = chase * 2 > options.pollIntervalMs ? 0 : chase * 2;
          else chase = Math.min(chase * 2, CHASE_MAX_MS, options.pollIntervalMs);
        } else {
          await sleep(options.pollIntervalMs);
          if (woken) chase = CHASE_MIN_MS;
        }
      }
    } finally {
      unregister();
    }
  };

  const done = loop();
  // A failed handler surfaces through `done`; keep an unobserved rejection from crashing the process.
  done.catch(() => undefined);
  return {
    get position() {
      return position;
    },
    done,
    async stop() {
      stopped = true;
      wakeSignal?.();
      await done.catch(() => undefined);
    },
  };
}
