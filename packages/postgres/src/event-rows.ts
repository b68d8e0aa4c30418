import type { EventEnvelope, LogPosition, RecordedEvent } from '@causeway/core';

/** Columns selected for a recorded event, cast so both drivers return the same JS types. */
/** Select it from `events ev`; callers must qualify their own ORDER BY (ev.tx, ev.seq). */
export const EVENT_COLUMNS = `ev.seq::text AS seq, ev.tx::text AS tx, ev.tenant_id, ev.stream_id, ev.stream_version::integer AS stream_version,
  ev.event_id::text AS event_id, ev.event_type, ev.event_version,
  to_char(ev.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS occurred_at,
  to_char(ev.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
  ev.correlation_id, ev.causation_id, ev.producer, ev.data, ev.metadata`;

export interface EventRow {
  seq: string;
  tx: string;
  tenant_id: string;
  stream_id: string;
  stream_version: number;
  event_id: string;
  event_type: string;
  event_version: number;
  occurred_at: string;
  recorded_at: string;
  correlation_id: string;
  causation_id: string | null;
  producer: string;
  data: unknown;
  metadata: Record<string, string>;
}

export function rowToEvent(r: EventRow): RecordedEvent {
  return {
    eventId: r.event_id,
    eventType: r.event_type,
    eventVersion: r.event_version,
    tenantId: r.tenant_id,
    occurredAt: r.occurred_at,
    correlationId: r.correlation_id,
    causationId: r.causation_id,
    producer: r.producer,
    data: r.data,
    metadata: r.metadata,
    streamId: r.stream_id,
    streamVersion: r.stream_version,
    position: { tx: BigInt(r.tx), seq: BigInt(r.seq) },
    recordedAt: r.recorded_at,
  };
}

/** The recorded form of events just written, built from what the append returned. */
export function writtenEvents(
  envelopes: readonly EventEnvelope[],
  streamId: string,
  firstVersion: number,
  tx: string,
  seqs: readonly string[],
  recordedAt: readonly string[],
): RecordedEvent[] {
  const txId = BigInt(tx);
  // Fields listed rather than spread: an object spread per event showed up in append profiles.
  return envelopes.map((e, i) => {
    const position: LogPosition = { tx: txId, seq: BigInt(seqs[i] as string) };
    return {
      eventId: e.eventId,
      eventType: e.eventType,
      eventVersion: e.eventVersion,
      tenantId: e.tenantId,
      occurredAt: e.occurredAt,
      correlationId: e.correlationId,
      causationId: e.causationId,
      producer: e.producer,
      data: e.data,
      metadata: e.metadata,
      streamId,
      streamVersion: firstVersion + i,
      position,
      recordedAt: recordedAt[i] as string,
    };
  });
}
