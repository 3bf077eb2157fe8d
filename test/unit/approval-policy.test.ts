/**
 * Obligations from the policy bundle: `@approval` makes an allowed decision that carries the
 * approval obligation (with the argument paths the permit reads, for highlighting), `@quota` names
 * a quota the call counts against, and quotas.json is checked as strictly as the other bundle
 * files. Then the sample's support refund through the core chain with the real Cedar engine: 50 EUR
 * passes without asking anyone, 250 EUR waits for the person and passes or fails with the answer.
 */
import { describe, expect, it } from 'vitest';
import { ApprovalBroker } from '../../src/core/approvals/broker.js';
import { MemoryJournal } from '../../src/core/approvals/journal.js';
import type { Outcome } from '../../src/core/chain.js';
import { Gateway } from '../../src/core/gateway.js';
import { ADMIT } from '../../src/core/governance.js';
import type { HumanAnswer, HumanQuestion } from '../../src/core/human/channel.js';
import type { AuditRecord, ToolItem, UpstreamLists } from '../../src/core/ports.js';
import type { Principal } from '../../src/core/principal.js';
import { BundlePolicy } from '../../src/core/policy/bundle-policy.js';
import { compileBundle, type CompiledBundle } from '../../src/core/policy/compile.js';
import { argumentPaths } from '../../src/core/policy/est.js';
import { BundleEvaluator } from '../../src/core/policy/evaluator.js';
import { toolDefinitionHash } from '../../src/core/policy/tool-hash.js';
import { QuotaGovernor } from '../../src/core/quotas/governor.js';
import { SessionKeys } from '../../src/core/quotas/session.js';
import { MemoryQuotaStore } from '../../src/core/quotas/store.js';
import { CedarEngine } from '../../src/node/policy/cedar.js';
import { parseBundleFiles } from '../../src/node/policy/content.js';
import { readSample, sampleFiles, type SampleOptions } from '../support/policy.js';

const cedar = new CedarEngine();
const TOOLS: ToolItem[] = ['search_contacts', 'get_contact', 'refund', 'delete_contact'].map((name) => ({
  name,
  description: `the ${name} tool`,
  inputSchema: { type: 'object' },
}));

function parse(options: SampleOptions = {}) {
  return parseBundleFiles(sampleFiles(options), { dataDir: '/tmp/gh-data' });
}

function compile(options: SampleOptions = {}): CompiledBundle {
  const content = parse({
    ...options,
    catalog: (c) => {
      for (const tool of TOOLS) c.servers.crm!.tools[tool.name]!.sha256 = toolDefinitionHash(tool);
      options.catalog?.(c);
    },
  });
  if (!content.ok) throw new Error(content.errors.join('; '));
  const compiled = compileBundle(
    content.content,
    {
      manifest: { version: 3, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 86_400_000).toISOString(), files: {} },
      digest: 'd',
      signedBy: ['k'],
    },
    cedar,
  );
  if (!compiled.ok) throw new Error(compiled.errors.join('; '));
  return compiled.bundle;
}

function compileErrors(files: Record<string, string>): string[] {
  const content = parse({ files });
  if (!content.ok) return content.errors;
  const compiled = compileBundle(content.content, { manifest: { version: 1, issuedAt: '', expiresAt: '', files: {} }, digest: '', signedBy: [] }, cedar);
  return compiled.ok ? [] : compiled.errors;
}

const SAM: Principal = {
  user: { id: 'sam@example.com', source: 'oidc', displayName: 'Sam', groups: ['crm-support'], roles: [] },
  client: { id: 'client:ide:k', name: 'ide', verified: true, transport: 'socket' },
};

