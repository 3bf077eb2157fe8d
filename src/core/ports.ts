/**
 * What the core needs from the outside world, and never how. Adapters live in src/node;
 * tests pass fakes that honour the same contracts.
 */
import type { AuditEventType } from '../common/audit-events.js';
import type { ServerConfig } from '../common/config.js';
import type { ConfinementStatus } from '../common/sandbox.js';

/** Time and timers, so that backoff and health checks run on a fake clock in unit tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}
export interface TimerHandle {
  unref?(): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Structured log lines for the daemon's own log (not the servers' stderr). */
export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

/** MCP items as a server lists them. Only the fields Gatehouse reads are typed; the rest pass through. */
export interface McpItem {
  [key: string]: unknown;
}
export interface ToolItem extends McpItem {
  name: string;
}
export interface PromptItem extends McpItem {
  name: string;
}
export interface ResourceItem extends McpItem {
  uri: string;
  name: string;
}
export interface ResourceTemplateItem extends McpItem {
  uriTemplate: string;
  name: string;
}

export interface UpstreamLists {
  tools: ToolItem[];
  resources: ResourceItem[];
  resourceTemplates: ResourceTemplateItem[];
  prompts: PromptItem[];
}

export type ListKind = 'tools' | 'resources' | 'prompts';

/** MCP log levels, least to most severe (RFC 5424 names). */
export const MCP_LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type McpLogLevel = (typeof MCP_LOG_LEVELS)[number];

/** Where a 2026-07-28 request names the log level its caller wants. */
export const LOG_LEVEL_META_KEY = 'io.modelcontextprotocol/logLevel';

/** The params of an MCP `notifications/message`. */
export interface LogMessage {
  level: McpLogLevel;
  logger?: string;
  data: unknown;
}

export interface ForwardOptions {
  signal: AbortSignal;
  /**
   * Aborted when Gatehouse stops: the request is cancelled upstream at once, as for `signal`, rather
   * than left to run after its caller's connection is gone.
   */
  stop?: AbortSignal;
  timeoutMs: number;
  onProgress?: (progress: { progress: number; total?: number; message?: string }) => void;
}

export interface UpstreamExit {
  /** Why the connection ended, for a person to read. */
  reason: string;
  /** True when the server ended cleanly (exit code 0, or closed by Gatehouse). */
  clean: boolean;
  /** The remote server refused the user's sign-in (revoked, expired beyond renewal): wait for a new sign-in rather than retrying. */
  signIn?: boolean;
}

/** Who a remote server knows the user as, for the audit log: the authorization server and the subject it named. Never a token. */
export interface UpstreamIdentity {
  issuer: string;
  subject?: string;
}

/** A live MCP connection to one configured server. */
export interface UpstreamConnection {
  readonly protocolVersion: string | undefined;
  readonly serverInfo: { name: string; version: string } | undefined;
  readonly capabilities: Record<string, unknown>;
  readonly instructions: string | undefined;
  readonly pid: number | undefined;
  /** How a stdio server was started (confined by its sandbox profile, or unconfined and why); absent for remote servers. */
  readonly confinement?: ConfinementStatus | undefined;
  /** Every page of every list the server's capabilities offer. */
  listAll(signal: AbortSignal): Promise<UpstreamLists>;
  /** Forwards one request (`tools/call`, `resources/read`, `prompts/get`, `completion/complete`, ...). */
  request(method: string, params: Record<string, unknown>, options: ForwardOptions): Promise<Record<string, unknown>>;
  /** Health check: MCP ping, or the era's equivalent. */
  ping(timeoutMs: number): Promise<void>;
  /** Graceful close (for a child: close stdin, SIGTERM, SIGKILL after the grace period). */
  close(): Promise<void>;
  /** For a remote server the user signed in to: whose sign-in the requests carry now. */
  upstreamIdentity?(): UpstreamIdentity | undefined;
  /** Settles once, when the connection has ended for any reason. */
  readonly exited: Promise<UpstreamExit>;
}

/** What a connection reports back while it lives. */
export interface UpstreamEvents {
  listChanged(kind: ListKind): void;
  resourceUpdated(uri: string): void;
  /** A server-to-client request (elicitation, sampling, roots); the supervisor routes it to the calling session. */
  serverRequest(method: string, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** One line the server wrote to stderr (already length-capped). */
  stderr(line: string): void;
  /** An MCP log message (`notifications/message`) the server sent. */
  log?(message: LogMessage): void;
}

export interface UpstreamConnector {
  connect(name: string, config: ServerConfig, events: UpstreamEvents, signal: AbortSignal): Promise<UpstreamConnection>;
}

/** Where each server's stderr is kept on disk (rotating files). */
export interface ServerLogSink {
  open(server: string): { write(line: string): void; close(): void };
}

/**
 * The local record of every call and its outcome, and of the events around them. `append` is
 * synchronous and throws when the store cannot record (the audit stage then refuses the call);
 * `durable`, where the store has it, settles once everything appended so far is committed, and
 * rejects when it cannot be (see docs/audit.md for what "committed" survives).
 */
export interface AuditSink {
  append(record: AuditRecord): void;
  durable?(): Promise<void>;
}

export { AUDIT_EVENT_TYPES, type AuditEventType } from '../common/audit-events.js';

export interface AuditRecord {
  type: AuditEventType;
  at: string;
  /** Joins a call's attempt and outcome. */
  callId?: string;
  user?: string;
  client?: string;
  clientVerified?: boolean;
  server?: string;
  kind?: 'tool' | 'resource' | 'prompt';
  name?: string;
  policyMode?: 'unmanaged' | 'managed';
  policyVersion?: string;
  /** The policies that made the decision. */
  policyIds?: string[];
  /** `interrupted`: the daemon died with the call in flight; the next start records it so. */
  decision?: 'allowed' | 'denied' | 'failed' | 'ok' | 'error' | 'interrupted';
  stage?: string;
  code?: string;
  reason?: string;
  latencyMs?: number;
  /** Shape and digest only, never values. */
  argsShape?: unknown;
  argsDigest?: string;
  resultDigest?: string;
  resultShape?: unknown;
  /** Argument values, only where policy asks for them, with secrets already redacted. */
  argsValues?: unknown;
  /** What the approval stage decided (who, how, when), where one was asked. */
  approval?: { required: boolean; decision?: 'approved' | 'denied' | 'timeout' | 'withdrawn'; by?: string; scope?: 'once' | 'session'; at?: string };
  /** Quota and rate-limit facts (which bucket, what is left). */
  quota?: { bucket?: string; remaining?: number; limit?: number };
  /** The user's identity at a remote server the call went to (its authorization server and subject), never the token. */
  upstream?: UpstreamIdentity;
  detail?: Record<string, unknown>;
}
