/**
 * What the managed policy costs, in process, with the real Cedar engine:
 *
 * - decisions on the hot path (`PolicyPort.decide` as the policy stage calls it): the unmanaged
 *   policy as the baseline; a decision that does not depend on the arguments (answered from the
 *   per-principal cache); a decision that does (one Cedar evaluation with the arguments);
 * - `tools/list` over 50 servers × 100 tools, filtered per principal through `Gateway.listTools`:
 *   cold (the first list after a bundle is installed, which evaluates every tool once for that
 *   principal) and warm (the same principal again), for an analyst, a support agent and an admin;
 * - compiling a bundle (Cedar parse, validation, preparing both policy sets), once per bundle.
 *
 * `policyScenario()` returns the figures; bench/run.ts prints them beside the rest.
 */
import type { GovernedCall } from '../src/core/chain.js';
import { Gateway } from '../src/core/gateway.js';
import { ADMIT, NoApprovals, NoQuotas, UnmanagedPolicy } from '../src/core/governance.js';
import { systemClock, type ToolItem, type UpstreamLists } from '../src/core/ports.js';
import type { Principal } from '../src/core/principal.js';
import { BundlePolicy } from '../src/core/policy/bundle-policy.js';
import { compileBundle, type CompiledBundle } from '../src/core/policy/compile.js';
import { BundleEvaluator } from '../src/core/policy/evaluator.js';
import type { BundleContent, CatalogServer, CatalogTool } from '../src/core/policy/model.js';
import { toolDefinitionHash } from '../src/core/policy/tool-hash.js';
import { CedarEngine } from '../src/node/policy/cedar.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './lib/gatehouse.js';
import { summarize, type Summary } from './lib/stats.js';

export interface PolicyBenchResult {
  servers: number;
  toolsPerServer: number;
  policies: number;
  /** Compiling a bundle once (parse, validate, prepare). */
  compileMs: number;
  /** Per decision, in microseconds. */
  decideUs: { unmanaged: Summary; cached: Summary; withArguments: Summary; withArgumentsRepeated?: Summary };
  /** `Gateway.listTools` for one principal, in milliseconds. */
  listTools: Record<'analyst' | 'support' | 'admin', { visible: number; coldMs: number; warm: Summary }>;
  /** The same list under the unmanaged policy, as the baseline. */
  unmanagedListTools: Summary;
}

const SERVERS = 50;
const TOOLS = 100;

function tools(server: number): ToolItem[] {
  const inputSchema = { type: 'object', properties: { amount: { type: 'number' }, note: { type: 'string' } } };
  return Array.from({ length: TOOLS }, (_, i) => ({ name: `tool_${i}`, description: `Tool ${i} of server ${server}`, inputSchema }));
}

function serverName(i: number): string {
  return `srv${String(i).padStart(2, '0')}`;
}

/** 50 × 100 pinned tools; every tenth destructive, every other read-only, every tenth server holds money tools. */
function bundleContent(lists: Map<string, UpstreamLists>): BundleContent {
  const servers = new Map<string, CatalogServer>();
  for (const [name, l] of lists) {
    const entries = new Map<string, CatalogTool>();
    l.tools.forEach((tool, i) => {
      entries.set(tool.name, {
        sha256: toolDefinitionHash(tool),
        readOnly: i % 2 === 0,
        destructive: i % 10 === 9,
        tags: i % 7 === 0 ? ['money'] : [],
        scale: { amount: 2 },
      });
    });
    servers.set(name, { launch: { type: 'stdio', command: 'node', args: [], env: {}, stopGraceMs: 1000, enabled: true } as never, tools: entries });
  }
  const schemaText = readFileSync(join(REPO, 'resources/policy/schema.cedarschema'), 'utf8');
  const policies = `
@id("analysts-read") permit (principal in Role::"analyst", action == Action::"call_tool", resource) when { resource.read_only };
@id("support-read") permit (principal in Role::"support", action == Action::"call_tool", resource) when { resource.read_only };
@id("support-money") permit (principal in Role::"support", action == Action::"call_tool", resource)
  when { resource.tags.contains("money") && context.args has amount && context.args.amount <= 10000 };
@id("support-money-large") @approval("user") permit (principal in Role::"support", action == Action::"call_tool", resource)
  when { resource.tags.contains("money") && context.args has amount && context.args.amount > 10000 };
@id("admins") permit (principal in Role::"admin", action, resource);
@id("no-destructive") forbid (principal, action == Action::"call_tool", resource) when { resource.destructive } unless { principal in Role::"admin" };
@id("srv13-off") forbid (principal, action, resource in Server::"srv13") unless { principal in Role::"admin" };
`;
  return {
    schemaText,
    policyFiles: [{ name: 'policies.cedar', text: policies }],
    roles: {
      groups: new Map([
        ['analysts', ['analyst']],
        ['support', ['support']],
        ['admins', ['admin']],
      ]),
    },
    catalog: { servers, catalogOnly: true },
    quotas: { rateLimits: [], quotas: [] },
  };
}

