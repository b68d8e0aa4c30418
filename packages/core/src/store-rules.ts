import type { LogPosition, RecordedEvent } from './envelope.js';
import { DuplicateEventError, InvalidOptionsError, SchemaError, type ExpectedVersion } from './errors.js';
import { ALL_TENANTS, type AppendResult, type ReadAllOptions, type ReadStreamOptions, type StreamRef, type SubscribeOptions } from './event-store.js';
import { streamIdProblem, tenantIdProblem } from './names.js';
import { LOG_START } from './position.js';

/** Rules every EventStore implementation applies the same way. */

export function validateStreamRef(stream: StreamRef): void {
  const problems = [tenantIdProblem(stream?.tenantId), streamIdProblem(stream?.streamId)].filter((p): p is string => p !== null);
  if (problems.length > 0) throw new SchemaError(problems);
}

export function expectedVersionProblem(expected: unknown): string | null {
  if (expected === 'any' || expected === 'no_stream' || expected === 'exists') return null;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) return null;
  return `expectedVersion must be a version number >= 0, 'any', 'no_stream' or 'exists'; got ${JSON.stringify(expected)}`;
}

export function checkExpectedVersion(expected: ExpectedVersion, exists: boolean, current: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return !exists;
  if (expected === 'exists') return exists;
  return current === expected;
}

/**
 * Idempotent re-append: when every event id is already stored, consecutively and in order, in this
 * stream at the position this append asked for, the append succeeds without writing. Ids stored
 * anywhere else are an error. Returns null when none of the ids is stored yet.
 */
export function matchIdempotentAppend(
  stream: StreamRef,
  existing: readonly (RecordedEvent | null)[],
  expected: ExpectedVersion,
): AppendResult | null {
  const found = existing.filter((e): e is RecordedEvent => e !== null);
  if (found.length === 0) return null;
  const first = found[0] as RecordedEvent;
  const startOk =
    typeof expected === 'number' ? first.streamVersion === expected + 1 : expected === 'no_stream' ? first.streamVersion === 1 : true;
  const inPlace =
    found.length === existing.length &&
    startOk &&
    found.every((e, i) => e.streamId === stream.streamId && e.tenantId === stream.tenantId && e.streamVersion === first.streamVersion + i);
  if (!inPlace) throw new DuplicateEventError(stream.streamId, found.map((e) => e.eventId));
  const last = found[found.length - 1] as RecordedEvent;
  return { nextExpectedVersion: last.streamVersion, written: false, events: found, position: last.position };
}

export function validateReadStream(options: ReadStreamOptions): void {
  const problems: string[] = [];
  if (options.direction !== undefined && options.direction !== 'forward' && options.direction !== 'backward') {
    problems.push(`direction must be 'forward' or 'backward'; got ${JSON.stringify(options.direction)}`);
  }
  for (const key of ['fromVersion', 'toVersion'] as const) {
    const v = options[key];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) problems.push(`${key} must be an integer >= 0`);
  }
  if (options.maxCount !== undefined && !(Number.isSafeInteger(options.maxCount) && options.maxCount >= 1)) {
    problems.push('maxCount must be an integer >= 1');
  }
  if (options.asOf !== undefined && Number.isNaN(asOfTime(options.asOf))) problems.push('asOf must be a valid Date or RFC 3339 string');
  if (problems.length > 0) throw new SchemaError(problems);
}

export function asOfTime(asOf: Date | string): number {
  return asOf instanceof Date ? asOf.getTime() : Date.parse(asOf);
}

/** Applies ReadStreamOptions to a stream's full, version-ordered event list. */
export function readStreamSlice(all: readonly RecordedEvent[], options: ReadStreamOptions): RecordedEvent[] {
  let upTo = options.toVersion ?? Number.MAX_SAFE_INTEGER;
  if (options.asOf !== undefined) {
    const t = asOfTime(options.asOf);
    let asOfVersion = 0;
    for (const e of all) if (Date.parse(e.recordedAt) <= t) asOfVersion = e.streamVersion;
    upTo = Math.min(upTo, asOfVersion);
  }
  const from = options.fromVersion ?? 0;
  const slice = all.filter((e) => e.streamVersion >= from && e.streamVersion <= upTo);
  if (options.direction === 'backward') slice.reverse();
  return options.maxCount !== undefined ? slice.slice(0, options.maxCount) : slice;
}

export function validateReadAll(options: ReadAllOptions): { after: LogPosition; limit: number } {
  const problems: string[] = [];
  if (options.tenantId !== ALL_TENANTS) {
    const p = tenantIdProblem(options.tenantId);
    if (p) problems.push(`${p} (pass ALL_TENANTS to read every tenant)`);
  }
  const limit = options.limit ?? 500;
  if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= 100_000)) problems.push('limit must be an integer from 1 to 100000');
  const after = options.after ?? LOG_START;
  if (typeof after?.tx !== 'bigint' || typeof after?.seq !== 'bigint' || after.tx < 0n || after.seq < 0n) {
    problems.push('after must be a LogPosition { tx: bigint, seq: bigint }');
  }
  if (options.eventTypes !== undefined && (!Array.isArray(options.eventTypes) || options.eventTypes.some((t) => typeof t !== 'string'))) {
    problems.push('eventTypes must be an array of strings');
  }
  if (problems.length > 0) throw new SchemaError(problems);
  return { after, limit };
}

/** One string per stream, for maps and batch keys (NUL cannot occur in a valid tenant or stream id). */
export function streamKey(stream: StreamRef): string {
  return `${stream.tenantId}\u0000${stream.streamId}`;
}

/** Defaults and checks of SubscribeOptions, the same for every store. */
export function validateSubscribe(options: SubscribeOptions): { after: LogPosition; batchSize: number; pollIntervalMs: number } {
  const { after, limit } = validateReadAll({ ...options, limit: options.batchSize ?? 500 });
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  if (!(Number.isInteger(pollIntervalMs) && pollIntervalMs >= 1)) throw new InvalidOptionsError('pollIntervalMs must be an integer >= 1');
  return { after, batchSize: limit, pollIntervalMs };
}
