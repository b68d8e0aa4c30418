import { PermanentError, SchemaError, tenantIdProblem } from '@causeway/core';
import type { SqlExecutor } from '@causeway/postgres';

/** Longest address accepted (the SMTP path limit). */
export const MAX_EMAIL_LENGTH = 254;
const EMAIL = /^[^\s@]{1,64}@[^\s@.]+(?:\.[^\s@.]+)+$/;
const CUSTOMER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Why `value` is not an email address we can send to, or null when it is one. */
export function emailProblem(value: unknown): string | null {
  if (typeof value !== 'string' || value === '') return 'must be an email address such as "ada@example.com"';
  if (value.length > MAX_EMAIL_LENGTH) return `must be at most ${MAX_EMAIL_LENGTH} characters; got ${value.length}`;
  if (!EMAIL.test(value)) return `must be an email address such as "ada@example.com"; got ${JSON.stringify(value)}`;
  return null;
}

/**
 * No email address is on file for the customer an event is about. No retry can fix it: the
 * message goes to the dead-letter queue at once. An operator registers the address, then
 * replays the letter.
 */
export class UnknownRecipientError extends PermanentError {
  readonly tenantId: string;
  readonly customerId: string;
  constructor(tenantId: string, customerId: string) {
    super(`no email address on file for customer ${JSON.stringify(customerId)} (tenant ${tenantId}); register one, then replay`);
    this.tenantId = tenantId;
    this.customerId = customerId;
  }
}

/** The customers' email addresses, per tenant: the notification service's own data. */
export class RecipientDirectory {
  constructor(
    private readonly db: SqlExecutor,
    private readonly table: string,
  ) {}

  /** Records (or replaces) a customer's address. Bad input is refused with a SchemaError naming each problem. */
  async register(tenantId: string, customerId: string, email: string): Promise<void> {
    const problems = [
      tenantIdProblem(tenantId),
      typeof customerId === 'string' && CUSTOMER_ID.test(customerId) ? null : `customerId must be 1 to 64 letters, digits, "_", "-" or "."; got ${JSON.stringify(customerId)}`,
      emailProblem(email) === null ? null : `email ${emailProblem(email)}`,
    ].filter((p): p is string => p !== null);
    if (problems.length > 0) throw new SchemaError(problems);
    await this.db.query(
      `INSERT INTO ${this.table} (tenant_id, customer_id, email) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, customer_id) DO UPDATE SET email = EXCLUDED.email, registered_at = now()`,
      [tenantId, customerId, email],
    );
  }

  /** The address to write to, read in the handler's transaction; UnknownRecipientError when there is none. */
  async emailOf(tx: SqlExecutor, tenantId: string, customerId: string): Promise<string> {
    const { rows } = await tx.query<{ email: string }>(`SELECT email FROM ${this.table} WHERE tenant_id = $1 AND customer_id = $2`, [tenantId, customerId]);
    const email = rows[0]?.email;
    if (email === undefined) throw new UnknownRecipientError(tenantId, customerId);
    return email;
  }
}
