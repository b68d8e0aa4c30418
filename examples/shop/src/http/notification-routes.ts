import { DEAD_LETTER_STATUSES, type DeadLetterFilter, type DeadLetterStatus } from '@causeway/core';
import { emailProblem } from '../notification/recipient-directory.js';
import type { Shop } from '../shop.js';
import { InputReader } from './input-reader.js';
import { readJsonBody } from './json-body.js';
import type { Route } from './router.js';
import { limitOf, tenantOf } from './shop-routes.js';

export interface NotificationRoutesOptions {
  readonly shop: Shop;
  /** Largest request body, checked before parsing. */
  readonly maxBodyBytes: number;
}

const LETTER_ID = /^[1-9][0-9]{0,18}$/;

/**
 * The notification service's HTTP API: a customer's email address (PUT), and a read-only view of
 * the tenant's dead letters with their groups (GET). Replaying, skipping and purging are operator
 * actions, kept off this demo API: the DLQ's operations port (CLI, console) does them.
 */
export function notificationRoutes({ shop, maxBodyBytes }: NotificationRoutesOptions): Route[] {
  return [
    {
      method: 'PUT',
      path: '/customers/:customerId/email',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const input = new InputReader();
        const customerId = input.id(ctx.params.customerId, 'customerId');
        input.done();
        const o = input.body(await readJsonBody(ctx.req, maxBodyBytes), ['email']);
        const problem = emailProblem(o.email);
        if (problem !== null) input.problem('email', problem);
        input.done();
        const email = o.email as string;
        await shop.notifications.registerEmail(tenantId, customerId, email);
        return { status: 200, body: { customerId, email } };
      },
    },
    {
      method: 'GET',
      path: '/dead-letters',
      async handle(ctx) {
        const tenantId = tenantOf(ctx.req);
        const input = new InputReader();
        const status = ctx.url.searchParams.get('status');
        if (status !== null && !DEAD_LETTER_STATUSES.includes(status as DeadLetterStatus)) {
          input.problem('status', `must be one of ${DEAD_LETTER_STATUSES.join(', ')}; got ${JSON.stringify(status)}`);
        }
        const after = ctx.url.searchParams.get('after');
        if (after !== null && !LETTER_ID.test(after)) input.problem('after', `must be the "next" of a previous page; got ${JSON.stringify(after)}`);
        const limit = limitOf(ctx.url, input, 20);
        input.done();
        // Always scoped to the caller's tenant: one tenant never sees another's letters.
        const filter: DeadLetterFilter = status === null ? { tenantId } : { tenantId, status: status as DeadLetterStatus };
        const [page, groups] = await Promise.all([
          shop.deadLetters.list(filter, after === null ? { limit } : { limit, after }),
          shop.deadLetters.groups(filter),
        ]);
        return { status: 200, body: { items: page.items, next: page.next, groups } };
      },
    },
  ];
}
