import type { SqlDatabase } from './sql-executor.js';

/**
 * One LISTEN per store, shared by every subscription. Starts on the first subscriber; once the
 * listener is live it fires one wake-up, covering commits made before it was.
 */
export class WakeHub {
  private readonly callbacks = new Set<() => void>();
  private unlisten: Promise<(() => Promise<void>) | null> | null = null;

  constructor(
    private readonly db: SqlDatabase,
    private readonly channel: string,
  ) {}

  add(wake: () => void): () => void {
    this.callbacks.add(wake);
    if (!this.unlisten) {
      this.unlisten = this.db.listen(this.channel, () => this.fire()).then(
        (stop) => {
          this.fire();
          return stop;
        },
        () => null, // no LISTEN (e.g. a pooler in transaction mode): the fallback poll still works
      );
    }
    return () => this.callbacks.delete(wake);
  }

  private fire(): void {
    for (const wake of this.callbacks) wake();
  }

  async close(): Promise<void> {
    this.callbacks.clear();
    const stop = await this.unlisten;
    this.unlisten = null;
    await stop?.();
  }
}
