/**
 * Approvals for people without an admin: rules in the user's own config that send matching calls
 * to the person before they run (`approvals.ask`, with the same `<server>__<tool>` and `*` syntax as
 * `restrict`), and one switch for "ask before any tool not marked read-only"
 * (`approvals.askBeforeWrites`). They wrap whichever policy is in force and can only add a
 * question to a call it already allows: they never show, allow or un-ask anything.
 *
 * "Read-only" is what the signed catalog says in managed mode and the server's own annotation
 * when unmanaged (the same answer as the read-only client scope).
 */
import type { GovernedCall } from '../chain.js';
import type { HiddenBecause, PolicyDecision, PolicyPort, VisibleOptions } from '../governance.js';
import type { Principal } from '../principal.js';
import { compilePatterns, matchesPatterns, type CompiledPatterns } from '../policy/narrowing.js';
import type { ItemKind } from '../policy/model.js';
import { ASK_BEFORE_WRITES } from './request.js';

export interface AskRules {
  /** Server names or `<server>__<tool or prompt>` names, `*` matching any run of characters. */
  ask: readonly string[];
  /** Ask before every tool call whose tool is not marked read-only. */
  askBeforeWrites: boolean;
}

export class LocalAsking {
  private readonly each: { pattern: string; compiled: CompiledPatterns }[];

  constructor(readonly rules: AskRules) {
    this.each = rules.ask.map((pattern) => ({ pattern, compiled: compilePatterns([pattern]) }));
  }

  /** The rules that ask before this call; empty when none does. */
  rulesFor(server: string, kind: ItemKind, name: string, readOnly: boolean): string[] {
    const hit = this.each.filter((r) => matchesPatterns(r.compiled, server, kind, name)).map((r) => r.pattern);
    if (this.rules.askBeforeWrites && kind === 'tool' && !readOnly) hit.push(ASK_BEFORE_WRITES);
    return hit;
  }
}

export class AskingPolicy implements PolicyPort {
  constructor(
    private readonly inner: PolicyPort,
    private readonly asking: () => LocalAsking,
    private readonly readOnly: (server: string, tool: string) => boolean,
  ) {}

  get mode(): 'managed' | 'unmanaged' {
    return this.inner.mode;
  }

  get version(): string | undefined {
    return this.inner.version;
  }

  visible(principal: Principal, server: string, kind: ItemKind, name: string, options?: VisibleOptions): boolean {
    return this.inner.visible(principal, server, kind, name, options);
  }

  /** Asking never hides: what hid an item, whether a server can be seen, and why nothing can, are the inner policy's answers. */
  explainHidden(principal: Principal, server: string, kind: ItemKind, name: string): HiddenBecause {
    return this.inner.explainHidden?.(principal, server, kind, name) ?? { reason: 'hidden by the policy in force', policyIds: [] };
  }

  serverVisible(principal: Principal, server: string): boolean {
    return this.inner.serverVisible?.(principal, server) ?? true;
  }

  notice(principal: Principal): string | undefined {
    return this.inner.notice?.(principal);
  }

  decide(call: GovernedCall): PolicyDecision {
    const decision = this.inner.decide(call);
    if (!decision.allow) return decision;
    const rules = this.asking().rulesFor(call.server, call.kind, call.name, call.kind === 'tool' && this.readOnly(call.server, call.name));
    if (rules.length === 0) return decision;
    return { ...decision, obligations: { ...decision.obligations, ask: { rules } } };
  }
}
