/**
 * The ports each governance stage consults. The gateway issue wires the local, unmanaged
 * implementations below; the policy, identity, quota and approval issues replace them with
 * managed ones without touching the chain.
 */
import type { DenyCode } from '../common/errors.js';
import type { GovernedCall } from './chain.js';
import type { Principal } from './principal.js';

export type Admission = { ok: true } | { ok: false; code: DenyCode; reason: string; data?: Record<string, unknown> };
export const ADMIT: Admission = Object.freeze({ ok: true });

/**
 * Why a call needs a person's approval before it may go ahead. The approval stage asks once for all
 * of a call's reasons.
 */
export type ApprovalReason =
  /** Permits that allowed the call carry `@approval(...)`; `fields` are the argument paths they read (shown highlighted). */
  | { kind: 'policy'; policies: string[]; approvers: string[]; fields: string[] }
  /** The call is past a quota's approval threshold (and within its cap). */
  | { kind: 'quota'; quota: string; window: 'day' | 'session'; used: number; approvalAfter: number; limit: number }
  /** The user's own config asks to be asked (`approvals.ask` patterns, or `approvals.askBeforeWrites`). */
  | { kind: 'local'; rules: string[] };

/** What a permitted call must still go through: a person's approval, quotas its permits name (`@quota`). */
export interface Obligations {
  approval?: { policies: string[]; approvers: string[]; fields: string[] };
  quotas?: string[];
  /** The user's own rules that ask before this call (they only ever add a question). */
  ask?: { rules: string[] };
}

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
  /** For an allowed call: what it must still go through (the quota and approval stages read these). */
  obligations?: Obligations;
}

/** Why an item is hidden from a principal: for the audit record of a refusal, never for the caller (who hears "unknown"). */
export interface HiddenBecause {
  reason: string;
  /** The policies that hid it (a `forbid` that applies); empty when nothing permits it, or a rule outside the bundle hid it. */
  policyIds: string[];
}

/**
 * `unlisted`: the item is named by a caller while its server lists nothing yet (a remote server
 * waiting for the user to sign in), so only what its name and the policy say can be checked, not its
 * live definition (a pin). Used to tell such a caller to sign in rather than that the tool is unknown.
 */
export interface VisibleOptions {
  unlisted?: boolean;
}

export interface PolicyPort {
  readonly mode: 'unmanaged' | 'managed';
  readonly version: string | undefined;
  /**
   * May this principal see this item at all? The same answer filters lists and refuses calls by
   * name. `name` is the server's own name for the item (or its URI or URI template), never the
   * aggregate's `<server>__<name>`.
   */
  visible(principal: Principal, server: string, kind: 'tool' | 'prompt' | 'resource', name: string, options?: VisibleOptions): boolean;
  /** The decision for one call, with its arguments. */
  decide(call: GovernedCall): PolicyDecision;
  /** Why `visible` says no. Absent where a port cannot tell (the record then says only that the item was hidden). */
  explainHidden?(principal: Principal, server: string, kind: 'tool' | 'prompt' | 'resource', name: string): HiddenBecause;
  /**
   * Whether anything of this server could be visible to this principal, asked while the server lists
   * nothing yet (it is starting). Absent means yes; once it lists items, their visibility decides.
   */
  serverVisible?(principal: Principal, server: string): boolean;
  /**
   * Why this principal is permitted nothing at all, when that is so (no sign-in, no role): not a
   * secret about any item, so it is said to the caller, with what to do. Undefined otherwise.
   */
  notice?(principal: Principal): string | undefined;
}

/**
 * An admitted call may carry approvals the quota requires (a threshold crossed), and a `release`
 * that gives back what it reserved: the quota stage calls it when a later stage refuses the call,
 * so that a call that never reached its server spends nothing.
 */
export type QuotaAdmission = Admission | { ok: true; approvals?: ApprovalReason[]; release?: () => void };

export interface QuotaPort {
  /** Checks and spends, all or nothing: a refused call spends nothing. */
  admit(call: GovernedCall): QuotaAdmission | Promise<QuotaAdmission>;
}

export interface ApprovalPort {
  /** Asks a person when `call.facts.approvalNeeded` says so; admits at once otherwise. */
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

/** No way to ask a person: a call that needs approval is refused (fail closed); every other call passes. */
export class NoApprovals implements ApprovalPort {
  async review(call: GovernedCall): Promise<Admission> {
    if (call.facts.approvalNeeded?.length) {
      return { ok: false, code: 'approval_required', reason: "this call needs a person's approval, and no approval channel is available" };
    }
    return ADMIT;
  }
}
