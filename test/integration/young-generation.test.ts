/**
 * The daemon's young-generation cap (src/node/heap.ts). Node is given the cap when Gatehouse starts it
 * (HEAP_NODE_FLAGS: the bin script's first line, `npm start`), and V8 then holds it whatever the
 * process does. Where Node is started without them (the desktop app's core in Electron's main
 * process, `node bin/gatehouse.js`), the cap is set from inside, by the growth factor, and that has
 * two gaps, pinned here: a long synchronous stretch of garbage outruns the observer that sets it, and
 * V8 raises the factor back whenever it sets up a worker's isolate, so the console's audit check (the
 * daemon's only worker) puts it back.
 *
 * Each case runs in a process of its own (test/fixtures/young-generation.mjs), since the test
 * runner's own heap is not capped.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HEAP_NODE_FLAGS, YOUNG_GENERATION_CAP_MB } from '../../src/node/heap.js';
import { runCommand } from './support/clients.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/young-generation.mjs', import.meta.url));

async function nursery(mode: 'verify' | 'bare' | 'burst', nodeFlags: readonly string[] = []): Promise<{ before: number; after: number }> {
  const run = await runCommand(process.execPath, [...nodeFlags, FIXTURE, mode], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, 60_000);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { before: number; after: number };
}

describe('the young-generation cap, given to Node when it starts', () => {
  it('holds through one long synchronous stretch of garbage', async () => {
    expect((await nursery('burst', HEAP_NODE_FLAGS)).after).toBeLessThanOrEqual(YOUNG_GENERATION_CAP_MB);
  });

  it('holds through a worker thread that does not put it back', async () => {
    const { before, after } = await nursery('bare', HEAP_NODE_FLAGS);
    expect(before).toBeLessThanOrEqual(YOUNG_GENERATION_CAP_MB);
    expect(after).toBeLessThanOrEqual(YOUNG_GENERATION_CAP_MB);
  });
});

describe('the young-generation cap, set from inside', () => {
  it('is outrun by one long synchronous stretch of garbage (why Gatehouse gives Node the cap wherever it starts Node)', async () => {
    expect((await nursery('burst')).after).toBeGreaterThan(YOUNG_GENERATION_CAP_MB);
  });

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
