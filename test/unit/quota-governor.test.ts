/**
 * Rate limits and write quotas through the real chain (policy → quota → approval → upstream), on a
 * fake clock, with the in-memory quota store (the SQLite one passes the same contract:
 * quota-store.test.ts). The specification: a refused call spends nothing; a call that did not reach
 * its server gets its reservation back; concurrent calls cannot overtake a cap; past a threshold a
 * call needs approval; every crossing is an audit event; `status` shows what is left.
 */
import { describe, expect, it } from 'vitest';
import type { GovernedCall, Outcome } from '../../src/core/chain.js';
import { Gateway } from '../../src/core/gateway.js';
import { ADMIT, NoApprovals, UnmanagedPolicy, type Admission, type ApprovalPort, type PolicyPort } from '../../src/core/governance.js';
import type { AuditRecord, ForwardOptions, UpstreamConnection, UpstreamLists } from '../../src/core/ports.js';
import type { Principal } from '../../src/core/principal.js';
import { gcra } from '../../src/core/quotas/gcra.js';
import { localDay, QuotaGovernor } from '../../src/core/quotas/governor.js';
import { SessionKeys } from '../../src/core/quotas/session.js';
import type { QuotaRule, QuotaSettings, RateLimitRule } from '../../src/core/quotas/settings.js';
import { MemoryQuotaStore, type QuotaStore } from '../../src/core/quotas/store.js';
import { FakeClock } from './fakes/fake-clock.js';

function principal(client = 'ide', user = 'sam@example.com'): Principal {
  return {
    user: { id: user, source: 'oidc', displayName: user, groups: [], roles: [] },
    client: { id: `client:${client}:c1`, name: client, verified: true, transport: 'socket' },
  };
}

const CATALOG: Record<string, { readOnly: boolean; destructive: boolean }> = {
  search: { readOnly: true, destructive: false },
  refund: { readOnly: false, destructive: false },
  delete_contact: { readOnly: false, destructive: true },
};

const LISTS: UpstreamLists = { tools: Object.keys(CATALOG).map((name) => ({ name })), resources: [], resourceTemplates: [], prompts: [] };

function quota(overrides: Partial<QuotaRule> = {}): QuotaRule {
  return { id: 'writes-per-day', window: 'day', per: ['user'], limit: 10, tools: { kind: 'writes' }, ...overrides };
}

function rate(overrides: Partial<RateLimitRule> = {}): RateLimitRule {
  return { id: 'per-tool', per: ['user', 'client', 'tool'], calls: 2, intervalMs: 1000, burst: 2, tools: { kind: 'all' }, ...overrides };
}

interface Setup {
  settings?: QuotaSettings;
  policy?: PolicyPort;
  approval?: ApprovalPort;
  store?: QuotaStore;
  upstream?: (name: string) => Promise<Record<string, unknown>>;
  /** When false, the server is not ready (the call is refused at the upstream stage). */
  ready?: boolean;
}

function setup(options: Setup = {}) {
  const clock = new FakeClock(new Date(2026, 10, 26, 12, 0, 0).getTime());
  const store = options.store ?? new MemoryQuotaStore();
  const audit: AuditRecord[] = [];
  const forwarded: string[] = [];
  const sessions = new SessionKeys(() => clock.now());
  const governor = new QuotaGovernor({
    store,
    clock,
    settings: () => options.settings,
    version: () => '7',
    tool: (_server, name) => CATALOG[name],
    sessions,
    audit: (r) => void audit.push(r),
  });
  const connection: UpstreamConnection = {
    protocolVersion: '2025-11-25',
    serverInfo: { name: 'crm', version: '1' },
    capabilities: { tools: {} },
    instructions: undefined,
    pid: 1,
    exited: new Promise<never>(() => undefined),
    listAll: async () => LISTS,
    request: async (_method: string, params: Record<string, unknown>, _options: ForwardOptions) => {
      forwarded.push(String(params.name));
      return options.upstream ? options.upstream(String(params.name)) : { content: [{ type: 'text', text: 'done' }] };
    },
    ping: async () => undefined,
    close: async () => undefined,
  };
  const gateway = new Gateway({
    directory: { readyLists: () => new Map([['crm', LISTS]]), connection: () => (options.ready === false ? undefined : { connection, timeoutMs: 1000 }) },
    audit: { append: (r) => void audit.push(r) },
    clock,
    logger: { log: () => undefined },
    identity: { verify: () => ADMIT },
    policy: options.policy ?? new UnmanagedPolicy(),
    quota: governor,
    approval: options.approval ?? new NoApprovals(),
  });
  const call = (tool: string, who = principal(), args: Record<string, unknown> = {}): Promise<Outcome> =>
    gateway.callTool(who, {}, `crm__${tool}`, args, undefined, { signal: new AbortController().signal });
  return { clock, store, audit, forwarded, governor, gateway, call, sessions };
}

