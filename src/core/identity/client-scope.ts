/**
 * What a paired client may do, chosen by the person when it was paired: everything the user may
 * do, read-only tools, or listed servers and tools. Effective rights are the user's rights (the
 * policy in force) intersected with the client's scope: `ScopedPolicy` wraps whichever policy is
 * in force and can only take away, the same way local restrictions do.
 */
import type { GovernedCall } from '../chain.js';
import type { HiddenBecause, PolicyDecision, PolicyPort, VisibleOptions } from '../governance.js';
import type { Principal } from '../principal.js';

export type ClientScope =
  | { kind: 'all' }
  /** Tools known to be read-only, every resource read and every prompt. */
  | { kind: 'read-only' }
  /** Every item of the listed servers, plus the listed `<server>__<tool or prompt>` names. */
  | { kind: 'listed'; servers: readonly string[]; tools: readonly string[] };

export const FULL_SCOPE: ClientScope = Object.freeze({ kind: 'all' });

/** "all my tools", "read-only", "memory, crm__search" */
export function describeScope(scope: ClientScope): string {
  if (scope.kind === 'all') return "all of the user's tools";
  if (scope.kind === 'read-only') return 'read-only';
  const parts = [...scope.servers.map((s) => `${s} (all)`), ...scope.tools];
  return parts.length === 0 ? 'nothing' : parts.join(', ');
}

/** Is a tool read-only? Answered from the signed catalog when a bundle is in force, else from the server's own annotation. */
export type ReadOnlyLookup = (server: string, tool: string) => boolean;

/** Why the scope refuses this item, or undefined when it allows it. */
export function outsideScope(
  scope: ClientScope | undefined,
  readOnly: ReadOnlyLookup,
  server: string,
  kind: 'tool' | 'prompt' | 'resource',
  name: string,
): string | undefined {
  if (scope === undefined || scope.kind === 'all') return undefined;
  if (scope.kind === 'read-only') {
    if (kind !== 'tool') return undefined;
    return readOnly(server, name) ? undefined : 'the client was paired read-only and this tool is not known to be read-only';
  }
  if (scope.servers.includes(server)) return undefined;
  // Resources follow their server; tools and prompts may be listed one by one.
  if (kind !== 'resource' && scope.tools.includes(`${server}__${name}`)) return undefined;
  return 'the client was not paired for this item';
}

export class ScopedPolicy implements PolicyPort {
  constructor(
    private readonly inner: PolicyPort,
    private readonly readOnly: ReadOnlyLookup,
  ) {}

  get mode(): 'managed' | 'unmanaged' {
    return this.inner.mode;
  }

  get version(): string | undefined {
    return this.inner.version;
  }

  visible(principal: Principal, server: string, kind: 'tool' | 'prompt' | 'resource', name: string, options?: VisibleOptions): boolean {
    if (outsideScope(principal.client.scope, this.readOnly, server, kind, name)) return false;
    return this.inner.visible(principal, server, kind, name, options);
  }

  explainHidden(principal: Principal, server: string, kind: 'tool' | 'prompt' | 'resource', name: string): HiddenBecause {
    const why = outsideScope(principal.client.scope, this.readOnly, server, kind, name);
    if (why) return { reason: `refused for client "${principal.client.name}": ${why}`, policyIds: [] };
    return this.inner.explainHidden?.(principal, server, kind, name) ?? { reason: 'hidden by the policy in force', policyIds: [] };
  }

  serverVisible(principal: Principal, server: string): boolean {
    const scope = principal.client.scope;
    if (scope?.kind === 'listed' && !scope.servers.includes(server) && !scope.tools.some((t) => t.startsWith(`${server}__`))) return false;
    return this.inner.serverVisible?.(principal, server) ?? true;
  }

  notice(principal: Principal): string | undefined {
    return this.inner.notice?.(principal);
  }

  decide(call: GovernedCall): PolicyDecision {
    const why = outsideScope(call.principal.client.scope, this.readOnly, call.server, call.kind, call.name);
    if (why) {
      return {
        allow: false,
        code: 'policy_denied',
        reason: `${call.server}__${call.name} is refused for client "${call.principal.client.name}": ${why}`,
        policyIds: [],
      };
    }
    return this.inner.decide(call);
  }
}
