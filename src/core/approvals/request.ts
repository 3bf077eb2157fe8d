/**
 * What an approval binds to.
 *
 * - The **request digest**: SHA-256 of the canonical JSON (keys sorted, see core/digest.ts) of the
 *   user id, the client (name and credential id), the server, the kind of request, the tool (or
 *   prompt, or resource URI) and the complete arguments. An answer names the digest it approves,
 *   and is refused when the digest differs from the waiting request's.
 * - The **argument pattern**, for "allow for this session": two calls have the same pattern when
 *   their arguments have the same shape (the same names, recursively, each with the same JSON type;
 *   arrays by their elements' types, not their length) AND every field the approving policies read
 *   (`context.args.<path>` in their conditions) has the same value. Fields no policy reads may
 *   differ. A call with no such fields (a quota threshold, a policy that does not look at the
 *   arguments) matches on shape alone.
 */
import type { GovernedCall } from '../chain.js';
import { canonicalJson, digest, memberMap } from '../digest.js';
import type { ApprovalReason } from '../governance.js';

export function requestDigest(call: GovernedCall): string {
  return digest({
    v: 1,
    user: call.principal.user.id,
    client: { name: call.principal.client.name, id: call.principal.client.id },
    server: call.server,
    kind: call.kind,
    name: call.name,
    arguments: call.arguments ?? null,
  });
}

/** The argument paths the approving policies read, sorted and without duplicates. */
export function highlightedFields(reasons: readonly ApprovalReason[]): string[] {
  const fields = new Set<string>();
  for (const reason of reasons) if (reason.kind === 'policy') for (const field of reason.fields) fields.add(field);
  return [...fields].sort();
}

/** The value at a dotted path (`price.net`), or undefined. */
export function valueAt(args: Record<string, unknown> | undefined, path: string): unknown {
  let value: unknown = args;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The values of `fields` in `args` (absent fields left out). */
export function fieldValues(args: Record<string, unknown> | undefined, fields: readonly string[]): Record<string, unknown> {
  const out = memberMap();
  for (const field of fields) {
    const value = valueAt(args, field);
    if (value !== undefined) out[field] = value;
  }
  return out;
}

/** Names and JSON types, recursively; every member counts, `"__proto__"` included (a plain object would drop it). */
function typeShape(value: unknown, depth = 0): unknown {
  if (depth > 16) return '…';
  if (value === null) return 'null';
  if (Array.isArray(value)) return { array: [...new Set(value.map((v) => canonicalJson(typeShape(v, depth + 1))))].sort() };
  if (typeof value === 'object') {
    const out = memberMap();
    for (const key of Object.keys(value as object)) out[key] = typeShape((value as Record<string, unknown>)[key], depth + 1);
    return out;
  }
  return typeof value;
}

/** See the module comment: the shape of the arguments, and the values of the fields the policies read. */
export function argumentPattern(args: Record<string, unknown> | undefined, fields: readonly string[]): string {
  return canonicalJson({ shape: typeShape(args ?? {}), values: fieldValues(args, fields) });
}

/** One key per reason, for matching a later call against a session approval. */
export function reasonKey(reason: ApprovalReason): string {
  if (reason.kind === 'policy') return `policy:${[...reason.policies].sort().join(',')}`;
  if (reason.kind === 'local') return `local:${[...reason.rules].sort().join(',')}`;
  return `quota:${reason.quota}`;
}

/**
 * "needs approval (user) under policy support-refund-large",
 * "needs approval under quota writes-per-day: call 41 of 50 today, and each call after 40 needs approval"
 */
export function describeReason(reason: ApprovalReason): string {
  if (reason.kind === 'policy') return `needs approval (${reason.approvers.join(', ')}) under policy ${reason.policies.join(', ')}`;
  if (reason.kind === 'local') return `is one you asked to approve first in your Gatehouse config (${reason.rules.map(localRuleText).join('; ')})`;
  const window = reason.window === 'day' ? 'today' : 'in this session';
  const count = `call ${reason.used} of ${reason.limit} ${window}`;
  return `needs approval under quota ${reason.quota}: ${count}, and each call after ${reason.approvalAfter} needs approval`;
}

/** A short label for status lines: "policy support-refund-large", "quota writes-per-day (41 of 50)". */
export function reasonLabel(reason: ApprovalReason): string {
  if (reason.kind === 'policy') return `policy ${reason.policies.join(', ')}`;
  if (reason.kind === 'local') return `your rule ${reason.rules.join(', ')}`;
  return `quota ${reason.quota} (${reason.used} of ${reason.limit})`;
}

/** `approvals.ask: crm__refund`, or what `askBeforeWrites` means. */
function localRuleText(rule: string): string {
  return rule === ASK_BEFORE_WRITES ? 'approvals.askBeforeWrites: it is not marked read-only' : `approvals.ask: ${rule}`;
}

/** The rule name a call carries when `approvals.askBeforeWrites` asked for it. */
export const ASK_BEFORE_WRITES = 'askBeforeWrites';
