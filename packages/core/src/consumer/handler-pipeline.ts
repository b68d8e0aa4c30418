import type { DeliveryHandler } from '../message.js';

/**
 * A middleware wraps a handler: it may act before and after it, settle the delivery itself, or
 * turn an error into a nack, a dead letter or a skip. A message is retried in exactly one place:
 * the `retry()` middleware (retry.ts), which nacks with the broker's attempt count.
 */
export type Middleware = (next: DeliveryHandler) => DeliveryHandler;

/**
 * Composes middleware around a handler; the first listed is the outermost. The usual order:
 *
 *     pipeline(handler, deadLetter(sink, { consumer }), retry(policy), requireTenant(allowed))
 *
 * deadLetter outermost (it catches what retry gives up on), retry around the work. In sequenced
 * mode, sequenced(parking, { consumer }) goes before deadLetter. The same handler is what
 * replayDeadLetters() feeds replayed and released messages to.
 */
export function pipeline(handler: DeliveryHandler, ...middleware: readonly Middleware[]): DeliveryHandler {
  return middleware.reduceRight<DeliveryHandler>((next, wrap) => wrap(next), handler);
}
