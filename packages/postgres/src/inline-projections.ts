import { InvalidOptionsError, comparePositions, projectionApplier, type Projection, type RecordedEvent } from '@causeway/core';
import type { SqlExecutor } from './sql-executor.js';

/** What the store calls inside an append's transaction with the events the append wrote. */
export type InlineProjectionHook = (events: readonly RecordedEvent[], tx: SqlExecutor) => Promise<void>;

/**
 * Inline projections run inside the append's transaction: the events and their read-model writes
 * commit together or not at all, so a read right after `append` resolves already sees them (no
 * waitFor). A throwing projection fails the append. They keep no checkpoint: they see the events
 * appended while they are registered, so a new inline projection (or a new version) is first
 * built from history by an async runner of the same definition.
 *
 * Events reach the hook in log order; a coalesced transaction carries several appends' events at
 * once, so write the read model with `applyBatch` to keep one statement per transaction.
 * Returns null for an empty list, which keeps the append path exactly as it is without them.
 */
export function inlineProjections(projections: readonly Projection<SqlExecutor>[]): InlineProjectionHook | null {
  if (projections.length === 0) return null;
  const names = new Set<string>();
  const appliers = projections.map((p) => {
    const id = `${p.name} v${p.version}`;
    if (names.has(id)) throw new InvalidOptionsError(`inline projection ${id} is registered twice`);
    names.add(id);
    return projectionApplier(p);
  });
  return async (events, tx) => {
    const ordered = events.length > 1 ? [...events].sort((a, b) => comparePositions(a.position, b.position)) : events;
    for (const apply of appliers) await apply(ordered, tx);
  };
}
