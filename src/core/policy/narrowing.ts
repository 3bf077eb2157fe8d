/**
 * Local narrowing: what the user switched off for themselves, or for one client, in their own
 * config (`restrict`). It wraps whichever policy is in force and can only take away: an item is
 * visible when the inner policy shows it AND no local rule switches it off; a call is decided by
 * the inner policy only after the local rules let it through. Nothing here can widen a managed
 * policy, because nothing here ever answers "yes" on its own.
 */
import { globToRegExp } from '../glob.js';
import type { GovernedCall } from '../chain.js';
import type { HiddenBecause, PolicyPort, VisibleOptions } from '../governance.js';
import type { Principal } from '../principal.js';
import type { ManagedDecision } from './bundle-policy.js';
import type { ItemKind } from './model.js';

export interface RestrictRules {
  /** Server names (`crm`), or `<server>__<tool or prompt>` names; `*` matches any run of characters. */
  disable: readonly string[];
  /** The same, for one client (by the name it connects with). */
  clients: Readonly<Record<string, { disable: readonly string[] }>>;
}

export const NO_RESTRICTIONS: RestrictRules = { disable: [], clients: {} };

export interface CompiledPatterns {
  servers: RegExp[];
  items: { server: RegExp; item: RegExp }[];
}

export function compilePatterns(patterns: readonly string[]): CompiledPatterns {
  const out: CompiledPatterns = { servers: [], items: [] };
  for (const pattern of patterns) {
    const at = pattern.indexOf('__');
    if (at < 0) out.servers.push(globToRegExp(pattern));
    else out.items.push({ server: globToRegExp(pattern.slice(0, at)), item: globToRegExp(pattern.slice(at + 2)) });
  }
  return out;
}

export function matchesPatterns(rules: CompiledPatterns, server: string, kind: ItemKind, name: string): boolean {
  if (rules.servers.some((r) => r.test(server))) return true;
  // Resources have URIs, not names under a server: they follow their server only.
  if (kind === 'resource') return false;
  return rules.items.some((r) => r.server.test(server) && r.item.test(name));
}

export class Restrictions {
  private readonly everyone: CompiledPatterns;
  private readonly perClient: Map<string, CompiledPatterns>;

  constructor(readonly rules: RestrictRules = NO_RESTRICTIONS) {
    this.everyone = compilePatterns(rules.disable);
    this.perClient = new Map(Object.entries(rules.clients).map(([client, r]) => [client, compilePatterns(r.disable)]));
  }

  /** Why this item is switched off for this client, or undefined. */
  disabled(client: string, server: string, kind: ItemKind, name: string): string | undefined {
    if (matchesPatterns(this.everyone, server, kind, name)) return 'switched off in your Gatehouse config (restrict.disable)';
    const forClient = this.perClient.get(client);
    if (forClient && matchesPatterns(forClient, server, kind, name)) return `switched off for client "${client}" in your Gatehouse config`;
    return undefined;
  }

  /** A server switched off for everyone does not need to run at all. */
  serverDisabled(server: string): boolean {
    return this.everyone.servers.some((r) => r.test(server));
  }
}

export class NarrowedPolicy implements PolicyPort {
  constructor(
    private readonly inner: PolicyPort,
    private readonly restrictions: () => Restrictions,
  ) {}

  get mode(): 'managed' | 'unmanaged' {
    return this.inner.mode;
  }

  get version(): string | undefined {
    return this.inner.version;
  }

  visible(principal: Principal, server: string, kind: ItemKind, name: string, options?: VisibleOptions): boolean {
    if (this.restrictions().disabled(principal.client.name, server, kind, name)) return false;
    return this.inner.visible(principal, server, kind, name, options);
  }

  explainHidden(principal: Principal, server: string, kind: ItemKind, name: string): HiddenBecause {
    const off = this.restrictions().disabled(principal.client.name, server, kind, name);
    if (off) return { reason: `${server}__${name} is ${off}`, policyIds: [] };
    return this.inner.explainHidden?.(principal, server, kind, name) ?? { reason: 'hidden by the policy in force', policyIds: [] };
  }

  serverVisible(principal: Principal, server: string): boolean {
    // Resources follow their server, so a resource rule is the rule for the server as a whole.
    if (this.restrictions().disabled(principal.client.name, server, 'resource', '')) return false;
    return this.inner.serverVisible?.(principal, server) ?? true;
  }

  notice(principal: Principal): string | undefined {
    return this.inner.notice?.(principal);
  }

  decide(call: GovernedCall): ManagedDecision {
    const off = this.restrictions().disabled(call.principal.client.name, call.server, call.kind, call.name);
    if (off) return { allow: false, code: 'policy_denied', reason: `${call.server}__${call.name} is ${off}`, policyIds: [] };
    return this.inner.decide(call);
  }
}
