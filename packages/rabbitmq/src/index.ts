export { AMQP_BINDING, ATTEMPTS_HEADER, DELIVERY_COUNT_HEADER, MAX_HEADER_TABLE_BYTES } from './codec.js';
export { createRabbitMqPublisher, RabbitMqPublisher } from './rabbitmq-publisher.js';
export { createRabbitMqSubscriber, RabbitMqSubscriber } from './rabbitmq-subscriber.js';
export { DEFAULT_AMQP_URL, DEFAULT_PREFIX, redactUrl } from './rabbitmq-options.js';
export type { RabbitMqConnectionOptions, RabbitMqPublisherOptions, RabbitMqSubscriberOptions } from './rabbitmq-options.js';
export { delayBucket, Topology } from './topology.js';