function principal(group: string, client = 'bench'): Principal {
  return {
    user: { id: `${group}@example.com`, source: 'oidc', displayName: group, groups: [group], roles: [] },
    client: { id: `client:${client}`, name: client, verified: true, transport: 'socket' },
  };
}

function time(fn: () => unknown, n: number, warmup = Math.min(50, n)): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const usSummary = (samples: number[]): Summary => summarize(samples.map((ms) => ms * 1000));

export async function policyScenario(options: { reps?: number; log?: (line: string) => void } = {}): Promise<PolicyBenchResult> {
  const reps = options.reps ?? 200;
  const log = options.log ?? (() => undefined);
  const lists = new Map<string, UpstreamLists>();
  for (let i = 1; i <= SERVERS; i++) lists.set(serverName(i), { tools: tools(i), resources: [], resourceTemplates: [], prompts: [] });

  const cedar = new CedarEngine();
  const t0 = performance.now();
  const compiled = compileBundle(
    bundleContent(lists),
    {
      manifest: { version: 1, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 86_400_000).toISOString(), files: {} },
      digest: 'bench',
      signedBy: [],
    },
    cedar,
  );
  const compileMs = performance.now() - t0;
  if (!compiled.ok) throw new Error(`the benchmark bundle does not compile: ${compiled.errors.join('; ')}`);
  const bundle: CompiledBundle = compiled.bundle;
  log(`  bundle compiled in ${compileMs.toFixed(1)} ms (${bundle.policies.size} policies)`);

  const policy = new BundlePolicy({ now: () => Date.now(), lists: (server) => lists.get(server) });
  const install = () => policy.install({ kind: 'enforcing', evaluator: new BundleEvaluator(bundle, cedar) });
  install();
  const gatewayWith = (p: BundlePolicy | UnmanagedPolicy) =>
    new Gateway({
      directory: { readyLists: () => lists, connection: () => undefined },
      audit: { append: () => undefined },
      clock: systemClock,
      logger: { log: () => undefined },
      identity: { verify: () => ADMIT },
      policy: p,
      quota: new NoQuotas(),
      approval: new NoApprovals(),
    });
  const gateway = gatewayWith(policy);
  const unmanagedGateway = gatewayWith(new UnmanagedPolicy());
  const baselinePrincipal = principal('analysts');

  const listTools = {} as PolicyBenchResult['listTools'];
  for (const [role, group] of [
    ['analyst', 'analysts'],
    ['support', 'support'],
    ['admin', 'admins'],
  ] as const) {
    install(); // drop every cached answer: the next list is cold
    const who = principal(group);
    const c0 = performance.now();
    const visible = gateway.listTools(who, {}).length;
    const coldMs = performance.now() - c0;
    const warm = summarize(time(() => gateway.listTools(who, {}), reps, 5));
    listTools[role] = { visible, coldMs, warm };
    log(
      `  tools/list ${SERVERS}×${TOOLS} as ${role}: ${visible} visible, cold ${coldMs.toFixed(1)} ms, warm p50 ${warm.p50.toFixed(3)} ms p99 ${warm.p99.toFixed(3)} ms`,
    );
  }
  const unmanagedListTools = summarize(time(() => unmanagedGateway.listTools(baselinePrincipal, {}), reps, 5));
  log(`  tools/list unmanaged (baseline): p50 ${unmanagedListTools.p50.toFixed(3)} ms`);

  const call = (who: Principal, server: string, name: string, args?: Record<string, unknown>): GovernedCall => ({
    id: 'bench',
    kind: 'tool',
    server,
    name,
    principal: who,
    context: { signal: new AbortController().signal },
    facts: {},
    ...(args ? { arguments: args } : {}),
  });
  const unmanaged = new UnmanagedPolicy();
  const analystCall = call(principal('analysts'), 'srv01', 'tool_0', { note: 'x' });
  const support = principal('support');
  const supportMoney = call(support, 'srv01', 'tool_7', { amount: 12.34, note: 'x' });
  const n = reps * 20;
  // Arguments never seen before (a new amount each time): one Cedar evaluation per call.
  let fresh = 0;
  const decideUs = {
    unmanaged: usSummary(time(() => unmanaged.decide(), n)),
    cached: usSummary(time(() => policy.decide(analystCall), n)),
    withArguments: usSummary(
      time(() => policy.decide(call(support, 'srv01', 'tool_7', { amount: 10 + (fresh++ % 1_000_000) / 100, note: 'x' })), Math.max(200, Math.floor(n / 4))),
    ),
    withArgumentsRepeated: usSummary(time(() => policy.decide(supportMoney), n)),
  };
  log(
    `  decide: unmanaged p50 ${decideUs.unmanaged.p50.toFixed(2)} µs; cached p50 ${decideUs.cached.p50.toFixed(2)} µs; with new arguments (Cedar) p50 ${decideUs.withArguments.p50.toFixed(1)} µs p99 ${decideUs.withArguments.p99.toFixed(1)} µs; with repeated arguments p50 ${decideUs.withArgumentsRepeated.p50.toFixed(2)} µs`,
  );
  return { servers: SERVERS, toolsPerServer: TOOLS, policies: bundle.policies.size, compileMs, decideUs, listTools, unmanagedListTools };
}
