/**
 * What the projections suite writes and what the read model must hold afterwards. Every event is
 * a pure function of (stream, version), so each system's log carries the same events per stream
 * in the same order, and the expected read model is computed here, not read back from a system.
 */

export const ITEM_ADDED = 'bench.item.added';
export const ITEM_REMOVED = 'bench.item.removed';
export const DISCOUNT_APPLIED = 'bench.discount.applied';
export const EVENT_TYPES: readonly string[] = [ITEM_ADDED, ITEM_REMOVED, DISCOUNT_APPLIED];

/** Emmett reads the text before the first '-' of a stream name as its type; Causeway ignores it. */
export const streamId = (stream: number): string => `cart-${String(stream).padStart(5, '0')}`;

export type CartEventData =
  | { readonly sku: string; readonly qty: number; readonly priceCents: number; readonly note: string }
  | { readonly code: string; readonly amountCents: number };

export interface CartEvent {
  readonly type: string;
  readonly data: CartEventData;
}

/** Event `version` (1-based) of stream `stream`: mostly items added, some removed, a few discounts; ~180 bytes of JSON. */
export function cartEvent(stream: number, version: number): CartEvent {
  if ((version + stream) % 10 === 0) return { type: DISCOUNT_APPLIED, data: { code: 'SPRING', amountCents: 100 + ((stream + version) % 500) } };
  const item = {
    sku: `SKU-${String((stream * 31 + version) % 5_000).padStart(5, '0')}`,
    qty: 1 + ((stream + version) % 5),
    priceCents: 499 + ((stream * 7 + version * 13) % 9_000),
    note: 'gift wrap requested; leave at the side door after 5pm',
  };
  return (version + 2 * stream) % 7 === 0 ? { type: ITEM_REMOVED, data: { ...item, qty: 1 } } : { type: ITEM_ADDED, data: item };
}

/** The event's change to the cart's running total: the one piece of domain logic every system runs. */
export function totalDelta(type: string, data: unknown): number {
  const d = data as { qty?: number; priceCents?: number; amountCents?: number };
  if (type === ITEM_ADDED) return (d.qty as number) * (d.priceCents as number);
  if (type === ITEM_REMOVED) return -(d.qty as number) * (d.priceCents as number);
  if (type === DISCOUNT_APPLIED) return -(d.amountCents as number);
  throw new Error(`bench: unexpected event type ${type}`);
}

export interface ProjectionWorkload {
  readonly events: number;
  readonly streams: number;
  /** Events per append while seeding: the log interleaves streams in slices of this size. */
  readonly eventsPerAppend: number;
  /**
   * Concurrent appenders while seeding (not measured). 1 in both workloads: Emmett 0.42's consumer
   * reads in transaction order but resumes after the last global_position it handled, so on a log
   * written by concurrent appenders (commit order != sequence order) it silently skips events and
   * its read model comes out wrong (a quick run with 16 writers: about 1 event in 6 never reached
   * the handler, checkpoint at the end). One writer gives every system a log it can project correctly.
   */
  readonly seedWorkers: number;
  /** Events per read and per read-model transaction, the same for all three systems. */
  readonly batchSize: number;
  /** Catch-ups per system; each keeps its best. */
  readonly rounds: number;
  /** A system whose round took longer than this runs no further rounds (keeps the suite's time bounded). */
  readonly repeatBelowMs: number;
  /** A catch-up that takes longer than this fails. */
  readonly timeoutMs: number;
}

export const FULL_WORKLOAD: ProjectionWorkload = {
  events: 200_000,
  streams: 2_000,
  eventsPerAppend: 25,
  seedWorkers: 1,
  batchSize: 1_000,
  rounds: 3,
  repeatBelowMs: 15_000,
  timeoutMs: 360_000,
};

export const QUICK_WORKLOAD: ProjectionWorkload = {
  events: 20_000,
  streams: 200,
  eventsPerAppend: 25,
  seedWorkers: 1,
  batchSize: 1_000,
  rounds: 3,
  repeatBelowMs: 15_000,
  timeoutMs: 60_000,
};

export function validateWorkload(w: ProjectionWorkload): void {
  if (w.events % (w.streams * w.eventsPerAppend) !== 0) {
    throw new Error(`bench: events (${w.events}) must be a multiple of streams x eventsPerAppend (${w.streams * w.eventsPerAppend})`);
  }
}

/**
 * Seeds a log through `append(stream, expectedVersion, events)`: `seedWorkers` appenders, each
 * owning every seedWorkers-th stream and appending `eventsPerAppend` events to each of its streams
 * in turn, so the log interleaves streams the way concurrent writers would.
 */
export async function seedLog(
  w: ProjectionWorkload,
  append: (stream: number, expectedVersion: number, events: readonly CartEvent[]) => Promise<void>,
  progress: (appended: number) => void,
): Promise<void> {
  const perStream = w.events / w.streams;
  let appended = 0;
  const worker = async (id: number): Promise<void> => {
    for (let from = 0; from < perStream; from += w.eventsPerAppend) {
      for (let stream = id; stream < w.streams; stream += w.seedWorkers) {
        const events = Array.from({ length: w.eventsPerAppend }, (_, i) => cartEvent(stream, from + i + 1));
        await append(stream, from, events);
        appended += events.length;
        progress(appended);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(w.seedWorkers, w.streams) }, (_, id) => worker(id)));
}
