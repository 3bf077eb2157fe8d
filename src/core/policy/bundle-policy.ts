/**
 * The policy port in managed mode. It holds what the bundle controller (src/node/policy) put in
 * force (a bundle, fail-closed, or unmanaged while no bundle is required) and answers the gateway:
 * `visible` for every list and for every call by name, `decide` for every call.
 *
 * Lists stay fast because what does not depend on arguments is computed once per principal and
 * item and kept until the bundle changes: a warm `tools/list` is a map lookup per tool. The cache
 * key is everything a decision may read of the principal (user id, roles, client name, whether
 * the client is verified, its transport).
 *
 * Calls whose decision depends on their arguments (one Cedar evaluation each, ~0.15 ms) are cached
 * too, by principal, item and the arguments themselves, until the bundle or the user changes: a
 * Cedar decision is a function of exactly those (the request holds no clock), so an agent that
 * repeats a call is not evaluated again. The key is the whole argument value as JSON (own members
 * only, `__proto__` included, lone surrogates escaped), not only the paths the policies name: those
 * are a best-effort reading (est.ts), and a key that missed one would answer for other arguments.
 */
import type { DenyCode } from '../../common/errors.js';
import type { GovernedCall } from '../chain.js';
import type { HiddenBecause, PolicyDecision, PolicyPort, VisibleOptions } from '../governance.js';
import type { Logger, UpstreamLists } from '../ports.js';
import type { Principal } from '../principal.js';
import type { Assessment, BundleEvaluator, Verdict } from './evaluator.js';
import type { ItemKind } from './model.js';
import { toolDefinitionHash } from './tool-hash.js';

export type PolicyState =
  /** No managed settings, or settings that do not require a bundle and none is valid yet. */
  | { kind: 'unmanaged'; reason?: string }
  | { kind: 'enforcing'; evaluator: BundleEvaluator }
  /** Managed, and nothing valid is in force: nothing is visible, nothing can be called. */
  | { kind: 'fail-closed'; reason: string };

export interface BundlePolicyDeps {
  now(): number;
  /** The cached lists of a ready server (for checking tools against their pinned hashes). */
  lists(server: string): UpstreamLists | undefined;
  logger?: Logger;
  /** The catalogue entry a server was installed from, when it runs under another name (`servers install --as`). */
  catalogName?(server: string): string | undefined;
}

/** A managed decision carries a reason code beyond `policy_denied`. */
export interface ManagedDecision extends PolicyDecision {
  code?: DenyCode;
}

interface PrincipalView {
  /** The principal's cache key (see `view`). */
  key: string;
  roles: string[];
  items: Record<ItemKind, Map<string, Map<string, Assessment>>>;
  /** Answers shared by tools the policies cannot tell apart (BundleEvaluator.shareKey). */
  shared: Map<string, Assessment>;
  size: number;
}

const MAX_VIEWS = 256;
const MAX_ITEMS_PER_VIEW = 50_000;
/** Argument-dependent decisions kept, and the longest argument JSON that is cached (large arguments are evaluated each time). */
const MAX_DECISIONS = 4096;
const MAX_DECISION_ARGS_CHARS = 4096;

export const SIGN_IN_REQUIRED =
  'the managed policy needs an identity from your organisation (sign-in); the OS user account carries no group claims, so nothing is permitted';

/** What the OS user must do in managed mode: no identity provider is configured on this device. */
export const NO_IDENTITY_PROVIDER =
  `${SIGN_IN_REQUIRED}; ask your administrator to configure sign-in (identity.json in the managed location, docs/identity.md), ` + 'then run `gatehouse login`';

export class BundlePolicy implements PolicyPort {
  private current: PolicyState = { kind: 'unmanaged' };
  private expiresAtMs = Infinity;
  private generation = 0;
  private views = new Map<string, PrincipalView>();
  /** Argument-dependent verdicts, least recently used first. */
  private decisions = new Map<string, Verdict>();
  private keys = new WeakMap<Principal, { generation: number; key: string }>();
  private pins = new WeakMap<UpstreamLists, Map<string, string>>();
  private reportedDrift = new Set<string>();

  constructor(private readonly deps: BundlePolicyDeps) {}

  get mode(): 'managed' | 'unmanaged' {
    return this.current.kind === 'unmanaged' ? 'unmanaged' : 'managed';
  }

  get version(): string | undefined {
    return this.current.kind === 'enforcing' ? String(this.current.evaluator.version) : undefined;
  }

  get state(): PolicyState {
    return this.current;
  }

  /** Puts a new state in force; every cached answer is dropped. */
  install(state: PolicyState): void {
    this.current = state;
    this.expiresAtMs = state.kind === 'enforcing' ? Date.parse(state.evaluator.bundle.manifest.expiresAt) : Infinity;
    this.generation++;
    this.views.clear();
    this.decisions.clear();
  }

