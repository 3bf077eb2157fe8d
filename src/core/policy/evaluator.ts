/**
 * Decisions under one compiled bundle. Two questions, both answered by Cedar:
 *
 * - `assess`: before any arguments exist, may this principal ever use this item, and is the
 *   answer already final? One evaluation of the probe set (see est.ts) says which policies may
 *   apply and which certainly apply. The item is visible when some permit may apply and no forbid
 *   certainly does. When no argument-reading policy may apply, the decision is final and is kept,
 *   so calls need no further evaluation.
 * - `decide`: one call with its arguments, when the answer was not final.
 *
 * Semantics beyond Cedar's own: a forbid that fails to evaluate refuses the call (Cedar would skip
 * it); obligations accumulate (a call that any satisfied permit marks `@approval` needs approval).
 */
import type { DenyCode } from '../../common/errors.js';
import type { Principal } from '../principal.js';
import { argumentsToCedar } from './args.js';
import type { CompiledBundle, PolicyInfo } from './compile.js';
import { buildRequest } from './entities.js';
import { PROBE_MAY, PROBE_MUST } from './est.js';
import type { CatalogTool, CedarAnswer, CedarPort, ItemKind } from './model.js';

export interface Verdict {
  allow: boolean;
  code?: Extract<DenyCode, 'policy_denied' | 'approval_required'>;
  reason: string;
  /** The policies that decided: satisfied permits on allow or approval, satisfied forbids on deny. */
  policyIds: string[];
  /** `@approval` values of the permits, when the call needs approval. */
  approvals?: string[];
  /**
   * With `approval_required` (the call is permitted only with a person's approval): the permits that
   * ask for it and the argument paths they read. The policy port turns such a verdict into an
   * allowed decision that carries the approval obligation.
   */
  approval?: { policies: string[]; fields: string[] };
  /** `@quota` values of the permits that allowed the call. */
  quotas?: string[];
}

export interface Assessment {
  visible: boolean;
  /** Why the item is hidden, for explain and logs (never shown to the agent). */
  hiddenBecause?: string;
  /** The decision, when it does not depend on the arguments. */
  fixed?: Verdict;
  /** Policies that may apply to some call (the rest certainly do not). */
  mayApply: string[];
}

/**
 * Reasons name the item generically ("this tool"): an answer is shared by every tool the policies
 * cannot tell apart (see `shareKey`), and the caller and the audit record know which item it was.
 */
function itemLabel(kind: ItemKind): string {
  return `this ${kind}`;
}

export class BundleEvaluator {
  constructor(
    readonly bundle: CompiledBundle,
    private readonly cedar: CedarPort,
  ) {}

  get version(): number {
    return this.bundle.manifest.version;
  }

  /** The roles of a principal: the role mapping applied to its group claims, plus roles its identity already carries. */
  rolesOf(principal: Principal): string[] {
    const roles = new Set(principal.user.roles);
    for (const group of principal.user.groups) for (const role of this.bundle.content.roles.groups.get(group) ?? []) roles.add(role);
    return [...roles].sort();
  }

  catalogTool(server: string, name: string): CatalogTool | undefined {
    return this.bundle.content.catalog.servers.get(server)?.tools.get(name);
  }

  /**
   * Tools that agree on this key get the same `assess` answer for the same principal: it holds what
   * the policies can see of a tool (its attributes, and its server or name only where some policy
   * reads or names them). Undefined for prompts and resources, which are not shared.
   */
  shareKey(kind: ItemKind, server: string, name: string): string | undefined {
    if (kind !== 'tool') return undefined;
    const tool = this.catalogTool(server, name);
    if (!tool) return undefined;
    const seen = this.bundle.observes;
    const id = `${server}__${name}`;
    return JSON.stringify([
      seen.toolIds.has(id) || seen.toolName ? id : '*',
      seen.serverAttribute || seen.serverIds.has(server) ? server : '*',
      tool.readOnly,
      tool.destructive,
      [...tool.tags].sort(),
    ]);
  }

  /** Is the item approved by the catalog at all? Undefined when it is; otherwise why not. */
  notInCatalog(kind: ItemKind, server: string, name: string): string | undefined {
    const entry = this.bundle.content.catalog.servers.get(server);
    if (!entry) return `server "${server}" is not in the policy bundle's catalog`;
    if (kind === 'tool' && !entry.tools.has(name)) return `tool "${name}" of "${server}" is not in the policy bundle's catalog`;
    return undefined;
  }

