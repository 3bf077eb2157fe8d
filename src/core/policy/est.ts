/**
 * What can be decided before the arguments are known. A policy whose conditions read
 * `context.args` cannot be decided when a list is filtered; these functions turn each condition
 * into two argument-free ones, evaluated by Cedar itself:
 *
 *   may(c)  — false only if c is false (or fails) for every possible argument value;
 *   must(c) — true only if c is true for every possible argument value.
 *
 * A part of a condition that reads the arguments becomes `true` in `may` and `false` in `must`;
 * `!`, `&&`, `||` and `if-then-else` are carried through (with `!` swapping the two), so that the
 * result is exact wherever the arguments play no part. Everything else that reads the arguments
 * (a comparison, `has`, `like`, a method call) is treated as unknown as a whole.
 *
 * Expressions are Cedar's JSON form (EST): one-key objects such as `{"&&": {left, right}}`.
 */
import type { PolicyJson } from './model.js';
import { isPlainObject } from '../../common/objects.js';

type Expr = unknown;

const TRUE: Expr = { Value: true };
const FALSE: Expr = { Value: false };

/** The one operator key of an EST node. */
function op(expr: Expr): [string, unknown] | undefined {
  if (!isPlainObject(expr)) return undefined;
  const keys = Object.keys(expr);
  return keys.length === 1 ? [keys[0]!, expr[keys[0]!]] : undefined;
}

/**
 * Does this expression read the call's arguments? `context.client` does not (it is fixed for a
 * session); any other use of `context` counts as reading them, which errs on the side of treating
 * a policy as argument-dependent.
 */
export function readsArguments(expr: Expr): boolean {
  if (Array.isArray(expr)) return expr.some(readsArguments);
  if (!isPlainObject(expr)) return false;
  const node = op(expr);
  if (node) {
    const [key, body] = node;
    if (key === 'Value') return false; // a literal, whatever it looks like inside
    if (key === 'Var') return body === 'context';
    if ((key === '.' || key === 'has') && isPlainObject(body) && isContextVar(body.left)) {
      return body.attr !== 'client';
    }
  }
  return Object.values(expr).some(readsArguments);
}

function isContextVar(expr: Expr): boolean {
  const node = op(expr);
  return node !== undefined && node[0] === 'Var' && node[1] === 'context';
}

export function may(expr: Expr): Expr {
  return bound(expr, true);
}

export function must(expr: Expr): Expr {
  return bound(expr, false);
}

/** `upper`: the may-bound (over-approximation); otherwise the must-bound (under-approximation). */
function bound(expr: Expr, upper: boolean): Expr {
  if (!readsArguments(expr)) return expr;
  const node = op(expr);
  if (node) {
    const [key, body] = node;
    if (key === '!' && isPlainObject(body)) return { '!': { arg: bound(body.arg, !upper) } };
    if ((key === '&&' || key === '||') && isPlainObject(body)) {
      return { [key]: { left: bound(body.left, upper), right: bound(body.right, upper) } };
    }
    if (key === 'if-then-else' && isPlainObject(body)) {
      // if c then t else e  ≡  (c && t) || (!c && e), with each part bounded in the same direction;
      // for the must-bound, t && e also suffices whatever c is.
      const thenPart = { '&&': { left: bound(body.if, upper), right: bound(body.then, upper) } };
      const elsePart = { '&&': { left: { '!': { arg: bound(body.if, !upper) } }, right: bound(body.else, upper) } };
      const either = { '||': { left: thenPart, right: elsePart } };
      return upper ? either : { '||': { left: either, right: { '&&': { left: bound(body.then, false), right: bound(body.else, false) } } } };
    }
  }
  return upper ? TRUE : FALSE;
}

/**
 * The argument paths a policy's conditions name (`context.args.amount` and `context.args has
 * amount` both give `amount`; `context.args.price.net` gives `price.net`), sorted. Best effort:
 * what the approval question highlights, never what a decision depends on.
 */
export function argumentPaths(policy: PolicyJson): string[] {
  const found = new Set<string>();
  const pathOf = (expr: Expr): string[] | undefined => {
    const node = op(expr);
    if (!node || (node[0] !== '.' && node[0] !== 'has') || !isPlainObject(node[1])) return undefined;
    const { left, attr } = node[1];
    if (typeof attr !== 'string') return undefined;
    if (isContextVar(left)) return attr === 'args' ? [] : undefined;
    const base = pathOf(left);
    return base === undefined ? undefined : [...base, attr];
  };
  const visit = (expr: Expr): void => {
    if (Array.isArray(expr)) return expr.forEach(visit);
    if (!isPlainObject(expr)) return;
    const path = pathOf(expr);
    if (path !== undefined && path.length > 0) found.add(path.join('.'));
    for (const value of Object.values(expr)) visit(value);
  };
  for (const condition of policy.conditions) visit(condition.body);
  // Keep the longest paths: `price.net` makes `price` redundant.
  return [...found].filter((p) => ![...found].some((q) => q.startsWith(p + '.'))).sort();
}

/** True when any of the policy's conditions reads the arguments. */
export function policyReadsArguments(policy: PolicyJson): boolean {
  return policy.conditions.some((c) => readsArguments(c.body));
}

/**
 * The policy with its conditions replaced by their may- or must-bound, as a `permit` (the probe
 * set only asks which policies apply, so every probe policy is a permit: Cedar then names all of
 * the satisfied ones). `unless c` holds when c does not, so its bound runs the other way.
 */
export function probePolicy(policy: PolicyJson, upper: boolean): PolicyJson {
  const probe: PolicyJson = {
    effect: 'permit',
    principal: policy.principal,
    action: policy.action,
    resource: policy.resource,
    conditions: policy.conditions.map((c) => ({ kind: c.kind, body: bound(c.body, c.kind === 'when' ? upper : !upper) })),
  };
  return probe;
}

export const PROBE_MAY = 'may:';
export const PROBE_MUST = 'must:';

/** The probe policy set: for each policy, its may-bound and its must-bound. */
export function probeSet(policies: ReadonlyMap<string, PolicyJson>): Record<string, PolicyJson> {
  const out: Record<string, PolicyJson> = {};
  for (const [id, policy] of policies) {
    out[PROBE_MAY + id] = probePolicy(policy, true);
    out[PROBE_MUST + id] = probePolicy(policy, false);
  }
  return out;
}
