/**
 * `npm run screens`: regenerates docs/screens/ (test/screens/screens.test.ts). Kept out of the
 * test projects of vitest.config.ts, so `npm test` never rewrites committed files.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/screens/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
