/**
 * What the daemon reports about itself: the shape of `gatehouse status --json` and of the
 * control API's `status` answer (the console reads the same).
 */

import type { ConfinementStatus } from './sandbox.js';
import type { InstallStatus, QuarantinedTool, ShadowServer } from './catalog.js';

/**
 * `needs-sign-in`: a remote server that wants the user to sign in (OAuth) before it answers; it waits
 * for `gatehouse servers login NAME` (or the console's Sign in) instead of retrying.
 */
export const SERVER_STATES = ['stopped', 'starting', 'ready', 'backing-off', 'crash-looping', 'needs-sign-in'] as const;
export type ServerState = (typeof SERVER_STATES)[number];

/**
 * The user's sign-in to a remote server (docs/remote-servers.md): whether Gatehouse holds a token
 * for them, who the server knows them as, and until when. Never the token itself.
 */
export interface UpstreamAuthStatus {
  /** `signed-in`: a token is held; `signing-in`: a sign-in waits for the person; `needs-sign-in`: none is held (or it was revoked). */
  state: 'signed-in' | 'signing-in' | 'needs-sign-in';
  /** How the token was obtained: the person in a browser, or the organisation's sign-in exchanged for it (ID-JAG). */
  via?: 'browser' | 'enterprise';
  /** The authorization server that issued it. */
  issuer?: string;
  /** Who the authorization server says the user is there, when it said. */
  subject?: string;
  /** The scopes granted. */
  scopes?: string[];
  /** When the access token expires (it is renewed before then where a refresh token allows). */
  expiresAt?: string;
  /** How the client is known to the authorization server: pre-registered, a Client ID Metadata Document, or registered dynamically. */
  registration?: 'pre-registered' | 'metadata-document' | 'dynamic';
  /** What to run to sign in: `gatehouse servers login NAME`. */
  command: string;
  /** Why the last sign-in or renewal failed, for a person to read. */
  reason?: string;
  /** How the latest sign-in in the browser ended (`gatehouse servers login` waits for it). */
  lastSignIn?: { at: string; ok: boolean; reason?: string };
}

export interface ServerStatus {
  name: string;
  type: 'stdio' | 'http';
  enabled: boolean;
  state: ServerState;
  /** Restarts since the daemon started. */
  restarts: number;
  /** Why the server last left `ready`, or why it is not ready. */
  lastError?: string;
  /** When the next restart attempt is due (ISO time), while backing off or crash-looping. */
  nextAttemptAt?: string;
  pid?: number;
  /** Protocol version negotiated with the server. */
  protocolVersion?: string;
  serverInfo?: { name: string; version: string };
  counts: { tools: number; resources: number; resourceTemplates: number; prompts: number };
  readySince?: string;
  /** How a stdio server is confined (docs/sandbox.md): while it runs, as started; otherwise as it would be started. */
  confinement?: ConfinementStatus;
  /** A remote server the user signs in to: the state of that sign-in. */
  auth?: UpstreamAuthStatus;
}

export interface ClientStatus {
  id: string;
  name: string;
  transport: 'socket' | 'http';
  verified: boolean;
  /** A bridge waiting for the person to pair it (it sees nothing meanwhile), or refused. */
  pairing?: 'pending' | 'refused';
  protocolVersion?: string;
  /** `search` when the session has the search view (find_tools, call_tool); absent for the aggregate or one server. */
  view?: 'search';
  connectedAt: string;
  /** When the session last made a call. */
  lastCallAt?: string;
  calls: number;
}

