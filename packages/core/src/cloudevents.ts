import { envelopeProblems, isRfc3339Timestamp, type EventEnvelope, type Metadata } from './envelope.js';
import { SchemaError } from './errors.js';

/**
 * CloudEvents 1.0 attributes of an event. Extensions: tenantid, correlationid, causationid,
 * eventversion, recordedtime, sequence, plus one per metadata key (metadata keys already follow
 * the extension-name rule). `subject` is the stream id when the event was stored.
 */
export interface CloudEventAttributes {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: unknown;
  readonly subject?: string;
  readonly dataschema?: string;
  readonly [extension: string]: unknown;
}

export interface ToCloudEventOptions {
  /** URI of the data's JSON Schema (the schema registry's address for type@version). */
  readonly dataschema?: string;
}

/** Stream facts a stored event adds; all optional so plain envelopes map too. */
export interface StreamFacts {
  readonly streamId?: string;
  readonly streamVersion?: number;
  readonly recordedAt?: string;
}

export function toCloudEvent(event: EventEnvelope & StreamFacts, options: ToCloudEventOptions = {}): CloudEventAttributes {
  const attributes: Record<string, unknown> = {
    specversion: '1.0',
    id: event.eventId,
    source: event.producer,
    type: event.eventType,
    time: event.occurredAt,
    datacontenttype: 'application/json',
    data: event.data,
    tenantid: event.tenantId,
    correlationid: event.correlationId,
    eventversion: event.eventVersion,
  };
  if (event.causationId !== null) attributes.causationid = event.causationId;
  if (event.streamId !== undefined) attributes.subject = event.streamId;
  if (event.streamVersion !== undefined) attributes.sequence = String(event.streamVersion);
  if (event.recordedAt !== undefined) attributes.recordedtime = event.recordedAt;
  if (options.dataschema !== undefined) attributes.dataschema = options.dataschema;
  for (const [key, value] of Object.entries(event.metadata)) attributes[key] = value;
  return attributes as CloudEventAttributes;
}

const KNOWN = new Set([
  'specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'data', 'data_base64', 'subject', 'dataschema',
  'tenantid', 'correlationid', 'causationid', 'eventversion', 'sequence', 'recordedtime',
]);

export interface FromCloudEventOptions {
  /** `data` came straight from JSON.parse, so the check that it is plain JSON can be skipped. */
  readonly dataFromJsonText?: boolean;
}

export interface DecodedCloudEvent {
  readonly envelope: EventEnvelope;
  readonly streamId?: string;
  readonly streamVersion?: number;
  readonly recordedAt?: string;
  readonly dataschema?: string;
}

/**
 * Rebuilds the envelope from CloudEvents attributes (as an SDK or a binary-mode transport hands
 * them over: extensions may arrive as strings). Absent `data` is null: the SDK drops null data in
 * structured mode. Throws SchemaError naming every missing or bad attribute.
 */
export function fromCloudEvent(attributes: Readonly<Record<string, unknown>>, options: FromCloudEventOptions = {}): DecodedCloudEvent {
  const problems: string[] = [];
  if (attributes.specversion !== '1.0') problems.push(`specversion must be "1.0"; got ${JSON.stringify(attributes.specversion)}`);
  const ct = attributes.datacontenttype;
  if (ct !== undefined && typeof ct === 'string' && !/^application\/([a-z.+-]*\+)?json\b/.test(ct)) {
    problems.push(`datacontenttype must be JSON; got ${JSON.stringify(ct)}`);
  }
  const version = typeof attributes.eventversion === 'string' ? Number(attributes.eventversion) : attributes.eventversion ?? 1;
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (KNOWN.has(key) || value === undefined) continue;
    if (typeof value === 'string') metadata[key] = value;
    else if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) metadata[key] = String(value);
    else problems.push(`extension "${key}" must be a string, a finite number or a boolean; got ${value === null ? 'null' : typeof value}`);
  }
  const sequence = streamVersionOf(attributes.sequence);
  if (Number.isNaN(sequence)) {
    problems.push(`sequence must be a stream version (a decimal integer >= 1); got ${preview(attributes.sequence)}`);
  }
  const recordedtime = attributes.recordedtime;
  if (recordedtime !== undefined && !isRfc3339Timestamp(recordedtime)) {
    problems.push(`recordedtime must be an RFC 3339 timestamp; got ${preview(recordedtime)}`);
  }
  if (attributes.data === undefined && attributes.data_base64 !== undefined) {
    problems.push('data_base64 is not supported; JSON data must travel as data');
  }
  const envelope: EventEnvelope = {
    eventId: attributes.id as string,
    eventType: attributes.type as string,
    eventVersion: version as number,
    tenantId: attributes.tenantid as string,
    occurredAt: attributes.time as string,
    correlationId: attributes.correlationid as string,
    causationId: (attributes.causationid as string | undefined) ?? null,
    producer: attributes.source as string,
    data: attributes.data === undefined ? null : attributes.data,
    metadata: metadata as Metadata,
  };
  problems.push(...envelopeProblems(envelope, true, options.dataFromJsonText === true));
  if (problems.length > 0) throw new SchemaError(problems.map((p) => `cloudevent: ${p}`));
  const decoded: { -readonly [K in keyof DecodedCloudEvent]: DecodedCloudEvent[K] } = { envelope };
  if (typeof attributes.subject === 'string') decoded.streamId = attributes.subject;
  if (sequence !== undefined) decoded.streamVersion = sequence;
  if (recordedtime !== undefined) decoded.recordedAt = recordedtime as string;
  if (typeof attributes.dataschema === 'string') decoded.dataschema = attributes.dataschema;
  return decoded;
}

/**
 * The stream version a `sequence` carries: undefined when absent, NaN unless it is a decimal
 * integer >= 1 (text as toCloudEvent writes it, or a number from a lenient SDK).
 */
function streamVersionOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 1 ? value : Number.NaN;
  if (typeof value !== 'string' || value.length === 0) return Number.NaN;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return Number.NaN;
  }
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 1 ? n : Number.NaN;
}

function preview(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value === 'object' && value !== null ? typeof value : String(value);
}
