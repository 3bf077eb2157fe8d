/**
 * The governance stages, one factory each. `core/gateway.ts` wires them in order; each stage's
 * comment there says why it stands where it stands.
 */
import { errorMessage, isSignInRequired } from '../common/errors.js';
import { callerOf, denied, type GovernedCall, type Interceptor, type Outcome } from './chain.js';
import { digest, shapeOf } from './digest.js';
import type { ApprovalPort, IdentityPort, PolicyDecision, PolicyPort, QuotaPort } from './governance.js';
import { LOG_LEVEL_META_KEY, type AuditSink, type Clock, type ForwardOptions, type UpstreamConnection } from './ports.js';

/** Writes an attempt record before anything else runs and an outcome record on every exit path. */
export function auditStage(audit: AuditSink, clock: Clock): Interceptor {
  return (next) => async (call) => {
    const started = clock.now();
    const base = {
      callId: call.id,
      ...callerOf(call),
      ...(call.operation ? { detail: { operation: call.operation } } : {}),
    };
    audit.append({
      type: 'call.attempt',
      at: new Date(started).toISOString(),
      ...base,
      argsShape: call.arguments === undefined ? undefined : shapeOf(call.arguments),
      argsDigest: call.arguments === undefined ? undefined : digest(call.arguments),
    });
    // The attempt is committed before anything runs, so a crash mid-call still leaves it.
    await audit.durable?.();
    let outcome: Outcome;
    try {
      outcome = await next(call);
    } catch (error) {
      // A bug anywhere in the chain fails the call closed; it never lets it through.
      outcome = { kind: 'failed', stage: 'audit', error: `internal error: ${errorMessage(error)}` };
    }
    const ended = clock.now();
    audit.append({
      type: 'call.outcome',
      at: new Date(ended).toISOString(),
      ...base,
      policyMode: call.facts.policyMode,
      policyVersion: call.facts.policyVersion,
      policyIds: call.facts.policyIds,
      decision: outcome.kind === 'ok' ? (outcome.result.isError === true ? 'error' : 'ok') : outcome.kind,
      stage: outcome.kind === 'ok' ? undefined : outcome.stage,
      code: outcome.kind === 'denied' ? outcome.code : undefined,
      reason: outcome.kind === 'denied' ? outcome.reason : outcome.kind === 'failed' ? outcome.error : undefined,
      latencyMs: ended - started,
      resultDigest: outcome.kind === 'ok' ? digest(outcome.result) : undefined,
      resultShape: outcome.kind === 'ok' ? shapeOf(outcome.result) : undefined,
      quota: call.facts.quota,
      approval: call.facts.approval,
      upstream: call.facts.upstream,
    });
    // The outcome is committed before the caller hears it: every answered call is on record.
    await audit.durable?.();
    return outcome;
  };
}

export function identityStage(identity: IdentityPort): Interceptor {
  return (next) => async (call) => {
    const admission = identity.verify(call.principal);
    if (!admission.ok) return denied('identity', admission.code, admission.reason);
    return next(call);
  };
}

export function policyStage(policy: PolicyPort): Interceptor {
  return (next) => async (call) => {
    call.facts.policyMode = policy.mode;
    call.facts.policyVersion = policy.version;
    const decision = call.operation === 'complete' ? completionDecision(policy, call) : policy.decide(call);
    call.facts.policyIds = decision.policyIds;
    if (!decision.allow) return denied('policy', decision.code ?? 'policy_denied', decision.reason);
    // Obligations ride on the decision: the quota stage counts what `@quota` names, the approval stage asks what `@approval` asks.
    const obligations = decision.obligations;
    if (obligations?.quotas) call.facts.quotaNames = obligations.quotas;
    if (obligations?.approval) (call.facts.approvalNeeded ??= []).push({ kind: 'policy', ...obligations.approval });
    if (obligations?.ask) (call.facts.approvalNeeded ??= []).push({ kind: 'local', rules: obligations.ask.rules });
    return next(call);
  };
}

/**
 * A completion carries the text being typed, not the item's arguments: it is decided as the item's
 * visibility is (the answer that lists it), and carries no obligation (nobody is asked about
 * autocompletion, and it counts against no quota of the bundle; `withCompletionLimit` bounds its rate).
 */
function completionDecision(policy: PolicyPort, call: GovernedCall): PolicyDecision {
  if (policy.visible(call.principal, call.server, call.kind, call.name)) {
    return { allow: true, reason: `completion for a ${call.kind} this caller may use`, policyIds: [] };
  }
  return { allow: false, code: 'policy_denied', reason: `${call.server}__${call.name} is not available to this caller`, policyIds: [] };
}

/**
 * Rate limits and quotas, checked and spent all or nothing. What a call reserved is given back when
 * a later stage refuses it (a person said no, the request was withdrawn or timed out, the server was
 * not ready): such a call never reached its server. A call that reached it keeps what it spent,
 * whatever the server answered, because the write may have happened.
 */
