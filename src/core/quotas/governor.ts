/**
 * The quota stage's port in managed mode: the bundle's rate limits and quotas (settings.ts), checked
 * and spent in one step against the quota store, so that concurrent calls cannot overtake each
 * other: with a cap of 10, exactly 10 of 100 simultaneous calls are admitted. A refused call spends
 * nothing (rate limits included); an admitted call reserves one unit of each quota it counts
 * against, and the quota stage gives it back when the call does not go ahead (see `quotaStage`).
 *
 * Past a quota's `approvalAfter`, an admitted call carries an approval reason for the approval stage.
 * Crossings (a threshold or a cap reached, a rate limit starting to refuse) are audit events of
 * their own, beside the call's outcome record.
 */
import { globToRegExp } from '../glob.js';
import type { QuotasStatus, QuotaStatus, QuotaUsage, RateLimitStatus } from '../../common/status.js';
import { callerOf, type GovernedCall } from '../chain.js';
import { ADMIT, type ApprovalReason, type QuotaAdmission, type QuotaPort } from '../governance.js';
import type { AuditRecord, Clock, Logger } from '../ports.js';
import type { Principal } from '../principal.js';
import { gcra } from './gcra.js';
import type { SessionKeys } from './session.js';
import {
  describePer,
  describeRate,
  describeSelector,
  DIMENSIONS,
  type Dimension,
  type QuotaRule,
  type QuotaSettings,
  type RateLimitRule,
  type ToolSelector,
} from './settings.js';
import type { QuotaStore } from './store.js';

export interface ToolAttributes {
  readOnly: boolean;
  destructive: boolean;
}

export interface QuotaGovernorDeps {
  store: QuotaStore;
  clock: Clock;
  /** The settings of the bundle in force; undefined when none is (unmanaged, failing closed). */
  settings(): QuotaSettings | undefined;
  /** The bundle's version, for status. */
  version?(): string | undefined;
  /** What the signed catalog says of a tool; undefined when it does not list it. */
  tool(server: string, name: string): ToolAttributes | undefined;
  sessions: SessionKeys;
  /** Records quota crossings (the daemon's `record`). */
  audit(record: AuditRecord): void;
  logger?: Logger;
}

/** Session counters are forgotten this long after their last use (a session does not outlive the daemon anyway). */
const SESSION_KEEP_MS = 86_400_000;
const MAX_LIMITED_KEYS = 10_000;

interface Matched {
  rate: RateLimitRule[];
  quotas: QuotaRule[];
}

type Dims = Partial<Record<Dimension, string>>;

