export { KafkaPublisher } from './kafka-publisher.js';
export { KafkaSubscriber } from './kafka-subscriber.js';
export type { BrokerSubscription } from '@causeway/core';
export {
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_BROKERS,
  DEFAULT_CLIENT_ID,
  DEFAULT_FETCH_MAX_WAIT_MS,
  DEFAULT_MAX_BUFFERED_RECORDS,
  DEFAULT_PARTITIONS,
  DEFAULT_PUBLISH_TIMEOUT_MS,
  kafkaGroupId,
} from './kafka-options.js';
export type { KafkaConnectionOptions, KafkaPublisherOptions, KafkaSubscriberOptions } from './kafka-options.js';
export { decodeRecord, encodeRecord, KAFKA_BINDING } from './codec.js';
export type { KafkaRecordIn, KafkaRecordOut } from './codec.js';
