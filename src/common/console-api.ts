/**
 * The console's side of the control contract: which control methods the console may call, what
 * each returns, the events it is pushed, and the names of the Electron IPC channels that carry
 * them. Requests are the schemas of control-api.ts, parsed by whoever receives them (the daemon's
 * control socket, the headless console server, Electron's main process).
 *
 * The renderer imports this module and control-api.ts only; the preload imports the channel names.
 */
import { z } from 'zod';
import type { WaitingQuestion } from './questions.js';
import type { CatalogEntryInfo, CatalogListing, InstallResult, ShadowServer } from './catalog.js';
export type { QuestionAnswer, WaitingQuestion } from './questions.js';
import type { CLIENT_APP_IDS, ReloadReport } from './control-api.js';
import type { DaemonStatus, IdentityStatus, PolicyStatus, ServerStatus } from './status.js';

// The method list and the channel names live in a module without zod (the preload bundles it).
export * from './console-channels.js';
import type { ConsoleMethod } from './console-channels.js';

/** What the preload puts on `window.gatehouse`: one function per console method, and the event feed. */
export type ConsoleBridge = {
  [M in ConsoleMethod]: (params?: unknown) => Promise<BridgeResult>;
} & {
  /** Subscribes to console events; returns the unsubscribe function. */
  onEvent(listener: (event: ConsoleEvent) => void): () => void;
  /** The human channel, in the desktop app only (the console served on loopback has none). */
  human: {
    /** A question window: its own question (`WaitingQuestion`). */
    question(): Promise<BridgeResult>;
    /** A question window: its answer (`QuestionAnswer`). */
    answer(answer: unknown): Promise<BridgeResult>;
    /** The console window: the questions waiting (`WaitingQuestion[]`). */
    inbox(): Promise<BridgeResult>;
    /** The console window: an answer to one of them. */
    answerOne(id: string, answer: unknown): Promise<BridgeResult>;
  };
  app: {
    settings(): Promise<BridgeResult>;
    setSettings(settings: unknown): Promise<BridgeResult>;
  };
};

/** An IPC answer: IPC turns thrown errors into strings, so failures travel as values. */
export type BridgeResult = { ok: true; result: unknown } | { ok: false; error: ConsoleError };

