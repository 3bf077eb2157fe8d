/**
 * The real `UpstreamConnector`: stdio children launched by Gatehouse and remote Streamable HTTP
 * servers, both spoken to with the MCP SDK client, which negotiates the protocol era
 * (`server/discover` for 2026-07-28 servers, `initialize` for 2025-era ones).
 */
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  Client,
  InsufficientScopeError,
  SdkError,
  SdkErrorCode,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  type JSONRPCMessage,
  type Transport,
} from '@modelcontextprotocol/client';
import type { HttpServerConfig, ServerConfig, StdioServerConfig } from '../../common/config.js';
import { RpcErrorCode, errorMessage, isSignInRequired } from '../../common/errors.js';
import type {
  ForwardOptions,
  ListKind,
  LogMessage,
  McpItem,
  UpstreamConnection,
  UpstreamConnector,
  UpstreamEvents,
  UpstreamExit,
  UpstreamIdentity,
  UpstreamLists,
} from '../../core/ports.js';
import type { Redacted } from '../../core/secrets.js';
import { LineTransport } from '../line-transport.js';
import type { ConfinementStatus } from '../../common/sandbox.js';
import type { SandboxedLaunch, UpstreamSandbox } from '../sandbox/launcher.js';
import type { UpstreamAuthProvider } from '../upstream-auth/service.js';
import { childEnvironment, launchChild, type LaunchedChild } from './child-process.js';
import { LinkedSignals, type Linked } from '../linked-signals.js';
import { DirectRequests, type ResultCodec } from './direct-requests.js';
import { eraResultSchema } from './result-schema.js';

export interface ConnectorOptions {
  version: string;
  maxMessageBytes: number;
  /**
   * Resolves `${secret:NAME}` references where the connection is made (a child's environment at
   * spawn, HTTP headers per request) and scrubs known values from what servers write. Without it,
   * any reference is refused.
   */
  secrets?: UpstreamSecrets;
  /**
   * Confines stdio children (docs/sandbox.md): decides per server whether and how, and gives the
   * command that starts it confined. Without it, children run unconfined, as the tests of the
   * connector alone do.
   */
  sandbox?: UpstreamSandbox;
  /** The user's sign-in to remote servers that are OAuth-protected resources (src/node/upstream-auth/). */
  auth?: { provider(server: string, config: ServerConfig): UpstreamAuthProvider | undefined };
}

/** What the connector needs of the secret store (`src/node/secrets/resolver.ts`). */
export interface UpstreamSecrets {
  resolve(server: string, config: ServerConfig): Promise<{ env: Record<string, string>; headers: Record<string, string | Redacted<string>> }>;
  scrub(text: string): string;
  scrubError(error: unknown): unknown;
  /** Whether any value is known yet (results are only serialized for scrubbing when one is). */
  active?(): boolean;
}

/**
 * A `server/discover` probe waits this long at most. A slow-starting server answers within it; a
 * 2025-era server that ignores unknown requests before `initialize` costs this much once per start.
 */
const PROBE_TIMEOUT_CAP_MS = 10_000;

/** The level Gatehouse asks 2025-era servers to log at; each client then hears what its own level admits. */
const UPSTREAM_LOG_LEVEL = 'debug';

/** Server-to-client requests Gatehouse relays to the calling session. */
const RELAYED_REQUESTS = ['elicitation/create', 'sampling/createMessage', 'roots/list'] as const;

export class NodeUpstreamConnector implements UpstreamConnector {
  constructor(private readonly options: ConnectorOptions) {}

  async connect(name: string, config: ServerConfig, rawEvents: UpstreamEvents, signal: AbortSignal): Promise<UpstreamConnection> {
    const secrets = this.options.secrets;
    if (!secrets) {
      refuseSecretReferences(config);
      if (config.type === 'stdio') return this.connectStdio(name, config, rawEvents, signal, config.env, identity);
      return this.connectHttp(name, config, rawEvents, signal, config.headers, identity);
    }
    // Whatever a server writes or answers passes the scrubber before it reaches a log, a status or the audit log.
    const events = scrubbedEvents(rawEvents, secrets);
    try {
      const resolved = await secrets.resolve(name, config);
      const scrubText: ResultScrubber = { active: () => secrets.active?.() ?? true, scrub: (text) => secrets.scrub(text) };
      if (config.type === 'stdio') return await this.connectStdio(name, config, events, signal, resolved.env, secrets.scrubError.bind(secrets), scrubText);
      return await this.connectHttp(name, config, events, signal, resolved.headers, secrets.scrubError.bind(secrets), scrubText);
    } catch (error) {
      throw secrets.scrubError(error);
    }
  }