  /** Why nothing (or everything) is allowed right now, or undefined while a bundle is enforced normally. */
  private blocked(principal: Principal): { unmanaged: true } | { reason: string; code: DenyCode } | undefined {
    const state = this.current;
    if (state.kind === 'unmanaged') return { unmanaged: true };
    if (state.kind === 'fail-closed') return { reason: `managed policy is failing closed: ${state.reason}`, code: 'policy_denied' };
    if (this.deps.now() >= this.expiresAtMs) {
      return { reason: `managed policy bundle v${state.evaluator.version} expired at ${state.evaluator.bundle.manifest.expiresAt}`, code: 'policy_denied' };
    }
    if (principal.user.source === 'os') return { reason: SIGN_IN_REQUIRED, code: 'unauthenticated' };
    return undefined;
  }

  visible(principal: Principal, server: string, kind: ItemKind, name: string, options?: VisibleOptions): boolean {
    const blocked = this.blocked(principal);
    if (blocked) return 'unmanaged' in blocked;
    const evaluator = (this.current as { evaluator: BundleEvaluator }).evaluator;
    const entry = this.entryOf(server);
    if (kind === 'tool') {
      const pinned = evaluator.catalogTool(entry, name);
      // An unlisted tool (its server waits for a sign-in) has no live definition to check yet; the call is refused regardless.
      if (!pinned || (!options?.unlisted && !this.matchesPin(server, name, pinned.sha256))) return false;
    }
    return this.assessment(evaluator, principal, kind, entry, name).visible;
  }

  explainHidden(principal: Principal, server: string, kind: ItemKind, name: string): HiddenBecause {
    const blocked = this.blocked(principal);
    if (blocked) return { reason: 'unmanaged' in blocked ? 'not hidden: no managed policy is in force' : blocked.reason, policyIds: [] };
    const evaluator = (this.current as { evaluator: BundleEvaluator }).evaluator;
    if (kind === 'tool') {
      const pinned = evaluator.catalogTool(server, name);
      if (!pinned) return { reason: evaluator.notInCatalog(kind, server, name) ?? `tool ${server}__${name} is not in the catalog`, policyIds: [] };
      if (!this.matchesPin(server, name, pinned.sha256)) return { reason: `tool ${server}__${name} does not match its pinned definition`, policyIds: [] };
    }
    const assessment = this.assessment(evaluator, principal, kind, server, name);
    return { reason: assessment.hiddenBecause ?? 'not hidden', policyIds: assessment.fixed && !assessment.fixed.allow ? assessment.fixed.policyIds : [] };
  }

  /** Why this principal is permitted nothing: the policy is failing closed or expired, nobody is signed in, or their groups map to no role. */
  notice(principal: Principal): string | undefined {
    const blocked = this.blocked(principal);
    if (blocked) return 'unmanaged' in blocked ? undefined : principal.user.source === 'os' ? NO_IDENTITY_PROVIDER : blocked.reason;
    const evaluator = (this.current as { evaluator: BundleEvaluator }).evaluator;
    if (this.view(evaluator, principal).roles.length > 0) return undefined;
    const groups = principal.user.groups.length > 0 ? `your groups (${principal.user.groups.join(', ')}) map` : 'you have no groups, which maps';
    return (
      `you are signed in as ${principal.user.displayName}, but ${groups} to no role in the managed policy (bundle v${evaluator.version}), ` +
      'so it permits you nothing; ask your administrator for access (`gatehouse whoami` shows your groups and roles)'
    );
  }

  /** While a server lists nothing yet: visible if some tool the catalog lists for it, or its resources or prompts, could be. */
  serverVisible(principal: Principal, server: string): boolean {
    const blocked = this.blocked(principal);
    if (blocked) return 'unmanaged' in blocked;
    const evaluator = (this.current as { evaluator: BundleEvaluator }).evaluator;
    const entry = evaluator.bundle.content.catalog.servers.get(server);
    if (!entry) return false;
    for (const tool of entry.tools.keys()) if (this.assessment(evaluator, principal, 'tool', server, tool).visible) return true;
    return (['resource', 'prompt'] as const).some((kind) => this.assessment(evaluator, principal, kind, server, '').visible);
  }

  decide(call: GovernedCall): ManagedDecision {
    const blocked = this.blocked(call.principal);
    if (blocked) {
      if ('unmanaged' in blocked) return { allow: true, reason: 'unmanaged mode: no managed policy is in force', policyIds: [] };
      return { allow: false, code: blocked.code, reason: blocked.reason, policyIds: [] };
    }
    const evaluator = (this.current as { evaluator: BundleEvaluator }).evaluator;
    const entry = this.entryOf(call.server);
    if (call.kind === 'tool') {
      const pinned = evaluator.catalogTool(entry, call.name);
      if (!pinned || !this.matchesPin(call.server, call.name, pinned.sha256)) {
        return { allow: false, code: 'policy_denied', reason: `tool ${call.server}__${call.name} does not match its pinned definition`, policyIds: [] };
      }
    }
    const assessment = this.assessment(evaluator, call.principal, call.kind, entry, call.name);
    const view = this.view(evaluator, call.principal);
    const verdict: Verdict = assessment.fixed ?? this.decideWithArguments(evaluator, view, call, entry, assessment);
    if (verdict.code === 'approval_required' && verdict.approval) {
      // Permitted on condition: the approval stage asks a person (and refuses if nobody answers yes).
      const approval = { policies: verdict.approval.policies, approvers: verdict.approvals ?? [], fields: verdict.approval.fields };
      return {
        allow: true,
        reason: verdict.reason,
        policyIds: verdict.policyIds,
        obligations: { approval, ...(verdict.quotas ? { quotas: verdict.quotas } : {}) },
      };
    }
    if (verdict.allow && verdict.quotas) return { allow: true, reason: verdict.reason, policyIds: verdict.policyIds, obligations: { quotas: verdict.quotas } };
    return { allow: verdict.allow, ...(verdict.code && !verdict.allow ? { code: verdict.code } : {}), reason: verdict.reason, policyIds: verdict.policyIds };
  }

