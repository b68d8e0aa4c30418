import { CausewayError, isMessageTooLargeError, isSchemaError } from '../errors.js';

/**
 * Thrown by a handler for a message that can never succeed (unknown type, a business rule the
 * message breaks for good): it goes to the dead-letter queue at once, without retries.
 */
export class PermanentError extends CausewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PERMANENT_FAILURE', message, options);
  }
}

/** retry() gave up: the message failed `attempts` times; the last error is the cause. */
export class RetriesExhaustedError extends CausewayError {
  readonly attempts: number;
  constructor(attempts: number, cause: unknown) {
    super('RETRIES_EXHAUSTED', `gave up after ${attempts} attempts: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.attempts = attempts;
  }
}

const code = (e: unknown): unknown => (typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined);

export const isRetriesExhaustedError = (e: unknown): e is RetriesExhaustedError => code(e) === 'RETRIES_EXHAUSTED';

/** Failures no retry can fix: bad input (schema, size) and what handlers declare permanent. */
export function isPermanentFailure(error: unknown): boolean {
  return code(error) === 'PERMANENT_FAILURE' || isSchemaError(error) || isMessageTooLargeError(error);
}

/**
 * Groups failures for the DLQ: the error's class plus the first stack frame outside
 * node_modules and Node's internals (the "first application frame"), hashed (FNV-1a, 32-bit).
 */
export function fingerprint(error: unknown): string {
  const name = error instanceof Error ? error.constructor.name : typeof error;
  const stack = error instanceof Error && typeof error.stack === 'string' ? error.stack.split('\n') : [];
  const frame =
    stack
      .slice(1)
      .map((l) => l.trim())
      .find((l) => l.startsWith('at ') && !l.includes('node_modules') && !l.includes('node:') && !l.includes('/packages/core/src/'))
      ?.replace(/:\d+:\d+\)?$/, '') ?? '';
  let h = 0x811c9dc5;
  for (const ch of `${name}|${frame}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${name}:${h.toString(16).padStart(8, '0')}`;
}