  /** `probeTimeoutMs`: how long a `server/discover` probe may wait; a slow-starting server must not be mistaken for a dead one. */
  /** `roots`: the server's configured roots, answered here instead of relaying `roots/list` to a client. */
  private newClient(events: UpstreamEvents, probeTimeoutMs: number, roots?: readonly string[]): Client {
    const client = new Client(
      { name: 'gatehouse', version: this.options.version },
      {
        capabilities: { elicitation: {}, sampling: {}, roots: { listChanged: false } },
        versionNegotiation: { mode: 'auto', probe: { timeoutMs: probeTimeoutMs } },
      },
    );
    for (const method of RELAYED_REQUESTS) {
      if (method === 'roots/list' && roots !== undefined) {
        const answer = { roots: roots.map((root) => ({ uri: pathToFileURL(root).href, name: basename(root) || root })) };
        client.setRequestHandler(method, (async () => answer) as never);
        continue;
      }
      client.setRequestHandler(method, (async (request: { params?: Record<string, unknown> }, ctx: { mcpReq: { signal: AbortSignal } }) =>
        events.serverRequest(method, request.params, ctx.mcpReq.signal)) as never);
    }
    const kinds: Record<string, ListKind> = {
      'notifications/tools/list_changed': 'tools',
      'notifications/resources/list_changed': 'resources',
      'notifications/prompts/list_changed': 'prompts',
    };
    for (const [method, kind] of Object.entries(kinds)) {
      client.setNotificationHandler(method as 'notifications/tools/list_changed', () => events.listChanged(kind));
    }
    client.setNotificationHandler('notifications/resources/updated', (n: { params: { uri: string } }) => events.resourceUpdated(n.params.uri));
    client.setNotificationHandler('notifications/message', (n: { params: { level: string; data: unknown; logger?: string } }) => {
      const data = typeof n.params.data === 'string' ? n.params.data : JSON.stringify(n.params.data);
      events.stderr(`[${n.params.level}${n.params.logger ? ` ${n.params.logger}` : ''}] ${data}`);
      events.log?.(n.params as LogMessage);
    });
    return client;
  }

