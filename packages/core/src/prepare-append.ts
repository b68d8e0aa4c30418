import { createEvent, type CausationContext, type EventEnvelope, type NewEvent } from './envelope.js';
import { SchemaError } from './errors.js';
import type { StreamRef } from './event-store.js';
import { utf8Length } from './json.js';
import { streamIdProblem, tenantIdProblem } from './names.js';
import { expectedVersionProblem } from './store-rules.js';

export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
/** At most this many events in one append. */
export const MAX_EVENTS_PER_APPEND = 10_000;

export interface PrepareOptions {
  readonly producer: string;
  /** Largest serialized data + metadata per event, in bytes. Default 1 MiB. */
  readonly maxEventBytes: number;
  readonly allowAnyTypeName: boolean;
  readonly correlation?: CausationContext;
  /** The append's expectedVersion, checked with the rest so one SchemaError names every problem. */
  readonly expectedVersion?: unknown;
}

export interface PreparedEvent {
  readonly envelope: EventEnvelope;
  readonly dataJson: string;
  readonly metadataJson: string;
}

/** Checks the stream name, the expected version, every envelope and every size limit before anything is written. */
export function prepareAppend(stream: StreamRef, events: readonly NewEvent[], options: PrepareOptions): PreparedEvent[] {
  const problems: string[] = [];
  const tenant = tenantIdProblem(stream?.tenantId);
  if (tenant) problems.push(tenant);
  const sid = streamIdProblem(stream?.streamId);
  if (sid) problems.push(sid);
  if (!Array.isArray(events) || events.length === 0) problems.push('append needs at least one event');
  else if (events.length > MAX_EVENTS_PER_APPEND) {
    problems.push(`append takes at most ${MAX_EVENTS_PER_APPEND} events; got ${events.length}`);
  }
  if ('expectedVersion' in options && options.expectedVersion !== undefined) {
    const p = expectedVersionProblem(options.expectedVersion);
    if (p) problems.push(p);
  }
  if (problems.length > 0) throw new SchemaError(problems);

  const prepared: PreparedEvent[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < events.length; i++) {
    const input = events[i] as NewEvent;
    let envelope: EventEnvelope;
    try {
      envelope = createEvent(input, {
        tenantId: stream.tenantId,
        producer: options.producer,
        allowAnyTypeName: options.allowAnyTypeName,
        ...(options.correlation ? { correlation: options.correlation } : {}),
      });
    } catch (e) {
      if (e instanceof SchemaError) throw new SchemaError(e.problems.map((p) => `event #${i}: ${p}`));
      throw e;
    }
    if (ids.has(envelope.eventId)) throw new SchemaError([`event #${i}: eventId ${envelope.eventId} appears twice in one append`]);
    ids.add(envelope.eventId);
    const dataJson = JSON.stringify(envelope.data);
    const metadataJson = JSON.stringify(envelope.metadata);
    const bytes = utf8Length(dataJson) + utf8Length(metadataJson);
    if (bytes > options.maxEventBytes) {
      throw new SchemaError([`event #${i} (${envelope.eventType}) is ${bytes} bytes; the limit is ${options.maxEventBytes} bytes`]);
    }
    prepared.push({ envelope, dataJson, metadataJson });
  }
  return prepared;
}