describe('obligations on the decision', () => {
  const bundle = compile();
  const policy = new BundlePolicy({ now: () => Date.now(), lists: () => ({ tools: TOOLS, resources: [], resourceTemplates: [], prompts: [] }) });
  policy.install({ kind: 'enforcing', evaluator: new BundleEvaluator(bundle, cedar) });
  const decide = (args: Record<string, unknown>) =>
    policy.decide({
      id: 'c',
      kind: 'tool',
      server: 'crm',
      name: 'refund',
      arguments: args,
      principal: SAM,
      context: { signal: new AbortController().signal },
      facts: {},
    });

  it('allows a refund above 100 EUR on condition of approval, naming the permit, the approver and the arguments it reads, and the quota it counts against', () => {
    expect(decide({ contact_id: 'c-1', amount: 250, currency: 'EUR' })).toEqual({
      allow: true,
      reason: 'this tool needs approval (user) under policy support-refund-large',
      policyIds: ['support-refund-large'],
      obligations: { approval: { policies: ['support-refund-large'], approvers: ['user'], fields: ['amount', 'currency'] }, quotas: ['large-refunds-per-day'] },
    });
  });

  it('allows a refund up to 100 EUR with no obligation', () => {
    expect(decide({ contact_id: 'c-1', amount: 50, currency: 'EUR' })).toEqual({
      allow: true,
      reason: 'allowed by policy support-refund',
      policyIds: ['support-refund'],
    });
  });

  it('reads the argument paths a policy names, nested ones included, from the policy text', () => {
    const parsed = cedar.parsePolicies(
      'permit (principal, action, resource) when { context.args has price && context.args.price.net > 5 && context.args.currency == "EUR" && context.client.verified };',
    );
    expect(parsed.ok && argumentPaths(parsed.value[0]!)).toEqual(['currency', 'price.net']);
  });
});

describe('quotas.json', () => {
  it('parses the sample: a rate limit per user, client and tool, and three quotas', () => {
    const content = parse();
    expect(content.ok && content.content.quotas).toEqual({
      rateLimits: [{ id: 'calls-per-tool', per: ['user', 'client', 'tool'], calls: 60, intervalMs: 60_000, burst: 20, tools: { kind: 'all' } }],
      quotas: [
        { id: 'writes-per-day', window: 'day', per: ['user'], limit: 50, approvalAfter: 40, tools: { kind: 'writes' } },
        { id: 'writes-per-session', window: 'session', per: ['user'], limit: 30, approvalAfter: 20, tools: { kind: 'writes' } },
        { id: 'large-refunds-per-day', window: 'day', per: ['user'], limit: 10, tools: { kind: 'names', patterns: [] } },
      ],
    });
    expect(JSON.parse(readSample('quotas.json')).quotas['writes-per-day'].description).toMatch(/after 40 each needs approval/);
  });

  it('is optional: without it nothing is limited', () => {
    const files = sampleFiles();
    files.delete('quotas.json');
    files.set('policies.cedar', Buffer.from(readSample('policies.cedar').replace('@quota("large-refunds-per-day")\n', '')));
    const content = parseBundleFiles(files, { dataDir: '/tmp' });
    expect(content.ok && content.content.quotas).toEqual({ rateLimits: [], quotas: [] });
  });

  it('refuses a bundle whose quotas.json is wrong, naming the file, the field and the problem', () => {
    const bad = (quotas: unknown) => compileErrors({ 'quotas.json': JSON.stringify(quotas) });
    expect(bad({ rateLimits: { r: { rate: 'fast' } } })).toEqual(['quotas.json: rateLimits.r.rate: a rate such as "30/min" (calls per s, min, h or day)']);
    expect(bad({ quotas: { q: { window: 'week', limit: 5 } } })[0]).toMatch(/^quotas\.json: quotas\.q\.window: /);
    expect(bad({ quotas: { q: { window: 'day', limit: 5, approvalAfter: 5 } } })).toEqual([
      'quotas.json: quotas.q.approvalAfter: approvalAfter must be below limit (calls after approvalAfter need approval, calls after limit are refused)',
    ]);
    expect(bad({ quotas: { q: { window: 'day', limit: 5, tools: ['refund'] } } })).toEqual([
      'quotas.json: quotas.q.tools[0]: a tool as clients see it, <server>__<tool>, with * as a wildcard',
    ]);
    expect(bad({ quotas: { q: { window: 'day', limit: 5, typo: 1 } } })[0]).toMatch(/^quotas\.json: quotas\.q: .*typo/);
    expect(bad({ limits: {} })[0]).toMatch(/^quotas\.json: .*limits/);
  });

  it('refuses a @quota that names no quota in quotas.json', () => {
    const errors = compileErrors({ 'quotas.json': JSON.stringify({ quotas: {} }) });
    expect(errors).toEqual(['policies.cedar: policy "support-refund-large": @quota("large-refunds-per-day") names no quota in quotas.json']);
  });
});

