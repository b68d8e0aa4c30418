import { SchemaError } from './errors.js';
import { checkEventTypeName } from './event-type-name.js';
import { jsonProblem, textProblem } from './json.js';
import { tenantIdProblem } from './names.js';
import { isUuid, uuidv7 } from './uuid.js';

/**
 * Metadata travels as CloudEvents extension attributes, so keys follow the extension-name rule
 * (lower-case letters and digits, at most 20). Values are strings: binary-mode transports carry
 * every attribute as text, so only strings round-trip exactly across every broker.
 */
export type Metadata = Readonly<Record<string, string>>;

/** The event as the producer made it. Field names map 1:1 to the snake_case columns. */
export interface EventEnvelope<TType extends string = string, TData = unknown> {
  /** UUIDv7; the idempotency key of the event everywhere. */
  readonly eventId: string;
  readonly eventType: TType;
  /** Schema version of `data`, an integer >= 1. */
  readonly eventVersion: number;
  readonly tenantId: string;
  /** RFC 3339 UTC time on the producer's clock, to the millisecond (`Date#toISOString`). Never used for ordering. */
  readonly occurredAt: string;
  readonly correlationId: string;
  /** Id of the event or message that caused this one; null for the first of a correlation. */
  readonly causationId: string | null;
  /** Name of the producing service, e.g. `shop.orders`; CloudEvents `source`. */
  readonly producer: string;
  readonly data: TData;
  readonly metadata: Metadata;
}

/** What a caller hands to `append`: the type and data, everything else optional. */
export interface NewEvent<TType extends string = string, TData = unknown> {
  readonly eventType: TType;
  readonly data: TData;
  readonly eventId?: string;
  readonly eventVersion?: number;
  /** Must equal the stream's tenant when given. */
  readonly tenantId?: string;
  readonly occurredAt?: string;
  readonly correlationId?: string;
  readonly causationId?: string | null;
  readonly producer?: string;
  readonly metadata?: Metadata;
}

/** Where an event sits in the global log: ordered by transaction id, then sequence. See event-store.ts. */
export interface LogPosition {
  readonly tx: bigint;
  readonly seq: bigint;
}

/** An event as the store recorded it. */
export interface RecordedEvent<TType extends string = string, TData = unknown> extends EventEnvelope<TType, TData> {
  readonly streamId: string;
  /** 1 for the first event of a stream. */
  readonly streamVersion: number;
  readonly position: LogPosition;
  /** RFC 3339 time on the database clock when the event was written. */
  readonly recordedAt: string;
}

/** Context of the message being handled, passed on to the events it causes. */
export interface CausationContext {
  readonly correlationId: string;
  readonly causationId: string | null;
}

/** Starts a new correlation, e.g. at an HTTP request. */
export function startCorrelation(correlationId: string = uuidv7()): CausationContext {
  return { correlationId, causationId: null };
}

/** Context for events caused by `cause`: causation = the cause's id, correlation carried over. */
export function causedBy(cause: Pick<EventEnvelope, 'eventId' | 'correlationId'>): CausationContext {
  return { correlationId: cause.correlationId, causationId: cause.eventId };
}

export interface EnvelopeDefaults {
  readonly tenantId: string;
  readonly producer: string;
  readonly correlation?: CausationContext;
  /** Skip the past-tense naming rule (for legacy event types). Default false. */
  readonly allowAnyTypeName?: boolean;
}

const METADATA_KEY = /^[a-z0-9]{1,20}$/;
const RESERVED_KEYS = new Set([
  'id', 'source', 'specversion', 'type', 'datacontenttype', 'dataschema', 'subject', 'time', 'data',
  'data_base64', 'tenantid', 'correlationid', 'causationid', 'recordedtime', 'eventversion', 'sequence',
]);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * RFC 3339 date-time (section 5.6) whose fields are in range (section 5.7): the day exists in its
 * month, hour 0-23, minute and second 0-59, offset up to 23:59. Date.parse alone would roll
 * 2024-02-30 over to March 1 and 24:00 to the next day. Leap second 60 is refused: Date cannot hold it.
 */
export function isRfc3339Timestamp(value: unknown): value is string {
  if (typeof value !== 'string' || !RFC3339.test(value)) return false;
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 2);
  const day = digits(value, 8, 2);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0))) return false;
  if (digits(value, 11, 2) > 23 || digits(value, 14, 2) > 59 || digits(value, 17, 2) > 59) return false;
  if (value.endsWith('Z')) return true;
  return digits(value, value.length - 5, 2) <= 23 && digits(value, value.length - 2, 2) <= 59;
}

/** The decimal number in `count` characters from `start`; the caller has checked they are digits. */
function digits(s: string, start: number, count: number): number {
  let n = 0;
  for (let i = start; i < start + count; i++) n = n * 10 + s.charCodeAt(i) - 48;
  return n;
}