  private async connectStdio(
    name: string,
    config: StdioServerConfig,
    events: UpstreamEvents,
    signal: AbortSignal,
    env: Record<string, string>,
    scrubError: (error: unknown) => unknown,
    scrubText?: ResultScrubber,
  ): Promise<UpstreamConnection> {
    signal.throwIfAborted();
    // The sandbox decides first: a server the policy may not start unconfined fails here, saying why.
    const sandboxed: SandboxedLaunch | undefined = await this.options.sandbox?.prepare(name, config, childEnvironment(env));
    for (const note of sandboxed?.notes ?? []) events.stderr(`[gatehouse] ${note}`);
    let child: LaunchedChild;
    try {
      // The resolved environment exists only in this call: the supervisor keeps the config with its references.
      const spawnAs = sandboxed
        ? {
            command: sandboxed.command,
            args: sandboxed.args,
            env: sandboxed.env,
            ...(sandboxed.cwd !== undefined ? { cwd: sandboxed.cwd } : {}),
            ...(sandboxed.traceFd !== undefined ? { traceFd: sandboxed.traceFd } : {}),
          }
        : undefined;
      child = await launchChild({ ...config, env }, (line) => events.stderr(line), spawnAs);
    } catch (error) {
      await sandboxed?.release();
      throw new Error(`could not start "${config.command}": ${errorMessage(error)}`);
    }
    if (sandboxed) {
      sandboxed.started(child.pid);
      void child.exited
        .then(() => sandboxed.release())
        .catch((error: unknown) => events.stderr(`[gatehouse] sandbox: cleaning up failed: ${errorMessage(error)}`));
    }
    // Governed requests skip the SDK client's request pipeline once the handshake is done (direct-requests.ts).
    const route: { direct?: DirectRequests } = {};
    const transport: LineTransport = new LineTransport(child.stdout, child.stdin, {
      maxMessageBytes: this.options.maxMessageBytes,
      responsesAfterNotifications: true,
      take: (message) => route.direct?.take(message) ?? false,
      onGarbage: (line, problem) => events.stderr(`[gatehouse] ignored stdout line (${problem}): ${line.slice(0, 200)}`),
      onOversized: (bytes, id, head) => {
        events.stderr(`[gatehouse] ignored a ${bytes}-byte message from the server: over the ${this.options.maxMessageBytes}-byte limit`);
        // The answer to a request of ours: fail that request now rather than at its timeout.
        if (id !== undefined && !/"method"\s*:/.test(head)) {
          const message = `the server answered with a message of ${bytes} bytes, over the ${this.options.maxMessageBytes}-byte limit; Gatehouse dropped it`;
          const answer = { jsonrpc: '2.0' as const, id, error: { code: RpcErrorCode.InternalError, message } };
          if (!route.direct?.take(answer)) transport.onmessage?.(answer);
        }
      },
    });
    // Set before the SDK client connects, which keeps it and calls its own after.
    transport.onclose = () => route.direct?.close();
    const client = this.newClient(events, Math.min(config.startupTimeoutMs, PROBE_TIMEOUT_CAP_MS), config.roots);
    const exited = child.exited.then(({ code, signal: sig }): UpstreamExit => {
      if (stoppedByUs) return { reason: 'stopped by Gatehouse', clean: true };
      if (sig) return { reason: `the server was killed by ${sig}`, clean: false };
      return { reason: `the server exited with code ${code}`, clean: code === 0 };
    });
    let stoppedByUs = false;
    const abort = (): void => void child.stop(config.stopGraceMs);
    signal.addEventListener('abort', abort, { once: true });
    try {
      await raceExit(client.connect(transport as Transport, {}), exited, signal);
      await raceExit(listenForChanges(client, events, config.startupTimeoutMs), exited, signal);
    } catch (error) {
      // A child that died during the handshake fails it with "connection closed"; how it exited says more.
      const exit = signal.aborted ? undefined : await Promise.race([exited, delay(250)]);
      stoppedByUs = true;
      await child.stop(config.stopGraceMs);
      throw exit ? new Error(`${exit.reason} before completing the MCP handshake`) : error;
    } finally {
      signal.removeEventListener('abort', abort);
    }
    const direct = directRequestsFor(client, transport);
    route.direct = direct?.requests;
    const connection = new SdkUpstreamConnection(
      client,
      child.pid,
      exited,
      async () => {
        stoppedByUs = true;
        await client.close().catch(() => undefined);
        await child.stop(config.stopGraceMs);
      },
      scrubError,
      scrubText,
      direct,
    );
    if (sandboxed) connection.confinement = sandboxed.confinement;
    return connection;
  }

