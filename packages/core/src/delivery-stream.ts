import type { Delivery } from './message.js';
import type { CloseOptions } from './publisher.js';
import type { GroupSubscribeOptions, Subscriber } from './subscriber.js';

/** The async-iterator form of a subscription. */
export interface DeliveryStream extends AsyncIterableIterator<Delivery> {
  close(options?: CloseOptions): Promise<void>;
}

interface Held {
  readonly delivery: Delivery;
  readonly release: () => void;
}

/**
 * Subscribes and yields deliveries one at a time, for `for await` loops:
 *
 *     for await (const d of await deliveries(subscriber, 'orders', { group: 'billing' })) { ... }
 *
 * A delivery left unsettled is acked when the loop asks for the next one, and nacked when the
 * loop exits early (break, return or throw); the subscription then closes. Concurrency is 1.
 */
export async function deliveries(
  subscriber: Subscriber,
  topic: string,
  options: Omit<GroupSubscribeOptions, 'concurrency'>,
): Promise<DeliveryStream> {
  const waiting: Held[] = [];
  let current: Held | undefined;
  let pull: ((result: IteratorResult<Delivery>) => void) | undefined;
  let ended = false;

  const subscription = await subscriber.subscribe(topic, { ...options, concurrency: 1 }, (delivery) => {
    // The loop is gone: a delivery arriving now was never seen, so it goes back.
    if (ended) return delivery.nack();
    return new Promise<void>((release) => {
      const held = { delivery, release };
      if (pull !== undefined) {
        const p = pull;
        pull = undefined;
        current = held;
        p({ value: delivery, done: false });
      } else {
        waiting.push(held);
      }
    });
  });
  const end = (): void => {
    ended = true;
    // Delivered to us but never handed to the loop: give them back, or the runtime would ack them.
    for (const held of waiting.splice(0)) {
      void held.delivery
        .nack()
        .catch(() => undefined)
        .finally(held.release);
    }
    if (pull !== undefined) {
      const p = pull;
      pull = undefined;
      p({ value: undefined, done: true });
    }
  };
  void subscription.closed.then(end);

  const finishCurrent = async (settle: 'ack' | 'nack'): Promise<void> => {
    const held = current;
    current = undefined;
    if (held === undefined) return;
    try {
      if (!held.delivery.settled) await (settle === 'ack' ? held.delivery.ack() : held.delivery.nack());
    } finally {
      held.release();
    }
  };

  const close = async (closeOptions?: CloseOptions): Promise<void> => {
    // Stop taking deliveries before the current one is released, or the next would slip in.
    end();
    await finishCurrent('nack');
    await subscription.close(closeOptions);
  };

  const stream: DeliveryStream = {
    async next() {
      await finishCurrent('ack');
      if (ended) return { value: undefined, done: true };
      const held = waiting.shift();
      if (held !== undefined) {
        current = held;
        return { value: held.delivery, done: false };
      }
      return new Promise<IteratorResult<Delivery>>((resolve) => {
        pull = resolve;
      });
    },
    async return() {
      await close();
      return { value: undefined, done: true };
    },
    async throw(error?: unknown) {
      await close();
      throw error;
    },
    close,
    [Symbol.asyncIterator]() {
      return stream;
    },
  };
  return stream;
}
