import type { ReadModelDigest } from './read-model.js';

/**
 * One system catching a read model up from its own log. The log is seeded when the target is
 * created (not measured); each round starts again from position 0 with an empty read model.
 */
export interface CatchUpTarget {
  readonly system: string;
  /** What the system runs, printed with the results. */
  readonly note: string;
  /** Empties the read model and forgets the projection's position (not measured). */
  reset(round: number): Promise<void>;
  /**
   * The measured part: from "the projection starts at position 0" to "the read model holds every
   * event and the checkpoint is at the log's end". `applied(n)` is called as events are applied.
   */
  catchUp(round: number, applied: (events: number) => void): Promise<void>;
  /** Checks the checkpoint is at the log's end; resolves to the read model's digest. */
  verify(round: number): Promise<ReadModelDigest>;
  /** Releases connections and drops what the target created. */
  close(): Promise<void>;
}