export interface ConsoleError {
  code: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// Events

/**
 * What a `changed` event names: the parts of the daemon's state a screen shows. A screen refetches
 * when one of the topics it reads from changed, whoever changed it (the console, the CLI, a file,
 * an IDE connecting, the daemon itself).
 */
export const CHANGE_TOPICS = ['servers', 'tools', 'clients', 'secrets', 'audit', 'policy', 'identity', 'questions'] as const;
export type ChangeTopic = (typeof CHANGE_TOPICS)[number];

export type ConsoleEvent =
  /** The daemon's status changed (servers, clients, identity, policy, audit head). */
  | { type: 'status'; status: DaemonStatus }
  /** Something screens show changed: they refetch what they read of these topics. Pushed with the status that goes with it. */
  | { type: 'changed'; topics: ChangeTopic[] }
  /** A line a server wrote to stderr (already scrubbed of known secret values). */
  | { type: 'log'; server: string; line: string }
  /** A sign-in started from the console: waiting for the person at the identity provider, done, or failed (and why). */
  | { type: 'sign-in'; state: 'waiting' | 'signed-in' | 'failed'; message?: string }
  /** The connection to the daemon: headless, the WebSocket was lost or came back. */
  | { type: 'connection'; state: 'open' | 'closed'; reason?: string };

// ---------------------------------------------------------------------------------------------
// Results

export interface ServerEntry {
  name: string;
  /** `config`: the user's config file; `catalog`: the managed policy bundle's catalog. */
  source: 'config' | 'catalog';
  /** Under supervision now (unmanaged: every configured server; managed: catalog servers). */
  running: boolean;
  /** As written in the config file or the catalog (secret references, never values). */
  config: Record<string, unknown>;
  status?: ServerStatus;
  /** Secret names its config refers to. */
  secrets: string[];
  logFile?: string;
}

export interface ServersReport {
  policyMode: 'managed' | 'unmanaged';
  configFile: string;
  servers: ServerEntry[];
  /** Why the configured servers are not the ones running, when they are not. */
  note?: string;
}

export interface ToolSummary {
  name: string;
  title?: string;
  description?: string;
  annotations: Record<string, unknown>;
  /** Names of the top-level arguments. */
  inputs: string[];
  /** SHA-256 of the tool's canonical definition (what a pin names). */
  hash: string;
}

export type PinState = 'unpinned' | 'match' | 'changed' | 'not-in-catalog';

export interface ToolEntry extends ToolSummary {
  server: string;
  /** The aggregate's name for it. */
  exposedAs: string;
  pin: { state: PinState; pinned?: string };
  /** The signed catalog's attributes (managed mode). */
  catalog?: { readOnly: boolean; destructive: boolean; tags: string[] };
  /** May the signed-in user (or the OS user) see and call it, before any client scope? */
  visibleToYou: boolean;
  hiddenBecause?: string;
  /** Switched off in the user's own `restrict` rules. */
  disabledByYou: boolean;
  /** Managed: each role of the bundle, and whether someone with only that role sees it. */
  roles?: { role: string; visible: boolean; approval?: string[] }[];
  /** Each paired client, and whether its scope lets it see the tool (within the user's rights). */
  clients: { name: string; visible: boolean }[];
}

export interface ToolsReport {
  mode: 'managed' | 'unmanaged';
  version?: string;
  /** Who "you" is: the signed-in user or the OS user. */
  you: string;
  yourRoles: string[];
  tools: ToolEntry[];
  note?: string;
}

/** One audit event as the console shows it. */
export interface AuditRow {
  seq: number;
  id: string;
  at: string;
  type: string;
  hash: string;
  callId?: string;
  user?: string;
  client?: string;
  server?: string;
  kind?: string;
  name?: string;
  decision?: string;
  stage?: string;
  code?: string;
  reason?: string;
  latencyMs?: number;
  policyMode?: string;
  policyVersion?: string;
  policyIds?: string[];
  /** What the approval stage decided, where one was asked. */
  approval?: { required: boolean; decision?: string; by?: string; scope?: string; at?: string };
  /** Whose sign-in at a remote server the call used (its authorization server and subject). */
  upstream?: { issuer: string; subject?: string };
  detail?: Record<string, unknown>;
}

export interface AuditQueryResult {
  events: AuditRow[];
  /** The last sequence number in the log. */
  head: number;
  /** True when more events matched than were returned. */
  more: boolean;
}

export interface AuditTimeline {
  from: string;
  to: string;
  /** The start that was asked for, when `fit` moved `from` up to the first call. */
  requestedFrom?: string;
  bucketMs: number;
  by: 'tool' | 'client' | 'server';
  /**
   * The busiest keys, each with one count per bucket; the rest summed as `(other)`. Per bucket too:
   * the calls refused (`denied`: policy, quota, approval, identity) and the median latency of the
   * calls that have one (null where none did).
   */
  series: { key: string; counts: number[]; refused: number[]; latencyMs: (number | null)[]; total: number }[];
  total: number;
  /** True when the window held more calls than were counted. */
  truncated: boolean;
}

export interface AuditVerifyResult {
  ok: boolean;
  device: string;
  events: number;
  firstSeq?: number;
  lastSeq?: number;
  checkpoints: { total: number; verified: number };
  problems: { seq: number; code: string; message: string }[];
  warnings: string[];
  elapsedMs: number;
}

export interface PolicyChanges {
  from: string;
  to: string;
  policies: { added: string[]; removed: string[]; changed: string[] };
  roles: { added: string[]; removed: string[]; changed: string[] };
  servers: { added: string[]; removed: string[] };
  tools: { added: string[]; removed: string[]; repinned: string[] };
}

export interface PolicyReport {
  status: PolicyStatus;
  bundle?: {
    version: number;
    digest: string;
    issuedAt: string;
    expiresAt: string;
    signedBy: string[];
    policies: { id: string; file: string; effect: 'permit' | 'forbid'; approval?: string; quota?: string; readsArguments: boolean }[];
    roles: { group: string; roles: string[] }[];
    catalog: { server: string; tools: number }[];
  };
  /** From the bundle this daemon had in force before the current one (since it started). */
  changes?: PolicyChanges;
  /** Policy changes and refusals from the audit log, newest first. */
  history: { at: string; type: string; reason?: string; code?: string; version?: number }[];
}

export interface ClientEntry {
  name: string;
  scope: { kind: 'all' } | { kind: 'read-only' } | { kind: 'listed'; servers: string[]; tools: string[] };
  scopeText: string;
  via?: 'socket' | 'http' | 'oauth';
  createdAt: string;
  expiresAt?: string;
  expired: boolean;
  lastSeen?: string;
  pairedBy?: string;
  /** Live sessions under this name. */
  sessions: number;
  /** Its view of the tools from the config (`clients.<name>`): every tool, or find_tools and call_tool. */
  view: 'aggregate' | 'search';
  /** Tools the search view lists beside find_tools and call_tool. */
  pinned: string[];
}

/** One `tools/list` result's size: what it costs a model before the user says a word. */
export interface ToolListCostFigure {
  tools: number;
  bytes: number;
  tokens: number;
}

/** What one client's tool list costs in each view. */
export interface ClientToolCost {
  /** The client's name; absent on the row for a client with all of the user's tools and no settings. */
  name?: string;
  scopeText: string;
  /** The view it gets unless it asks for another. */
  view: 'aggregate' | 'search';
  pinned: string[];
  aggregate: ToolListCostFigure;
  search: ToolListCostFigure;
}

export interface ToolCostReport {
  /** The tokenizer's encoding (`o200k_base`). */
  encoding: string;
  clients: ClientToolCost[];
}

export type ClientAppId = (typeof CLIENT_APP_IDS)[number];

/** A client `clients setup` supports, as the Clients screen shows it (src/node/clients/). */
export interface ClientApp {
  id: ClientAppId;
  title: string;
  /** Its config file (user level). */
  file: string;
  installed: boolean;
  /** The Gatehouse entry is in its config. */
  configured: boolean;
  /** The file cannot be read or parsed. */
  problem?: string;
  /** The command its Gatehouse entry runs (absolute path first), for copying by hand. */
  command: string[];
}

/** What `clients.setup` did: the file, whether it changed, and the check of the written entry. */
export interface ClientSetupResult {
  client: string;
  file: string;
  changed: boolean;
  /** With `dryRun`: the change as a diff. */
  diff?: string;
  /** The command the entry runs (absolute path first). */
  command: string[];
  check?: { ok: true; ms: number; pairing: boolean } | { ok: false; reason: string };
}

/** What `clients.import` did (never a secret's value). */
export interface ClientImportResult {
  client: string;
  /** The client's config file, now pointing at Gatehouse. */
  file: string;
  moved: { entry: string; server: string; note?: string }[];
  /** Names of the secrets its credentials were kept as. */
  secrets: string[];
  leftAlone: { entry: string; reason: string }[];
  check?: { ok: true; ms: number; pairing: boolean } | { ok: false; reason: string };
}

export interface SecretEntry {
  name: string;
  stored: boolean;
  /** Servers whose config refers to it (they restart when it changes). */
  usedBy: string[];
}

export interface SecretsReport {
  keychain: string;
  /** False when the keychain could not be read; `error` says why and what to do. */
  available: boolean;
  error?: string;
  secrets: SecretEntry[];
}

/** What each console method returns. */
export interface ConsoleResults {
  status: DaemonStatus;
  'servers.list': ServersReport;
  'servers.tools': ToolSummary[];
  'servers.start': ServerStatus;
  'servers.stop': ServerStatus;
  'servers.restart': ServerStatus;
  'servers.add': ReloadReport;
  'servers.update': ReloadReport;
  'servers.remove': ReloadReport;
  'servers.login': { url: string; expiresAt: string };
  'servers.logout': { revoked: boolean; held: boolean };
  logs: string[];
  'config.reload': ReloadReport;
  'tools.list': ToolsReport;
  'audit.query': AuditQueryResult;
  'audit.timeline': AuditTimeline;
  'audit.verify': AuditVerifyResult;
  'policy.status': PolicyReport;
  'clients.list': ClientEntry[];
  'clients.revoke': { revoked: boolean };
  'clients.setView': { name: string; view: 'aggregate' | 'search'; pinned: string[] };
  'tools.cost': ToolCostReport;
  'clients.apps': ClientApp[];
  'clients.setup': ClientSetupResult;
  'clients.import': ClientImportResult;
  'secrets.list': SecretsReport;
  'secrets.set': { restarted: string[] };
  'secrets.delete': { deleted: boolean; restarted: string[] };
  'identity.status': IdentityStatus;
  'identity.login': { url: string };
  'identity.logout': { revoked: boolean };
  'questions.list': QuestionsReport;
  'catalog.list': CatalogListing;
  'catalog.show': CatalogEntryInfo;
  'servers.install': InstallResult;
  'catalog.shadows': ShadowServer[];
}

/** What waits for the person, and where it is answered (never how: no code, no key). */
export interface QuestionsReport {
  questions: WaitingQuestion[];
  /** Where the person answers (`desktop app`, `terminal`, `question page`); empty when nobody can be asked. */
  answerAt: string[];
  /** Headless: the question page's origin; a question's page is `<origin>/q/<id>`, which asks for the terminal's code. */
  pageOrigin?: string;
}

/** The desktop app's own settings. */
export const AppSettingsSchema = z.object({ openAtLogin: z.boolean() }).strict();
export type AppSettings = z.infer<typeof AppSettingsSchema>;