  private async connectHttp(
    name: string,
    config: HttpServerConfig,
    events: UpstreamEvents,
    signal: AbortSignal,
    headers: Record<string, string | Redacted<string>>,
    scrubError: (error: unknown) => unknown,
    scrubText?: ResultScrubber,
  ): Promise<UpstreamConnection> {
    const plain: Record<string, string> = {};
    const secret: [string, Redacted<string>][] = [];
    for (const [k, v] of Object.entries(headers)) {
      if (typeof v === 'string') plain[k] = v;
      else secret.push([k, v]);
    }
    // The user's token, for a server that is an OAuth-protected resource: read per request, renewed when due, never stored here.
    const auth = this.options.auth?.provider(name, config);
    const transport = new StreamableHTTPClientTransport(new URL(config.url), {
      requestInit: { headers: plain },
      ...(auth
        ? {
            authProvider: { token: () => auth.token(), onUnauthorized: (ctx: { response: Response }) => auth.onUnauthorized(ctx.response) },
            // Step-up needs the person (a new consent in the browser): the call is refused with the command that grants it.
            onInsufficientScope: 'throw' as const,
          }
        : {}),
      // Secret header values are unwrapped per request, at the last moment, and never stored in the transport.
      ...(secret.length > 0
        ? {
            fetch: (url: string | URL, init?: RequestInit) => {
              const merged = new Headers(init?.headers);
              for (const [k, v] of secret) merged.set(k, v.unwrap());
              return fetch(url, { ...init, headers: merged });
            },
          }
        : {}),
      reconnectionOptions: { maxReconnectionDelay: 30_000, initialReconnectionDelay: 1000, reconnectionDelayGrowFactor: 2, maxRetries: 2 },
    });
    const client = this.newClient(events, Math.min(config.startupTimeoutMs, PROBE_TIMEOUT_CAP_MS));
    let settle!: (exit: UpstreamExit) => void;
    const exited = new Promise<UpstreamExit>((resolve) => (settle = resolve));
    let closedByUs = false;
    client.onclose = () =>
      settle(closedByUs ? { reason: 'stopped by Gatehouse', clean: true } : { reason: 'the remote server closed the connection', clean: false });
    const authErrors = auth ? signInErrors(auth) : undefined;
    try {
      await raceExit(client.connect(transport as Transport, {}), exited, signal);
      await raceExit(listenForChanges(client, events, config.startupTimeoutMs), exited, signal);
    } catch (error) {
      closedByUs = true;
      await client.close().catch(() => undefined);
      throw authErrors ? await authErrors(error) : error;
    }
    const connection = new SdkUpstreamConnection(
      client,
      undefined,
      exited,
      async () => {
        closedByUs = true;
        await client.close().catch(() => undefined);
        settle({ reason: 'stopped by Gatehouse', clean: true });
      },
      scrubError,
      scrubText,
    );
    if (auth && authErrors) {
      connection.auth = {
        errors: authErrors,
        identity: () => auth.identity(),
        // The server no longer honours the user's sign-in: this connection ends, and the server waits for a new sign-in.
        lost: (reason) => {
          // Settled before closing: the close would otherwise report an ordinary stop first.
          settle({ reason, clean: false, signIn: true });
          closedByUs = true;
          void client.close().catch(() => undefined);
        },
      };
    }
    return connection;
  }
}

/**
 * A 2026-07-28 server sends list changes only on a `subscriptions/listen` stream (there are no
 * unsolicited notifications in that era): open one for the lists the server says can change. The
 * notifications then reach the handlers `newClient` registered, as on a 2025-era connection.
 * A server that refuses the subscription still serves; its lists are then only read at connect.
 */
/**
 * What Gatehouse asks of a server once connected, so that clients hear what the server would tell
 * them directly: a 2025-era server is asked for log messages (clients filter them by their own
 * level); a 2026-07-28 server is asked for list changes on a subscription.
 */
async function listenForChanges(client: Client, events: UpstreamEvents, timeoutMs: number): Promise<void> {
  if (client.getProtocolEra() !== 'modern') {
    if (client.getServerCapabilities()?.logging) {
      await client.setLoggingLevel(UPSTREAM_LOG_LEVEL, { timeout: timeoutMs }).catch((error: unknown) => {
        events.stderr(`[gatehouse] the server refused logging/setLevel: ${errorMessage(error)}`);
      });
    }
    return;
  }
  const caps = client.getServerCapabilities() ?? {};
  const filter = {
    ...(caps.tools?.listChanged ? { toolsListChanged: true } : {}),
    ...(caps.prompts?.listChanged ? { promptsListChanged: true } : {}),
    ...(caps.resources?.listChanged ? { resourcesListChanged: true } : {}),
  };
  if (Object.keys(filter).length === 0) return;
  try {
    await client.listen(filter, { timeout: timeoutMs });
  } catch (error) {
    events.stderr(`[gatehouse] could not subscribe to list changes: ${errorMessage(error)}`);
  }
}

const identity = (error: unknown): unknown => error;

/**
 * The SDK's authorization failures as Gatehouse tells them: a 403 asking for more scope, and a
 * second 401 after a renewal (the server refuses even a fresh token), both become `sign_in_required`
 * errors naming the command; an error the auth provider threw already is one.
 */
function signInErrors(auth: UpstreamAuthProvider): (error: unknown) => Promise<unknown> {
  return async (error) => {
    if (InsufficientScopeError.isInstance(error)) {
      return auth.insufficientScope({
        ...(error.requiredScope ? { scope: error.requiredScope } : {}),
        ...(error.errorDescription ? { description: error.errorDescription } : {}),
      });
    }
    if (error instanceof SdkError && error.code === SdkErrorCode.ClientHttpAuthentication) return auth.refused();
    if (UnauthorizedError.isInstance(error)) return auth.refused();
    return error;
  };
}

