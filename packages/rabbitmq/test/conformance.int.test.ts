import { brokerSuite } from '@causeway/conformance';
import { CAPABILITIES, createHarness, rabbitAvailable, skipBecauseNoServer } from './support.js';

if (await rabbitAvailable()) {
  brokerSuite({ name: 'rabbitmq', capabilities: CAPABILITIES, create: (settings) => createHarness(settings) });
} else {
  skipBecauseNoServer('brokerSuite: rabbitmq');
}