/** The machine's local calendar day of `now`, and when it ends. */
export function localDay(now: number): { day: string; endsAt: number } {
  const d = new Date(now);
  const pad = (n: number) => String(n).padStart(2, '0');
  return { day: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`, endsAt: new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime() };
}

function dimsOf(per: readonly Dimension[], call: GovernedCall): Dims {
  const out: Dims = { user: call.principal.user.id };
  for (const dimension of DIMENSIONS) {
    if (dimension === 'user' || !per.includes(dimension)) continue;
    out[dimension] = dimension === 'client' ? call.principal.client.name : dimension === 'server' ? call.server : `${call.server}__${call.name}`;
  }
  return out;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.ceil(ms / 1000)} s`;
}

interface Reservation {
  key: string;
  expiresAt: number;
}

export class QuotaGovernor implements QuotaPort {
  private readonly matchers = new WeakMap<QuotaSettings, { cache: Map<string, Matched>; names: Map<ToolSelector, RegExp[]> }>();
  /** Rate-limit keys refusing calls now, and until when: a crossing is recorded once, not per refused call. */
  private readonly limited = new Map<string, number>();

  constructor(private readonly deps: QuotaGovernorDeps) {}

  admit(call: GovernedCall): QuotaAdmission {
    if (call.kind !== 'tool') return ADMIT;
    const settings = this.deps.settings();
    if (!settings || (settings.rateLimits.length === 0 && settings.quotas.length === 0)) return ADMIT;
    const matched = this.rulesFor(settings, call);
    if (matched.rate.length === 0 && matched.quotas.length === 0) return ADMIT;

    const now = this.deps.clock.now();
    const rateKeys = matched.rate.map((rule) => JSON.stringify(['r', rule.id, dimsOf(rule.per, call)]));
    let day: { day: string; endsAt: number } | undefined;
    let session: string | undefined;
    const quotaKeys = matched.quotas.map((rule) => {
      if (rule.window === 'day') {
        day ??= localDay(now);
        return { key: JSON.stringify(['q', rule.id, 'day', day.day, dimsOf(rule.per, call)]), expiresAt: day.endsAt + 86_400_000 };
      }
      session ??= this.deps.sessions.of(call.principal);
      return { key: JSON.stringify(['q', rule.id, 'session', session, dimsOf(rule.per, call)]), expiresAt: now + SESSION_KEEP_MS };
    });

    let refusal: { kind: 'rate'; rule: RateLimitRule; key: string; retryAfterMs: number } | { kind: 'quota'; rule: QuotaRule; used: number } | undefined;
    const used: number[] = [];
    let rateRemaining: { rule: RateLimitRule; remaining: number } | undefined;
    this.deps.store.update((tx) => {
      for (let i = 0; i < matched.rate.length; i++) {
        const rule = matched.rate[i]!;
        const result = gcra(rule, tx.get(rateKeys[i]!), now);
        if (!result.ok) {
          refusal = { kind: 'rate', rule, key: rateKeys[i]!, retryAfterMs: result.retryAfterMs };
          return false;
        }
        tx.set(rateKeys[i]!, result.tat, Math.ceil(result.tat) + 1);
        if (!rateRemaining || result.remaining < rateRemaining.remaining) rateRemaining = { rule, remaining: result.remaining };
      }
      for (let i = 0; i < matched.quotas.length; i++) {
        const rule = matched.quotas[i]!;
        const { key, expiresAt } = quotaKeys[i]!;
        const count = tx.get(key) ?? 0;
        if (count >= rule.limit) {
          refusal = { kind: 'quota', rule, used: count };
          return false;
        }
        tx.set(key, count + 1, expiresAt);
        used.push(count + 1);
      }
      return true;
    });

    if (refusal?.kind === 'rate') return this.rateRefusal(call, refusal.rule, refusal.key, refusal.retryAfterMs, now);
    if (refusal?.kind === 'quota') return this.quotaRefusal(call, refusal.rule, refusal.used, now);

    for (const key of rateKeys) this.limited.delete(key);
    const approvals: ApprovalReason[] = [];
    let tightest: AuditRecord['quota'] = rateRemaining
      ? { bucket: rateRemaining.rule.id, remaining: rateRemaining.remaining, limit: rateRemaining.rule.burst }
      : undefined;
    matched.quotas.forEach((rule, i) => {
      const count = used[i]!;
      const remaining = rule.limit - count;
      if (!tightest || remaining < (tightest.remaining ?? Infinity)) tightest = { bucket: rule.id, remaining, limit: rule.limit };
      if (rule.approvalAfter !== undefined && count > rule.approvalAfter) {
        approvals.push({ kind: 'quota', quota: rule.id, window: rule.window, used: count, approvalAfter: rule.approvalAfter, limit: rule.limit });
        if (count === rule.approvalAfter + 1) this.crossed(call, rule, 'approval-threshold', count, now);
      }
      if (count === rule.limit) this.crossed(call, rule, 'cap', count, now);
    });
    if (tightest) call.facts.quota = tightest;
    if (quotaKeys.length === 0) return approvals.length > 0 ? { ok: true, approvals } : ADMIT;
    const reserved: Reservation[] = quotaKeys;
    let released = false;
    return {
      ok: true,
      ...(approvals.length > 0 ? { approvals } : {}),
      release: () => {
        if (released) return;
        released = true;
        this.release(reserved);
      },
    };
  }

  /** Gives back one unit of each reserved counter (never below zero). */
  private release(reserved: Reservation[]): void {
    try {
      this.deps.store.update((tx) => {
        for (const { key, expiresAt } of reserved) {
          const count = tx.get(key);
          if (count !== undefined && count > 0) tx.set(key, count - 1, expiresAt);
        }
        return true;
      });
    } catch (error) {
      // The call was refused anyway; a failed refund only over-counts (never lets more through).
      this.deps.logger?.log('error', 'quota.release_failed', { error: error instanceof Error ? error.message : String(error) });
    }
  }

  private rateRefusal(call: GovernedCall, rule: RateLimitRule, key: string, retryAfterMs: number, now: number): QuotaAdmission {
    const retryAt = new Date(now + retryAfterMs).toISOString();
    const reason = `rate limit "${rule.id}" reached: ${describeRate(rule)} (bursts of ${rule.burst}) per ${describePer(rule.per)}; retry after ${seconds(retryAfterMs)}`;
    call.facts.quota = { bucket: rule.id, remaining: 0, limit: rule.burst };
    const until = this.limited.get(key);
    if (until === undefined || until <= now) {
      if (this.limited.size >= MAX_LIMITED_KEYS) this.limited.clear();
      this.deps.audit({
        type: 'quota.crossed',
        at: new Date(now).toISOString(),
        callId: call.id,
        ...callerOf(call),
        reason,
        quota: { bucket: rule.id, remaining: 0, limit: rule.burst },
        detail: { kind: 'rate-limit', rate: describeRate(rule), burst: rule.burst, retryAt },
      });
    }
    this.limited.set(key, now + retryAfterMs);
    return { ok: false, code: 'rate_limited', reason, data: { limit: rule.id, retryAfterMs, retryAt } };
  }

  private quotaRefusal(call: GovernedCall, rule: QuotaRule, used: number, now: number): QuotaAdmission {
    const what = `${used} of ${rule.limit} calls to ${describeSelector(rule.tools)}`;
    call.facts.quota = { bucket: rule.id, remaining: 0, limit: rule.limit };
    if (rule.window === 'day') {
      const resetsAt = new Date(localDay(now).endsAt).toISOString();
      return {
        ok: false,
        code: 'quota_exceeded',
        reason: `quota "${rule.id}" is used up: ${what} today (per ${describePer(rule.per)}); it starts again at ${resetsAt}`,
        data: { quota: rule.id, window: 'day', limit: rule.limit, used, resetsAt, retryAt: resetsAt },
      };
    }
    return {
      ok: false,
      code: 'quota_exceeded',
      reason: `quota "${rule.id}" is used up: ${what} in this session (per ${describePer(rule.per)})`,
      data: { quota: rule.id, window: 'session', limit: rule.limit, used },
    };
  }

  private crossed(call: GovernedCall, rule: QuotaRule, kind: 'approval-threshold' | 'cap', used: number, now: number): void {
    const reason =
      kind === 'cap'
        ? `quota "${rule.id}" reached its cap of ${rule.limit} (${rule.window === 'day' ? 'today' : 'this session'}): further calls are refused`
        : `quota "${rule.id}" passed ${rule.approvalAfter} calls (${rule.window === 'day' ? 'today' : 'this session'}): each further call needs approval`;
    this.deps.audit({
      type: 'quota.crossed',
      at: new Date(now).toISOString(),
      callId: call.id,
      ...callerOf(call),
      reason,
      quota: { bucket: rule.id, remaining: rule.limit - used, limit: rule.limit },
      detail: { kind, window: rule.window, used, ...(rule.approvalAfter !== undefined ? { approvalAfter: rule.approvalAfter } : {}) },
    });
  }

  private rulesFor(settings: QuotaSettings, call: GovernedCall): Matched {
    let matcher = this.matchers.get(settings);
    if (!matcher) this.matchers.set(settings, (matcher = { cache: new Map(), names: new Map() }));
    const id = `${call.server}__${call.name}`;
    let matched = matcher.cache.get(id);
    if (!matched) {
      const tool = this.deps.tool(call.server, call.name);
      const selects = (selector: ToolSelector): boolean => {
        switch (selector.kind) {
          case 'all':
            return true;
          case 'writes':
            return tool !== undefined && !tool.readOnly;
          case 'destructive':
            return tool?.destructive === true;
          case 'names': {
            let patterns = matcher.names.get(selector);
            if (!patterns) matcher.names.set(selector, (patterns = selector.patterns.map(globToRegExp)));
            return patterns.some((p) => p.test(id));
          }
        }
      };
      matched = { rate: settings.rateLimits.filter((r) => selects(r.tools)), quotas: settings.quotas.filter((q) => selects(q.tools)) };
      if (matcher.cache.size >= 50_000) matcher.cache.clear();
      matcher.cache.set(id, matched);
    }
    const named = call.facts.quotaNames;
    if (!named || named.length === 0) return matched;
    const extra = settings.quotas.filter((q) => named.includes(q.id) && !matched.quotas.includes(q));
    return extra.length === 0 ? matched : { rate: matched.rate, quotas: [...matched.quotas, ...extra] };
  }

  /** The settings in force and what `user` has used of them now (today, and in live sessions). */
  status(user: Principal['user'] | undefined): QuotasStatus | undefined {
    const settings = this.deps.settings();
    if (!settings || (settings.rateLimits.length === 0 && settings.quotas.length === 0)) return undefined;
    const now = this.deps.clock.now();
    const today = localDay(now);
    const usage = new Map<string, QuotaUsage[]>();
    const limitedNow = new Map<string, { scope: string; retryAt: string }[]>();
    for (const [key, until] of this.limited) {
      if (until <= now) continue;
      const parsed = JSON.parse(key) as ['r', string, Dims];
      if (parsed[2].user !== user?.id) continue;
      const list = limitedNow.get(parsed[1]) ?? [];
      list.push({ scope: describeDims(parsed[2]), retryAt: new Date(until).toISOString() });
      limitedNow.set(parsed[1], list);
    }
    const rules = new Map(settings.quotas.map((q) => [q.id, q]));
    for (const [key, value] of this.deps.store.entries()) {
      if (!key.startsWith('["q"')) continue;
      const [, id, window, tag, dims] = JSON.parse(key) as ['q', string, 'day' | 'session', string, Dims];
      const rule = rules.get(id);
      if (!rule || rule.window !== window || dims.user !== user?.id || value <= 0) continue;
      let scope: string;
      if (window === 'day') {
        if (tag !== today.day) continue;
        scope = describeDims(dims);
      } else {
        const live = this.deps.sessions.live(tag);
        if (!live) continue;
        const { client: _client, ...rest } = dims;
        scope = `session of client ${live.client} since ${new Date(live.since).toISOString()}${Object.keys(rest).length > 1 ? `, ${describeDims(rest, false)}` : ''}`;
      }
      const list = usage.get(id) ?? [];
      list.push({
        scope,
        used: value,
        remaining: Math.max(0, rule.limit - value),
        ...(rule.approvalAfter !== undefined ? { beforeApproval: Math.max(0, rule.approvalAfter - value) } : {}),
        ...(window === 'day' ? { resetsAt: new Date(today.endsAt).toISOString() } : {}),
      });
      usage.set(id, list);
    }
    const rateLimits: RateLimitStatus[] = settings.rateLimits.map((r) => ({
      id: r.id,
      rate: describeRate(r),
      burst: r.burst,
      per: describePer(r.per),
      tools: describeSelector(r.tools),
      limited: limitedNow.get(r.id) ?? [],
    }));
    const quotas: QuotaStatus[] = settings.quotas.map((q) => ({
      id: q.id,
      window: q.window,
      per: describePer(q.per),
      tools: describeSelector(q.tools),
      limit: q.limit,
      ...(q.approvalAfter !== undefined ? { approvalAfter: q.approvalAfter } : {}),
      usage: usage.get(q.id) ?? [],
    }));
    const version = this.deps.version?.();
    return { ...(version !== undefined ? { version } : {}), rateLimits, quotas };
  }
}

/** "user sam, client ide, tool crm__refund" */
function describeDims(dims: Dims, withUser = true): string {
  return DIMENSIONS.filter((d) => dims[d] !== undefined && (withUser || d !== 'user'))
    .map((d) => `${d} ${dims[d]}`)
    .join(', ');
}
