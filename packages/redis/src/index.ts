export { RedisPublisher } from './redis-publisher.js';
export { RedisSubscriber } from './redis-subscriber.js';
export { DEFAULT_ACK_TIMEOUT_MS, DEFAULT_PREFIX, DEFAULT_PUBLISH_TIMEOUT_MS, DEFAULT_URL } from './redis-options.js';
export type { RedisConnectionOptions, RedisPublisherOptions, RedisSubscriberOptions } from './redis-options.js';
export { delayKey, PREFIX_RULE, streamKey } from './keys.js';
export { FIELD as REDIS_ENTRY_FIELDS } from './codec.js';
