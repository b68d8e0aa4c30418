import type { SqlExecutor } from './sql-executor.js';

// synchronous_commit off for this one transaction: the wake-up needs no durability, and its commit
// then does not wait for a flush while it holds PostgreSQL's NOTIFY lock.
const NOTIFY_SQL = `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`;

/**
 * The event store's wake-up for subscribers, sent after appends commit rather than inside them.
 *
 * Why: a transaction that sends NOTIFY takes a database-wide lock at commit and keeps it until its
 * commit record is flushed, so appends that each notified would commit one at a time, however many
 * connections they had (see append-one-migration.ts for the figures). Here at most one NOTIFY is in
 * flight; appends that commit meanwhile share the next one. A wake-up lost to a crash between the
 * commit and the NOTIFY costs only latency: subscribers also poll, and read by position.
 */
export class CommitNotifier {
  private again = false;
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: SqlExecutor,
    private readonly channel: string,
  ) {}

  /** Call after a commit that wrote events. */
  committed(): void {
    this.again = true;
    this.running ??= this.run();
  }

  /** Resolves once no NOTIFY is pending or in flight. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    while (this.again) {
      this.again = false;
      try {
        await this.db.query(NOTIFY_SQL, [this.channel], 'causeway.commit-notify');
      } catch {
        // A lost wake-up delays subscribers until their fallback poll; it never loses events.
      }
    }
    this.running = null;
  }
}
