/**
 * V8's optimizing compiler held while the daemon loads and starts (issue 13: what it optimized
 * then stayed in the idle daemon's memory), and optimizing hot code again once released.
 */
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { holdOptimizingCompiler, type HeldCompiler } from '../../src/node/optimizing-compiler.js';

// V8's own view of a function: a bit of %GetOptimizationStatus says TurboFan compiled it.
setFlagsFromString('--allow-natives-syntax');
const optimizationStatus = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
const TURBOFANNED = 1 << 6;

/** A function of its own for each test: V8 shares compiled code between functions of the same source. */
let made = 0;
function hotFunction(): (n: number) => number {
  made++;
  return new Function('n', `/* ${made} */ let s = 0; for (let i = 0; i < n; i++) s += (i * 31) ^ (s >>> 3); return s;`) as (n: number) => number;
}

/** Runs `f` hot until V8 has optimized it, or for `rounds` rounds at most (bounded by `limitMs` too); whether it was optimized. */
function runHot(f: (n: number) => number, rounds: number, limitMs = 20_000): boolean {
  const end = Date.now() + limitMs;
  for (let r = 0; r < rounds && Date.now() < end; r++) {
    f(500);
    if (optimizationStatus(f) & TURBOFANNED) return true;
  }
  return false;
}

let held: HeldCompiler | undefined;
afterEach(() => held?.release());

describe('holdOptimizingCompiler', () => {
  // Unheld, V8 optimizes this function within about a hundred rounds here; held, fifty times that is not enough.
  it('keeps V8 from optimizing code that runs hot while it is held', () => {
    held = holdOptimizingCompiler();
    expect(runHot(hotFunction(), 5_000)).toBe(false);
  });

  it('lets V8 optimize again once released, code that ran hot while held included', () => {
    held = holdOptimizingCompiler();
    const f = hotFunction();
    expect(runHot(f, 5_000)).toBe(false);
    held.release();
    // Optimization is concurrent: its result is installed at a later call, so run until it is (bounded).
    expect(runHot(f, Infinity)).toBe(true);
  });

  it('releases once: a second release leaves V8 as the first left it', () => {
    held = holdOptimizingCompiler();
    held.release();
    held.release();
    expect(runHot(hotFunction(), Infinity)).toBe(true);
  });
});
