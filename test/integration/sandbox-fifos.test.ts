/**
 * The tracers' named pipes (src/node/sandbox/fifos.ts): made by the real `mkfifo`, user-only, and
 * made together when many sandboxes start at once, so the daemon spawns `mkfifo` a few times rather
 * than once per server (each spawn blocks its event loop until the child runs).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FifoMaker } from '../../src/node/sandbox/fifos.js';

const MKFIFO = spawnSync('sh', ['-c', 'command -v mkfifo'], { encoding: 'utf8' }).stdout.trim();

describe.runIf(process.platform !== 'win32' && MKFIFO !== '')('the tracers’ named pipes', () => {
  let dir: string;
  /** `mkfifo` behind a script that writes down the paths of each run. */
  let counted: string;
  let runs: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gh-fifos-'));
    runs = join(dir, 'runs.log');
    counted = join(dir, 'mkfifo');
    writeFileSync(counted, `#!/bin/sh\nshift 3\necho "$#" >> '${runs}'\nexec '${MKFIFO}' -m 600 -- "$@"\n`);
    chmodSync(counted, 0o700);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const runSizes = (): number[] => readFileSync(runs, 'utf8').trim().split('\n').map(Number);

  it('makes the pipes asked for while one run is going in a single further run, each readable and writable by the user only', async () => {
    const fifos = new FifoMaker(counted);
    const paths = Array.from({ length: 20 }, (_, i) => join(dir, `trace-${i}`));
    await Promise.all(paths.map((p) => fifos.make(p)));
    for (const p of paths) {
      const stat = lstatSync(p);
      expect(stat.isFIFO(), p).toBe(true);
      expect(stat.mode & 0o777).toBe(0o600);
    }
    // The first request runs at once; the 19 that came while it ran share the next run.
    expect(runSizes()).toEqual([1, 19]);
  });

  it('fails only the pipe that cannot be made when it shares a run with others', async () => {
    const fifos = new FifoMaker(counted);
    const good = [join(dir, 'a'), join(dir, 'b')];
    const bad = join(dir, 'no-such-directory', 'c');
    const first = fifos.make(join(dir, 'first'));
    const results = await Promise.allSettled([fifos.make(good[0]!), fifos.make(bad), fifos.make(good[1]!)]);
    await first;
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/mkfifo/);
    for (const p of good) expect(lstatSync(p).isFIFO()).toBe(true);
  });

  it('refuses to make a pipe where a file already is', async () => {
    const taken = join(dir, 'taken');
    writeFileSync(taken, 'x');
    await expect(new FifoMaker(counted).make(taken)).rejects.toThrow(/mkfifo/);
    expect(lstatSync(taken).isFile()).toBe(true);
  });
});
