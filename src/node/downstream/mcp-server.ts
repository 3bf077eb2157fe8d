/**
 * One downstream MCP server instance, as the SDK builds it for a socket connection or an HTTP
 * request, answering from the gateway. Everything governed goes through `Gateway`; this file only
 * translates between the wire and the gateway's values.
 */
import { ProtocolError, Server } from '@modelcontextprotocol/server';
import { RpcErrorCode } from '../../common/errors.js';
import type { CallContext, Outcome } from '../../core/chain.js';
import type { Gateway, Scope } from '../../core/gateway.js';
import { LOG_LEVEL_META_KEY, MCP_LOG_LEVELS, type McpLogLevel } from '../../core/ports.js';
import type { Principal } from '../../core/principal.js';
import type { ListTexts } from './wire-json.js';
import { CALL_TOOL, FIND_TOOLS, parseCallRequest, parseFindRequest, type ToolSearch } from '../../core/search/view.js';

/** The search view's choices for one session (docs/search.md); absent: the aggregate, or one server. */
export interface SearchViewSession {
  kind: 'search';
  /** Tools listed beside find_tools and call_tool, as the aggregate names them. */
  pinned: readonly string[];
}

export interface DownstreamSession {
  principal: Principal;
  scope: Scope;
  /** The protocol era this instance serves. */
  era: 'legacy' | 'modern';
  /** Counts calls for `gatehouse status`. */
  onCall?: () => void;
  /** Resource subscriptions this session holds, by URI (2025-era push). */
  subscriptions?: Set<string>;
  /** The least severe log level the client asked for with `logging/setLevel`; no logs until it asks. */
  logLevel?: McpLogLevel;
  /** The search view instead of the aggregate. */
  view?: SearchViewSession;
  /**
   * A bridge the person has not paired yet: it lists nothing and calls nothing, and is told where
   * to answer; once refused, every request gets the reason. Absent once paired (and for everyone else).
   */
  pairing?: { state: 'pending'; client: string; code: string; deadline: string; where: string } | { state: 'refused'; code: string; reason: string };
}

/** What a pending session says: where the person answers, and the code to check. */
export function pendingPairingText(pairing: { client: string; code: string; deadline: string; where: string }): string {
  return (
    `Gatehouse is waiting for you to pair "${pairing.client}": answer on ${pairing.where} and check that it shows the code ${pairing.code} ` +
    `(until ${pairing.deadline}). Until then this client sees no tools; they appear as soon as you approve.`
  );
}

/** True when a message at `level` should reach a client that asked for `minimum`. */
export function admitsLevel(minimum: McpLogLevel | undefined, level: string): boolean {
  if (minimum === undefined) return false;
  const at = MCP_LOG_LEVELS.indexOf(level as McpLogLevel);
  return at >= 0 && at >= MCP_LOG_LEVELS.indexOf(minimum);
}

/** In the aggregate, a server's log messages are named after it; alone, they keep their logger. */
export function loggerName(scope: Scope, server: string, logger: string | undefined): string | undefined {
  if (scope.server !== undefined) return logger;
  return logger ? `${server}/${logger}` : server;
}

export interface DownstreamServerOptions {
  version: string;
  instructions?: string;
  /** The daemon's kept list text: `tools/list` answers are written from it (`wire-json.ts`). */
  lists: ListTexts;
  /** Answers the search view's `find_tools`; a session in the search view needs it. */
  search?: ToolSearch;
}

/** What a client in the search view is told at the start, so that an agent knows how to use it. */
export const SEARCH_VIEW_INSTRUCTIONS =
  'Gatehouse shows you two tools instead of every tool at once: find_tools finds the tools for a task (describe it in plain words) and ' +
  'returns their definitions; call_tool runs one of them by name with its arguments.';

interface RequestCtx {
  mcpReq: {
    signal: AbortSignal;
    _meta?: Record<string, unknown>;
    /** The 2026-07-28 envelope the SDK lifted out of `_meta` (keyed by the full `io.modelcontextprotocol/` names). */
    envelope?: Record<string, unknown>;
    notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>;
    send: (request: { method: string; params?: Record<string, unknown> }, options?: { signal?: AbortSignal }) => Promise<unknown>;
  };
  /** Over HTTP: the request as it arrived (its signal aborts when the connection closes early). */
  http?: { req?: Request };
}
interface RequestWithParams {
  params?: Record<string, unknown>;
}

/**
 * What a governed request needs of the exchange that carries it, whoever parsed it: the SDK's
 * request pipeline (`sdkRequest`), or a transport that serves `tools/call` itself (`direct-calls.ts`).
 */
