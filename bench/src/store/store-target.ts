import type { CartState, ItemAdded } from './workload.js';

export type SystemName = 'causeway' | 'causeway-pglite' | 'raw-pg' | 'raw-pglite' | 'emmett';

export interface LoadResult {
  readonly version: number;
  readonly state: CartState;
}

/**
 * One system under test. The harness tracks stream versions, so every append names the exact
 * version the stream is at (0 = new stream); systems that check versions check it, raw ones don't.
 */
export interface StoreTarget {
  readonly system: SystemName;
  /** What `load` does on this system, printed next to its row. */
  readonly loadNote: string;
  append(streamId: string, version: number, events: readonly ItemAdded[]): Promise<void>;
  /** Reads the whole stream in version order; resolves to the number of events read. */
  read(streamId: string): Promise<number>;
  /** Stores a snapshot, where the system has them (Emmett has none: it is left undefined). */
  saveSnapshot?(streamId: string, version: number, state: CartState): Promise<void>;
  /** Rebuilds the stream's state the way the system would for a command. */
  load(streamId: string): Promise<LoadResult>;
  /** Releases connections and drops what the target created (schema, database). */
  close(): Promise<void>;
}
