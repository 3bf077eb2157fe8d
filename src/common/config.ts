/**
 * The configuration file's schema: one source of truth for the daemon, the CLI and the console.
 * Documented field by field in docs/configuration.md; the default lives in resources/default-config.json.
 */
import { z } from 'zod';
import { CLIENT_NAME_PATTERN, SERVER_NAME_PATTERN, SERVER_NAME_RULE } from './names.js';
import { SandboxSettingSchema } from './sandbox.js';

/** Environment variable names a config may set for a child. */
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name is letters, digits and underscores');
/** HTTP header names (RFC 9110 token characters). */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid HTTP header name');

export const RestartPolicySchema = z
  .object({
    /** `on-failure` restarts after a crash; `always` also after a clean exit; `never` leaves it stopped. */
    mode: z.enum(['on-failure', 'always', 'never']).default('on-failure'),
    initialDelayMs: z.number().int().min(10).max(600_000).default(500),
    maxDelayMs: z.number().int().min(10).max(3_600_000).default(30_000),
    multiplier: z.number().min(1).max(10).default(2),
    /** Fraction of each delay drawn at random, so that many servers do not restart in step. */
    jitter: z.number().min(0).max(1).default(0.2),
    /** This many restarts within `crashLoopWindowMs` marks the server crash-looping; it then waits `maxDelayMs` between tries. */
    crashLoopRestarts: z.number().int().min(1).max(1000).default(5),
    crashLoopWindowMs: z.number().int().min(1000).max(86_400_000).default(60_000),
  })
  .strict()
  .refine((p) => p.maxDelayMs >= p.initialDelayMs, { message: 'maxDelayMs must be at least initialDelayMs', path: ['maxDelayMs'] });
export type RestartPolicy = z.infer<typeof RestartPolicySchema>;

export const HealthPolicySchema = z
  .object({
    /** How often a ready server is pinged (MCP `ping`, or a cheap list call where the server's era has no ping). */
    intervalMs: z.number().int().min(500).max(3_600_000).default(15_000),
    timeoutMs: z.number().int().min(100).max(600_000).default(5_000),
    /** Consecutive failed pings before the server is restarted. */
    failuresBeforeRestart: z.number().int().min(1).max(100).default(2),
  })
  .strict();
export type HealthPolicy = z.infer<typeof HealthPolicySchema>;

const common = {
  enabled: z.boolean().default(true),
  description: z.string().max(500).optional(),
  restart: RestartPolicySchema.default(RestartPolicySchema.parse({})),
  health: HealthPolicySchema.default(HealthPolicySchema.parse({})),
  /** How long connecting (spawn + handshake) may take before the attempt counts as a crash. */
  startupTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  /** How long one forwarded request may take before Gatehouse cancels it upstream. */
  requestTimeoutMs: z.number().int().min(100).max(3_600_000).default(300_000),
};

export const StdioServerSchema = z
  .object({
    type: z.literal('stdio'),
    command: z.string().min(1).max(4096),
    args: z.array(z.string().max(32_768)).max(256).default([]),
    cwd: z.string().max(4096).optional(),
    /** Added to the allow-listed environment the child gets; nothing else of the daemon's environment leaks through. */
    env: z.record(envName, z.string().max(32_768)).default({}),
    /**
     * The roots Gatehouse answers when the server asks `roots/list` (absolute paths): the folders it
     * may work in. Without them the request goes to the client whose call is in flight, if any.
     */
    roots: z
      .array(
        z
          .string()
          .min(1)
          .max(4096)
          .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'a root is an absolute path'),
      )
      .max(64)
      .optional(),
    /** Grace between SIGTERM and SIGKILL when stopping. */
    stopGraceMs: z.number().int().min(0).max(120_000).default(3_000),
    /** What the server may reach when confined (docs/sandbox.md); without it, the default profile; `"off"` runs it unconfined. */
    sandbox: SandboxSettingSchema.optional(),
    ...common,
  })
  .strict();

/** An OAuth scope token (RFC 6749, 3.3): printable ASCII without spaces, quotes or backslashes. */
const oauthScope = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes');

/**
 * Signing in to a remote server that is an OAuth-protected resource (docs/remote-servers.md). Every
 * field is optional: Gatehouse discovers the authorization server from the server's 401 and
 * registers itself when it can. What is set here (or in the policy catalog's entry) comes first.
 */
