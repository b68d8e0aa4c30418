import type { RecordedEvent } from './envelope.js';
import { HandlerError } from './errors.js';
import { formatPosition } from './position.js';
import { defineProjection, projectionLabel, type Projection, type ProjectionBatchHandler, type ProjectionHandler } from './projection.js';

/**
 * A projection's handler (or applyBatch) threw; `cause` is its error. `event` names the culprit
 * when one event was being applied, and is null when an applyBatch run of several events failed
 * (the error policy then applies them one by one to find it).
 */
export class ProjectionHandlerError extends HandlerError {
  readonly event: Pick<RecordedEvent, 'eventId' | 'eventType' | 'position'> | null;
  constructor(message: string, event: RecordedEvent | null, cause: unknown) {
    super(message, { cause });
    this.event = event === null ? null : { eventId: event.eventId, eventType: event.eventType, position: event.position };
  }
}

/** Applies a list of events (in log order) to a projection's read model inside `tx`. */
export type ProjectionApplier<TTx> = (events: readonly RecordedEvent[], tx: TTx) => Promise<void>;

/**
 * Compiles a projection once into the function every feed uses (the async runner, inline
 * projections, broker-fed projections): per-event handlers and `applyBatch` runs in log order,
 * as described on `Projection`. A throw becomes a HandlerError naming the event (or the run of
 * events) and the projection, with the handler's error as `cause`.
 */
export function projectionApplier<TTx>(projection: Projection<TTx>): ProjectionApplier<TTx> {
  defineProjection(projection);
  const label = projectionLabel(projection);
  const handlers = projection.handlers ?? {};
  const batchTypes = new Set(projection.batchTypes ?? []);
  const applyBatch = projection.applyBatch;
  const handlerOf = (type: string): ProjectionHandler<TTx> | undefined => (Object.hasOwn(handlers, type) ? handlers[type] : undefined);

  const runBatch = async (fn: ProjectionBatchHandler<TTx>, run: RecordedEvent[], tx: TTx): Promise<void> => {
    try {
      await fn(run, tx);
    } catch (cause) {
      const first = run[0] as RecordedEvent;
      const last = run[run.length - 1] as RecordedEvent;
      const what = run.length === 1
        ? `${first.eventType} ${first.eventId} at ${formatPosition(first.position)}`
        : `${run.length} events from ${formatPosition(first.position)} to ${formatPosition(last.position)}`;
      throw new ProjectionHandlerError(`${label} applyBatch failed on ${what}`, run.length === 1 ? first : null, cause);
    }
  };

  if (applyBatch !== undefined && Object.keys(handlers).length === 0) {
    // Batch-only: one filter pass and (at most) one call.
    return async (events, tx) => {
      const run = events.every((e) => batchTypes.has(e.eventType)) ? (events as RecordedEvent[]) : events.filter((e) => batchTypes.has(e.eventType));
      if (run.length > 0) await runBatch(applyBatch, run, tx);
    };
  }

  return async (events, tx) => {
    let run: RecordedEvent[] = [];
    for (const event of events) {
      if (applyBatch !== undefined && batchTypes.has(event.eventType)) {
        run.push(event);
        continue;
      }
      const handler = handlerOf(event.eventType);
      if (handler === undefined) continue;
      if (run.length > 0 && applyBatch !== undefined) {
        await runBatch(applyBatch, run, tx);
        run = [];
      }
      try {
        await handler(event, tx);
      } catch (cause) {
        throw new ProjectionHandlerError(`${label} failed on ${event.eventType} ${event.eventId} at ${formatPosition(event.position)}`, event, cause);
      }
    }
    if (run.length > 0 && applyBatch !== undefined) await runBatch(applyBatch, run, tx);
  };
}
