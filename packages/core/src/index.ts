export { aggregateStream } from './aggregate.js';
export type { AggregateOptions, AggregateResult } from './aggregate.js';
export { backoffDelay, delay } from './backoff.js';
export { GROUP_RULE, TOPIC_RULE, groupProblem, topicProblem, validateGroup, validateTopic } from './broker-names.js';
export { runCatchUpSubscription } from './catch-up-subscription.js';
export type { CatchUpOptions, CatchUpSource } from './catch-up-subscription.js';
export { fromCloudEvent, toCloudEvent } from './cloudevents.js';
export type { CloudEventAttributes, DecodedCloudEvent, FromCloudEventOptions, StreamFacts, ToCloudEventOptions } from './cloudevents.js';
export {
  concurrencyOf,
  createDelivery,
  decodeArrival,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_CONCURRENCY,
  handleDelivery,
  HandlerPool,
  reportToStderr,
  trackSubscription,
} from './delivery-runtime.js';
export type { DeliveryControl, DeliveryFacts, DeliveryInfo, ErrorReporter, RawArrival, SettleOps } from './delivery-runtime.js';
export { deliveries } from './delivery-stream.js';
export type { DeliveryStream } from './delivery-stream.js';
export { deadLetter, InMemoryDeadLetterSink } from './consumer/dead-letter.js';
export type { DeadLetter, DeadLetterOptions, DeadLetterSink } from './consumer/dead-letter.js';
export { DEAD_LETTER_STATUSES, validateDeadLetterFilter, validateOperatorNote, validatePageRequest } from './consumer/dead-letter-queue.js';
export type {
  DeadLetterAction,
  DeadLetterActionResult,
  DeadLetterDetail,
  DeadLetterFilter,
  DeadLetterGroup,
  DeadLetterHistoryEntry,
  DeadLetterPage,
  DeadLetterPageRequest,
  DeadLetterQueue,
  DeadLetterReplayResult,
  DeadLetterStatus,
  DeadLetterSummary,
  OperatorNote,
} from './consumer/dead-letter-queue.js';
export { checkRetention, DEFAULT_DEDUP_RETENTION_MS } from './consumer/dedup-retention.js';
export { deduplicate, deduplicateBatch, InMemoryDedupLedger } from './consumer/deduplicate.js';
export type { BatchDedupLedger, DedupKey, DedupLedger, DeduplicateOptions } from './consumer/deduplicate.js';
export { fingerprint, isPermanentFailure, isRetriesExhaustedError, PermanentError, RetriesExhaustedError } from './consumer/failures.js';
export { pipeline } from './consumer/handler-pipeline.js';
export type { Middleware } from './consumer/handler-pipeline.js';
export { isReplayDelivery, replayDeadLetters } from './consumer/replay-dead-letters.js';
export type {
  DeadLetterReplayer,
  DeadLetterReplaySource,
  ReplayDeadLettersOptions,
  ReplayError,
  ReplayItem,
  ReplayOutcome,
} from './consumer/replay-dead-letters.js';
export { requireEventType } from './consumer/require-event-type.js';
export { requireTenant } from './consumer/require-tenant.js';
export { retry, retryDelay, retryHorizonMs } from './consumer/retry.js';
export type { RetryPolicy } from './consumer/retry.js';
export { isParkingFullError, ParkingFullError, sequenced } from './consumer/sequenced.js';
export type { KeyParking, ParkOutcome, SequencedOptions } from './consumer/sequenced.js';
export { createCommandHandler } from './command-handler.js';
export type { CommandHandler, CommandHandlerOptions, HandleOptions, HandleResult } from './command-handler.js';
export type { Decider, DomainEvent } from './decider.js';
export { causedBy, createEvent, envelopeProblems, metadataProblems, startCorrelation } from './envelope.js';
export type {
  CausationContext,
  EnvelopeDefaults,
  EventEnvelope,
  LogPosition,
  Metadata,
  NewEvent,
  RecordedEvent,
} from './envelope.js';
export {
  AdapterError,
  CausewayError,
  ClosedError,
  ConcurrencyError,
  DuplicateEventError,
  HandlerError,
  InvalidOptionsError,
  LeaseLostError,
  MessageTooLargeError,
  SchemaError,
  StreamClosedError,
  TimeoutError,
  isClosedError,
  isConcurrencyError,
  isDuplicateEventError,
  isLeaseLostError,
  isMessageTooLargeError,
  isSchemaError,
  isStreamClosedError,
  isTimeoutError,
} from './errors.js';
export type { ExpectedVersion } from './errors.js';
export { ALL_TENANTS } from './event-store.js';
export type {
  AppendOptions,
  AppendResult,
  EventStore,
  ReadAllOptions,
  ReadAllResult,
  ReadStreamOptions,
  Snapshot,
  StreamInfo,
  StreamRef,
  Subscription,
  SubscribeOptions,
  TenantScope,
} from './event-store.js';
export { checkEventTypeName } from './event-type-name.js';
export type { EventTypeNameCheck } from './event-type-name.js';
export { InMemoryBroker, InMemorySubscriber } from './in-memory-broker.js';
export type { InMemoryBrokerOptions } from './in-memory-broker.js';
export { InMemoryEventStore } from './in-memory-event-store.js';
export type { InMemoryEventStoreOptions } from './in-memory-event-store.js';
export { jsonProblem, utf8Length } from './json.js';
export { messageKey } from './message.js';
export type { Delivery, DeliveryHandler, EventDelivery, Message, NackOptions, ReceivedEvent, UndecodableDelivery } from './message.js';
export { MAX_STREAM_ID_BYTES, TENANT_ID_RULE, streamIdProblem, tenantIdProblem } from './names.js';
export { LOG_START, comparePositions, formatPosition, parsePosition } from './position.js';
export { CheckpointConflictError, defineProjection, projectionLabel, validateProjectionTenant } from './projection.js';
export type { CheckpointStore, Projection, ProjectionBatchHandler, ProjectionHandler, ProjectionKey } from './projection.js';
export { ProjectionHandlerError, projectionApplier } from './projection-apply.js';
export type { ProjectionApplier } from './projection-apply.js';
export { DEFAULT_PROJECTION_ERROR_POLICY, resolveErrorPolicy } from './projection-error-policy.js';
export type { ProjectionErrorPolicy, ResolvedErrorPolicy } from './projection-error-policy.js';
export type { ProjectionLag, ProjectionLagHook } from './projection-lag.js';
export type { CloseOptions, Publisher } from './publisher.js';
export { createQueryBus, defineQuery, isUnknownQueryError, UnknownQueryError } from './query-bus.js';
export type { AskQueryOptions, Query, QueryBus, QueryBusOptions, QueryHandler, RegisterQueryOptions, WaitForPosition } from './query-bus.js';
export { DEFAULT_MAX_EVENT_BYTES, MAX_EVENTS_PER_APPEND, prepareAppend } from './prepare-append.js';
export type { PrepareOptions, PreparedEvent } from './prepare-append.js';
export {
  asOfTime,
  checkExpectedVersion,
  expectedVersionProblem,
  matchIdempotentAppend,
  readStreamSlice,
  streamKey,
  validateReadAll,
  validateReadStream,
  validateStreamRef,
  validateSubscribe,
} from './store-rules.js';
export type { BrokerSubscription, GroupSubscribeOptions, Subscriber } from './subscriber.js';
export { isUuid, uuidv7 } from './uuid.js';
export {
  CONTENT_TYPE_CLOUDEVENTS_JSON,
  CONTENT_TYPE_JSON,
  DEFAULT_MAX_MESSAGE_BYTES,
  decodeBinary,
  decodeStructured,
  encodeBinary,
  encodeStructured,
  percentDecode,
  percentEncode,
} from './wire-format.js';
export type { BinaryBinding, BinaryMessage, DecodedMessage, WireLimits } from './wire-format.js';
