import type { Middleware } from './handler-pipeline.js';
import { PermanentError } from './failures.js';

/**
 * Refuses events of tenants this consumer does not serve: a PermanentError, so deadLetter()
 * records it instead of the handler touching another tenant's data.
 */
export function requireTenant(serves: (tenantId: string) => boolean): Middleware {
  return (next) =>
    async function tenantChecked(delivery) {
      if (delivery.kind === 'event' && !serves(delivery.event.tenantId)) {
        throw new PermanentError(`tenant ${JSON.stringify(delivery.event.tenantId)} is not served by this consumer`);
      }
      await next(delivery);
    };
}
