export { storeSuite } from './store-suite.js';
export type { StoreSuiteContext } from './store-suite.js';
export { sleep, uniqueTenant, waitFor } from './store-harness.js';
export type { StoreCapabilities, StoreHarness, StoreSuiteOptions } from './store-harness.js';
export { SUITE_SETTINGS, uniqueTopic } from './broker-harness.js';
export type {
  BrokerCapabilities,
  BrokerHarness,
  BrokerRestartOptions,
  BrokerSettings,
  BrokerSuiteOptions,
} from './broker-harness.js';
export { restartLocalBroker, startLocalBroker, stopLocalBroker } from './local-brokers.js';
export type { LocalBroker } from './local-brokers.js';
export { brokerSuite } from './broker-suite.js';
export { brokerRestartSuite } from './broker-restart-suite.js';
export { Collector, keyedMessages, testEvent } from './broker-kit.js';
export { runFlow } from './broker-stress.js';
export type { FlowFigures, FlowOptions } from './broker-stress.js';