export interface DaemonStatus {
  version: string;
  pid: number;
  startedAt: string;
  user: string;
  /** `unmanaged`: no policy bundle; the OS user is the principal and may call everything. */
  policy: PolicyStatus;
  configFile: string;
  socketPath: string;
  /** The loopback HTTP listener's origin (`http://127.0.0.1:PORT`); MCP is at `mcpUrl`. */
  httpUrl?: string;
  /** The Streamable HTTP MCP endpoint (`http://127.0.0.1:PORT/mcp`; one server alone at `…/mcp/NAME`). */
  mcpUrl?: string;
  servers: ServerStatus[];
  clients: ClientStatus[];
  audit: AuditStatus;
  /** Who calls are made as: the OS user, or the signed-in user and the state of their session. */
  identity?: IdentityStatus;
  /** Where credentials, keys and secrets are kept: the OS keychain, or the user-only file store (and why). */
  keystore?: KeyStoreStatusReport;
  /** Questions waiting for the person in the human channel (pairing requests and approvals). */
  pendingQuestions?: number;
  /** Where the person is asked, and what a process of theirs could still do to the answers here. */
  humanChannel?: HumanChannelStatus;
  /** Calls waiting for a person's approval (managed policy). Nothing that reads this can answer them. */
  approvals?: ApprovalsStatus;
  /** Rate limits and write quotas of the policy bundle in force, with what the current user has used. */
  quotas?: QuotasStatus;
  /** Servers installed from verified packages (docs/catalog.md): their version, and why one does not run. */
  installs?: InstallStatus[];
  /** Tools hidden because their definition differs from the catalogue's pin, until a bundle pins it. */
  quarantined?: QuarantinedTool[];
  /** MCP servers the person's clients run themselves, outside Gatehouse. */
  shadowServers?: ShadowServer[];
  /** Traces and metrics to an OpenTelemetry collector (docs/telemetry.md). */
  telemetry?: TelemetryStatus;
  /** The daemon process's memory, in MB: what a load left behind shows here. */
  memory?: MemoryStatus;
}

export interface MemoryStatus {
  rssMb: number;
  /** V8's heap as committed: what it keeps resident, garbage and the empty young generation included. */
  heapTotalMb: number;
  heapUsedMb: number;
  /** V8's nursery of short-lived objects (both halves); kept at its starting size by the CLI and the desktop app (src/node/heap.ts). */
  youngGenerationMb: number;
  /** HTTP connections open now, and how many were closed to stay under `listen.http.maxConnections`. */
  httpConnections?: { open: number; evicted: number };
}

export interface HumanChannelStatus {
  /** Where questions are shown and answered: `desktop app`, `terminal` (by key), `question page`. Empty: nobody can be asked. */
  surfaces: string[];
  /** Doors this machine leaves open to a same-user process (SECURITY.md, "The human channel"), with what closes each. */
  doors: { id: string; risk: string; fix: string }[];
}

/** Calls waiting for the person's answer, oldest first, and the session-wide approvals in force. */
export interface ApprovalsStatus {
  pending: PendingApprovalStatus[];
  /** How long a request waits for an answer before it is refused. */
  timeoutSeconds: number;
  /** "Allow for this session" answers still in force (their sessions are open). */
  sessionGrants: number;
}

export interface PendingApprovalStatus {
  id: string;
  user: string;
  client: string;
  server: string;
  /** Tool (or prompt, or resource URI) as the server names it. */
  name: string;
  /** Why approval is needed: "policy support-refund-large", "quota writes-per-day (41 of 50)". */
  reasons: string[];
  askedAt: string;
  deadline: string;
}

export interface QuotasStatus {
  /** The bundle version the settings come from. */
  version?: string;
  rateLimits: RateLimitStatus[];
  quotas: QuotaStatus[];
}

export interface RateLimitStatus {
  id: string;
  /** "60 calls per minute" */
  rate: string;
  burst: number;
  /** "user, client and tool" */
  per: string;
  tools: string;
  /** Keys of the current user that are refused right now, and when they admit a call again. */
  limited: { scope: string; retryAt: string }[];
}

export interface QuotaStatus {
  id: string;
  window: 'day' | 'session';
  per: string;
  tools: string;
  limit: number;
  approvalAfter?: number;
  /** One entry per counter of the current user in use now (today, or a live session). */
  usage: QuotaUsage[];
}

export interface QuotaUsage {
  /** What the counter counts: "user sam@example.com", "client ide, session since 10:02". */
  scope: string;
  used: number;
  /** Calls left before the cap. */
  remaining: number;
  /** Calls left before each further call needs approval (0 when past the threshold). */
  beforeApproval?: number;
  /** When a day window starts again. */
  resetsAt?: string;
}