/**
 * Completes and validates a new event. Throws SchemaError naming every rule broken, so bad input
 * never reaches a write. The data is checked to be JSON, not copied.
 */
export function createEvent<TType extends string, TData>(input: NewEvent<TType, TData>, defaults: EnvelopeDefaults): EventEnvelope<TType, TData> {
  const eventId = input.eventId ?? uuidv7();
  const correlation = defaults.correlation;
  const envelope: EventEnvelope<TType, TData> = {
    eventId,
    eventType: input.eventType,
    eventVersion: input.eventVersion ?? 1,
    tenantId: input.tenantId ?? defaults.tenantId,
    occurredAt: input.occurredAt === undefined ? new Date().toISOString() : normalizeTime(input.occurredAt),
    correlationId: input.correlationId ?? correlation?.correlationId ?? eventId,
    causationId: input.causationId !== undefined ? input.causationId : (correlation?.causationId ?? null),
    producer: input.producer ?? defaults.producer,
    data: input.data,
    metadata: input.metadata ?? {},
  };
  const problems = envelopeProblems(envelope, defaults.allowAnyTypeName ?? false);
  if (input.tenantId !== undefined && input.tenantId !== defaults.tenantId) {
    problems.push(`event tenant "${input.tenantId}" differs from the stream's tenant "${defaults.tenantId}"`);
  }
  if (problems.length > 0) throw new SchemaError(problems);
  return envelope;
}

/**
 * Every rule a complete envelope breaks; empty when it is valid. `dataFromJsonText` skips the walk
 * over `data` when it was just produced by JSON.parse (it is JSON by construction).
 */
export function envelopeProblems(e: EventEnvelope, allowAnyTypeName = false, dataFromJsonText = false): string[] {
  const problems: string[] = [];
  if (!isUuid(e.eventId)) problems.push(`eventId must be a lower-case UUID; got ${JSON.stringify(e.eventId)}`);
  if (allowAnyTypeName) {
    if (typeof e.eventType !== 'string' || e.eventType.length === 0 || e.eventType.length > 200) {
      problems.push('eventType must be a string of 1 to 200 characters');
    } else pushTextProblem(problems, 'eventType', e.eventType);
  } else {
    problems.push(...checkEventTypeName(e.eventType).problems);
  }
  if (!Number.isInteger(e.eventVersion) || e.eventVersion < 1 || e.eventVersion > 2 ** 31 - 1) {
    problems.push(`eventVersion must be an integer >= 1; got ${String(e.eventVersion)}`);
  }
  const tenant = tenantIdProblem(e.tenantId);
  if (tenant) problems.push(tenant);
  if (!isRfc3339Timestamp(e.occurredAt) || Number.isNaN(Date.parse(e.occurredAt))) {
    problems.push(`occurredAt must be an RFC 3339 timestamp; got ${JSON.stringify(e.occurredAt)}`);
  }
  if (typeof e.correlationId !== 'string' || e.correlationId.length === 0 || e.correlationId.length > 200) {
    problems.push('correlationId must be a string of 1 to 200 characters');
  } else pushTextProblem(problems, 'correlationId', e.correlationId);
  if (e.causationId !== null && (typeof e.causationId !== 'string' || e.causationId.length === 0 || e.causationId.length > 200)) {
    problems.push('causationId must be null or a string of 1 to 200 characters');
  } else if (e.causationId !== null) pushTextProblem(problems, 'causationId', e.causationId);
  if (typeof e.producer !== 'string' || e.producer.length === 0 || e.producer.length > 200) {
    problems.push('producer must be a string of 1 to 200 characters');
  } else pushTextProblem(problems, 'producer', e.producer);
  if (e.data === undefined) problems.push('data is missing');
  else if (!dataFromJsonText) {
    const p = jsonProblem(e.data);
    if (p) problems.push(p);
  }
  problems.push(...metadataProblems(e.metadata));
  return problems;
}

function pushTextProblem(problems: string[], field: string, value: string): void {
  const p = textProblem(field, value);
  if (p) problems.push(p);
}

/** RFC 3339 text in the canonical `toISOString` form; invalid input is kept so validation names it. */
function normalizeTime(value: string): string {
  if (!isRfc3339Timestamp(value)) return value;
  const t = Date.parse(value);
  return Number.isNaN(t) ? value : new Date(t).toISOString();
}

export function metadataProblems(metadata: unknown): string[] {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return ['metadata must be an object'];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(key)) {
      problems.push(`metadata key "${key}" must match ^[a-z0-9]{1,20}$ (the CloudEvents extension-name rule)`);
    } else if (RESERVED_KEYS.has(key)) {
      problems.push(`metadata key "${key}" is reserved for a CloudEvents attribute`);
    }
    if (typeof value !== 'string') problems.push(`metadata "${key}" must be a string`);
    else if (value.length > 4096) problems.push(`metadata "${key}" must be at most 4096 characters`);
    else pushTextProblem(problems, `metadata "${key}"`, value);
  }
  return problems;
}
