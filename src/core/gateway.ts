/**
 * The gateway: what every downstream session (socket, HTTP, in-process) talks to. It keeps the
 * aggregate and single-server views of the ready servers, filters lists per principal, runs every
 * governed request through the one chain, and routes server-to-client requests back to the session
 * whose call caused them.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../common/errors.js';
import { buildView, routeResource, type AggregateView, type Route } from './aggregate.js';
import { chain, denied, type CallContext, type CallKind, type GovernedCall, type Handler, type Outcome } from './chain.js';
import type { ApprovalPort, IdentityPort, PolicyPort, QuotaPort } from './governance.js';
import type { AuditSink, Clock, ListKind, LogMessage, Logger, PromptItem, ResourceItem, ResourceTemplateItem, ToolItem, UpstreamConnection, UpstreamLists } from './ports.js';
import type { Principal } from './principal.js';
import { approvalStage, auditStage, identityStage, policyStage, quotaStage, upstreamErrorCode, upstreamErrorMessage, upstreamHandler } from './stages.js';

/** What the gateway needs to know about servers; the supervisor provides it. */
export interface ServerDirectory {
  /** Cached lists of every ready server. */
  readyLists(): ReadonlyMap<string, UpstreamLists>;
  /** The live connection of a ready server, with its request timeout. */
  connection(server: string): { connection: UpstreamConnection; timeoutMs: number } | undefined;
}

export interface GatewayDeps {
  directory: ServerDirectory;
  audit: AuditSink;
  clock: Clock;
  logger: Logger;
  identity: IdentityPort;
  policy: PolicyPort;
  quota: QuotaPort;
  approval: ApprovalPort;
}

/** Which items a session sees: every server's (the aggregate) or one server's under its own names. */
export interface Scope {
  server?: string;
}

export type ChangeListener = (kind: ListKind, scope: Scope) => void;
/** A log message no single call can be credited with, for every session that asked for logs. */
export type LogListener = (server: string, message: LogMessage) => void;

interface InFlight {
  context: CallContext;
}

export class Gateway {
  private aggregate: AggregateView;
  /** The aggregate's tools by exposed name, for the search view's checks. */
  private aggregateTools = new Map<string, ToolItem>();
  private singles = new Map<string, AggregateView>();
  private listeners = new Set<ChangeListener>();
  private logListeners = new Set<LogListener>();
  private inFlight = new Map<string, Set<InFlight>>();
  private readonly handle: Handler;

  constructor(private readonly deps: GatewayDeps) {
    this.aggregate = buildView(new Map());
    this.handle = chain(
      // Outermost, so that every attempt is recorded, whatever a later stage decides or throws.
      auditStage(deps.audit, deps.clock),
      // Who is asking comes before anything that depends on who is asking.
      identityStage(deps.identity),
      // Policy before quota: a call that policy refuses spends nothing.
      policyStage(deps.policy),
      // Quota before approval: never ask a person about a call that would be refused anyway.
      quotaStage(deps.quota),
      approvalStage(deps.approval),
      // Secrets are injected where connections are made (spawn env, upstream headers), never into call state.
    )(upstreamHandler((server) => deps.directory.connection(server)));
    this.refresh();
  }

  /**
   * Rebuilds the views from the directory and tells listeners which lists changed. Call when a server's lists change or it comes or goes.
   * With `policyChanged` (a new policy bundle, changed local restrictions), what each principal may see can change while the views
   * do not, so every list of every view is announced as changed.
   */
  refresh(options: { policyChanged?: boolean } = {}): void {
    const force = options.policyChanged === true;
    const lists = this.deps.directory.readyLists();
    const previous = this.aggregate;
    this.aggregate = buildView(lists);
    this.aggregateTools = new Map(this.aggregate.tools.map((tool) => [tool.name, tool]));
    for (const s of this.aggregate.skipped) {
      this.deps.logger.log('warn', 'catalog.item_skipped', { server: s.server, kind: s.kind, name: s.name, reason: s.reason });
    }
    this.notifyChanges(previous, this.aggregate, {}, force);
    const names = new Set([...lists.keys(), ...this.singles.keys()]);
    for (const server of names) {
      const before = this.singles.get(server) ?? buildView(new Map(), server);
      const after = buildView(lists, server);
      this.singles.set(server, after);
      this.notifyChanges(before, after, { server }, force);
      if (!lists.has(server)) this.singles.delete(server);
    }
  }

