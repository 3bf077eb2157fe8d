/**
 * The control API: what the CLI and the console may ask the running daemon. Declared once, here,
 * with schemas; the daemon parses every request against them (the console's allowed subset is
 * console-channels.ts, its results console-api.ts).
 *
 * Wire: a user-only unix socket (named pipe on Windows), one JSON object per line each way:
 * `{ "id": 1, "method": "status", "params": {} }` → `{ "id": 1, "result": ... }` or
 * `{ "id": 1, "error": { "code": "...", "message": "..." } }`.
 */
import { z } from 'zod';
import { ClientSettingsSchema, ServerConfigSchema, ToolViewSchema } from './config.js';
import { CLIENT_NAME_PATTERN, SERVER_NAME_PATTERN } from './names.js';

const serverName = z.string().regex(SERVER_NAME_PATTERN, 'not a valid server name');

/** The clients `clients setup` supports (kept equal to src/node/clients/registry.ts by test/unit/clients.test.ts). */
export const CLIENT_APP_IDS = ['claude-desktop', 'claude-code', 'cursor', 'vscode', 'windsurf', 'zed', 'codex', 'gemini-cli'] as const;

/** A server's configuration as written in the config file: checked against the config schema, passed on as written (defaults stay implicit). */
const serverConfigInput = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const checked = ServerConfigSchema.safeParse(value);
  if (checked.success) return;
  for (const issue of checked.error.issues) {
    const message = issue.code === 'invalid_key' && issue.issues[0] ? issue.issues[0].message : issue.message;
    ctx.addIssue({ code: 'custom', message: message.replace(/^Invalid input: /, ''), path: issue.path });
  }
});

/** Secret names as `${secret:NAME}` refers to them (kept equal to src/node/secrets/resolver.ts). */
const secretName = z
  .string()
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
    'a secret name is 1-128 letters, digits, underscores, dots and hyphens, starting with a letter, digit or underscore',
  );

const isoTime = z.iso.datetime({ offset: true });
/** The audit filters of `gatehouse audit query`, as the console sends them (times already resolved to ISO). */
const auditFilter = {
  from: isoTime.optional(),
  to: isoTime.optional(),
  user: z.string().min(1).max(512).optional(),
  client: z.string().min(1).max(512).optional(),
  server: z.string().min(1).max(512).optional(),
  tool: z.string().min(1).max(512).optional(),
  decision: z.enum(['allowed', 'denied', 'failed', 'ok', 'error', 'interrupted']).optional(),
  type: z.string().min(1).max(64).optional(),
};