  assess(principal: Principal, roles: readonly string[], kind: ItemKind, server: string, name: string): Assessment {
    const missing = this.notInCatalog(kind, server, name);
    if (missing) return { visible: false, hiddenBecause: missing, fixed: this.deny(missing, []), mayApply: [] };
    const request = buildRequest(principal, roles, kind, server, name, this.catalogTool(server, name), undefined);
    const answer = this.cedar.authorize(this.bundle.handles.probe, request);
    const may: string[] = [];
    const certain = new Set<string>();
    for (const id of answer.reasons) {
      if (id.startsWith(PROBE_MAY)) may.push(id.slice(PROBE_MAY.length));
      else if (id.startsWith(PROBE_MUST)) certain.add(id.slice(PROBE_MUST.length));
    }
    const failedForbids = this.failedForbids(answer, (id) => id.replace(/^(may|must):/, ''));
    if (failedForbids.length > 0) {
      const verdict = this.forbidFailed(failedForbids);
      return { visible: false, hiddenBecause: verdict.reason, fixed: verdict, mayApply: may };
    }
    const permits = may.filter((id) => this.info(id)?.effect === 'permit');
    const forbids = [...certain].filter((id) => this.info(id)?.effect === 'forbid');
    const label = itemLabel(kind);
    const visible = permits.length > 0 && forbids.length === 0;
    const assessment: Assessment = { visible, mayApply: may };
    if (!visible) {
      assessment.hiddenBecause = forbids.length > 0 ? `forbidden by ${forbids.join(', ')}` : `no policy permits ${label} for this user and client`;
    }
    if (forbids.length > 0) {
      // A forbid that applies whatever the arguments decides alone.
      assessment.fixed = this.deny(`${label} is forbidden by policy ${forbids.join(', ')}`, forbids);
    } else if (!may.some((id) => this.info(id)?.readsArguments)) {
      // Nothing that reads the arguments may apply: the policies that certainly apply decide.
      const applying = [...certain];
      const permitting = applying.filter((id) => this.info(id)?.effect === 'permit');
      assessment.fixed = this.verdict({ decision: permitting.length > 0 ? 'allow' : 'deny', reasons: permitting, errors: [] }, label);
    }
    return assessment;
  }

  /** The decision for one call. `assessment` is this item's `assess` answer for the same principal, if already known. */
  decide(
    principal: Principal,
    roles: readonly string[],
    kind: ItemKind,
    server: string,
    name: string,
    args: Record<string, unknown> | undefined,
    assessment: Assessment = this.assess(principal, roles, kind, server, name),
  ): Verdict {
    if (assessment.fixed) return assessment.fixed;
    const label = itemLabel(kind);
    const tool = kind === 'tool' ? this.catalogTool(server, name) : undefined;
    let cedarArgs;
    if (kind !== 'resource') {
      const converted = argumentsToCedar(args, this.bundle.argTypes[kind], tool?.scale ?? {});
      if (!converted.ok) return this.deny(converted.reason, []);
      cedarArgs = converted.value;
    }
    const request = buildRequest(principal, roles, kind, server, name, tool, cedarArgs);
    return this.verdict(this.cedar.authorize(this.bundle.handles.policies, request), label);
  }

  private info(id: string): PolicyInfo | undefined {
    return this.bundle.policies.get(id);
  }

  private failedForbids(answer: CedarAnswer, idOf: (id: string) => string): { id: string; message: string }[] {
    return answer.errors.map((e) => ({ id: idOf(e.policyId), message: e.message })).filter((e) => this.info(e.id)?.effect === 'forbid');
  }

  private forbidFailed(failed: { id: string; message: string }[]): Verdict {
    const first = failed[0]!;
    return this.deny(`forbid policy ${first.id} could not be evaluated (${first.message}), so the call is refused`, [...new Set(failed.map((f) => f.id))]);
  }

  private verdict(answer: CedarAnswer, label: string): Verdict {
    const failed = this.failedForbids(answer, (id) => id);
    if (failed.length > 0) return this.forbidFailed(failed);
    const ids = answer.reasons;
    if (answer.decision === 'deny') {
      return this.deny(ids.length > 0 ? `${label} is forbidden by policy ${ids.join(', ')}` : `no policy permits ${label} for this user and client`, ids);
    }
    const approvals = [...new Set(ids.map((id) => this.info(id)?.approval).filter((a): a is string => a !== undefined))];
    const quotas = [...new Set(ids.map((id) => this.info(id)?.quota).filter((q): q is string => q !== undefined))];
    const counted = quotas.length > 0 ? { quotas } : {};
    if (approvals.length > 0) {
      const by = ids.filter((id) => this.info(id)?.approval !== undefined);
      const fields = [...new Set(by.flatMap((id) => this.info(id)?.argsRead ?? []))].sort();
      return {
        allow: false,
        code: 'approval_required',
        reason: `${label} needs approval (${approvals.join(', ')}) under policy ${by.join(', ')}`,
        policyIds: ids,
        approvals,
        approval: { policies: by, fields },
        ...counted,
      };
    }
    return { allow: true, reason: `allowed by policy ${ids.join(', ')}`, policyIds: ids, ...counted };
  }

  private deny(reason: string, policyIds: string[]): Verdict {
    return { allow: false, code: 'policy_denied', reason, policyIds };
  }
}
