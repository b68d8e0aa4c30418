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
