import { brokerSuite } from '@causeway/conformance';
import { createNatsHarness, NATS_CAPABILITIES, natsAvailable, skipBecauseNoServer } from './support.js';

if (await natsAvailable()) {
  brokerSuite({ name: 'nats', capabilities: NATS_CAPABILITIES, create: (settings) => createNatsHarness(settings) });
} else {
  skipBecauseNoServer('brokerSuite on NATS JetStream');
}
