import { AdapterError, ClosedError, DEFAULT_CLOSE_TIMEOUT_MS, validateTopic, type CloseOptions, type Message, type Publisher, type WireLimits } from '@causeway/core';
import { ErrorReply } from 'redis';
import { appendEntry } from './codec.js';
import { streamKey } from './keys.js';
import { createConnection, open, timeLimit, waitReady, within, type RedisConnection } from './redis-connection.js';
import { resolvePublisherOptions, type RedisPublisherOptions, type ResolvedPublisherOptions } from './redis-options.js';

/**
 * Appends each message as one entry to the topic's stream (`<prefix>:<topic>`).
 *
 * - A call's messages go in one MULTI/EXEC (a lone message in a plain XADD), in array order, so
 *   they land as consecutive entries or not at all; publish() resolves once Redis has replied
 *   with every entry id. How durable that is depends on the server's persistence (README: AOF
 *   with appendfsync always for acknowledged = durable).
 * - Every message is encoded and size-checked before anything is sent.
 * - While Redis is away the client reconnects by itself; a call waits for the connection up to
 *   publishTimeoutMs, then rejects with AdapterError. A call whose connection drops under it is
 *   sent again once Redis is back (its entries may then appear twice: consumers dedup by event id).
 * - No trimming unless `maxLen` is set (trimming can drop entries a group has not read yet).
 */
export class RedisPublisher implements Publisher {
  readonly #options: ResolvedPublisherOptions;
  readonly #limits: WireLimits;
  readonly #client: RedisConnection;
  /** Calls not finished yet; close() waits for them (a count, not a set: nothing to store per call). */
  #pending = 0;
  #onIdle: (() => void) | undefined;
  readonly #finished = (): void => {
    if (--this.#pending > 0) return;
    const idle = this.#onIdle;
    this.#onIdle = undefined;
    idle?.();
  };
  #closed: Promise<void> | undefined;

  constructor(options: RedisPublisherOptions = {}) {
    this.#options = resolvePublisherOptions(options);
    this.#limits = { maxMessageBytes: this.#options.maxMessageBytes };
    this.#client = createConnection(this.#options.url, 'redis publisher', this.#options.onError);
    // Connecting starts now, so the first publish does not wait for it (a failure is reported
    // once through onError and the client keeps retrying; publish() waits up to publishTimeoutMs).
    open(this.#client);
  }

  publish(topic: string, messages: readonly Message[]): Promise<void> {
    let commands: string[][];
    try {
      if (this.#closed !== undefined) throw new ClosedError('redis publisher');
      validateTopic(topic);
      if (messages.length === 0) return Promise.resolve();
      const key = streamKey(this.#options.prefix, topic);
      const { maxLen } = this.#options;
      // Every message is encoded (and size-checked) here, before anything is sent.
      commands = messages.map((m) => appendEntry(maxLen === undefined ? ['XADD', key, '*'] : ['XADD', key, 'MAXLEN', '~', String(maxLen), '*'], m, this.#limits));
    } catch (error) {
      return Promise.reject(error);
    }
    // Counted before the first await, so a close() right after this call waits for it.
    const run = this.#publish(topic, commands);
    this.#pending++;
    run.then(this.#finished, this.#finished);
    return run;
  }

  async #publish(topic: string, commands: readonly string[][]): Promise<void> {
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    for (;;) {
      try {
        await this.#send(commands, deadline);
        return;
      } catch (cause) {
        // The connection dropped under the call: send it again once Redis is back (at least once:
        // if the first attempt ran, its entries appear twice). A reply from Redis itself is final.
        if (!(cause instanceof ErrorReply) && !this.#client.isReady && this.#client.isOpen && Date.now() < deadline) continue;
        throw new AdapterError('redis', `publish of ${commands.length} message(s) to ${topic} failed`, { cause });
      }
    }
  }

  /**
   * One message: a lone XADD, whose timeout also bounds its wait in the client's queue while
   * Redis is away (a command that times out there is never sent). Several: MULTI/EXEC, sent only
   * once connected so that the transaction goes out whole.
   */
  async #send(commands: readonly string[][], deadline: number): Promise<void> {
    open(this.#client);
    const [only] = commands;
    if (commands.length === 1 && only !== undefined) {
      await this.#client.sendCommand(only, timeLimit(timeLeft(deadline)));
      return;
    }
    await waitReady(this.#client, timeLeft(deadline));
    const multi = this.#client.multi();
    for (const args of commands) multi.addCommand(args);
    const exec = multi.exec();
    exec.catch(() => undefined); // still observed if the time limit wins the race
    const ids = await within(exec, timeLeft(deadline), `EXEC of ${commands.length} XADDs`);
    if (!Array.isArray(ids) || ids.length !== commands.length) {
      throw new Error(`EXEC replied with ${Array.isArray(ids) ? ids.length : typeof ids} results for ${commands.length} XADDs`);
    }
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= (async () => {
      const idle = this.#pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#onIdle = resolve));
      await within(idle, options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS, 'publishes in flight').catch(() => undefined);
      if (this.#client.isOpen) this.#client.destroy();
    })();
    return this.#closed;
  }
}

/** Milliseconds until the deadline, at least 1 (a command timeout of 0 would mean none). */
function timeLeft(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}
