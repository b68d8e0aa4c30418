import {
  AdapterError,
  backoffDelay,
  ClosedError,
  DEFAULT_CLOSE_TIMEOUT_MS,
  isClosedError,
  validateTopic,
  type CloseOptions,
  type Message,
  type Publisher,
} from '@causeway/core';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { checkServerLimit, encodeNatsMessage, type EncodedNatsMessage } from './codec.js';
import { isTransient, NatsLink, sleep, untilDeadline, wrap } from './nats-connection.js';
import { resolvePublisherOptions, type NatsPublisherOptions, type ResolvedPublisherOptions } from './nats-options.js';
import { PubAckInbox } from './pub-acks.js';
import { ensureStream, subjectOf } from './streams.js';

/** Longest wait for one PubAck before the same message (same Nats-Msg-Id, so deduplicated) is sent again. */
const PUB_ACK_WAIT_MS = 10_000;

/**
 * Publishes to JetStream: one stream per topic (declared on first use), `Nats-Msg-Id` = event id
 * so the server drops re-publishes inside the duplicate window, and publish() resolves only once
 * every message has its PubAck (the stream stored it).
 *
 * Messages of one key go one after another (each PubAck awaited before the next is sent), so
 * a failure never lets a later message of the key in ahead of an earlier one; different keys
 * go in parallel. A message whose PubAck does not come (the server is restarting, the
 * connection is down) is sent again with the same id until `publishTimeoutMs` runs out.
 */
export class NatsPublisher implements Publisher {
  readonly #options: ResolvedPublisherOptions;
  readonly #link: NatsLink;
  readonly #streams = new Map<string, Promise<string>>();
  /** Subjects whose stream is known to exist (the common case skips the promise and its timer). */
  readonly #known = new Map<string, string>();
  /** Calls not finished yet; close() waits for them (a count, not a set: nothing to store per call). */
  #pending = 0;
  #onIdle: (() => void) | undefined;
  readonly #finished = (): void => {
    if (--this.#pending > 0) return;
    const idle = this.#onIdle;
    this.#onIdle = undefined;
    idle?.();
  };
  #clients: { readonly nc: NatsConnection; readonly acks: PubAckInbox; readonly jsm: Promise<JetStreamManager> } | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: NatsPublisherOptions = {}) {
    this.#options = resolvePublisherOptions(options);
    this.#link = new NatsLink(this.#options, 'publisher');
    // PubAcks of messages sent before a reconnect will not come: send those again now
    // (same Nats-Msg-Id, so the server drops any it stored) rather than after their timeout.
    this.#link.onReconnect(() => this.#clients?.acks.failAll());
  }

  publish(topic: string, messages: readonly Message[]): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('nats publisher'));
    let encoded: EncodedNatsMessage[];
    try {
      validateTopic(topic);
      // Everything is encoded and size-checked before the first byte goes out.
      encoded = messages.map((m) => encodeNatsMessage(m, this.#options));
    } catch (error) {
      return Promise.reject(error);
    }
    if (encoded.length === 0) return Promise.resolve();
    const work = this.#send(topic, encoded);
    this.#pending++;
    work.then(this.#finished, this.#finished);
    return work;
  }

  async #send(topic: string, encoded: readonly EncodedNatsMessage[]): Promise<void> {
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    const nc = this.#link.current ?? (await this.#link.connection(deadline));
    for (const m of encoded) checkServerLimit(m, nc.info?.max_payload);
    const subject = subjectOf(this.#options.subjectPrefix, topic);
    const [only] = encoded;
    if (encoded.length === 1 && only !== undefined) return this.#publishOne(nc, topic, subject, only, deadline);
    const chains = new Map<string, EncodedNatsMessage[]>();
    for (const m of encoded) {
      const chain = chains.get(m.key);
      if (chain === undefined) chains.set(m.key, [m]);
      else chain.push(m);
    }
    if (chains.size === 1) {
      for (const m of encoded) await this.#publishOne(nc, topic, subject, m, deadline);
      return;
    }
    const results = await Promise.allSettled(
      [...chains.values()].map(async (chain) => {
        for (const m of chain) await this.#publishOne(nc, topic, subject, m, deadline);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async #publishOne(nc: NatsConnection, topic: string, subject: string, m: EncodedNatsMessage, deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // The common case (connected, stream known) goes straight to the send, without two awaits.
        if (!this.#link.connected) await this.#link.whenConnected(deadline);
        if (!this.#known.has(subject)) await this.#stream(nc, subject, deadline);
        const left = deadline - Date.now();
        if (left <= 0) throw new AdapterError('nats', `publish to ${topic}: no PubAck within publishTimeoutMs (${this.#options.publishTimeoutMs} ms)`);
        await this.#clientsOf(nc).acks.publish(subject, m.body, m.headers, Math.min(left, PUB_ACK_WAIT_MS));
        return;
      } catch (error) {
        if (isClosedError(error) || error instanceof AdapterError) throw error;
        if (this.#link.closed) throw new ClosedError('nats publisher');
        if (!isTransient(error) || Date.now() >= deadline) throw wrap(error, `publish to ${topic} (event ${m.id})`);
        // The stream may be gone (deleted by hand) or the server not ready yet: declare again.
        this.#streams.delete(subject);
        this.#known.delete(subject);
        await sleep(Math.min(backoffDelay(attempt, 50, 1_000), Math.max(0, deadline - Date.now())));
      }
    }
  }

  #stream(nc: NatsConnection, subject: string, deadline: number): Promise<string> {
    const known = this.#known.get(subject);
    if (known !== undefined) return Promise.resolve(known);
    let ensured = this.#streams.get(subject);
    if (ensured === undefined) {
      ensured = this.#clientsOf(nc).jsm.then((jsm) => ensureStream(jsm, subject, this.#options));
      this.#streams.set(subject, ensured);
      ensured.then(
        (stream) => this.#known.set(subject, stream),
        () => this.#streams.delete(subject),
      );
    }
    return untilDeadline(ensured, deadline, () => new AdapterError('nats', `declaring the stream of ${subject} did not finish within publishTimeoutMs`));
  }

  #clientsOf(nc: NatsConnection) {
    if (this.#clients?.nc !== nc) {
      this.#clients?.acks.stop();
      this.#clients = { nc, acks: new PubAckInbox(nc, this.#options.connection.inboxPrefix), jsm: jetstreamManager(nc, { checkAPI: false }) };
    }
    return this.#clients;
  }

  /** Waits for publishes already started (up to the timeout), then closes the connection. Idempotent. */
  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      const timeoutMs = options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      const idle = this.#pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#onIdle = resolve));
      await untilDeadline(idle, Date.now() + timeoutMs, () => new Error('close timeout')).catch(() => undefined);
      await this.#link.close();
      this.#clients?.acks.stop();
    })();
    return this.#closing;
  }
}

export function createNatsPublisher(options: NatsPublisherOptions = {}): NatsPublisher {
  return new NatsPublisher(options);
}
