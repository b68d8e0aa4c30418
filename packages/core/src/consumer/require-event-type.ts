import { InvalidOptionsError } from '../errors.js';
import type { Middleware } from './handler-pipeline.js';
import { PermanentError } from './failures.js';

/**
 * Refuses events of types this consumer does not know: a PermanentError, so deadLetter() records
 * the message at once (no retries: a redelivery cannot teach the consumer a new type). Put it
 * where the consumer reads a topic whose every type it must handle; a consumer that only cares
 * about some types of a shared topic should ack the others itself instead.
 */
export function requireEventType(types: Iterable<string>): Middleware {
  const known = new Set(types);
  if (known.size === 0) throw new InvalidOptionsError('requireEventType needs at least one event type');
  return (next) =>
    async function eventTypeChecked(delivery) {
      if (delivery.kind === 'event' && !known.has(delivery.event.eventType)) {
        throw new PermanentError(
          `unknown event type ${JSON.stringify(delivery.event.eventType)} (event ${delivery.event.eventId}); this consumer handles ${[...known].join(', ')}`,
        );
      }
      await next(delivery);
    };
}