interface ResultScrubber {
  active(): boolean;
  scrub(text: string): string;
}

/** A JSON value with every known secret value replaced, as text inside it; the same value when nothing matched. */
function scrubJson<T>(value: T, scrub: (text: string) => string): T {
  if (value === undefined) return value;
  const text = JSON.stringify(value);
  const clean = scrub(text);
  return clean === text ? value : (JSON.parse(clean) as T);
}

/**
 * Everything a server says outside an answer, scrubbed of known secret values: stderr lines, log
 * messages, the text of the requests it sends the client (elicitation, sampling), the URIs of its
 * resource updates. Answers, lists, progress and the server's own description are scrubbed where
 * the connection hands them out (`SdkUpstreamConnection`).
 */
function scrubbedEvents(events: UpstreamEvents, secrets: UpstreamSecrets): UpstreamEvents {
  const scrub = (text: string): string => secrets.scrub(text);
  return {
    ...events,
    stderr: (line) => events.stderr(scrub(line)),
    ...(events.log
      ? {
          log: (message: LogMessage) =>
            events.log!({ ...message, data: typeof message.data === 'string' ? scrub(message.data) : scrubJson(message.data ?? null, scrub) }),
        }
      : {}),
    serverRequest: (method, params, signal) => events.serverRequest(method, scrubJson(params, scrub), signal),
    listChanged: events.listChanged.bind(events),
    resourceUpdated: (uri) => events.resourceUpdated(scrub(uri)),
  };
}

/** Without a secret store, a `${secret:...}` reference cannot be honoured: refuse, never pass the literal. */
function refuseSecretReferences(config: ServerConfig): ServerConfig {
  const text = JSON.stringify(config);
  const match = /\$\{secret:([^}]*)\}/.exec(text);
  if (match) throw new Error(`the configuration refers to secret "${match[1]}", but no secret store is configured`);
  return config;
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(resolve, ms, undefined));
}

async function raceExit<T>(work: Promise<T>, exited: Promise<UpstreamExit>, signal: AbortSignal): Promise<T> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error('connect aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([
      work,
      exited.then((exit) => {
        throw new Error(`${exit.reason} before completing the MCP handshake`);
      }),
      aborted,
    ]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** The requests the chain forwards, which the direct path serves. */
const GOVERNED_METHODS = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete']);

/** The SDK client's internals the direct path uses: the accessors and seams the SDK keeps for its role classes. */
interface ClientInternals {
  _wireCodec?: () => Partial<ResultCodec> | undefined;
  _requestMessageId?: unknown;
  _envelopeOutbound?: (message: Record<string, unknown>) => Record<string, unknown>;
  _resolveNonCompleteResult?: (decoded: unknown, flow: Record<string, unknown>) => Promise<Record<string, unknown>>;
  _requestWithSchemaViaCodec?: (codec: unknown, request: Record<string, unknown>, schema: unknown, options: unknown) => Promise<Record<string, unknown>>;
}

type NonComplete = (decoded: unknown, method: string, params: Record<string, unknown>, options: Record<string, unknown>) => Promise<Record<string, unknown>>;

/**
 * The direct path for a connected client, when it can take one: the era codec, the request counter
 * and, on a 2026-07-28 connection, the outbound envelope and the multi-round-trip engine, all
 * reachable (`result-schema.ts` relies on the codec accessor too). Otherwise undefined, and every
 * request goes the SDK client's way.
 */
