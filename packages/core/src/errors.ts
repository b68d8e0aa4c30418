/**
 * Every error Causeway raises is a CausewayError with a stable string `code`.
 * Callers branch on `code` (or the is* guards), never on message text.
 */
export class CausewayError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

export type ExpectedVersion = number | 'any' | 'no_stream' | 'exists';

/** The stream was not at the version the writer expected. Nothing was written. */
export class ConcurrencyError extends CausewayError {
  readonly stream: string;
  readonly tenantId: string;
  readonly expected: ExpectedVersion;
  /** The stream's version when the append was refused; 0 when the stream does not exist. */
  readonly actual: number;
  constructor(tenantId: string, stream: string, expected: ExpectedVersion, actual: number) {
    super(
      'CONCURRENCY_CONFLICT',
      `stream "${stream}" (tenant ${tenantId}) is at version ${actual}, expected ${String(expected)}`,
    );
    this.tenantId = tenantId;
    this.stream = stream;
    this.expected = expected;
    this.actual = actual;
  }
}

/** An event id in the append is already stored at another position or in another stream. */
export class DuplicateEventError extends CausewayError {
  readonly eventIds: readonly string[];
  constructor(stream: string, eventIds: readonly string[]) {
    super(
      'DUPLICATE_EVENT_ID',
      `append to "${stream}" reuses event id(s) already stored elsewhere: ${eventIds.join(', ')}`,
    );
    this.eventIds = eventIds;
  }
}

/** The stream was deleted (tombstoned) or archived: it takes no more events. */
export class StreamClosedError extends CausewayError {
  readonly stream: string;
  readonly reason: 'deleted' | 'archived';
  constructor(stream: string, reason: 'deleted' | 'archived') {
    super(reason === 'deleted' ? 'STREAM_DELETED' : 'STREAM_ARCHIVED', `stream "${stream}" is ${reason}`);
    this.stream = stream;
    this.reason = reason;
  }
}

/** Input that breaks a rule of the envelope, a name or a size limit. `problems` names each rule broken. */
export class SchemaError extends CausewayError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super('SCHEMA_INVALID', problems.join('; '), options);
    this.problems = problems;
  }
}

/** A user handler threw; the original error is the `cause`. */
export class HandlerError extends CausewayError {
  constructor(message: string, options: { cause: unknown }) {
    super('HANDLER_FAILED', message, options);
  }
}

/** A driver or server failed; the driver's error is the `cause`, never swallowed. */
export class AdapterError extends CausewayError {
  readonly adapter: string;
  constructor(adapter: string, message: string, options: { cause?: unknown } = {}) {
    super('ADAPTER_FAILED', `${adapter}: ${message}`, options);
    this.adapter = adapter;
  }
}

export class InvalidOptionsError extends CausewayError {
  constructor(message: string) {
    super('INVALID_OPTIONS', message);
  }
}

export class TimeoutError extends CausewayError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/** A message is larger than the configured limit; it was refused before anything was sent or parsed. */
export class MessageTooLargeError extends CausewayError {
  readonly limitBytes: number;
  readonly sizeBytes: number;
  constructor(what: string, sizeBytes: number, limitBytes: number) {
    super('MESSAGE_TOO_LARGE', `${what} is ${sizeBytes} bytes; the limit is ${limitBytes} bytes (maxMessageBytes)`);
    this.limitBytes = limitBytes;
    this.sizeBytes = sizeBytes;
  }
}

/** The publisher or subscriber was closed; nothing more is accepted. */
export class ClosedError extends CausewayError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}

/**
 * A lease (one active relay or projection runner) is no longer this holder's: another holder
 * took it over, or its heartbeat failed. Whatever the holder was about to commit was not committed.
 */
export class LeaseLostError extends CausewayError {
  readonly lease: string;
  readonly fence: string;
  constructor(lease: string, fence: string, why: string, options?: { cause?: unknown }) {
    super('LEASE_LOST', `lease "${lease}" (fence ${fence}) lost: ${why}`, options);
    this.lease = lease;
    this.fence = fence;
  }
}

function hasCode(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

export const isConcurrencyError = (e: unknown): e is ConcurrencyError => hasCode(e, 'CONCURRENCY_CONFLICT');
export const isDuplicateEventError = (e: unknown): e is DuplicateEventError => hasCode(e, 'DUPLICATE_EVENT_ID');
export const isSchemaError = (e: unknown): e is SchemaError => hasCode(e, 'SCHEMA_INVALID');
export const isStreamClosedError = (e: unknown): e is StreamClosedError =>
  hasCode(e, 'STREAM_DELETED') || hasCode(e, 'STREAM_ARCHIVED');
export const isTimeoutError = (e: unknown): e is TimeoutError => hasCode(e, 'TIMEOUT');
export const isMessageTooLargeError = (e: unknown): e is MessageTooLargeError => hasCode(e, 'MESSAGE_TOO_LARGE');
export const isClosedError = (e: unknown): e is ClosedError => hasCode(e, 'CLOSED');
export const isLeaseLostError = (e: unknown): e is LeaseLostError => hasCode(e, 'LEASE_LOST');
