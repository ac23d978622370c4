// Local development: `npx vitest run --config test/support/vitest.dev.config.ts <files>` runs the suite's
// settings with a private PostgreSQL cluster but without ensure-ready (no npm ci, no dist/ rebuild;
// tests that run bin/kiln.js need a current dist/).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/support/pg-global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
  },
});
