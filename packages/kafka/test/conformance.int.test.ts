import { brokerSuite, type BrokerCapabilities, type BrokerHarness, type BrokerSettings } from '@causeway/conformance';
import type { Publisher, Subscriber } from '@causeway/core';
import { KafkaPublisher, KafkaSubscriber } from '@causeway/kafka';
import { ProduceAcks, Producer } from '@platformatic/kafka';
import { it } from 'vitest';

/**
 * The broker contract on a real Kafka. There is no Kafka server on the development machine or
 * in CI, so this runs only when KAFKA_BROKERS names one (e.g. KAFKA_BROKERS=127.0.0.1:9092);
 * otherwise it is one skipped test, also under CAUSEWAY_REQUIRE_SERVICES=1 (CI has no Kafka).
 */
const BROKERS = (process.env.KAFKA_BROKERS ?? '')
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b.length > 0);

/** What the adapter declares; README explains each value. */
export const KAFKA_CAPABILITIES: BrokerCapabilities = {
  ordering: 'per-key',
  persistence: true,
  replay: true,
  nativeDelay: false,
  // The idempotent producer drops the client's own retries of a request, not a second publish
  // of the same event id: the suite's dedup case would fail, so it is not claimed.
  brokerDedup: false,
};

/**
 * The suite asks for a 2 s ack timeout; the adapter uses it as the group session timeout, and
 * brokers refuse sessions under `group.min.session.timeout.ms` (6 s by default). Set
 * KAFKA_MIN_SESSION_TIMEOUT_MS when the test broker allows less.
 */
const MIN_SESSION_TIMEOUT_MS = Number(process.env.KAFKA_MIN_SESSION_TIMEOUT_MS ?? 6_000);

async function kafkaHarness(settings: BrokerSettings): Promise<BrokerHarness> {
  const common = { brokers: BROKERS, maxMessageBytes: settings.maxMessageBytes, clientId: 'causeway-conformance' };
  const made: Array<Publisher | Subscriber> = [];
  const raw = new Producer({ clientId: `causeway-conformance-raw-${process.pid}`, bootstrapBrokers: BROKERS, acks: ProduceAcks.ALL });
  return {
    publisher() {
      const p = new KafkaPublisher(common);
      made.push(p);
      return p;
    },
    subscriber() {
      const s = new KafkaSubscriber({ ...common, ackTimeoutMs: Math.max(settings.ackTimeoutMs, MIN_SESSION_TIMEOUT_MS) });
      made.push(s);
      return s;
    },
    async crash(subscriber) {
      (subscriber as KafkaSubscriber).simulateCrashForTests();
    },
    async publishRaw(topic, body) {
      await raw.send({ messages: [{ topic, value: Buffer.from(body) }] });
    },
    async close() {
      await Promise.all(made.map((x) => x.close({ timeoutMs: 1_000 }).catch(() => undefined)));
      await raw.close();
    },
  };
}

if (BROKERS.length > 0) {
  brokerSuite({ name: 'kafka', capabilities: KAFKA_CAPABILITIES, create: kafkaHarness });
} else {
  it.skip('brokerSuite on Kafka: no Kafka server here, set KAFKA_BROKERS to run (e.g. KAFKA_BROKERS=127.0.0.1:9092)', () => {});
}
