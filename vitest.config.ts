import { defineConfig } from 'vitest/config';

const everyTest = ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'];
// Files that stop and start a shared local broker (PostgreSQL, RabbitMQ, NATS, Redis). They run
// after every other file has finished, so a restart never pulls a server from under another test.
const restartTests = ['packages/*/test/**/restart.int.test.ts'];

export const config = defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', 'json'],
    outputFile: { json: '.causeway/vitest-report.json' },
    projects: [
      {
        extends: true,
        test: { name: 'main', include: everyTest, exclude: [...restartTests, '**/node_modules/**'], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'restart', include: restartTests, sequence: { groupOrder: 1 }, testTimeout: 180_000 },
      },
    ],
  },
});

// vitest loads the default export of its config file.
// biome-ignore lint: the config loader needs a default export
export { config as default };
