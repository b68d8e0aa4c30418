import { runBrokerSuite } from './brokers/broker-suite.js';
import { runDeliverySuite } from './delivery/delivery-suite.js';
import { runProjectionSuite } from './projections/projection-suite.js';
import { runStoreSuite } from './store/store-suite.js';
import type { Suite } from './suite.js';

// `npm run bench -- <suite> [--quick]`: a table on stdout, progress on stderr, bench/results/<suite>.json.
const SUITES: Readonly<Record<string, Suite>> = {
  store: runStoreSuite,
  brokers: runBrokerSuite,
  projections: runProjectionSuite,
  delivery: runDeliverySuite,
};

const USAGE = `usage: npm run bench -- <suite> [--quick]
suites: ${Object.keys(SUITES).join(', ')}
  --quick   smoke run with small counts (writes bench/results/<suite>.quick.json)
env: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test); BENCH_ADAPTERS=postgresql,redis (brokers: a subset)`;

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...flags] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stderr.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const suite = SUITES[name];
  if (!suite) {
    process.stderr.write(`unknown suite "${name}"\n${USAGE}\n`);
    return 2;
  }
  const unknown = flags.filter((f) => f !== '--quick');
  if (unknown.length > 0) {
    process.stderr.write(`unknown option ${unknown.join(' ')}\n${USAGE}\n`);
    return 2;
  }
  const ok = await suite({
    quick: flags.includes('--quick'),
    connectionString: process.env['BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test',
  });
  return ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
