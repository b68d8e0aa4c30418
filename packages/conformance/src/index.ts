export { storeSuite } from './store-suite.js';
export type { StoreSuiteContext } from './store-suite.js';
export { sleep, uniqueTenant, waitFor } from './store-harness.js';
export type { StoreCapabilities, StoreHarness, StoreSuiteOptions } from './store-harness.js';