describe('GCRA', () => {
  it('admits a burst at once, then one call per emission interval, and says when to retry', () => {
    const limit = { calls: 2, intervalMs: 1000, burst: 3 };
    let tat: number | undefined;
    const take = (now: number) => {
      const r = gcra(limit, tat, now);
      if (r.ok) tat = r.tat;
      return r;
    };
    expect(take(0)).toMatchObject({ ok: true, remaining: 2 });
    expect(take(0)).toMatchObject({ ok: true, remaining: 1 });
    expect(take(0)).toMatchObject({ ok: true, remaining: 0 });
    expect(take(0)).toEqual({ ok: false, retryAfterMs: 500 });
    expect(take(499)).toEqual({ ok: false, retryAfterMs: 1 });
    expect(take(500)).toMatchObject({ ok: true, remaining: 0 });
    expect(take(10_000)).toMatchObject({ ok: true, remaining: 2 });
  });
});

describe('write quotas', () => {
  it('counts calls to write tools (destructive ones included) and not to read-only tools, by default', async () => {
    const { call, governor } = setup({ settings: { rateLimits: [], quotas: [quota({ limit: 5 })] } });
    await call('search');
    await call('refund');
    await call('delete_contact');
    expect(governor.status(principal().user)!.quotas[0]!.usage).toEqual([expect.objectContaining({ scope: 'user sam@example.com', used: 2, remaining: 3 })]);
  });

  it('refuses the call after the cap with quota_exceeded, saying when the day starts again, and the server never sees it', async () => {
    const { call, forwarded, clock } = setup({ settings: { rateLimits: [], quotas: [quota({ limit: 2 })] } });
    await call('refund');
    await call('refund');
    const refused = await call('refund');
    const midnight = new Date(localDay(clock.now()).endsAt).toISOString();
    expect(refused).toMatchObject({
      kind: 'denied',
      stage: 'quota',
      code: 'quota_exceeded',
      data: { quota: 'writes-per-day', window: 'day', limit: 2, used: 2, resetsAt: midnight },
    });
    expect((refused as { reason: string }).reason).toBe(
      `quota "writes-per-day" is used up: 2 of 2 calls to write tools today (per user); it starts again at ${midnight}`,
    );
    expect(forwarded).toEqual(['refund', 'refund']);
  });

  it('lets exactly 10 of 100 concurrent calls through a cap of 10', async () => {
    const { call, forwarded } = setup({ settings: { rateLimits: [], quotas: [quota({ limit: 10 })] } });
    const outcomes = await Promise.all(Array.from({ length: 100 }, () => call('refund')));
    expect(outcomes.filter((o) => o.kind === 'ok')).toHaveLength(10);
    expect(outcomes.filter((o) => o.kind === 'denied' && o.code === 'quota_exceeded')).toHaveLength(90);
    expect(forwarded).toHaveLength(10);
  });

  it('starts a new count on the next local day', async () => {
    const { call, clock } = setup({ settings: { rateLimits: [], quotas: [quota({ limit: 1 })] } });
    expect(await call('refund')).toMatchObject({ kind: 'ok' });
    expect(await call('refund')).toMatchObject({ kind: 'denied', code: 'quota_exceeded' });
    await clock.advance(localDay(clock.now()).endsAt - clock.now());
    expect(await call('refund')).toMatchObject({ kind: 'ok' });
  });

  it('keeps a session quota per client session: another connection of the same client has its own count, and the day quota still binds both', async () => {
    const settings = { rateLimits: [], quotas: [quota({ id: 'per-session', window: 'session', limit: 2 }), quota({ limit: 3 })] };
    const { call } = setup({ settings });
    const first = principal('ide');
    const second = principal('ide');
    expect((await Promise.all([call('refund', first), call('refund', first), call('refund', first)])).map((o) => o.kind)).toEqual(['ok', 'ok', 'denied']);
    const outcome = await call('refund', first);
    expect(outcome).toMatchObject({ code: 'quota_exceeded', data: { quota: 'per-session', window: 'session' } });
    expect(await call('refund', second)).toMatchObject({ kind: 'ok' });
    expect(await call('refund', second)).toMatchObject({ kind: 'denied', data: { quota: 'writes-per-day' } });
  });

  it('counts per client when the quota says so', async () => {
    const { call } = setup({ settings: { rateLimits: [], quotas: [quota({ per: ['user', 'client'], limit: 1 })] } });
    expect(await call('refund', principal('ide'))).toMatchObject({ kind: 'ok' });
    expect(await call('refund', principal('agent'))).toMatchObject({ kind: 'ok' });
    expect(await call('refund', principal('ide'))).toMatchObject({ kind: 'denied', code: 'quota_exceeded' });
  });

  it('counts the calls a permit names with @quota, even for a tool its selector leaves out', async () => {
    const named: PolicyPort = {
      mode: 'managed',
      version: '7',
      visible: () => true,
      decide: () => ({ allow: true, reason: 'ok', policyIds: ['p'], obligations: { quotas: ['large'] } }),
    };
    const { call } = setup({ policy: named, settings: { rateLimits: [], quotas: [quota({ id: 'large', tools: { kind: 'names', patterns: [] }, limit: 1 })] } });
    expect(await call('search')).toMatchObject({ kind: 'ok' });
    expect(await call('search')).toMatchObject({ kind: 'denied', code: 'quota_exceeded', data: { quota: 'large' } });
  });

  it('matches tools by name, with * as a wildcard', async () => {
    const { call } = setup({ settings: { rateLimits: [], quotas: [quota({ tools: { kind: 'names', patterns: ['crm__del*'] }, limit: 0 })] } });
    expect(await call('refund')).toMatchObject({ kind: 'ok' });
    expect(await call('delete_contact')).toMatchObject({ kind: 'denied', code: 'quota_exceeded' });
  });

  it('needs approval for each call past the threshold, records the crossing once, and refuses past the cap', async () => {
    const reviewed: unknown[] = [];
    const approval: ApprovalPort = {
      review: async (c: GovernedCall): Promise<Admission> => {
        reviewed.push(c.facts.approvalNeeded);
        return ADMIT;
      },
    };
    const { call, audit } = setup({ approval, settings: { rateLimits: [], quotas: [quota({ approvalAfter: 2, limit: 4 })] } });
    for (let i = 0; i < 5; i++) await call('refund');
    expect(reviewed).toEqual([
      undefined,
      undefined,
      [{ kind: 'quota', quota: 'writes-per-day', window: 'day', used: 3, approvalAfter: 2, limit: 4 }],
      [{ kind: 'quota', quota: 'writes-per-day', window: 'day', used: 4, approvalAfter: 2, limit: 4 }],
    ]);
    const crossings = audit.filter((r) => r.type === 'quota.crossed');
    expect(crossings.map((r) => (r.detail as { kind: string }).kind)).toEqual(['approval-threshold', 'cap']);
    expect(crossings[0]).toMatchObject({
      user: 'sam@example.com',
      client: 'ide',
      server: 'crm',
      name: 'refund',
      quota: { bucket: 'writes-per-day', remaining: 1, limit: 4 },
    });
    expect(audit.filter((r) => r.type === 'call.outcome').map((r) => r.code)).toEqual([undefined, undefined, undefined, undefined, 'quota_exceeded']);
  });

  it('shows what is used and left in status, and nothing for another user', async () => {
    const { call, governor, clock } = setup({
      settings: {
        rateLimits: [rate({ burst: 5, calls: 5 })],
        quotas: [quota({ approvalAfter: 3, limit: 5 }), quota({ id: 's', window: 'session', limit: 9 })],
      },
    });
    const who = principal('ide');
    await call('refund', who);
    await call('refund', who);
    const status = governor.status(who.user)!;
    expect(status.version).toBe('7');
    expect(status.quotas[0]).toEqual({
      id: 'writes-per-day',
      window: 'day',
      per: 'user',
      tools: 'write tools',
      limit: 5,
      approvalAfter: 3,
      usage: [{ scope: 'user sam@example.com', used: 2, remaining: 3, beforeApproval: 1, resetsAt: new Date(localDay(clock.now()).endsAt).toISOString() }],
    });
    expect(status.quotas[1]!.usage).toEqual([
      expect.objectContaining({ used: 2, remaining: 7, scope: expect.stringMatching(/^session of client ide since /) }),
    ]);
    expect(status.rateLimits).toEqual([
      { id: 'per-tool', rate: '5 calls per second', burst: 5, per: 'user, client and tool', tools: 'every tool', limited: [] },
    ]);
    expect(governor.status(principal('ide', 'someone-else').user)!.quotas[0]!.usage).toEqual([]);
  });

  it('is off when no bundle sets quotas', async () => {
    const { call, store } = setup({ settings: undefined });
    expect(await call('refund')).toMatchObject({ kind: 'ok' });
    expect([...store.entries()]).toEqual([]);
  });
});

