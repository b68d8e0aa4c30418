import { JetStreamApiError } from '@nats-io/jetstream';
import { createInbox, errors, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly until: number;
  readonly subject: string;
}

/** How often expired PubAck waits are failed; a wait may overrun its timeout by up to this. */
const SWEEP_MS = 100;

/**
 * JetStream publishes over one inbox subscription per connection: each message goes out with a
 * reply subject `<inbox>.<token>`, and the server's PubAck (or its error, or a 503 when no stream
 * listens) comes back there. It is the same exchange as the client's `js.publish()`, without what
 * that costs per message: a timer, a `Promise.race`, a copy of the options, and an Error built
 * (with its stack) for every request even when it succeeds, which together cost more than the
 * rest of the publish. Timeouts are swept by one interval instead of a timer per message.
 *
 * Errors are the client's own types, so the publisher's retry rules read them as before: a
 * missing answer is a `TimeoutError`, no stream a `NoRespondersError`, a refusal a `JetStreamApiError`.
 */
export class PubAckInbox {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #waiting = new Map<string, Waiting>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #next = 0;

  constructor(nc: NatsConnection, inboxPrefix?: string) {
    this.#nc = nc;
    this.#prefix = `${createInbox(inboxPrefix)}.`;
    this.#sub = nc.subscribe(`${this.#prefix}*`, { callback: (error, msg) => this.#answer(error, msg) });
  }

  /** Publishes `body` with `headers` to `subject`; resolves on its PubAck, rejects on a refusal or after `timeoutMs`. */
  publish(subject: string, body: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<void> {
    const token = (this.#next++).toString(36);
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(token, { resolve, reject, until: Date.now() + timeoutMs, subject });
      this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS);
      try {
        this.#nc.publish(subject, body, { reply: this.#prefix + token, headers });
      } catch (error) {
        this.#waiting.delete(token);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /**
   * Fails every wait with a TimeoutError now (the connection was lost and came back: their
   * PubAcks will not come, so the publisher sends again, deduplicated by Nats-Msg-Id).
   */
  failAll(): void {
    this.#fail(() => true);
  }

  /** Unsubscribes; waits still open fail. */
  stop(): void {
    this.#fail(() => true);
    try {
      this.#sub.unsubscribe();
    } catch {
      // The connection is closed already.
    }
  }

  #answer(error: Error | null, msg: Msg): void {
    if (error !== null) return; // the subscription ended (connection closed): waits time out or stop() fails them
    const token = msg.subject.slice(this.#prefix.length);
    const waiting = this.#waiting.get(token);
    if (waiting === undefined) return; // answered after its timeout: it was sent again
    this.#waiting.delete(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      waiting.reject(new errors.RequestError('no responders', { cause: new errors.NoRespondersError(waiting.subject) }));
      return;
    }
    let reply: { error?: ConstructorParameters<typeof JetStreamApiError>[0]; stream?: string };
    try {
      reply = msg.json();
    } catch (e) {
      waiting.reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (reply.error !== undefined) waiting.reject(new JetStreamApiError(reply.error));
    else if (typeof reply.stream !== 'string' || reply.stream === '') waiting.reject(new Error('invalid PubAck from the server'));
    else waiting.resolve();
  }

  #sweep(): void {
    const now = Date.now();
    this.#fail((w) => w.until <= now);
  }

  #fail(which: (w: Waiting) => boolean): void {
    for (const [token, w] of this.#waiting) {
      if (!which(w)) continue;
      this.#waiting.delete(token);
      w.reject(new errors.TimeoutError());
    }
    if (this.#waiting.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
