/**
 * One call, one chain. Every governed request (tools/call, resources/read, prompts/get) passes
 * through the same interceptors, in the order they are listed where the chain is built
 * (see core/gateway.ts). A stage either calls `next` or returns a denial; it never throws to say no.
 */
import type { DenyCode, Stage } from '../common/errors.js';
import type { ApprovalReason } from './governance.js';
import type { AuditRecord, LogMessage, McpLogLevel } from './ports.js';
import type { Principal } from './principal.js';

export type CallKind = 'tool' | 'resource' | 'prompt';

export interface CallContext {
  /** Aborted when the client cancels or disconnects, or the request times out. */
  signal: AbortSignal;
  /**
   * Aborted when nobody can hear the answer any more (the HTTP request's connection closed before
   * its response). Not a cancellation: a call already sent goes on (the spec says a dropped
   * connection does not cancel); only a question to the person about it is withdrawn.
   */
  gone?: AbortSignal;
  /** Present when the client asked for progress; forwards upstream progress to it. */
  onProgress?: (progress: { progress: number; total?: number; message?: string }) => void;
  /** Relays an MCP log message the server sent while this call was its only one in flight. */
  log?: (message: LogMessage, server: string) => void;
  /** The least severe log level the caller wants to hear; asked of the server with the call. */
  logLevel?: McpLogLevel;
  /** Sends a server-to-client request (elicitation, sampling, roots) to the session that made this call. */
  sendRequest?: (method: string, params: Record<string, unknown> | undefined, signal: AbortSignal) => Promise<Record<string, unknown>>;
}

/** A governed request as the chain sees it; `name` is the server's own name for the item. */
export interface GovernedCall {
  id: string;
  kind: CallKind;
  server: string;
  /** Tool or prompt name, or resource URI. */
  name: string;
  /** Tool or prompt arguments; absent for resources. For a completion: the `argument` being typed and its `context`. */
  arguments?: Record<string, unknown>;
  /**
   * `complete`: a `completion/complete` for this prompt or resource template, governed like a call
   * (audited, identity-checked, rate-limited) but decided as the item's visibility is.
   */
  operation?: 'complete';
  /** Extra request params (such as `_meta`) passed upstream unchanged. */
  meta?: Record<string, unknown>;
  principal: Principal;
  context: CallContext;
  /** Facts stages add for the ones after them and for the audit record. */
  facts: CallFacts;
}

export interface CallFacts {
  policyMode?: 'unmanaged' | 'managed';
  policyVersion?: string;
  policyIds?: string[];
  /** Quotas the permits that allowed the call name with `@quota` (the quota stage counts it against them). */
  quotaNames?: string[];
  /** Why the call needs a person's approval (the policy's `@approval`, a quota past its threshold); the approval stage asks. */
  approvalNeeded?: ApprovalReason[];
  /** Quota and rate-limit facts for the outcome record. */
  quota?: AuditRecord['quota'];
  /** What the approval stage decided, for the outcome record. */
  approval?: AuditRecord['approval'];
  /** Whose sign-in at a remote server the call used, for the outcome record. */
  upstream?: AuditRecord['upstream'];
}

export type Outcome =
  | { kind: 'ok'; result: Record<string, unknown> }
  /** `data` goes into the JSON-RPC error's data beside the code (such as `retryAfterMs` for a rate limit). */
  | { kind: 'denied'; stage: Stage; code: DenyCode; reason: string; data?: Record<string, unknown> }
  /** `rpcCode` keeps the JSON-RPC error code an upstream answered with, so the client sees the server's own error. */
  | { kind: 'failed'; stage: Stage; error: string; rpcCode?: number };

export type Handler = (call: GovernedCall) => Promise<Outcome>;
export type Interceptor = (next: Handler) => Handler;

/** `chain(a, b, c)(last)` runs a, then b, then c, then last. */
export const chain =
  (...stages: Interceptor[]) =>
  (last: Handler): Handler =>
    stages.reduceRight<Handler>((next, stage) => stage(next), last);

export function denied(stage: Stage, code: DenyCode, reason: string, data?: Record<string, unknown>): Outcome {
  return data === undefined ? { kind: 'denied', stage, code, reason } : { kind: 'denied', stage, code, reason, data };
}

/** Who made a call and what it names, as every audit record about the call carries it (without its call id). */
export function callerOf(call: GovernedCall): Pick<AuditRecord, 'user' | 'client' | 'clientVerified' | 'server' | 'kind' | 'name'> {
  return {
    user: call.principal.user.id,
    client: call.principal.client.name,
    clientVerified: call.principal.client.verified,
    server: call.server,
    kind: call.kind,
    name: call.name,
  };
}
