/**
 * The Node options that cap the daemon's young generation from the start (src/node/heap.ts): the bin
 * script's first line gives them to Node; main/start.ts passes the same (test/integration/npm-start.test.ts
 * compares the two daemons' command lines).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEAP_NODE_FLAGS, YOUNG_GENERATION_CAP_MB } from '../../src/node/heap.js';

const REPO = join(import.meta.dirname, '..', '..');

describe('HEAP_NODE_FLAGS', () => {
  it('caps each half of the nursery at half the young generation cap', () => {
    expect(HEAP_NODE_FLAGS).toEqual([`--max-semi-space-size=${YOUNG_GENERATION_CAP_MB / 2}`]);
  });

  it("are the options on the bin script's first line, which `env -S` splits and hands to node", () => {
    const firstLine = readFileSync(join(REPO, 'bin', 'gatehouse.js'), 'utf8').split('\n')[0];
    expect(firstLine).toBe(['#!/usr/bin/env -S node', ...HEAP_NODE_FLAGS].join(' '));
  });
});
