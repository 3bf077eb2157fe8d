/**
 * The daemon's young-generation cap (src/node/heap.ts) survives a worker thread. V8 keeps the
 * nursery's growth factor as one flag for the whole process and raises it back to its floor
 * whenever it sets up an isolate, a worker's too, so a capped process that starts a worker must put
 * the cap back. The only worker the daemon starts is the console's check of the audit log.
 *
 * Each case runs in a process of its own (test/fixtures/young-generation-worker.mjs), since the
 * test runner's own heap is not capped.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { YOUNG_GENERATION_CAP_MB } from '../../src/node/heap.js';
import { runCommand } from './support/clients.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/young-generation-worker.mjs', import.meta.url));

async function nursery(mode: 'verify' | 'bare'): Promise<{ before: number; after: number }> {
  const run = await runCommand(process.execPath, [FIXTURE, mode], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, 60_000);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { before: number; after: number };
}

describe('the young-generation cap', () => {
  it("holds after the console's audit check ran in a worker thread", async () => {
    const { before, after } = await nursery('verify');
    expect(before).toBeLessThanOrEqual(YOUNG_GENERATION_CAP_MB);
    expect(after).toBeLessThanOrEqual(YOUNG_GENERATION_CAP_MB);
  });

  it('is lost after a worker thread that does not put it back (the V8 behaviour the check guards against)', async () => {
    const { before, after } = await nursery('bare');
    expect(before).toBeLessThanOrEqual(YOUNG_GENERATION_CAP_MB);
    expect(after).toBeGreaterThan(YOUNG_GENERATION_CAP_MB);
  });
});