  private notifyChanges(before: AggregateView, after: AggregateView, scope: Scope, force = false): void {
    for (const kind of ['tools', 'prompts', 'resources'] as const) {
      if (force || before.fingerprints[kind] !== after.fingerprints[kind]) {
        for (const listener of this.listeners) {
          try {
            listener(kind, scope);
          } catch (error) {
            this.deps.logger.log('error', 'gateway.listener_failed', { error: errorMessage(error) });
          }
        }
      }
    }
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private view(scope: Scope): AggregateView {
    if (scope.server === undefined) return this.aggregate;
    return this.singles.get(scope.server) ?? buildView(new Map(), scope.server);
  }

  /** True when a single-server scope names a configured-and-ready or at least known server. */
  hasServer(server: string): boolean {
    return this.singles.has(server);
  }

  listTools(principal: Principal, scope: Scope): ToolItem[] {
    const view = this.view(scope);
    return view.tools.filter((tool) => this.visible(principal, view.toolRoutes.get(tool.name), 'tool'));
  }

  /** The aggregate's tool of this name, if this principal may see it now (the search view checks each hit and pinned tool with it). */
  visibleTool(principal: Principal, name: string): ToolItem | undefined {
    const tool = this.aggregateTools.get(name);
    return tool && this.visible(principal, this.aggregate.toolRoutes.get(name), 'tool') ? tool : undefined;
  }

  listPrompts(principal: Principal, scope: Scope): PromptItem[] {
    const view = this.view(scope);
    return view.prompts.filter((prompt) => this.visible(principal, view.promptRoutes.get(prompt.name), 'prompt'));
  }

  listResources(principal: Principal, scope: Scope): ResourceItem[] {
    const view = this.view(scope);
    return view.resources.filter((resource) => this.visible(principal, view.resourceRoutes.get(resource.uri), 'resource'));
  }

  listResourceTemplates(principal: Principal, scope: Scope): ResourceTemplateItem[] {
    const view = this.view(scope);
    return view.resourceTemplates.filter((template, i) => this.visible(principal, view.templateRoutes[i], 'resource'));
  }

  private visible(principal: Principal, route: Route | undefined, kind: 'tool' | 'prompt' | 'resource'): boolean {
    if (!route) return false;
    try {
      return this.deps.policy.visible(principal, route.server, kind, route.name);
    } catch (error) {
      // Fail closed: an item whose visibility cannot be decided is hidden.
      this.deps.logger.log('error', 'policy.visible_failed', { server: route.server, error: errorMessage(error) });
      return false;
    }
  }

  callTool(principal: Principal, scope: Scope, name: string, args: Record<string, unknown> | undefined, meta: Record<string, unknown> | undefined, context: CallContext): Promise<Outcome> {
    const view = this.view(scope);
    const route = view.toolRoutes.get(name);
    const hidden = !route || !this.visible(principal, route, 'tool');
    return this.run('tool', principal, hidden ? undefined : route, name, args, meta, context, 'unknown_tool', `Unknown tool: ${name}`);
  }

  getPrompt(principal: Principal, scope: Scope, name: string, args: Record<string, unknown> | undefined, meta: Record<string, unknown> | undefined, context: CallContext): Promise<Outcome> {
    const view = this.view(scope);
    const route = view.promptRoutes.get(name);
    const hidden = !route || !this.visible(principal, route, 'prompt');
    return this.run('prompt', principal, hidden ? undefined : route, name, args, meta, context, 'unknown_prompt', `Unknown prompt: ${name}`);
  }

  readResource(principal: Principal, scope: Scope, uri: string, meta: Record<string, unknown> | undefined, context: CallContext): Promise<Outcome> {
    const view = this.view(scope);
    const route = routeResource(view, uri);
    const hidden = !route || !this.visible(principal, route, 'resource');
    return this.run('resource', principal, hidden ? undefined : route, uri, undefined, meta, context, 'unknown_resource', `Resource not found: ${uri}`);
  }

  private async run(
    kind: CallKind,
    principal: Principal,
    route: Route | undefined,
    exposed: string,
    args: Record<string, unknown> | undefined,
    meta: Record<string, unknown> | undefined,
    context: CallContext,
    unknownCode: 'unknown_tool' | 'unknown_prompt' | 'unknown_resource',
    unknownReason: string,
  ): Promise<Outcome> {
    const call: GovernedCall = {
      id: randomUUID(),
      kind,
      server: route?.server ?? '',
      name: route?.name ?? exposed,
      principal,
      context,
      facts: {},
    };
    if (args !== undefined) call.arguments = args;
    if (meta !== undefined) call.meta = meta;
    if (!route) {
      // Unknown and hidden items get the same answer, and both are audited.
      return chain(auditStage(this.deps.audit, this.deps.clock))(async () => denied('policy', unknownCode, unknownReason))(call);
    }
    const entry: InFlight = { context };
    let set = this.inFlight.get(route.server);
    if (!set) this.inFlight.set(route.server, (set = new Set()));
    set.add(entry);
    try {
      return await this.handle(call);
    } finally {
      set.delete(entry);
    }
  }

  /** Completion requests follow the prompt or template they complete; nothing is completed for an item the caller cannot see. */
  async complete(principal: Principal, scope: Scope, params: Record<string, unknown>, context: CallContext): Promise<Record<string, unknown>> {
    const ref = params.ref as { type?: string; name?: string; uri?: string } | undefined;
    const view = this.view(scope);
    let route: Route | undefined;
    let forwardedRef: Record<string, unknown> | undefined;
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      route = view.promptRoutes.get(ref.name);
      if (route && this.visible(principal, route, 'prompt')) forwardedRef = { ...ref, name: route.name };
    } else if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const index = view.resourceTemplates.findIndex((t) => t.uriTemplate === ref.uri);
      route = index >= 0 ? view.templateRoutes[index] : routeResource(view, ref.uri);
      if (route && this.visible(principal, route, 'resource')) forwardedRef = { ...ref };
    }
    if (!route || !forwardedRef) return { completion: { values: [], hasMore: false } };
    const target = this.deps.directory.connection(route.server);
    if (!target || !(target.connection.capabilities as { completions?: unknown }).completions) return { completion: { values: [], hasMore: false } };
    try {
      return await target.connection.request('completion/complete', { ...params, ref: forwardedRef }, { signal: context.signal, timeoutMs: target.timeoutMs });
    } catch (error) {
      throw Object.assign(new Error(upstreamErrorMessage(error)), { code: upstreamErrorCode(error) });
    }
  }

  /** The server behind a resource URI for `resources/subscribe`, if the principal may see it. */
  resourceServer(principal: Principal, scope: Scope, uri: string): Route | undefined {
    const route = routeResource(this.view(scope), uri);
    if (!route || !this.visible(principal, route, 'resource')) return undefined;
    return route;
  }

  onLog(listener: LogListener): () => void {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  }

  /**
   * A server sent a log message. While exactly one call to it is in flight, the message goes to
   * that call's session (as the spec's related notification); otherwise to every session that
   * set a log level.
   */
  relayLog(server: string, message: LogMessage): void {
    const calls = [...(this.inFlight.get(server) ?? [])];
    const only = calls.length === 1 ? calls[0]!.context.log : undefined;
    if (only) {
      only(message, server);
      return;
    }
    for (const listener of this.logListeners) {
      try {
        listener(server, message);
      } catch (error) {
        this.deps.logger.log('error', 'gateway.listener_failed', { error: errorMessage(error) });
      }
    }
  }

  /**
   * A server asked its client something (elicitation, sampling, roots). Over stdio the wire does not
   * say which call caused it; Gatehouse can tell only while exactly one call to that server is in
   * flight. Otherwise the server gets a clear error rather than a guess.
   */
  async routeServerRequest(server: string, method: string, params: Record<string, unknown> | undefined, signal: AbortSignal): Promise<Record<string, unknown>> {
    const calls = [...(this.inFlight.get(server) ?? [])];
    if (calls.length === 0) {
      throw new Error(`Gatehouse cannot relay ${method}: no client call to "${server}" is in progress, so there is no client session to ask`);
    }
    if (calls.length > 1) {
      throw new Error(`Gatehouse cannot relay ${method}: ${calls.length} client calls to "${server}" are in progress and the request does not say which one it belongs to`);
    }
    const send = calls[0]!.context.sendRequest;
    if (!send) throw new Error(`Gatehouse cannot relay ${method}: the calling client cannot receive requests from servers`);
    return send(method, params, signal);
  }
}