  /**
   * One Cedar evaluation with the call's arguments, or the verdict it gave before for the same principal, item and arguments.
   * `entry` is the catalogue's name for the server: the policy decides on it, so the verdict is kept under it.
   */
  private decideWithArguments(evaluator: BundleEvaluator, view: PrincipalView, call: GovernedCall, entry: string, assessment: Assessment): Verdict {
    const args = call.arguments === undefined ? '' : JSON.stringify(call.arguments);
    const key = args.length <= MAX_DECISION_ARGS_CHARS ? `${view.key}\u0000${call.kind}\u0000${entry}\u0000${call.name}\u0000${args}` : undefined;
    const cached = key === undefined ? undefined : this.decisions.get(key);
    if (cached) {
      // Most recently used last.
      this.decisions.delete(key!);
      this.decisions.set(key!, cached);
      return cached;
    }
    const verdict = evaluator.decide(call.principal, view.roles, call.kind, entry, call.name, call.arguments, assessment);
    if (key !== undefined) {
      if (this.decisions.size >= MAX_DECISIONS) this.decisions.delete(this.decisions.keys().next().value!);
      this.decisions.set(key, verdict);
    }
    return verdict;
  }

  /** The catalogue's name for a server: policies and pins name the entry, whatever the person installed it as. */
  private entryOf(server: string): string {
    return this.deps.catalogName?.(server) ?? server;
  }

  private assessment(evaluator: BundleEvaluator, principal: Principal, kind: ItemKind, server: string, name: string): Assessment {
    const view = this.view(evaluator, principal);
    let byName = view.items[kind].get(server);
    if (!byName) view.items[kind].set(server, (byName = new Map()));
    let found = byName.get(name);
    if (!found) {
      const key = evaluator.shareKey(kind, server, name);
      found = key !== undefined ? view.shared.get(key) : undefined;
      if (!found) {
        found = evaluator.assess(principal, view.roles, kind, server, name);
        if (key !== undefined) view.shared.set(key, found);
      }
      if (view.size >= MAX_ITEMS_PER_VIEW) {
        for (const map of Object.values(view.items)) map.clear();
        view.shared.clear();
        view.size = 0;
      }
      byName.set(name, found);
      view.size++;
    }
    return found;
  }

  private view(evaluator: BundleEvaluator, principal: Principal): PrincipalView {
    let cached = this.keys.get(principal);
    if (!cached || cached.generation !== this.generation) {
      const roles = evaluator.rolesOf(principal);
      const c = principal.client;
      cached = { generation: this.generation, key: JSON.stringify([principal.user.id, roles, c.name, c.verified, c.transport]) };
      this.keys.set(principal, cached);
      if (!this.views.has(cached.key)) {
        if (this.views.size >= MAX_VIEWS) this.views.clear();
        this.views.set(cached.key, { key: cached.key, roles, items: { tool: new Map(), prompt: new Map(), resource: new Map() }, shared: new Map(), size: 0 });
      }
    }
    let view = this.views.get(cached.key);
    if (!view) {
      // Evicted since: build it again.
      view = {
        key: cached.key,
        roles: evaluator.rolesOf(principal),
        items: { tool: new Map(), prompt: new Map(), resource: new Map() },
        shared: new Map(),
        size: 0,
      };
      this.views.set(cached.key, view);
    }
    return view;
  }

  /** Does the server's live definition of this tool hash to the catalog's pin? Hashes are computed once per fetched list. */
  private matchesPin(server: string, name: string, expected: string): boolean {
    const lists = this.deps.lists(server);
    if (!lists) return false;
    let hashes = this.pins.get(lists);
    if (!hashes) {
      hashes = new Map(lists.tools.map((tool) => [tool.name, toolDefinitionHash(tool)]));
      this.pins.set(lists, hashes);
    }
    const actual = hashes.get(name);
    if (actual === expected) return true;
    const key = `${server}\0${name}\0${actual}`;
    if (actual !== undefined && !this.reportedDrift.has(key)) {
      this.reportedDrift.add(key);
      this.deps.logger?.log('warn', 'policy.tool_definition_changed', {
        server,
        tool: name,
        expected,
        actual,
        note: 'the tool is hidden and refused until the policy bundle pins the new definition',
      });
    }
    return false;
  }
}
