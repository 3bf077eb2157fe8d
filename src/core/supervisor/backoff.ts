/**
 * Restart delays: exponential growth from `initialDelayMs` by `multiplier`, capped at
 * `maxDelayMs`, with part of each delay drawn at random so that servers that failed together
 * do not all come back in the same millisecond.
 */
import type { RestartPolicy } from '../../common/config.js';

export type BackoffPolicy = Pick<RestartPolicy, 'initialDelayMs' | 'maxDelayMs' | 'multiplier' | 'jitter'>;

/** A source of numbers in [0, 1), such as `Math.random`. */
export type Random = () => number;

/**
 * The delay before restart number `attempt + 1`, without jitter: `initialDelayMs` for attempt 0,
 * then multiplied by `multiplier` per attempt, never above `maxDelayMs`.
 */
export function baseDelay(attempt: number, policy: BackoffPolicy): number {
  const n = attempt > 0 ? Math.floor(attempt) : 0; // NaN and negatives count as the first attempt
  const grown = policy.initialDelayMs * Math.pow(policy.multiplier, n);
  // Past the cap (or past what a double can hold) the answer is the cap.
  return Number.isFinite(grown) ? Math.min(policy.maxDelayMs, grown) : policy.maxDelayMs;
}

/**
 * The delay to wait, in whole milliseconds: the base delay less a random share of up to
 * `jitter` of it. It therefore lies in [base × (1 − jitter), base] and never exceeds `maxDelayMs`.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: Random): number {
  const base = baseDelay(attempt, policy);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  const draw = random();
  const r = Number.isFinite(draw) ? Math.min(1, Math.max(0, draw)) : 0;
  return Math.max(0, Math.round(base - base * jitter * r));
}