/** The user's sign-in (`gatehouse status`, `gatehouse whoami`). */
export interface IdentityStatus {
  /** `os`: no identity provider is configured; calls are made as the OS user. */
  mode: 'os' | 'oidc';
  state: 'local' | 'starting' | 'signed-out' | 'active' | 'expired' | 'unavailable' | 'misconfigured';
  issuer?: string;
  /** Where the identity provider was configured: the managed location or the user's config. */
  settingsSource?: 'managed' | 'user';
  user?: string;
  userId?: string;
  groups?: string[];
  /** The roles the managed policy in force gives these groups (absent when no bundle is in force). */
  roles?: string[];
  accessTokenExpiresAt?: string;
  lastRefreshAt?: string;
  reason?: string;
  /** What the user must do before calls are admitted. */
  notice?: string;
}

/** The local audit log, its signing key and its sync to the hub (`gatehouse status`). */
export interface AuditStatus {
  file: string;
  /** Last sequence number appended. */
  records: number;
  device?: string;
  committed?: number;
  /** False while the log cannot be written: calls are refused until it can. */
  healthy?: boolean;
  error?: string;
  unavailableSince?: string;
  signing?: { state: 'ok' | 'pending' | 'unavailable'; keyId?: string; error?: string };
  lastCheckpoint?: { seq: number; at: string };
  hubAcked?: number;
  prunedThrough?: number;
  /** Present when the device is enrolled with a hub and its key is available. */
  sync?: AuditSyncStatus;
  /** Why the device does not sync although a hub is configured. */
  hubError?: string;
}

export interface AuditSyncStatus {
  hub: string;
  device: string;
  state: 'starting' | 'idle' | 'sending' | 'backing-off' | 'refused' | 'stopped';
  acked: number;
  head: number;
  /** Events the hub does not hold yet, and the age of the oldest of them. */
  lagRecords: number;
  lagSeconds: number;
  lastSyncAt?: string;
  lastError?: string;
  nextAttemptAt?: string;
  flags?: { kind: string; seq: number; message: string }[];
}

/** The policy in force (`gatehouse status`): managed or not, which bundle, and why nothing is allowed when failing closed. */
export interface PolicyStatus {
  mode: 'unmanaged' | 'managed';
  version?: string;
  /** `fail-closed`: managed, but no valid bundle is in force; nothing is listed or callable (`reason` says why). */
  state?: 'unmanaged' | 'enforcing' | 'fail-closed';
  reason?: string;
  /** From the managed settings: whether a bundle is required. */
  required?: boolean;
  /** Where the managed settings are read from. */
  managedDir?: string;
  /** Where the bundle in force came from. */
  source?: string;
  issuedAt?: string;
  expiresAt?: string;
  /** Key ids whose signatures on the bundle in force verified. */
  signedBy?: string[];
  url?: string;
  lastFetch?: { at: string; ok: boolean; error?: string };
  /** The last bundle (or settings file) refused, and why. */
  lastRejection?: { at: string; source: string; code: string; reason: string };
  /** Something the user must do before the policy lets them act, such as signing in. */
  notice?: string;
}

/** Where the key store keeps items (src/core/keystore/keystore.ts). */
export interface KeyStoreStatusReport {
  /** Where Gatehouse's own items go now. */
  backend: 'keychain' | 'file' | 'none' | 'memory';
  /** "the OS keychain (Secret Service …)", "the file store in /…/keys (no OS keychain: …)". */
  description: string;
  location: string;
  /** Why not the keychain, when it is not. */
  reason?: string;
  fileStore: 'allowed' | 'forbidden';
  userSecretsInFile: boolean;
  /** Where the user's secrets go now (they may differ: the file store needs an opt-in). */
  userSecrets: 'keychain' | 'file' | 'none' | 'memory';
}

/** Whether telemetry is sent, where, and why not. Header names only: never a value. */
export interface TelemetryStatus {
  enabled: boolean;
  /** Why nothing is sent (not configured, turned off by the managed settings, a missing secret). */
  reason?: string;
  endpoint?: string;
  source?: 'config' | 'managed';
  sampling?: number;
  headers?: string[];
}
