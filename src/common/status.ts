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
  policy: { mode: 'unmanaged' | 'managed'; version?: string };
  configFile: string;
  socketPath: string;
  httpUrl?: string;
  servers: ServerStatus[];
  clients: ClientStatus[];
  audit: { file: string; records: number };
}