export const UpstreamOAuthSchema = z
  .object({
    /** A client registered for Gatehouse at the server's authorization server by an administrator: used before anything else. */
    clientId: z.string().min(1).max(500).optional(),
    /** That client's secret, when the authorization server gave it one: only as a `\${secret:NAME}` reference, never a value. */
    clientSecret: z
      .string()
      .regex(
        /^\$\{secret:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\}$/,
        'clientSecret must be a ${secret:NAME} reference to a secret set with `gatehouse secrets set NAME`',
      )
      .optional(),
    /** Where the organisation publishes Gatehouse's Client ID Metadata Document (https), for authorization servers that accept one. */
    clientMetadataUrl: z
      .string()
      .url()
      .regex(/^https:\/\/[^/?#]+\/[^?#]/, 'clientMetadataUrl must be an https:// address with a path')
      .optional(),
    /** Scopes to ask for besides those the server's challenge or metadata names. */
    scopes: z.array(oauthScope).max(50).default([]),
    /** The loopback redirect's port: 0 picks a free one per sign-in; a fixed one only where the registration demands it. */
    redirectPort: z.number().int().min(0).max(65_535).default(0),
  })
  .strict();
export type UpstreamOAuthConfig = z.infer<typeof UpstreamOAuthSchema>;

export const HttpServerSchema = z
  .object({
    type: z.literal('http'),
    url: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//.test(u), 'the url must be http:// or https://'),
    headers: z.record(headerName, z.string().max(8192)).default({}),
    /**
     * Sign-in to the server (OAuth, per user): settings for it, or `false` to never offer it. Left out,
     * Gatehouse offers sign-in when the server asks for it (a 401 with a Bearer challenge) and the
     * headers carry no Authorization of their own.
     */
    oauth: z.union([z.literal(false), UpstreamOAuthSchema]).optional(),
    ...common,
  })
  .strict();

export const ServerConfigSchema = z.discriminatedUnion('type', [StdioServerSchema, HttpServerSchema]);
export type StdioServerConfig = z.infer<typeof StdioServerSchema>;
export type HttpServerConfig = z.infer<typeof HttpServerSchema>;
export type ServerConfig = z.infer<typeof ServerConfigSchema>;

export const ListenSchema = z
  .object({
    /** Streamable HTTP on 127.0.0.1. Port 0 picks a free port; the chosen one is in `gatehouse status --json`. */
    http: z
      .object({
        enabled: z.boolean().default(true),
        port: z.number().int().min(0).max(65_535).default(0),
        /**
         * Connections open at once. Past it, the oldest connection that has not yet sent a whole request (a slow or
         * silent one) is closed to make room, else the oldest idle one; when every connection is serving a request, the new one is.
         */
        maxConnections: z.number().int().min(8).max(65_536).default(1024),
        /** From a connection's first byte (or the end of its previous request) to the end of the request's headers. */
        headersTimeoutMs: z.number().int().min(200).max(600_000).default(10_000),
        /** From the same start to the end of the request's body; a longer request gets 408 and its connection is closed. */
        requestTimeoutMs: z.number().int().min(200).max(3_600_000).default(30_000),
        /**
         * HTTP clients that name themselves with a Client ID Metadata Document: Gatehouse fetches it
         * over HTTPS from public addresses only, unless private network addresses are allowed here
         * (an intranet that publishes its clients' documents).
         */
        clientMetadata: z
          .object({ allowPrivateAddresses: z.boolean().default(false) })
          .strict()
          .default({ allowPrivateAddresses: false }),
      })
      .strict()
      .refine((h) => h.requestTimeoutMs >= h.headersTimeoutMs, { message: 'requestTimeoutMs must be at least headersTimeoutMs', path: ['requestTimeoutMs'] })
      .default({
        enabled: true,
        port: 0,
        maxConnections: 1024,
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        clientMetadata: { allowPrivateAddresses: false },
      }),
  })
  .strict();

export const LimitsSchema = z
  .object({
    /** Largest JSON-RPC message accepted from a client or a server, in bytes. */
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024),
    /** Lines of each server's stderr kept in memory. */
    logRingLines: z.number().int().min(10).max(100_000).default(1000),
    /** Size at which a server's log file is rotated, and how many rotated files are kept. */
    logFileBytes: z
      .number()
      .int()
      .min(4096)
      .max(1024 * 1024 * 1024)
      .default(5 * 1024 * 1024),
    logFilesKept: z.number().int().min(1).max(50).default(3),
  })
  .strict();

/** A server name (`crm`), or `<server>__<tool or prompt>` (`crm__delete_contact`); `*` matches any run of characters. */
const restrictPattern = z
  .string()
  .min(1)
  .max(300)
  .regex(/^[A-Za-z0-9_.*-]+$/, 'a server name or <server>__<tool>, with * as a wildcard');

/**
 * What the user switches off for themselves (`disable`) or for one client (`clients.<name>.disable`).
 * It only ever narrows: a managed policy decides first, and nothing here can allow what it refuses.
 */
export const RestrictSchema = z
  .object({
    disable: z.array(restrictPattern).max(1000).default([]),
    clients: z.record(z.string().min(1).max(64), z.object({ disable: z.array(restrictPattern).max(1000).default([]) }).strict()).default({}),
  })
  .strict();
export type RestrictConfig = z.infer<typeof RestrictSchema>;

/** The question page of headless Gatehouse (docs/approvals.md). */
export const HumanPageSchema = z
  .object({
    /** The page's port on 127.0.0.1: fixed when set, a free one each start when 0. */
    port: z.number().int().min(0).max(65_535).default(0),
  })
  .strict();

/**
 * The user's own approval rules: calls they want to be asked about before they run. They only ever
 * add a question to a call the policy allows; they never allow anything.
 */
export const ApprovalsSchema = z
  .object({
    /** Server names or `<server>__<tool or prompt>` names (`*` matches any run of characters) to ask about. */
    ask: z.array(restrictPattern).max(1000).default([]),
    /** Ask before every tool that is not marked read-only. */
    askBeforeWrites: z.boolean().default(false),
    /** How long a call waits for the answer before it is refused. */
    timeoutSeconds: z.number().int().min(5).max(3600).default(120),
  })
  .strict();

/** Which view of the tools a client gets: every tool (`aggregate`), or `find_tools` and `call_tool` (`search`; docs/search.md). */
export const ToolViewSchema = z.enum(['aggregate', 'search']);
export type ToolView = z.infer<typeof ToolViewSchema>;

/** Per-client settings, keyed by the name the client connects with (`gatehouse connect --client NAME`, the pairing's name). */
export const ClientSettingsSchema = z
  .object({
    /** The view this client gets unless it asks for one (`gatehouse connect --view`, `/mcp?view=`). */
    view: ToolViewSchema.default('aggregate'),
    /** In the search view, tools listed beside find_tools and call_tool, as the aggregate names them (`memory__read_graph`). */
    pinned: z
      .array(
        z
          .string()
          .regex(/^[a-z0-9-]+__[A-Za-z0-9_.-]+$/, 'a pinned tool is named as the aggregate names it: <server>__<tool>')
          .max(160),
      )
      .max(50)
      .default([]),
  })
  .strict();
export type ClientSettings = z.infer<typeof ClientSettingsSchema>;

/** Where secret items may be kept when no OS keychain answers (docs/configuration.md, "keystore"). */
export const KeyStoreConfigSchema = z
  .object({
    /**
     * Keep your own secrets (`\${secret:NAME}` values) in Gatehouse's user-only file store when no OS
     * keychain answers. Off by default: Gatehouse's own keys and credentials use the file store then,
     * your secrets only with this opt-in. A managed policy can forbid the file store altogether.
     */
    userSecretsInFile: z.boolean().default(false),
  })
  .strict();

/**
 * A server installed from a verified package (docs/catalog.md): from the signed catalogue
 * (`catalog` names the entry), or an `npx -y PACKAGE` server resolved once and pinned here (`npm`).
 * Gatehouse fetches it with the package manager into its own directory, checks its integrity, and
 * runs it from there; nothing is fetched at start.
 */
export const InstalledServerSchema = z
  .object({
    catalog: z.string().regex(SERVER_NAME_PATTERN, SERVER_NAME_RULE).optional(),
    npm: z
      .object({
        package: z.string().regex(/^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/, 'an npm package name'),
        version: z.string().regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/, 'an exact version (1.2.3)'),
        integrity: z.string().regex(/^sha512-[A-Za-z0-9+/]{86}==$/, "npm's integrity of the tarball: sha512-<base64>"),
        bin: z.string().min(1).max(214).optional(),
      })
      .strict()
      .optional(),
    /** Arguments after the program (a local pin's; a catalogue entry's come from the entry). */
    args: z.array(z.string().max(32_768)).max(256).default([]),
    /** Added to the entry's environment (`${secret:NAME}` as in any server). */
    env: z.record(envName, z.string().max(32_768)).default({}),
    /** A local pin's sandbox profile (a catalogue entry's comes from the signed entry). */
    sandbox: SandboxSettingSchema.optional(),
    ...common,
  })
  .strict()
  .refine((s) => (s.catalog === undefined) !== (s.npm === undefined), {
    message: 'an installed server names either a catalogue entry (catalog) or an npm package (npm)',
  });
