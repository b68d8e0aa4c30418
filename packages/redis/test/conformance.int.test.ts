import { brokerSuite } from '@causeway/conformance';
import { REDIS_CAPABILITIES, redisAvailable, redisHarness, skipBecauseNoServer } from './support.js';

if (await redisAvailable()) {
  brokerSuite({
    name: 'redis',
    capabilities: REDIS_CAPABILITIES,
    create: (settings) => redisHarness(settings, 'suite'),
  });
} else {
  skipBecauseNoServer('brokerSuite on Redis Streams');
}
