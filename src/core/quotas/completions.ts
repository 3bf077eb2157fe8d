/**
 * A bound on completion requests. Autocompletion sends at most one request per keystroke, and each
 * carries the text being typed to the server; a loop must not be able to stream text upstream at
 * will. The bundle's rate limits and quotas count tool calls only (settings.ts), so completions get
 * a fixed limit of their own, per client session (one principal object: one connection), in every
 * mode, managed or not.
 */
import type { GovernedCall } from '../chain.js';
import { ADMIT, type QuotaAdmission, type QuotaPort } from '../governance.js';
import type { Clock } from '../ports.js';
import type { Principal } from '../principal.js';
import { gcra, type GcraLimit } from './gcra.js';

/** 20 a second on average, 40 at once: well above typing, well below a flood. */
export const COMPLETION_LIMIT: GcraLimit & { id: string } = Object.freeze({ id: 'completions', calls: 20, intervalMs: 1000, burst: 40 });

/** The quota port with completions limited per session; every other request goes to `inner` unchanged. */
export function withCompletionLimit(inner: QuotaPort, clock: Pick<Clock, 'now'>, limit: GcraLimit & { id: string } = COMPLETION_LIMIT): QuotaPort {
  const tats = new WeakMap<Principal, number>();
  return {
    admit(call: GovernedCall): QuotaAdmission | Promise<QuotaAdmission> {
      if (call.operation !== 'complete') return inner.admit(call);
      const result = gcra(limit, tats.get(call.principal), clock.now());
      if (!result.ok) {
        call.facts.quota = { bucket: limit.id, remaining: 0, limit: limit.burst };
        const rate = `at most ${limit.calls} a second (bursts of ${limit.burst}) per client session`;
        const reason = `too many completion requests: ${rate}; retry after ${result.retryAfterMs} ms`;
        return { ok: false, code: 'rate_limited', reason, data: { retryAfterMs: result.retryAfterMs } };
      }
      tats.set(call.principal, result.tat);
      call.facts.quota = { bucket: limit.id, remaining: result.remaining, limit: limit.burst };
      return ADMIT;
    },
  };
}
