import { describe, expect, it } from 'vitest';
import { RestartPolicySchema } from '../../src/common/config.js';
import { backoffDelay, baseDelay } from '../../src/core/supervisor/backoff.js';

const policy = RestartPolicySchema.parse({ initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2, jitter: 0.2 });
const noJitter = { ...policy, jitter: 0 };

describe('backoffDelay', () => {
  it('waits the initial delay before the first restart', () => {
    expect(backoffDelay(0, noJitter, () => 0.5)).toBe(100);
  });

  it('multiplies the delay by the multiplier with each attempt', () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(n, noJitter, () => 0))).toEqual([100, 200, 400, 800, 1600]);
    const triple = { ...noJitter, multiplier: 3 };
    expect([0, 1, 2].map((n) => backoffDelay(n, triple, () => 0))).toEqual([100, 300, 900]);
  });

  it('never waits longer than maxDelayMs, however many attempts', () => {
    expect(backoffDelay(6, noJitter, () => 0)).toBe(5_000);
    expect(backoffDelay(60, noJitter, () => 0)).toBe(5_000);
    expect(backoffDelay(100_000, noJitter, () => 0)).toBe(5_000);
    expect(backoffDelay(Number.POSITIVE_INFINITY, noJitter, () => 0)).toBe(5_000);
  });

  it('keeps the same delay with a multiplier of 1', () => {
    expect(backoffDelay(10, { ...noJitter, multiplier: 1 }, () => 0)).toBe(100);
  });

  it('takes away at most the jitter fraction of the delay, at random', () => {
    // base 400 ms at attempt 2, jitter 0.2: between 320 and 400 ms.
    expect(backoffDelay(2, policy, () => 0)).toBe(400);
    expect(backoffDelay(2, policy, () => 0.5)).toBe(360);
    expect(backoffDelay(2, policy, () => 0.999_999)).toBe(320);
  });

  it('stays within [base × (1 − jitter), base] for any random draw and attempt', () => {
    for (const jitter of [0, 0.1, 0.5, 1]) {
      for (let attempt = 0; attempt < 12; attempt++) {
        const p = { ...policy, jitter };
        const base = baseDelay(attempt, p);
        for (let i = 0; i < 50; i++) {
          const delay = backoffDelay(attempt, p, Math.random);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(base * (1 - jitter)));
          expect(delay).toBeLessThanOrEqual(Math.min(Math.ceil(base), p.maxDelayMs));
        }
      }
    }
  });

  it('treats a random source out of range as its nearest bound', () => {
    expect(backoffDelay(0, policy, () => 7)).toBe(80);
    expect(backoffDelay(0, policy, () => -1)).toBe(100);
    expect(backoffDelay(0, policy, () => Number.NaN)).toBe(100);
  });

  it('treats a negative or fractional attempt as the nearest whole attempt at or below it, from 0', () => {
    expect(backoffDelay(-2, noJitter, () => 0)).toBe(100);
    expect(backoffDelay(1.9, noJitter, () => 0)).toBe(200);
    expect(backoffDelay(Number.NaN, noJitter, () => 0)).toBe(100);
  });
});