describe('a denied call spends nothing', () => {
  const used = (governor: QuotaGovernor) => governor.status(principal().user)!.quotas[0]!.usage[0]?.used ?? 0;

  it('spends nothing on a call the policy refuses (policy runs first)', async () => {
    const denyAll: PolicyPort = { mode: 'managed', version: '1', visible: () => true, decide: () => ({ allow: false, reason: 'no', policyIds: [] }) };
    const { call, store } = setup({ policy: denyAll, settings: { rateLimits: [rate()], quotas: [quota()] } });
    expect(await call('refund')).toMatchObject({ stage: 'policy' });
    expect([...store.entries()]).toEqual([]);
  });

  it('gives the quota back when the person refuses the approval', async () => {
    const refuse: ApprovalPort = { review: async () => ({ ok: false, code: 'approval_required', reason: 'declined' }) };
    const { call, governor, forwarded } = setup({ approval: refuse, settings: { rateLimits: [], quotas: [quota({ approvalAfter: 0, limit: 1 })] } });
    for (let i = 0; i < 3; i++) expect(await call('refund')).toMatchObject({ stage: 'approval' });
    expect(used(governor)).toBe(0);
    expect(forwarded).toEqual([]);
  });

  it('gives the quota back when the server is not ready, and keeps it when the server was called, even if it failed', async () => {
    const down = setup({ ready: false, settings: { rateLimits: [], quotas: [quota()] } });
    expect(await down.call('refund')).toMatchObject({ kind: 'denied', code: 'server_unavailable' });
    expect(used(down.governor)).toBe(0);
    const failing = setup({ upstream: async () => Promise.reject(new Error('boom')), settings: { rateLimits: [], quotas: [quota()] } });
    expect(await failing.call('refund')).toMatchObject({ kind: 'failed', stage: 'upstream' });
    expect(used(failing.governor)).toBe(1);
  });

  it('gives the quota back when a later stage throws (the call fails closed and never ran)', async () => {
    const broken: ApprovalPort = { review: async () => Promise.reject(new Error('bug')) };
    const { call, governor } = setup({ approval: broken, settings: { rateLimits: [], quotas: [quota()] } });
    expect(await call('refund')).toMatchObject({ kind: 'failed' });
    expect(used(governor)).toBe(0);
  });

  it('spends neither the rate limit nor any quota when one quota refuses: the check is all or nothing', async () => {
    const { call, store } = setup({ settings: { rateLimits: [rate()], quotas: [quota({ id: 'a', limit: 5 }), quota({ id: 'b', limit: 0 })] } });
    expect(await call('refund')).toMatchObject({ code: 'quota_exceeded', data: { quota: 'b' } });
    expect([...store.entries()]).toEqual([]);
  });

  it('fails the call closed, and applies nothing, when the store cannot record', async () => {
    const broken: QuotaStore = {
      update: () => {
        throw new Error('disk full');
      },
      entries: () => [],
      sweep: () => undefined,
    };
    const { call, forwarded } = setup({ store: broken, settings: { rateLimits: [], quotas: [quota()] } });
    expect(await call('refund')).toMatchObject({ kind: 'failed', error: expect.stringContaining('disk full') });
    expect(forwarded).toEqual([]);
  });
});

