/**
 * The ports each governance stage consults. The gateway issue wires the local, unmanaged
 * implementations below; the policy, identity, quota and approval issues replace them with
 * managed ones without touching the chain.
 */
import type { DenyCode } from '../common/errors.js';
import type { GovernedCall } from './chain.js';
import type { Principal } from './principal.js';

export type Admission = { ok: true } | { ok: false; code: DenyCode; reason: string };
export const ADMIT: Admission = Object.freeze({ ok: true });

export interface IdentityPort {
  /** Is this principal still allowed to act (session valid, client not revoked)? */
  verify(principal: Principal): Admission;
}

export interface PolicyDecision {
  allow: boolean;
  /** Why, for the caller and the audit record. */
  reason: string;
  policyIds: string[];
  /** The reason code of a refusal; `policy_denied` when absent (`approval_required`, `unauthenticated`, ...). */
  code?: DenyCode;
}

export interface PolicyPort {
  readonly mode: 'unmanaged' | 'managed';
  readonly version: string | undefined;
  /**
   * May this principal see this item at all? The same answer filters lists and refuses calls by
   * name. `name` is the server's own name for the item (or its URI or URI template), never the
   * aggregate's `<server>__<name>`.
   */
  visible(principal: Principal, server: string, kind: 'tool' | 'prompt' | 'resource', name: string): boolean;
  /** The decision for one call, with its arguments. */
  decide(call: GovernedCall): PolicyDecision;
}

export interface QuotaPort {
  admit(call: GovernedCall): Promise<Admission>;
}

export interface ApprovalPort {
  review(call: GovernedCall, signal: AbortSignal): Promise<Admission>;
}

/**
 * Unmanaged mode: no policy bundle is installed, so the OS user is the principal and may call
 * everything. Every record and `gatehouse status` say so.
 */
export class UnmanagedPolicy implements PolicyPort {
  readonly mode = 'unmanaged' as const;
  readonly version = undefined;
  visible(): boolean {
    return true;
  }
  decide(): PolicyDecision {
    return { allow: true, reason: 'unmanaged mode: the local user may call every configured server', policyIds: [] };
  }
}

/** No quotas are configured until a policy bundle sets them. */
export class NoQuotas implements QuotaPort {
  async admit(): Promise<Admission> {
    return ADMIT;
  }
}

/** No call needs approval until a policy bundle asks for it. */
export class NoApprovals implements ApprovalPort {
  async review(): Promise<Admission> {
    return ADMIT;
  }
}