export interface CallRequest {
  /** Aborted when the client cancels the request or its connection ends. */
  signal: AbortSignal;
  /** The request's `_meta` as its handler sees it: without the 2026-07-28 envelope. */
  meta?: Record<string, unknown>;
  /** The 2026-07-28 envelope lifted out of `_meta` (protocol version, client info and capabilities, log level), keyed by the full `io.modelcontextprotocol/` names. */
  envelope?: Record<string, unknown>;
  /** Sends a notification tied to this request (progress, logs). */
  notify(method: string, params: Record<string, unknown>): Promise<void>;
  /** Sends a server-to-client request tied to this one (2025 era: elicitation, sampling, roots) and waits for its result. */
  send(method: string, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<unknown>;
  /** Over HTTP: aborted when the request's connection closes before its answer is written (made when asked for). */
  gone?: () => AbortSignal;
}

/** The SDK's request context as a `CallRequest`. */
function sdkRequest(ctx: RequestCtx): CallRequest {
  const { mcpReq } = ctx;
  const req = ctx.http?.req;
  return {
    signal: mcpReq.signal,
    ...(mcpReq._meta ? { meta: mcpReq._meta } : {}),
    ...(mcpReq.envelope ? { envelope: mcpReq.envelope } : {}),
    notify: (method, params) => mcpReq.notify({ method, params }),
    send: (method, params, signal) => mcpReq.send({ method, ...(params ? { params } : {}) }, { signal }),
    ...(req ? { gone: () => req.signal } : {}),
  };
}

const SERVER_CAPABILITIES = {
  logging: {},
  tools: { listChanged: true },
  resources: { listChanged: true, subscribe: true },
  prompts: { listChanged: true },
  completions: {},
};

/**
 * What a server answers for: one session for its whole life (a socket connection, a 2025-era HTTP
 * session), or, for a server kept across 2026-07-28 requests (http-listener.ts), the session of the
 * request it serves now. Each handler takes the session once, when it starts, and the binding counts
 * the handlers still running, so that the listener hands a kept server to the next request only when
 * nothing of the previous one can still speak through it.
 */
export interface SessionBinding {
  session: DownstreamSession;
  /** Handlers started and not yet settled. */
  running: number;
  /** The last running handler settled. */
  onIdle?: () => void;
}

/**
 * A downstream server, and its `tools/call` as the SDK's handler runs it (pairing, the binding's
 * count, the search view, the gateway), for a transport that parses well-formed calls itself.
 */
export interface DownstreamServer extends Server {
  callTool(params: Record<string, unknown>, request: CallRequest): Promise<Record<string, unknown>>;
}

export function createDownstreamServer(gateway: Gateway, binding: SessionBinding, options: DownstreamServerOptions): DownstreamServer {
  // What a server is built with (its name, view and instructions) is the same for every session it serves: the listener keeps one per client, scope and view.
  const session = binding.session;
  const search = session.view?.kind === 'search' ? options.search : undefined;
  if (session.view?.kind === 'search' && !search) throw new Error('a search-view session needs the tool search');
  const pending = session.pairing?.state === 'pending' ? session.pairing : undefined;
  const instructions = pending ? pendingPairingText(pending) : (options.instructions ?? (search ? SEARCH_VIEW_INSTRUCTIONS : undefined));
  const server = new Server(
    { name: session.scope.server ? `gatehouse/${session.scope.server}` : 'gatehouse', version: options.version },
    { capabilities: SERVER_CAPABILITIES, ...(instructions ? { instructions } : {}) },
  );
  const { scope } = session;
  const base = server.setRequestHandler.bind(server) as unknown as (
    method: string,
    handler: (request: RequestWithParams, ctx: RequestCtx) => Promise<unknown>,
  ) => void;
  /**
   * Registers a handler that runs for the session bound when it starts. While pairing is pending, lists are empty and
   * everything else is refused with where to answer; once refused, everything is. The principal is read when the
   * handler starts: a pending session's is replaced once the person pairs the client.
   */
  const on = (
    method: string,
    handler: (request: RequestWithParams, ctx: CallRequest, session: DownstreamSession, who: Principal) => Promise<unknown>,
    whilePending?: () => unknown,
  ): ((request: RequestWithParams, ctx: CallRequest) => Promise<unknown>) => {
    const run = async (request: RequestWithParams, ctx: CallRequest): Promise<unknown> => {
      const current = binding.session;
      const pairing = current.pairing;
      // `data.reason` is the stable code (as for every denial), the message the words for people.
      if (pairing?.state === 'refused') throw new ProtocolError(RpcErrorCode.Unauthorized, pairing.reason, { reason: pairing.code });
      if (pairing?.state === 'pending') {
        if (whilePending) return whilePending();
        throw new ProtocolError(RpcErrorCode.Unauthorized, pendingPairingText(pairing), { reason: 'pairing_pending' });
      }
      binding.running++;
      try {
        return await handler(request, ctx, current, current.principal);
      } finally {
        if (--binding.running === 0) binding.onIdle?.();
      }
    };
    base(method, (request, ctx) => run(request, sdkRequest(ctx)));
    return run;
  };
  if (pending) {
    // A 2025-era client hears where to answer in its log too (it may not show the instructions).
    server.oninitialized = () => {
      if (session.pairing?.state === 'pending')
        void server.sendLoggingMessage({ level: 'warning', logger: 'gatehouse', data: pendingPairingText(session.pairing) }).catch(() => undefined);
    };
  }

  // The filter runs on every list; each item's JSON is kept between lists (wire-json.ts).
  on(
    'tools/list',
    async (_request, _ctx, s, who) => ({ tools: options.lists.mark(search ? search.listTools(who, s.view!.pinned) : gateway.listTools(who, scope)) }),
    () => ({ tools: [] }),
  );
  on(
    'prompts/list',
    async (_request, _ctx, _s, who) => ({ prompts: gateway.listPrompts(who, scope) }),
    () => ({ prompts: [] }),
  );
  on(
    'resources/list',
    async (_request, _ctx, _s, who) => ({ resources: gateway.listResources(who, scope) }),
    () => ({ resources: [] }),
  );
  on(
    'resources/templates/list',
    async (_request, _ctx, _s, who) => ({ resourceTemplates: gateway.listResourceTemplates(who, scope) }),
    () => ({ resourceTemplates: [] }),
  );

  on(
    'logging/setLevel',
    async (request, _ctx, s) => {
      const level = stringParam(request.params ?? {}, 'level');
      if (!(MCP_LOG_LEVELS as readonly string[]).includes(level)) {
        throw new ProtocolError(RpcErrorCode.InvalidParams, `params.level must be one of ${MCP_LOG_LEVELS.join(', ')}`);
      }
      s.logLevel = level as McpLogLevel;
      return {};
    },
    () => ({}),
  );

  const callTool = on('tools/call', async (request, ctx, s, who) => {
    s.onCall?.();
    const params = request.params ?? {};
    let name = stringParam(params, 'name');
    let args = objectParam(params, 'arguments');
    if (search && name === FIND_TOOLS) {
      const parsed = parseFindRequest(args);
      if (!parsed.ok) return toolError(parsed.problem);
      const tools = search.find(who, parsed.request);
      return { content: [{ type: 'text', text: JSON.stringify({ tools }) }], structuredContent: { tools } };
    }
    if (search && name === CALL_TOOL) {
      const parsed = parseCallRequest(args);
      if (!parsed.ok) return toolError(parsed.problem);
      // From here on it is a direct call of the named tool in the aggregate: the same chain, the same audit record, the same errors.
      name = parsed.name;
      args = parsed.arguments;
    }
    const context = callContext(ctx, s);
    const outcome = await gateway.callTool(who, scope, name, args, forwardedMeta(params), context);
    await context.settled();
    return answer(outcome);
  });
  on('prompts/get', async (request, ctx, s, who) => {
    s.onCall?.();
    const params = request.params ?? {};
    const context = callContext(ctx, s);
    const outcome = await gateway.getPrompt(who, scope, stringParam(params, 'name'), objectParam(params, 'arguments'), forwardedMeta(params), context);
    await context.settled();
    return answer(outcome);
  });
  on('resources/read', async (request, ctx, s, who) => {
    s.onCall?.();
    const params = request.params ?? {};
    const uri = stringParam(params, 'uri');
    const context = callContext(ctx, s);
    const outcome = await gateway.readResource(who, scope, uri, forwardedMeta(params), context);
    await context.settled();
    if (outcome.kind === 'denied' && outcome.code === 'unknown_resource') {
      throw new ProtocolError(RpcErrorCode.InvalidParams, outcome.reason, { uri });
    }
    return answer(outcome);
  });
  on('completion/complete', async (request, ctx, s, who) => {
    s.onCall?.();
    const params = request.params ?? {};
    const context = callContext(ctx, s);
    const outcome = await gateway.complete(who, scope, params, forwardedMeta(params), context);
    await context.settled();
    // Nothing is completed for an item the caller cannot see, exactly as for one that does not exist.
    if (outcome.kind === 'denied' && (outcome.code === 'unknown_prompt' || outcome.code === 'unknown_resource')) {
      return { completion: { values: [], hasMore: false } };
    }
    return answer(outcome);
  });
  on('resources/subscribe', async (request, _ctx, s, who) => {
    const uri = stringParam(request.params ?? {}, 'uri');
    if (!gateway.resourceServer(who, scope, uri)) throw new ProtocolError(RpcErrorCode.InvalidParams, `Resource not found: ${uri}`, { uri });
    s.subscriptions?.add(uri);
    return {};
  });
  on(
    'resources/unsubscribe',
    async (request, _ctx, s) => {
      s.subscriptions?.delete(stringParam(request.params ?? {}, 'uri'));
      return {};
    },
    () => ({}),
  );
  return Object.assign(server, {
    callTool: async (params: Record<string, unknown>, request: CallRequest) => (await callTool({ params }, request)) as Record<string, unknown>,
  });
}

/** A tool's own error, which the model reads and can correct (the request itself was well-formed). */
function toolError(problem: string): Record<string, unknown> {
  return { content: [{ type: 'text', text: problem }], isError: true };
}

function stringParam(params: Record<string, unknown>, key: string): string {
  const value = params[key];
  if (typeof value !== 'string' || value === '') throw new ProtocolError(RpcErrorCode.InvalidParams, `params.${key} must be a non-empty string`);
  return value;
}

function objectParam(params: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(RpcErrorCode.InvalidParams, `params.${key} must be an object`);
  }
  return value as Record<string, unknown>;
}