export const ControlRequests = {
  status: z.object({}).strict(),
  'servers.restart': z.object({ name: serverName }).strict(),
  'servers.start': z.object({ name: serverName }).strict(),
  'servers.stop': z.object({ name: serverName }).strict(),
  logs: z.object({ name: serverName, lines: z.number().int().min(1).max(100_000).default(200) }).strict(),
  'config.reload': z.object({}).strict(),
  /** The client registry file changed (a client was added or revoked); revoked clients lose access at once. */
  'clients.reload': z.object({}).strict(),
  /**
   * Asks the person, in the human channel, to pair a client that will connect over HTTP with a
   * token. Only asks: the answer is given on the pairing page, never here. Resolves with the token
   * once approved.
   */
  'clients.pair': z.object({ name: z.string().min(1).max(64) }).strict(),
  /** The signed-in user and the state of their session. */
  'identity.status': z.object({}).strict(),
  /** `gatehouse login` or `logout` changed the stored sign-in: load it again (resumes blocked calls). */
  'identity.reload': z.object({}).strict(),
  /** Revokes the daemon's tokens and forgets the sign-in. */
  'identity.logout': z.object({}).strict(),
  /** These secrets changed in the keychain: restart the servers that use them (and only those). */
  'secrets.changed': z.object({ names: z.array(z.string().min(1).max(128)).min(1).max(100) }).strict(),

  // --- What the console asks (docs/console.md). Results are typed in console-api.ts. -------------
  /** Every server: where it comes from (config file or policy catalog), its configuration (secret references, never values) and its live status. */
  'servers.list': z.object({}).strict(),
  /** The tools a running server lists, as it describes them. */
  'servers.tools': z.object({ name: serverName }).strict(),
  /** Adds a server to the config file (checked against the config schema, then applied like any edit). */
  'servers.add': z.object({ name: serverName, config: serverConfigInput }).strict(),
  /** Replaces the configuration of a server in the config file. */
  'servers.update': z.object({ name: serverName, config: serverConfigInput }).strict(),
  'servers.remove': z.object({ name: serverName }).strict(),
  /** Every tool of every running server: who may see and call it, its pin, its annotations. */
  'tools.list': z.object({}).strict(),
  /** The newest matching local audit events (or, with `afterSeq`, the next ones), oldest first. */
  'audit.query': z.object({ ...auditFilter, afterSeq: z.number().int().min(0).optional(), limit: z.number().int().min(1).max(10_000).default(500) }).strict(),
  /**
   * Calls over time, per tool, client or server, in equal buckets between `from` and `to`, with the
   * refusals and the median latency of each bucket. With `fit`, the range starts at the first call
   * in it (at least the last 2 minutes), so a short burst is not squeezed into one bucket of a day.
   */
  'audit.timeline': z
    .object({
      ...auditFilter,
      from: isoTime,
      by: z.enum(['tool', 'client', 'server']),
      buckets: z.number().int().min(1).max(240).default(48),
      fit: z.boolean().default(false),
    })
    .strict(),
  /** Checks the whole local chain (hashes, links, signed checkpoints), as `gatehouse audit verify` does. */
  'audit.verify': z.object({}).strict(),
  /** The policy in force in detail: the bundle's policies, role mapping and catalog, what changed, and its history. */
  'policy.status': z.object({}).strict(),
  /** Paired clients: scope, expiry, last seen, live sessions. */
  'clients.list': z.object({}).strict(),
  /** Revokes a paired client: it loses access at once, live sessions included. */
  'clients.revoke': z.object({ name: z.string().min(1).max(64) }).strict(),
  /**
   * Sets a client's view of the tools (`clients.<name>` in the config file: the aggregate or the search
   * view, and its pinned tools); it applies to the client's next connection. docs/search.md.
   */
  'clients.setView': z
    .object({
      name: z.string().regex(CLIENT_NAME_PATTERN, 'not a valid client name'),
      view: ToolViewSchema,
      pinned: ClientSettingsSchema.shape.pinned.optional(),
    })
    .strict(),
  /** What each client's tool list costs in model tokens, in the aggregate and in the search view (`gatehouse tools cost`). */
  'tools.cost': z.object({}).strict(),
  /** Secret names only: which are stored in the keychain, which servers use each. Values are never returned. */
  'secrets.list': z.object({}).strict(),
  /** Stores (or rotates) a secret in the keychain and restarts the servers that use it. The value only goes in. */
  'secrets.set': z
    .object({ name: secretName, value: z.string().min(1, 'the value is empty').max(16_384, 'a secret value is at most 16384 characters') })
    .strict(),
  'secrets.delete': z.object({ name: secretName }).strict(),
  /**
   * Shows a new sign-in code for the console of `gatehouse daemon --ui` on the daemon's terminal
   * (only there: the answer says whether it was shown, never the code).
   */
  'console.link': z.object({}).strict(),
  /**
   * The questions waiting for the person, and where they can be answered. Read-only: no control
   * method answers a question, and nothing here opens one (the question page asks for the code
   * that only the daemon's terminal shows).
   */
  'questions.list': z.object({}).strict(),
  /**
   * Starts (or joins) the user's sign-in to a remote server that needs one (docs/remote-servers.md);
   * resolves with the authorization server's address to open in a browser. The sign-in completes in
   * the daemon (its loopback redirect), which then starts the server.
   */
  'servers.login': z.object({ name: serverName }).strict(),
  /** Signs the user out of a remote server: revokes the tokens at its authorization server where it can, and forgets them. */
  'servers.logout': z.object({ name: serverName }).strict(),
  /** Starts a sign-in with the identity provider in the system browser; resolves with the address to open once it is ready. */
  'identity.login': z.object({}).strict(),
  /** The servers the policy in force runs: in managed mode, the catalog's (what `clients import` may move behind Gatehouse). */
  'policy.servers': z.object({}).strict(),
  /** The MCP clients Gatehouse can set up (docs/clients.md): installed here or not, set up or not, where their config is. */
  'clients.apps': z.object({}).strict(),
  /** Writes Gatehouse's entry into a client's own config (with a backup), then checks it by launching it as the client would. */
  'clients.setup': z.object({ client: z.enum(CLIENT_APP_IDS), dryRun: z.boolean().default(false) }).strict(),
  /**
   * Moves the servers a client runs itself behind Gatehouse, as `gatehouse clients import CLIENT` does:
   * credentials to the key store, the servers into Gatehouse's config, the client's entries replaced by
   * Gatehouse's (with a backup for `--undo`), then checked by launching it. In managed mode only the
   * catalog's servers move.
   */
  'clients.import': z.object({ client: z.enum(CLIENT_APP_IDS) }).strict(),

  // --- The signed catalogue (docs/catalog.md). Results are typed in catalog.ts. -------------------
  /** The entries of the catalogue in force that match a search (every entry without one). */
  'catalog.list': z.object({ query: z.string().max(200).default('') }).strict(),
  /** One entry: description, publisher, package, the tools it will offer, the secrets it needs. */
  'catalog.show': z.object({ name: serverName }).strict(),
  /**
   * Installs a catalogue entry as a server (named `as`, default the entry's name): fetches its
   * package with the package manager, checks it against the signed integrity, and runs it from
   * Gatehouse's own directory. A mismatch refuses the install and says why.
   */
  'servers.install': z.object({ name: serverName, as: serverName.optional() }).strict(),
  /** Resolves a server that runs `npx PACKAGE` once, installs it verified, and pins it in the config. */
  'servers.pin': z.object({ name: serverName }).strict(),
  /** Reads the clients' configs again and lists the MCP servers they run outside Gatehouse. */
  'catalog.shadows': z.object({}).strict(),
} as const;
export type ControlMethod = keyof typeof ControlRequests;
export type ControlParams<M extends ControlMethod> = z.input<(typeof ControlRequests)[M]>;

export const ControlEnvelopeSchema = z
  .object({
    id: z.union([z.number().int(), z.string().max(64)]),
    method: z.string().max(64),
    params: z.unknown().optional(),
  })
  .strict();

export interface ControlError {
  code: string;
  message: string;
}

export type ControlResponse = { id: number | string; result: unknown } | { id: number | string | null; error: ControlError };

/** Largest control request line, in bytes. */
export const MAX_CONTROL_LINE = 64 * 1024;

export function isControlMethod(method: string): method is ControlMethod {
  return Object.prototype.hasOwnProperty.call(ControlRequests, method);
}

/** What `config.reload` reports. */
export interface ReloadReport {
  ok: boolean;
  error?: string;
  added: string[];
  removed: string[];
  restarted: string[];
  unchanged: string[];
}
