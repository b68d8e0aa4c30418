import { isClosedError, isConcurrencyError, isMessageTooLargeError, isSchemaError, isTimeoutError } from '@causeway/core';
import { CatalogRuleError } from '../catalog/catalog-decider.js';
import { OrderRuleError } from '../order/order-decider.js';

/** One thing wrong with the input: which field (a path such as `lines[0].quantity`) and why. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/**
 * An error with its HTTP answer. The body is always `{ error: { code, message, ... } }`, where
 * `code` is stable for programs and `message` is for people. Status codes live in this layer only.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }

  body(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

/** 400 naming every field that is wrong. */
export function invalidInput(problems: readonly FieldProblem[]): HttpError {
  const message = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  return new HttpError(400, 'INVALID_INPUT', message, { problems });
}

/**
 * Maps what the shop can throw to an HTTP answer. Anything not recognised is a 500 whose body
 * says nothing about internals; the caller logs the original.
 */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof OrderRuleError || e instanceof CatalogRuleError) return new HttpError(409, 'RULE_VIOLATED', e.message);
  if (isConcurrencyError(e)) {
    return new HttpError(409, 'CONCURRENCY_CONFLICT', `${e.message}; read the resource again and retry`, { expected: e.expected, actual: e.actual });
  }
  if (isMessageTooLargeError(e)) return new HttpError(413, 'PAYLOAD_TOO_LARGE', e.message, { limitBytes: e.limitBytes });
  if (isSchemaError(e)) return invalidInput(e.problems.map((message) => ({ field: 'body', message })));
  if (isTimeoutError(e)) {
    // Read-your-writes: the read model has not reached the position yet. Worth retrying shortly.
    return new HttpError(503, 'NOT_CAUGHT_UP', e.message, {}, { 'retry-after': '1' });
  }
  if (isClosedError(e)) return new HttpError(503, 'READ_MODEL_STOPPED', `the read model is not running (${e.message}); try again later`);
  return new HttpError(500, 'INTERNAL', 'the shop failed to handle the request; the error is in its log');
}
