import { defineConfig } from 'vitest/config';

export const config = defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', 'json'],
    outputFile: { json: '.causeway/vitest-report.json' },
  },
});

// vitest loads the default export of its config file.
// biome-ignore lint: the config loader needs a default export
export { config as default };