function directRequestsFor(client: Client, transport: LineTransport): { requests: DirectRequests; nonComplete?: NonComplete } | undefined {
  const internals = client as unknown as ClientInternals;
  const codec = internals._wireCodec?.();
  if (typeof codec?.decodeResult !== 'function' || typeof codec.validateResult !== 'function') return undefined;
  if (typeof internals._requestMessageId !== 'number') return undefined;
  // The SDK client's id counter, shared so that ids never collide (see DirectRequests).
  const nextId = (): number => (internals._requestMessageId as number)++;
  const wire = { send: (message: Record<string, unknown>) => transport.send(message as JSONRPCMessage) };
  if (client.getProtocolEra() !== 'modern') return { requests: new DirectRequests(wire, codec as ResultCodec, nextId) };
  const { _envelopeOutbound: envelope, _resolveNonCompleteResult: resolveNonComplete, _requestWithSchemaViaCodec: requestVia } = internals;
  if (typeof envelope !== 'function' || typeof resolveNonComplete !== 'function' || typeof requestVia !== 'function') return undefined;
  const requests = new DirectRequests(wire, codec as ResultCodec, nextId, (message) => envelope.call(client, message));
  // The flow the SDK client builds for a request it sent itself, so that its engine asks and retries as it always does.
  const nonComplete: NonComplete = (decoded, method, params, options) => {
    const schema = eraResultSchema(client, method);
    return resolveNonComplete.call(client, decoded, {
      codec,
      request: { method, params },
      resultSchema: schema,
      options,
      flowStartedAt: Date.now(),
      retry: (retried: Record<string, unknown> | undefined, legOptions: unknown) =>
        requestVia.call(client, codec, retried === undefined ? { method } : { method, params: retried }, schema, legOptions),
    });
  };
  return { requests, nonComplete };
}

class SdkUpstreamConnection implements UpstreamConnection {
  /** Each SDK request's signal, linked to Gatehouse's stop (see linked-signals.ts). */
  private readonly stoppable = new LinkedSignals();
  /** For a server the user signed in to: how its authorization failures are told, and who it knows the user as. */
  auth: { errors(error: unknown): Promise<unknown>; identity(): UpstreamIdentity | undefined; lost(reason: string): void } | undefined;
  readonly protocolVersion: string | undefined;
  readonly serverInfo: { name: string; version: string } | undefined;
  readonly capabilities: Record<string, unknown>;
  readonly instructions: string | undefined;
  /** How the server was started: confined, unconfined (and why). */
  confinement: ConfinementStatus | undefined;

  constructor(
    private readonly client: Client,
    readonly pid: number | undefined,
    readonly exited: Promise<UpstreamExit>,
    private readonly closeFn: () => Promise<void>,
    private readonly scrubError: (error: unknown) => unknown = (error) => error,
    /** Known secret values out of results too: a server that echoes its key must not hand it to the agent. */
    private readonly scrubText?: ResultScrubber,
    /** Governed requests without the SDK client's request pipeline (a stdio server), and who resolves a server's request for input. */
    private readonly direct?: { requests: DirectRequests; nonComplete?: NonComplete },
  ) {
    this.protocolVersion = client.getNegotiatedProtocolVersion();
    const info = client.getServerVersion();
    // What the server says of itself reaches status, the console and every client: it is scrubbed like its answers.
    this.serverInfo = info ? this.clean({ name: info.name, version: info.version }) : undefined;
    this.capabilities = (client.getServerCapabilities() ?? {}) as Record<string, unknown>;
    const instructions = client.getInstructions();
    this.instructions = instructions === undefined ? undefined : this.clean(instructions);
  }

  /** A value with known secret values replaced (when any is known). */
  private clean<T>(value: T): T {
    const scrubber = this.scrubText;
    if (!scrubber?.active()) return value;
    return typeof value === 'string' ? (scrubber.scrub(value) as T) : scrubJson(value, (text) => scrubber.scrub(text));
  }

  async listAll(signal: AbortSignal): Promise<UpstreamLists> {
    const caps = this.capabilities;
    const pages = async <T>(method: string, key: string): Promise<T[]> => {
      const items: T[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const result = (await this.client.request({ method, params: cursor ? { cursor } : {} } as never, { signal, timeout: 30_000 } as never)) as Record<
          string,
          unknown
        >;
        const list = result[key];
        if (Array.isArray(list)) items.push(...(list as T[]));
        cursor = typeof result.nextCursor === 'string' && result.nextCursor !== '' ? result.nextCursor : undefined;
        if (!cursor) break;
      }
      return items;
    };
    const [tools, resources, resourceTemplates, prompts] = await Promise.all([
      caps.tools ? pages<McpItem & { name: string }>('tools/list', 'tools') : [],
      caps.resources ? pages<McpItem & { uri: string; name: string }>('resources/list', 'resources') : [],
      caps.resources ? pages<McpItem & { uriTemplate: string; name: string }>('resources/templates/list', 'resourceTemplates').catch(() => []) : [],
      caps.prompts ? pages<McpItem & { name: string }>('prompts/list', 'prompts') : [],
    ]);
    // Names, descriptions and schemas reach every client, the console and the pairing page: scrubbed before anything keeps them.
    return this.clean({ tools, resources, resourceTemplates, prompts });
  }

