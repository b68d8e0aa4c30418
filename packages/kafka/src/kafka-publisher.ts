import {
  AdapterError,
  ClosedError,
  DEFAULT_CLOSE_TIMEOUT_MS,
  validateTopic,
  type CloseOptions,
  type Message,
  type Publisher,
} from '@causeway/core';
import { Admin, compatibilityPartitioner, ProduceAcks, Producer, type MessageToProduce } from '@platformatic/kafka';
import { encodeRecord, type KafkaRecordOut } from './codec.js';
import { clientOptions, closeClient, ensureTopic, forceClose } from './kafka-client.js';
import { resolvePublisherOptions, type KafkaPublisherOptions, type ResolvedPublisherOptions } from './kafka-options.js';

interface Pending {
  readonly records: ReadonlyArray<MessageToProduce>;
  readonly bytes: number;
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Delay between the client's own retries of a produce request. */
const RETRY_DELAY_MS = 250;
/** A coalesced produce request carries at most this much (the first call always goes, whatever its size). */
const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * Publishes with an idempotent producer and acks=all: publish() resolves once every in-sync
 * replica has the records. The record key is the partition key, placed with the Java client's
 * partitioner (murmur2), so one key always lands in one partition, where the broker keeps order.
 *
 * Produce requests go out one at a time; calls made meanwhile are coalesced into the next
 * request. The driver numbers an idempotent batch when it builds it and moves the sequence on
 * only when the reply arrives, so two requests in flight to one partition would carry the same
 * sequence, and the broker would acknowledge the second as a duplicate without writing it.
 * Within a request the driver retries with the same sequence, so the broker drops a retry whose
 * first try was written. A request that still fails retires the producer: a new one gets a new
 * producer id, so no later batch can be mistaken for the failed one.
 */
export class KafkaPublisher implements Publisher {
  readonly #o: ResolvedPublisherOptions;
  #producer: Producer;
  #admin: Admin | undefined;
  readonly #topics = new Map<string, Promise<void>>();
  readonly #queue: Pending[] = [];
  readonly #inflight = new Set<Promise<void>>();
  #sending = false;
  #closed: Promise<void> | undefined;

  constructor(options: KafkaPublisherOptions = {}) {
    this.#o = resolvePublisherOptions(options);
    this.#producer = this.#newProducer();
  }

  publish(topic: string, messages: readonly Message[]): Promise<void> {
    const p = this.#publish(topic, messages);
    this.#inflight.add(p);
    const forget = () => this.#inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  async #publish(topic: string, messages: readonly Message[]): Promise<void> {
    if (this.#closed !== undefined) throw new ClosedError('kafka publisher');
    validateTopic(topic);
    const limits = { maxMessageBytes: this.#o.maxMessageBytes };
    // Every message is encoded and size-checked before anything is sent.
    const encoded = messages.map((m) => encodeRecord(m, limits));
    if (encoded.length === 0) return;
    const deadline = Date.now() + this.#o.publishTimeoutMs;
    await this.#before(this.#topic(topic), deadline, `topic ${topic} to be ready`);
    const records = encoded.map((r) => toProduce(topic, r));
    const bytes = encoded.reduce((n, r) => n + r.value.length + r.key.length, 0);
    await new Promise<void>((resolve, reject) => {
      this.#queue.push({ records, bytes, deadline, resolve, reject });
      this.#drain();
    });
  }

  #drain(): void {
    if (this.#sending || this.#queue.length === 0) return;
    const batch: Pending[] = [];
    let bytes = 0;
    const now = Date.now();
    while (this.#queue.length > 0) {
      const next = this.#queue[0] as Pending;
      if (batch.length > 0 && bytes + next.bytes > MAX_BATCH_BYTES) break;
      this.#queue.shift();
      if (next.deadline <= now) {
        next.reject(new AdapterError('kafka', `publish waited ${this.#o.publishTimeoutMs} ms for its turn without reaching the broker`));
        continue;
      }
      batch.push(next);
      bytes += next.bytes;
    }
    if (batch.length === 0) return;
    this.#sending = true;
    const producer = this.#producer;
    const deadline = Math.min(...batch.map((b) => b.deadline));
    const sent = producer.send({ messages: batch.flatMap((b) => b.records), acks: ProduceAcks.ALL });
    void this.#before(sent, deadline, 'the broker to acknowledge').then(
      () => {
        for (const b of batch) b.resolve();
      },
      (error: unknown) => {
        // Retire the producer: its sequence numbers can no longer be trusted (see above).
        if (this.#producer === producer && this.#closed === undefined) this.#producer = this.#newProducer();
        void closeClient(producer, 5_000, () => forceClose(producer));
        const wrapped = error instanceof AdapterError ? error : new AdapterError('kafka', 'publish failed', { cause: error });
        for (const b of batch) b.reject(wrapped);
      },
    ).finally(() => {
      this.#sending = false;
      this.#drain();
    });
  }

  /** Waits for `work`, but not past the deadline (then AdapterError; the work may still finish later). */
  async #before<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AdapterError('kafka', `publish waited ${this.#o.publishTimeoutMs} ms for ${what}`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #topic(topic: string): Promise<void> {
    let ready = this.#topics.get(topic);
    if (ready === undefined) {
      this.#admin ??= new Admin(clientOptions(this.#o, 'publisher-admin'));
      ready = ensureTopic(this.#admin, topic, this.#o);
      this.#topics.set(topic, ready);
      ready.catch(() => this.#topics.delete(topic));
    }
    return ready;
  }

  #newProducer(): Producer {
    const producer = new Producer({
      ...clientOptions(this.#o, 'producer'),
      idempotent: true,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
      // The client retries (same sequence numbers) for about as long as the publish may take.
      retries: Math.max(2, Math.ceil(this.#o.publishTimeoutMs / RETRY_DELAY_MS)),
      retryDelay: RETRY_DELAY_MS,
      autocreateTopics: false,
    });
    producer.on('error', (error: unknown) => this.#o.onError(error, 'kafka producer'));
    return producer;
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= (async () => {
      const timeoutMs = options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      const producer = this.#producer;
      await closeClient(producer, 5_000, () => forceClose(producer));
      const admin = this.#admin;
      if (admin !== undefined) await closeClient(admin, 5_000, () => admin.close());
    })();
    return this.#closed;
  }
}

function toProduce(topic: string, r: KafkaRecordOut): MessageToProduce {
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of Object.entries(r.headers)) headers.set(Buffer.from(name), Buffer.from(value));
  return { topic, key: Buffer.from(r.key), value: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength), headers };
}
