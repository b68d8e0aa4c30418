export { NATS_BINDING, decodeNatsMessage, encodeNatsMessage } from './codec.js';
export type { EncodedNatsMessage, ReceivedNatsMessage } from './codec.js';
export { DEFAULT_NATS_URL } from './nats-options.js';
export type { NatsOptions, NatsPublisherOptions, NatsSubscriberOptions } from './nats-options.js';
export { NatsPublisher, createNatsPublisher } from './nats-publisher.js';
export { NatsSubscriber, createNatsSubscriber } from './nats-subscriber.js';
export type { NatsSubscription } from './nats-subscription.js';
export { streamConfig, streamNameOf, subjectOf } from './streams.js';
