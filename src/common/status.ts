/**
 * What the daemon reports about itself: the shape of `gatehouse status --json` and of the
 * control API's `status` answer (the console reads the same).
 */

export const SERVER_STATES = ['stopped', 'starting', 'ready', 'backing-off', 'crash-looping'] as const;
export type ServerState = (typeof SERVER_STATES)[number];

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
}

export interface ClientStatus {
  id: string;
  name: string;
  transport: 'socket' | 'http';
  verified: boolean;
  protocolVersion?: string;
  connectedAt: string;
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
  httpUrl?: string;
  servers: ServerStatus[];
  clients: ClientStatus[];
  audit: AuditStatus;
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
