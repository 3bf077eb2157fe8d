/**
 * The Cedar engine behind the core's `CedarPort`: @cedar-policy/cedar-wasm's Node build, which
 * reads its .wasm file from disk when first imported (so it is an adapter, and is loaded only
 * when a managed policy or a `gatehouse policy` command needs it).
 *
 * Policy sets are parsed once (`preparsePolicySet`) under a content-addressed name and then
 * evaluated with `statefulIsAuthorized`, so no call parses policy text.
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { policySetHandle } from '../../core/policy/compile.js';
import type { CedarAnswer, CedarPort, CedarRequest, CedarResult, PolicyJson } from '../../core/policy/model.js';

type DetailedError = { message: string; help?: string | null; sourceLocations?: { start: number; end: number; label?: string | null }[] };

/** One line per error: the message, where it is in `text` (line:column), and Cedar's label or help. */
function describe(errors: DetailedError[], text?: string): string[] {
  return errors.map((e) => {
    const at = e.sourceLocations?.[0];
    let where = '';
    if (at && text !== undefined) {
      const before = text.slice(0, at.start);
      const line = before.split('\n').length;
      const column = at.start - before.lastIndexOf('\n');
      where = `line ${line}:${column}: `;
    }
    const extra = at?.label ?? e.help;
    return `${where}${e.message}${extra ? ` (${extra})` : ''}`.replace(/\s*\n\s*/g, ' ');
  });
}

export class CedarEngine implements CedarPort {
  private readonly prepared = new Set<string>();

  static version(): string {
    return cedar.getCedarVersion();
  }

  parsePolicies(text: string): CedarResult<PolicyJson[]> {
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') return { ok: false, errors: describe(parts.errors, text) };
    if (parts.policy_templates.length > 0) {
      return { ok: false, errors: ['policy templates (?principal, ?resource) are not supported; write static policies'] };
    }
    const out: PolicyJson[] = [];
    for (const policy of parts.policies) {
      const json = cedar.policyToJson(policy);
      if (json.type === 'failure') return { ok: false, errors: describe(json.errors, policy) };
      out.push(json.json as unknown as PolicyJson);
    }
    return { ok: true, value: out };
  }

  schemaToJson(schemaText: string): CedarResult<unknown> {
    const answer = cedar.schemaToJsonWithResolvedTypes(schemaText);
    if (answer.type === 'failure') return { ok: false, errors: describe(answer.errors, schemaText) };
    return { ok: true, value: answer.json };
  }

  validate(schemaText: string, policies: Record<string, PolicyJson>): string[] {
    const answer = cedar.validate({
      schema: schemaText,
      policies: { staticPolicies: policies as never },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') return describe(answer.errors, schemaText);
    return answer.validationErrors.map((e) => `policy "${e.policyId}": ${describe([e.error])[0]}`);
  }

  checkRequest(schemaText: string, request: CedarRequest): string[] {
    const answer = cedar.isAuthorized({
      principal: request.principal,
      action: request.action,
      resource: request.resource,
      context: request.context as never,
      entities: request.entities as never,
      schema: schemaText,
      validateRequest: true,
      policies: { staticPolicies: {} },
    });
    return answer.type === 'failure' ? describe(answer.errors) : [];
  }

  prepare(policies: Record<string, PolicyJson>): CedarResult<string> {
    const handle = policySetHandle(policies);
    if (this.prepared.has(handle)) return { ok: true, value: handle };
    const answer = cedar.preparsePolicySet(handle, { staticPolicies: policies as never });
    if (answer.type === 'failure') return { ok: false, errors: describe(answer.errors) };
    this.prepared.add(handle);
    return { ok: true, value: handle };
  }

  authorize(handle: string, request: CedarRequest): CedarAnswer {
    const answer = cedar.statefulIsAuthorized({
      principal: request.principal,
      action: request.action,
      resource: request.resource,
      context: request.context as never,
      entities: request.entities as never,
      preparsedPolicySetId: handle,
      validateRequest: false,
    });
    if (answer.type === 'failure') throw new Error(`Cedar could not evaluate the request: ${describe(answer.errors).join('; ')}`);
    return {
      decision: answer.response.decision,
      reasons: answer.response.diagnostics.reason,
      errors: answer.response.diagnostics.errors.map((e) => ({ policyId: e.policyId, message: describe([e.error])[0] ?? 'error' })),
    };
  }
}