/**
 * `_meta` keys that describe this hop (protocol version, client info and capabilities, the
 * progress token) are Gatehouse's to speak upstream, not the client's; the rest pass through.
 */
function forwardedMeta(params: Record<string, unknown>): Record<string, unknown> | undefined {
  const meta = params._meta;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'progressToken' || key.startsWith('io.modelcontextprotocol/')) continue;
    out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The call's side of the session. Notifications sent while the call runs (progress, logs) are
 * tracked, and `settled()` waits for them, so that none is overtaken by the result (after which
 * a transport may close the call's stream).
 */
function callContext(ctx: CallRequest, session: DownstreamSession): CallContext & { settled(): Promise<void> } {
  const pending = new Set<Promise<void>>();
  const notify = (method: string, params: Record<string, unknown>): void => {
    const sent = ctx.notify(method, params).catch(() => undefined);
    pending.add(sent);
    void sent.finally(() => pending.delete(sent));
  };
  const context: CallContext & { settled(): Promise<void> } = {
    signal: ctx.signal,
    settled: async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
  // Over HTTP, the request's own signal: aborted when its connection closes before the answer is written. Read when asked
  // for (only a call that asks a person is), since a 2025-era session makes it then (http-session.ts).
  const gone = ctx.gone;
  if (gone) Object.defineProperty(context, 'gone', { enumerable: true, get: gone });
  const token = ctx.meta?.progressToken;
  if (typeof token === 'string' || typeof token === 'number') {
    context.onProgress = (p) =>
      notify('notifications/progress', {
        progressToken: token,
        progress: p.progress,
        ...(p.total !== undefined ? { total: p.total } : {}),
        ...(p.message !== undefined ? { message: p.message } : {}),
      });
  }
  // A 2026-07-28 request names its own log level; a 2025-era session set one with logging/setLevel.
  const requested = ctx.envelope?.[LOG_LEVEL_META_KEY];
  const level =
    session.era === 'modern' && typeof requested === 'string' && (MCP_LOG_LEVELS as readonly string[]).includes(requested)
      ? (requested as McpLogLevel)
      : session.logLevel;
  if (level) context.logLevel = level;
  context.log = (message, server) => {
    if (!admitsLevel(level, message.level)) return;
    const logger = loggerName(session.scope, server, message.logger);
    notify('notifications/message', { level: message.level, ...(logger !== undefined ? { logger } : {}), data: message.data });
  };
  if (session.era === 'legacy') {
    context.sendRequest = async (method, params, signal) => (await ctx.send(method, params, signal)) as Record<string, unknown>;
  } else {
    context.sendRequest = async (method) => {
      throw new Error(`the calling client speaks the 2026-07-28 protocol, which has no server-to-client ${method} request during a call`);
    };
  }
  return context;
}

/** Outcome → result, or → the JSON-RPC error the client sees. */
function answer(outcome: Outcome): Record<string, unknown> {
  switch (outcome.kind) {
    case 'ok':
      return outcome.result;
    case 'denied':
      if (outcome.code === 'unknown_tool' || outcome.code === 'unknown_prompt') {
        throw new ProtocolError(RpcErrorCode.InvalidParams, outcome.reason);
      }
      throw new ProtocolError(outcome.code === 'server_unavailable' ? RpcErrorCode.ServerUnavailable : RpcErrorCode.Denied, outcome.reason, {
        ...outcome.data,
        reason: outcome.code,
        stage: outcome.stage,
      });
    case 'failed':
      throw new ProtocolError(outcome.rpcCode ?? RpcErrorCode.InternalError, outcome.error);
  }
}
