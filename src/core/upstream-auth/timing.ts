/**
 * When an upstream access token expires and when Gatehouse renews it: before it expires, by a
 * margin that grows with the token's lifetime (a fifth of it, at least two seconds and at most five
 * minutes), so that a call never goes out with a token about to lapse and a short-lived token is not
 * renewed on every call.
 */

/** Assumed lifetime when a token response does not say (`expires_in` is only RECOMMENDED). */
export const DEFAULT_LIFETIME_SECONDS = 3600;
const MIN_LIFETIME_SECONDS = 1;
const MAX_LIFETIME_SECONDS = 366 * 24 * 3600;

/** When a token obtained at `now` with this `expires_in` expires (epoch ms); nonsense is clamped. */
export function expiresAtFrom(expiresIn: unknown, now: number): number {
  const seconds = typeof expiresIn === 'number' && Number.isFinite(expiresIn) ? expiresIn : DEFAULT_LIFETIME_SECONDS;
  return now + Math.min(MAX_LIFETIME_SECONDS, Math.max(MIN_LIFETIME_SECONDS, Math.floor(seconds))) * 1000;
}

/** How long before expiry a token is renewed. */
export function renewalMarginMs(obtainedAt: number, expiresAt: number): number {
  const lifetime = Math.max(0, expiresAt - obtainedAt);
  return Math.min(5 * 60_000, Math.max(2000, Math.floor(lifetime / 5)));
}

/** Is it time to renew (or past expiry)? */
export function renewalDue(token: { obtainedAt: number; expiresAt: number }, now: number): boolean {
  return now >= token.expiresAt - renewalMarginMs(token.obtainedAt, token.expiresAt);
}

/** Is the token past its expiry (it must not be sent)? */
export function expired(token: { expiresAt: number }, now: number): boolean {
  return now >= token.expiresAt;
}
