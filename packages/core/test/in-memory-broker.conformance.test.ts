import { brokerSuite } from '@causeway/conformance';
import { InMemoryBroker, type InMemorySubscriber } from '@causeway/core';

brokerSuite({
  name: 'in-memory',
  capabilities: { ordering: 'per-key', persistence: false, replay: true, nativeDelay: true, brokerDedup: false },
  async create(settings) {
    const broker = new InMemoryBroker(settings);
    return {
      publisher: () => broker.createPublisher(),
      subscriber: () => broker.createSubscriber(),
      crash: async (subscriber) => (subscriber as InMemorySubscriber).crash(),
      publishRaw: async (topic, body) => broker.appendRaw(topic, new TextDecoder().decode(body)),
      close: async () => undefined,
    };
  },
});
