import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of the workspace packages; CLI tests spawn dist/.
    alias: [
      { find: /^@wtpool\/([a-z]+)$/, replacement: path.join(root, 'packages/$1/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'scripts/**/*.test.ts'],
    globalSetup: ['packages/testkit/src/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Race tests spawn many real processes; two cores: keep files from piling up on each other.
    maxWorkers: 2,
    reporters: ['default', './packages/testkit/src/summary-reporter.ts'],
  },
});
