import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = path.dirname(fileURLToPath(import.meta.url));
const ALL = ['packages/*/src/**/*.test.ts', 'scripts/**/*.test.ts'];
// Suites that start real servers (redis-server, PostgreSQL), spawn the CLI bundles (dist/), run
// races between many OS processes or real builds are named `*.slow.test.ts` (docs/architecture.md).
const SLOW = ['packages/*/src/**/*.slow.test.ts', 'scripts/**/*.slow.test.ts'];

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of the workspace packages; CLI tests spawn dist/.
    alias: [
      { find: /^@wtpool\/([a-z]+)$/, replacement: path.join(root, 'packages/$1/src/index.ts') },
      // Subpath entry points (`@wtpool/services/resp`) are source files of the same name.
      {
        find: /^@wtpool\/([a-z]+)\/([a-z-]+)$/,
        replacement: path.join(root, 'packages/$1/src/$2.ts'),
      },
    ],
  },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Race tests spawn many real processes; two cores: keep files from piling up on each other.
    maxWorkers: 2,
    reporters: ['default', './packages/testkit/src/summary-reporter.ts'],
    projects: [
      // `pnpm test:fast`: no servers, no dist/, no process races.
      { extends: true, test: { name: 'fast', include: ALL, exclude: SLOW } },
      // One real redis-server and PostgreSQL for the run (packages/testkit global setup).
      {
        extends: true,
        test: {
          name: 'slow',
          include: SLOW,
          globalSetup: ['packages/testkit/src/global-setup.ts'],
        },
      },
    ],
  },
});
