import { brokerRestartSuite, restartLocalBroker } from '@causeway/conformance';
import { createNatsHarness, NATS_CAPABILITIES, natsAvailable, skipBecauseNoServer } from './support.js';

if (await natsAvailable()) {
  brokerRestartSuite({
    name: 'nats',
    capabilities: NATS_CAPABILITIES,
    create: (settings) => createNatsHarness(settings),
    restart: () => restartLocalBroker('nats'),
  });
} else {
  skipBecauseNoServer('brokerRestartSuite on NATS JetStream');
}
