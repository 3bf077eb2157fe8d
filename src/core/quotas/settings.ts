/**
 * Rate limits and write quotas, as a policy bundle's `quotas.json` sets them (parsed and checked in
 * src/node/policy/content.ts; docs/approvals.md is the admin's guide).
 *
 * - A **rate limit** bounds how fast calls arrive, per user, client, server and tool (any
 *   combination), with the generic cell rate algorithm (gcra.ts): `calls` per `intervalMs`, with
 *   bursts of up to `burst` calls at once. It counts every call the policy permits.
 * - A **quota** counts calls per calendar day (the machine's local day) or per client session. Past
 *   `approvalAfter` calls, each further call needs a person's approval; past `limit`, calls are
 *   refused. By default a quota counts calls to tools the signed catalog marks as writes (not
 *   read-only; destructive tools are writes too); a permit's `@quota("name")` adds the calls it
 *   allows to that quota whatever the selector says.
 *
 * Only tool calls are limited and counted; resource reads and prompts are not.
 */

/** What a counter is kept per. The user is always part of the key. */
export type Dimension = 'user' | 'client' | 'server' | 'tool';
export const DIMENSIONS: readonly Dimension[] = ['user', 'client', 'server', 'tool'];

/** Which tool calls a rule counts. */
export type ToolSelector =
  | { kind: 'all' }
  /** Tools the catalog does not mark read-only (destructive ones included). */
  | { kind: 'writes' }
  | { kind: 'destructive' }
  /** `<server>__<tool>` names, `*` matching any run of characters; empty: only calls a `@quota` names. */
  | { kind: 'names'; patterns: readonly string[] };

export interface RateLimitRule {
  id: string;
  per: readonly Dimension[];
  /** `calls` per `intervalMs` on average. */
  calls: number;
  intervalMs: number;
  /** How many calls may arrive at once (the bucket's size). */
  burst: number;
  tools: ToolSelector;
}

export interface QuotaRule {
  id: string;
  /** `day`: the machine's local calendar day. `session`: one client connection (see docs/approvals.md). */
  window: 'day' | 'session';
  per: readonly Dimension[];
  /** The hard cap: the call after the `limit`-th in a window is refused (`quota_exceeded`). */
  limit: number;
  /** Calls after this many in a window need a person's approval each (until the cap). */
  approvalAfter?: number;
  tools: ToolSelector;
}

export interface QuotaSettings {
  rateLimits: readonly RateLimitRule[];
  quotas: readonly QuotaRule[];
}

export const NO_QUOTA_SETTINGS: QuotaSettings = Object.freeze({ rateLimits: [], quotas: [] });

const UNITS: Record<string, number> = {
  s: 1000,
  sec: 1000,
  second: 1000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
};

/** `"30/min"` → 30 calls per 60,000 ms; undefined when it is not a rate. */
export function parseRate(text: string): { calls: number; intervalMs: number } | undefined {
  const match = /^\s*(\d{1,9})\s*\/\s*(s|sec|second|min|minute|h|hour|d|day)\s*$/.exec(text);
  if (!match) return undefined;
  const calls = Number(match[1]);
  if (calls < 1) return undefined;
  return { calls, intervalMs: UNITS[match[2]!]! };
}

/** "30 calls per minute" */
export function describeRate(rule: Pick<RateLimitRule, 'calls' | 'intervalMs'>): string {
  const unit =
    rule.intervalMs === 1000
      ? 'second'
      : rule.intervalMs === 60_000
        ? 'minute'
        : rule.intervalMs === 3_600_000
          ? 'hour'
          : rule.intervalMs === 86_400_000
            ? 'day'
            : `${rule.intervalMs} ms`;
  return `${rule.calls} call${rule.calls === 1 ? '' : 's'} per ${unit}`;
}

export function describeSelector(selector: ToolSelector): string {
  switch (selector.kind) {
    case 'all':
      return 'every tool';
    case 'writes':
      return 'write tools';
    case 'destructive':
      return 'destructive tools';
    case 'names':
      return selector.patterns.length > 0 ? selector.patterns.join(', ') : 'calls a @quota names';
  }
}

/** "user, client and tool" */
export function describePer(per: readonly Dimension[]): string {
  const all: Dimension[] = per.includes('user') ? [...per] : ['user', ...per];
  return all.length === 1 ? all[0]! : `${all.slice(0, -1).join(', ')} and ${all[all.length - 1]}`;
}