export function quotaStage(quota: QuotaPort): Interceptor {
  return (next) => async (call) => {
    const admission = await quota.admit(call);
    if (!admission.ok) return denied('quota', admission.code, admission.reason, admission.data);
    if (!('release' in admission || 'approvals' in admission)) return next(call);
    if (admission.approvals?.length) (call.facts.approvalNeeded ??= []).push(...admission.approvals);
    const release = admission.release;
    if (!release) return next(call);
    let spent = false;
    try {
      const outcome = await next(call);
      spent = outcome.kind !== 'denied';
      return outcome;
    } finally {
      if (!spent) release();
    }
  };
}

export function approvalStage(approval: ApprovalPort): Interceptor {
  return (next) => async (call) => {
    // A caller that went away will never hear the answer: its question is withdrawn, not left to its deadline.
    // Only a call that asks a person waits long enough for that to matter: the rest (almost every call) build no combined signal.
    // `gone` is read only then: over HTTP the caller's signal is made when first asked for (http-session.ts).
    const { signal } = call.context;
    const gone = (call.facts.approvalNeeded?.length ?? 0) > 0 ? call.context.gone : undefined;
    const admission = await approval.review(call, gone !== undefined ? AbortSignal.any([signal, gone]) : signal);
    if (!admission.ok) return denied('approval', admission.code, admission.reason, admission.data);
    return next(call);
  };
}

const METHOD: Record<GovernedCall['kind'], string> = { tool: 'tools/call', resource: 'resources/read', prompt: 'prompts/get' };

/**
 * The only holder of upstream connections: forwards the call and turns upstream errors into clean outcomes.
 * Once `stop` is aborted (Gatehouse is stopping), nothing more is sent, and a call in flight is
 * cancelled upstream; both are answered with the signal's reason, as a server that is unavailable.
 */
export function upstreamHandler(connectionOf: (server: string) => { connection: UpstreamConnection; timeoutMs: number } | undefined, stop?: AbortSignal) {
  const stopped = (call: GovernedCall, sent: boolean): Outcome =>
    denied(
      'upstream',
      'server_unavailable',
      `${errorMessage(stop!.reason)}: ${sent ? `the call was cancelled before "${call.server}" answered` : `the call was not sent to "${call.server}"`}`,
    );
  return async (call: GovernedCall): Promise<Outcome> => {
    if (stop?.aborted) return stopped(call, false);
    const target = connectionOf(call.server);
    if (!target) return denied('upstream', 'server_unavailable', `server "${call.server}" is not ready`);
    const completing = call.operation === 'complete';
    // A server that does not offer completions is not asked (clients must not); the caller gets none, as the server would give.
    if (completing && !target.connection.capabilities.completions) return { kind: 'ok', result: { completion: { values: [], hasMore: false } } };
    const params: Record<string, unknown> = completing
      ? { ref: call.kind === 'prompt' ? { type: 'ref/prompt', name: call.name } : { type: 'ref/resource', uri: call.name }, ...call.arguments }
      : call.kind === 'resource'
        ? { uri: call.name }
        : { name: call.name, ...(call.arguments !== undefined ? { arguments: call.arguments } : {}) };
    if (call.meta) params._meta = call.meta;
    // A 2026-07-28 server sends log messages for a request only when the request asks for them.
    if (call.context.logLevel) params._meta = { ...(params._meta as Record<string, unknown> | undefined), [LOG_LEVEL_META_KEY]: call.context.logLevel };
    const options: ForwardOptions = { signal: call.context.signal, timeoutMs: target.timeoutMs };
    if (stop) options.stop = stop;
    if (call.context.onProgress) options.onProgress = call.context.onProgress;
    // Whose sign-in the request carries goes on record; the token itself never enters call state.
    const identity = target.connection.upstreamIdentity?.();
    if (identity) call.facts.upstream = identity;
    try {
      const result = await target.connection.request(completing ? 'completion/complete' : METHOD[call.kind], params, options);
      return { kind: 'ok', result };
    } catch (error) {
      if (stop?.aborted) return stopped(call, true);
      // The server wants the user to sign in (again, or with more scopes): a denial naming the command, not a failure.
      if (isSignInRequired(error)) return denied('upstream', 'sign_in_required', error.message);
      const rpcCode = upstreamErrorCode(error);
      return { kind: 'failed', stage: 'upstream', error: upstreamErrorMessage(error), ...(rpcCode !== undefined ? { rpcCode } : {}) };
    }
  };
}

/**
 * The upstream's own message, without the layers of prefixes SDKs add on the way
 * (`MCP error -32602: MCP error -32602: ...`).
 */
export function upstreamErrorMessage(error: unknown): string {
  let message = errorMessage(error);
  for (;;) {
    const stripped = message.replace(/^(?:MCP error -?\d+:\s*|McpError:\s*|Error:\s*)/, '');
    if (stripped === message) break;
    message = stripped;
  }
  return message;
}

/** The upstream's JSON-RPC error code, when it answered with one. */
export function upstreamErrorCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' && Number.isInteger(code) ? code : undefined;
}
