/**
 * Two test projects: `vitest run` runs both, `vitest run --project unit` only the fast one.
 *
 * - unit: in-process, no real servers or services; each file should take well under a second.
 * - integration: real MCP servers, sockets, keychain, PostgreSQL, Chromium. Each file runs in its
 *   own child process (a crash or a leaked handle stays in that file), with long timeouts, and at
 *   most two files at once: CI machines have two cores, and these tests start processes of their own.
 *
 * With GATEHOUSE_TEST_JSON set to a path, the run also writes vitest's JSON report there
 * (.ci/run reads it for its summary line).
 */
import { defineConfig } from 'vitest/config';

const jsonReport = process.env['GATEHOUSE_TEST_JSON'];

export default defineConfig({
  test: {
    reporters: jsonReport ? ['default', 'json'] : ['default'],
    ...(jsonReport ? { outputFile: { json: jsonReport } } : {}),
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // The fast project runs first, then the integration project with its own worker limit.
          sequence: { groupOrder: 0 },
          environment: 'node',
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          environment: 'node',
          pool: 'forks',
          maxWorkers: 2,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // expect.poll waits for what a real daemon and browser do: seconds on a busy two-core machine, not vitest's default 1 s.
          expect: { poll: { timeout: 15_000 } },
        },
      },
    ],
  },
});