  async request(method: string, params: Record<string, unknown>, options: ForwardOptions): Promise<Record<string, unknown>> {
    // Gatehouse stopping cancels a request as its caller would: the direct path listens to `stop` itself, the SDK client's
    // requests (and the direct path's further legs) get a signal linked to both.
    let link: Linked | undefined;
    try {
      const onProgress = options.onProgress;
      const requestOptions = {
        signal: options.signal,
        timeout: options.timeoutMs,
        resetTimeoutOnProgress: true,
        maxTotalTimeout: options.timeoutMs * 4,
        // A progress message is text from the server too.
        onprogress: onProgress ? (progress: Parameters<typeof onProgress>[0]) => onProgress(this.clean(progress)) : undefined,
      };
      if (this.direct && GOVERNED_METHODS.has(method)) {
        const { requests, nonComplete } = this.direct;
        const result = await requests.request(method, params, {
          signal: options.signal,
          stop: options.stop,
          timeoutMs: options.timeoutMs,
          maxTotalTimeoutMs: requestOptions.maxTotalTimeout,
          ...(requestOptions.onprogress ? { onProgress: requestOptions.onprogress } : {}),
          ...(nonComplete
            ? {
                onNonComplete: (decoded) => {
                  if (options.stop) link ??= this.stoppable.link(options.signal, options.stop);
                  return nonComplete(decoded, method, params, { ...requestOptions, signal: link?.signal ?? options.signal });
                },
              }
            : {}),
        });
        return this.clean(result);
      }
      if (options.stop) {
        link = this.stoppable.link(options.signal, options.stop);
        requestOptions.signal = link.signal;
      }
      const schema = eraResultSchema(this.client, method);
      const result = schema
        ? await this.client.request({ method, params } as never, schema, requestOptions as never)
        : await this.client.request({ method, params } as never, requestOptions as never);
      return this.clean(result as Record<string, unknown>);
    } catch (error) {
      const told = this.auth ? await this.auth.errors(error) : error;
      // A refused sign-in ends the connection; a step-up (more scope) leaves it serving the tools it may.
      if (this.auth && isSignInRequired(told) && !InsufficientScopeError.isInstance(error)) this.auth.lost(told.message);
      throw this.scrubError(await this.explain(told, options.timeoutMs, options.signal));
    } finally {
      link?.done();
    }
  }

  upstreamIdentity(): UpstreamIdentity | undefined {
    return this.auth?.identity();
  }

  /** The SDK's own failures ("Request timed out", "Connection closed") told in terms of this server. */
  private async explain(error: unknown, timeoutMs: number, signal: AbortSignal): Promise<unknown> {
    if (!(error instanceof SdkError)) return error;
    // The SDK reports a request aborted through its signal with the timeout code too.
    if (signal.aborted) return new Error('the client cancelled the request; Gatehouse cancelled it upstream');
    if (error.code === SdkErrorCode.RequestTimeout) {
      return new Error(`the server did not answer within its request timeout (${timeoutMs} ms); Gatehouse cancelled the request`);
    }
    if (error.code === SdkErrorCode.ConnectionClosed) {
      const exit = await Promise.race([this.exited, delay(250)]);
      return new Error(exit ? `the server went away during the request: ${exit.reason}` : 'the connection to the server closed during the request');
    }
    return error;
  }

  async ping(timeoutMs: number): Promise<void> {
    try {
      // The 2026-07-28 revision has no ping; `server/discover` is its cheapest round trip.
      if (this.client.getProtocolEra() === 'modern') await this.client.discover({ timeout: timeoutMs });
      else await this.client.ping({ timeout: timeoutMs });
    } catch (error) {
      const told = this.auth ? await this.auth.errors(error) : error;
      if (this.auth && isSignInRequired(told)) this.auth.lost(told.message);
      throw told;
    }
  }

  close(): Promise<void> {
    return this.closeFn();
  }
}