describe('the support refund through the core chain', () => {
  function setup(answer: (q: HumanQuestion) => HumanAnswer) {
    const lists: UpstreamLists = { tools: TOOLS, resources: [], resourceTemplates: [], prompts: [] };
    const policy = new BundlePolicy({ now: () => Date.now(), lists: () => lists });
    const evaluator = new BundleEvaluator(compile(), cedar);
    policy.install({ kind: 'enforcing', evaluator });
    const clock = {
      now: () => Date.now(),
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
    };
    const sessions = new SessionKeys();
    const audit: AuditRecord[] = [];
    const asked: HumanQuestion[] = [];
    const forwarded: Record<string, unknown>[] = [];
    const governor = new QuotaGovernor({
      store: new MemoryQuotaStore(),
      clock,
      settings: () => evaluator.bundle.content.quotas,
      tool: (server, name) => evaluator.catalogTool(server, name),
      sessions,
      audit: (r) => void audit.push(r),
    });
    const broker = new ApprovalBroker({
      channel: { ask: async (q) => (asked.push(q), answer(q)), pending: () => 0 },
      clock,
      journal: new MemoryJournal(),
      sessions,
      audit: (r) => void audit.push(r),
      logger: { log: () => undefined },
      tool: (server, name) => evaluator.catalogTool(server, name),
    });
    const gateway = new Gateway({
      directory: {
        readyLists: () => new Map([['crm', lists]]),
        connection: () => ({
          connection: {
            protocolVersion: '2025-11-25',
            serverInfo: undefined,
            capabilities: {},
            instructions: undefined,
            pid: 1,
            exited: new Promise<never>(() => undefined),
            listAll: async () => lists,
            request: async (_m: string, params: Record<string, unknown>) => (forwarded.push(params), { content: [] }),
            ping: async () => undefined,
            close: async () => undefined,
          },
          timeoutMs: 1000,
        }),
      },
      audit: { append: (r) => void audit.push(r) },
      clock,
      logger: { log: () => undefined },
      identity: { verify: () => ADMIT },
      policy,
      quota: governor,
      approval: broker,
    });
    const refund = (amount: number): Promise<Outcome> =>
      gateway.callTool(SAM, {}, 'crm__refund', { contact_id: 'c-1', amount, currency: 'EUR' }, undefined, { signal: new AbortController().signal });
    const largeRefundsUsed = () => governor.status(SAM.user)!.quotas.find((q) => q.id === 'large-refunds-per-day')!.usage[0]?.used ?? 0;
    return { refund, asked, forwarded, audit, largeRefundsUsed };
  }

  it('passes 50 EUR without asking anyone', async () => {
    const { refund, asked, forwarded } = setup(() => ({ kind: 'declined' }));
    expect(await refund(50)).toMatchObject({ kind: 'ok' });
    expect(asked).toEqual([]);
    expect(forwarded).toHaveLength(1);
  });

  it('asks the person about 250 EUR and runs the refund when they allow it, counting it against the @quota', async () => {
    const { refund, asked, forwarded, audit, largeRefundsUsed } = setup((q) => ({ kind: 'approved', choice: q.choices![0]!.id }));
    expect(await refund(250)).toMatchObject({ kind: 'ok' });
    expect(asked).toHaveLength(1);
    expect(asked[0]!.facts.find((f) => f.label === 'What the policy looked at')!.value).toBe('amount = 250, currency = "EUR"');
    expect(forwarded).toEqual([{ name: 'refund', arguments: { contact_id: 'c-1', amount: 250, currency: 'EUR' } }]);
    expect(largeRefundsUsed()).toBe(1);
    expect(audit.find((r) => r.type === 'call.outcome')).toMatchObject({
      decision: 'ok',
      policyIds: ['support-refund-large'],
      approval: { required: true, decision: 'approved', scope: 'once' },
    });
  });

  it('refuses 250 EUR when the person declines: the refund never runs and spends no quota', async () => {
    const { refund, forwarded, audit, largeRefundsUsed } = setup(() => ({ kind: 'declined' }));
    expect(await refund(250)).toMatchObject({ kind: 'denied', stage: 'approval', code: 'approval_required', data: { approval: 'declined' } });
    expect(forwarded).toEqual([]);
    expect(largeRefundsUsed()).toBe(0);
    expect(audit.find((r) => r.type === 'call.outcome')).toMatchObject({ decision: 'denied', stage: 'approval', approval: { decision: 'denied' } });
  });
});
