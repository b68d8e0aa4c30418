import type { Publisher, Subscriber } from '@causeway/core';
import type { SqlDatabase } from '@causeway/postgres';

/**
 * One broker in the delivery bench: Causeway's publisher and subscriber on it, and the raw client
 * doing the minimum for the same job, the way the brokers suite's raw baseline does it.
 */
export interface DeliveryBroker {
  /** 'postgresql', 'nats', 'rabbitmq'. */
  readonly adapter: string;
  /** Causeway's side. The PostgreSQL broker lives in the bench's own database and schema. */
  causeway(db: SqlDatabase, schema: string): CausewaySide;
  /** The raw client; `connectionString` is the bench database (where the PostgreSQL raw queue lives). */
  raw(connectionString: string): RawSide;
}

/** Causeway's Publisher and Subscriber on one broker, for one case. */
export interface CausewaySide {
  readonly publisher: Publisher;
  readonly subscriber: Subscriber;
  /** Messages the broker holds for `topic` (for `group` where the broker keeps them per group). */
  stored(topic: string, group: string): Promise<number>;
  /** Deletes what the case made on the broker for `topic` (the PostgreSQL broker's rows go with the schema). */
  dropTopic(topic: string, group: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The raw client: one queue/stream per `setup`, bodies published as given (the same structured
 * CloudEvent JSON Causeway would carry), one consumer that takes up to `inFlight` unacked
 * messages and acks each after `onBody`.
 */
export interface RawSide {
  /** How the baseline publishes and consumes, for the table. */
  readonly system: string;
  setup(topic: string): Promise<void>;
  /** Publishes one batch and resolves once the broker confirmed all of it. */
  publish(bodies: readonly string[]): Promise<void>;
  /** Starts the consumer; resolves once it is attached. */
  consume(inFlight: number, onBody: (body: string) => void): Promise<void>;
  /** Messages the broker holds (published and not consumed). */
  stored(): Promise<number>;
  /** Stops the consumer, deletes the queue/stream, closes connections. */
  teardown(): Promise<void>;
}
