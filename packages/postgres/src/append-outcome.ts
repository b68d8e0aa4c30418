import { ConcurrencyError, StreamClosedError, type AppendResult, type ExpectedVersion, type PreparedEvent, type RecordedEvent, type StreamRef } from '@causeway/core';
import { writtenEvents } from './event-rows.js';

/** The shapes an append takes on its way through append_batch, and how a result row becomes an outcome. */

export interface AppendRequest {
  readonly stream: StreamRef;
  readonly prepared: readonly PreparedEvent[];
  readonly expected: ExpectedVersion;
  readonly streamType: string | null;
  /** The caller chose the event ids, so a refused append may be a re-append of stored events. */
  readonly idsSupplied: boolean;
}

/** The append's result, an error for that caller, or a version conflict that may be a re-append. */
export type AppendOutcome = { readonly result: AppendResult } | { readonly error: Error } | { readonly conflict: ConcurrencyError };

export interface AppendRow {
  /** Stream version after the append; null when the append was refused. */
  version: string | null;
  tx: string | null;
  seqs: string[] | null;
  recorded: string[] | null;
}

/** The events of a batch, column by column, as the SQL takes them. */
export interface EventColumns {
  append: number[];
  id: string[];
  type: string[];
  version: number[];
  occurred: string[];
  correlation: string[];
  causation: (string | null)[];
  producer: string[];
  data: string[];
  metadata: string[];
}

export interface StreamState {
  version: string;
  deleted: boolean;
  archived: boolean;
}

export function toOutcome(request: AppendRequest, row: AppendRow, state: StreamState | null): AppendOutcome {
  const { stream } = request;
  if (row.version !== null) {
    const version = Number(row.version);
    const events = writtenEvents(
      request.prepared.map((p) => p.envelope),
      stream.streamId,
      version - request.prepared.length + 1,
      row.tx as string,
      row.seqs as string[],
      row.recorded as string[],
    );
    return { result: { nextExpectedVersion: version, written: true, events, position: (events[events.length - 1] as RecordedEvent).position } };
  }
  if (state?.deleted) return { error: new StreamClosedError(stream.streamId, 'deleted') };
  if (state?.archived) return { error: new StreamClosedError(stream.streamId, 'archived') };
  return { conflict: new ConcurrencyError(stream.tenantId, stream.streamId, request.expected, state ? Number(state.version) : 0) };
}

export function compareStreams(a: StreamRef, b: StreamRef): number {
  if (a.tenantId !== b.tenantId) return a.tenantId < b.tenantId ? -1 : 1;
  if (a.streamId !== b.streamId) return a.streamId < b.streamId ? -1 : 1;
  return 0;
}