export type InstalledServerConfig = z.infer<typeof InstalledServerSchema>;

/**
 * OpenTelemetry traces and metrics of the daemon's calls (docs/telemetry.md). Off unless this is
 * set; a managed `telemetry` in the managed settings overrides it either way.
 */
export const TelemetrySchema = z
  .object({
    /** The collector's OTLP/HTTP base address: traces go to `<endpoint>/v1/traces`, metrics to `<endpoint>/v1/metrics`. */
    endpoint: z
      .string()
      .max(2048)
      .url()
      .refine((u) => /^https?:\/\//.test(u), 'the endpoint must be http:// or https://')
      .refine(
        (u) => !/^https?:\/\/[^/?#]*@/.test(u) && !/[?#]/.test(u),
        'the endpoint carries no credentials, query or fragment; put a key in headers as ${secret:NAME}',
      ),
    /** Sent with every export (an API key as `${secret:NAME}`, resolved from the keychain, never written here as a value). */
    headers: z.record(headerName, z.string().max(8192)).default({}),
    /** The fraction of new traces kept (a caller's own sampled flag is followed); metrics always count every call. */
    sampling: z.number().min(0).max(1).default(1),
    /** `service.name` of everything sent. */
    serviceName: z.string().min(1).max(200).default('gatehouse'),
    /** How often metrics are sent. */
    metricsIntervalMs: z.number().int().min(200).max(3_600_000).default(60_000),
  })
  .strict();
export type TelemetryConfig = z.infer<typeof TelemetrySchema>;

export const ConfigSchema = z
  .object({
    $schema: z.string().optional(),
    /** Keyed by server name; the key pattern also lands in config.schema.json, so editors flag a bad name. */
    servers: z.record(z.string().regex(SERVER_NAME_PATTERN, SERVER_NAME_RULE), ServerConfigSchema).default({}),
    listen: ListenSchema.default(ListenSchema.parse({})),
    limits: LimitsSchema.default(LimitsSchema.parse({})),
    restrict: RestrictSchema.default(RestrictSchema.parse({})),
    humanPage: HumanPageSchema.default(HumanPageSchema.parse({})),
    approvals: ApprovalsSchema.default(ApprovalsSchema.parse({})),
    clients: z
      .record(z.string().regex(CLIENT_NAME_PATTERN, 'a client name is 1-64 letters, digits, spaces, dots, underscores and hyphens'), ClientSettingsSchema)
      .default({}),
    keystore: KeyStoreConfigSchema.default(KeyStoreConfigSchema.parse({})),
    /** Servers installed from verified packages, keyed by server name (a name not also in `servers`). */
    installed: z.record(z.string().regex(SERVER_NAME_PATTERN, SERVER_NAME_RULE), InstalledServerSchema).default({}),
    /** Traces and metrics to an OpenTelemetry collector; absent: nothing is sent and the SDK is not loaded. */
    telemetry: TelemetrySchema.optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const name of Object.keys(config.installed)) {
      if (Object.hasOwn(config.servers, name))
        ctx.addIssue({ code: 'custom', path: ['installed', name], message: `"${name}" is also in servers; a name belongs to one server` });
    }
  });
export type GatehouseConfig = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** One problem in a config file, addressed by a JSON path such as `servers.memory.args[2]`. */
export interface ConfigProblem {
  path: string;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Parses a value already read as JSON; never throws. */
export function parseConfig(value: unknown): { ok: true; config: GatehouseConfig } | { ok: false; problems: ConfigProblem[] } {
  const result = ConfigSchema.safeParse(value);
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    problems: result.error.issues.map(describeIssue),
  };
}

/**
 * One zod issue as a person reads it: a record key's own message instead of "Invalid key in record",
 * and "expected string, received number" without zod's "Invalid input: " prefix.
 */
function describeIssue(issue: z.core.$ZodIssue): ConfigProblem {
  let message = issue.message;
  if (issue.code === 'invalid_key' && issue.issues[0] !== undefined) message = issue.issues[0].message;
  return { path: formatPath(issue.path), message: message.replace(/^Invalid input: /, '') };
}