describe('rate limits', () => {
  it('refuses with rate_limited and the time to retry in the error data, then admits again when that time has come', async () => {
    const { call, clock } = setup({ settings: { rateLimits: [rate({ calls: 2, intervalMs: 1000, burst: 2 })], quotas: [] } });
    await call('search');
    await call('search');
    const limited = await call('search');
    expect(limited).toMatchObject({
      kind: 'denied',
      stage: 'quota',
      code: 'rate_limited',
      data: { limit: 'per-tool', retryAfterMs: 500, retryAt: new Date(clock.now() + 500).toISOString() },
    });
    expect((limited as { reason: string }).reason).toBe(
      'rate limit "per-tool" reached: 2 calls per second (bursts of 2) per user, client and tool; retry after 0.5 s',
    );
    await clock.advance(499);
    expect(await call('search')).toMatchObject({ code: 'rate_limited', data: { retryAfterMs: 1 } });
    await clock.advance(1);
    expect(await call('search')).toMatchObject({ kind: 'ok' });
  });

  it('keeps a bucket per user, client and tool as configured', async () => {
    const { call } = setup({ settings: { rateLimits: [rate({ burst: 1, calls: 1 })], quotas: [] } });
    expect(await call('search', principal('ide'))).toMatchObject({ kind: 'ok' });
    expect(await call('refund', principal('ide'))).toMatchObject({ kind: 'ok' });
    expect(await call('search', principal('agent'))).toMatchObject({ kind: 'ok' });
    expect(await call('search', principal('ide', 'other-user'))).toMatchObject({ kind: 'ok' });
    expect(await call('search', principal('ide'))).toMatchObject({ code: 'rate_limited' });
  });

  it('records one audit event when a bucket starts refusing, not one per refused call, and shows it in status', async () => {
    const { call, audit, governor, clock } = setup({ settings: { rateLimits: [rate({ burst: 1, calls: 1, intervalMs: 60_000 })], quotas: [] } });
    for (let i = 0; i < 5; i++) await call('search');
    const crossings = audit.filter((r) => r.type === 'quota.crossed');
    expect(crossings).toHaveLength(1);
    expect(crossings[0]).toMatchObject({ name: 'search', quota: { bucket: 'per-tool', remaining: 0 }, detail: { kind: 'rate-limit' } });
    expect(audit.filter((r) => r.type === 'call.outcome' && r.code === 'rate_limited')).toHaveLength(4);
    expect(governor.status(principal().user)!.rateLimits[0]!.limited).toEqual([
      { scope: 'user sam@example.com, client ide, tool crm__search', retryAt: new Date(clock.now() + 60_000).toISOString() },
    ]);
  });

  it('records the tightest limit in the call outcome', async () => {
    const { call, audit } = setup({ settings: { rateLimits: [rate({ burst: 5, calls: 5 })], quotas: [quota({ limit: 2 })] } });
    await call('refund');
    expect(audit.find((r) => r.type === 'call.outcome')).toMatchObject({ quota: { bucket: 'writes-per-day', remaining: 1, limit: 2 } });
  });
});
