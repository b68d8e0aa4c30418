/**
 * How far a projection is behind the log, as a runner measures it (one query against the store's
 * database). Handed to the `onLag` metric hook; the observability layer turns it into gauges.
 */
export interface ProjectionLag {
  readonly projection: string;
  readonly version: number;
  /** Set for a projection partitioned by tenant: the lag of this tenant's partition. */
  readonly tenantId?: string;
  /** Committed events after the checkpoint (in the partition's scope). 0 when caught up. */
  readonly eventsBehind: number;
  /** Age of the oldest event not applied yet, in seconds (database clock); 0 when caught up. */
  readonly secondsBehind: number;
  /** `Date.now()` just before the measurement started: every write that had committed by then is counted. */
  readonly measuredAt: number;
}

/** The metric hook: called after each measurement (no metrics library is involved). */
export type ProjectionLagHook = (lag: ProjectionLag) => void;
