/**
 * The generic cell rate algorithm: a token bucket kept as one number per key, the "theoretical
 * arrival time" (TAT). With an emission interval T = interval / calls and a burst tolerance
 * τ = T × (burst − 1), a call at time t is admitted when TAT − τ ≤ t, and moves TAT to
 * max(TAT, t) + T. A fresh key (no TAT) admits `burst` calls at once, then one every T.
 */

export interface GcraLimit {
  calls: number;
  intervalMs: number;
  burst: number;
}

export type GcraResult =
  /** `tat`: the new state to store; `remaining`: how many more calls would be admitted right now. */
  | { ok: true; tat: number; remaining: number }
  /** `retryAfterMs`: the earliest moment (from now) a call would be admitted. */
  | { ok: false; retryAfterMs: number };

export function gcra(limit: GcraLimit, storedTat: number | undefined, now: number): GcraResult {
  const emission = limit.intervalMs / limit.calls;
  const tolerance = emission * (limit.burst - 1);
  const tat = Math.max(storedTat ?? now, now);
  const allowAt = tat - tolerance;
  if (now < allowAt) return { ok: false, retryAfterMs: Math.ceil(allowAt - now) };
  const next = tat + emission;
  // Rounding guard: a value a hair below a whole call counts as that call.
  const remaining = Math.max(0, Math.floor((tolerance - (next - now)) / emission + 1e-9) + 1);
  return { ok: true, tat: next, remaining };
}
