/**
 * The gateway: what every downstream session (socket, HTTP, in-process) talks to. It keeps the
 * aggregate and single-server views of the ready servers, filters lists per principal, runs every
 * governed request through the one chain, and routes server-to-client requests back to the session
 * whose call caused them.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../common/errors.js';
import { splitName } from '../common/names.js';
import { buildView, routeResource, type AggregateView, type Route } from './aggregate.js';
import { chain, denied, type CallContext, type CallKind, type GovernedCall, type Handler, type Outcome } from './chain.js';
import type { ApprovalPort, HiddenBecause, IdentityPort, PolicyPort, QuotaPort } from './governance.js';
import type {
  AuditSink,
  Clock,
  ListKind,
  LogMessage,
  Logger,
  PromptItem,
  ResourceItem,
  ResourceTemplateItem,
  ToolItem,
  UpstreamConnection,
  UpstreamLists,
} from './ports.js';
import type { Principal } from './principal.js';
import { withCompletionLimit } from './quotas/completions.js';
import { approvalStage, auditStage, identityStage, policyStage, quotaStage, upstreamHandler } from './stages.js';
import type { CallTracer } from './telemetry/ports.js';
import { tracedChain, type TracedInterceptor } from './telemetry/traced-chain.js';

/** What the gateway needs to know about servers; the supervisor provides it. */
export interface ServerDirectory {
  /** Cached lists of every ready server. */
  readyLists(): ReadonlyMap<string, UpstreamLists>;
  /** The live connection of a ready server, with its request timeout. */
  connection(server: string): { connection: UpstreamConnection; timeoutMs: number } | undefined;
  /** Why a configured remote server lists nothing: it waits for the user to sign in (the reason names the command). */
  signInNeeded?(server: string): string | undefined;
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
  /** A call was refused because its server needs the user to sign in: the human channel may offer the sign-in. */
  onSignInNeeded?(server: string, principal: Principal): void;
  /** Traces every governed call when telemetry is on (docs/telemetry.md); absent, nothing is traced. */
  tracer?: CallTracer;
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

/** A name's route, if it has one, and whether the caller may see it. */
type Resolved = { route: Route; hidden: boolean } | undefined;

export class Gateway {
  private aggregate: AggregateView;
  /** The aggregate's tools by exposed name, for the search view's checks. */
  private aggregateTools = new Map<string, ToolItem>();
  private singles = new Map<string, AggregateView>();
  private listeners = new Set<ChangeListener>();
  private logListeners = new Set<LogListener>();
  private inFlight = new Map<string, Set<InFlight>>();
  private readonly handle: Handler;
  /** Aborted by `stop`: the upstream stage sends nothing more and cancels what is in flight. */
  private readonly stopping = new AbortController();
  /** Told when the last call in flight has ended, while `stop` waits for it. */
  private drained: (() => void) | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.aggregate = buildView(new Map());
    const stages: TracedInterceptor[] = [
      // Outermost, so that every attempt is recorded, whatever a later stage decides or throws.
      { stage: 'audit', interceptor: auditStage(deps.audit, deps.clock) },
      // Who is asking comes before anything that depends on who is asking.
      { stage: 'identity', interceptor: identityStage(deps.identity) },
      // Policy before quota: a call that policy refuses spends nothing.
      { stage: 'policy', interceptor: policyStage(deps.policy) },
      // Quota before approval: never ask a person about a call that would be refused anyway. Completions are limited here too.
      { stage: 'quota', interceptor: quotaStage(withCompletionLimit(deps.quota, deps.clock)) },
      { stage: 'approval', interceptor: approvalStage(deps.approval) },
      // Secrets are injected where connections are made (spawn env, upstream headers), never into call state.
    ];
    const last = upstreamHandler((server) => deps.directory.connection(server), this.stopping.signal);
    // Traced only when telemetry is on: otherwise the plain chain, and a call allocates nothing for tracing.
    this.handle = deps.tracer ? tracedChain(deps.tracer, ...stages)(last) : chain(...stages.map((s) => s.interceptor))(last);
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

  callTool(
    principal: Principal,
    scope: Scope,
    name: string,
    args: Record<string, unknown> | undefined,
    meta: Record<string, unknown> | undefined,
    context: CallContext,
  ): Promise<Outcome> {
    const view = this.view(scope);
    const route = view.toolRoutes.get(name);
    if (!route) {
      const waiting = this.waitingForSignIn(principal, scope, name, 'tool');
      if (waiting) return this.refuseUntilSignIn('tool', principal, waiting, args, meta, context);
    }
    return this.run('tool', principal, this.resolved(principal, route, 'tool'), name, args, meta, context, 'unknown_tool', `Unknown tool: ${name}`);
  }

  getPrompt(
    principal: Principal,
    scope: Scope,
    name: string,
    args: Record<string, unknown> | undefined,
    meta: Record<string, unknown> | undefined,
    context: CallContext,
  ): Promise<Outcome> {
    const view = this.view(scope);
    const route = view.promptRoutes.get(name);
    if (!route) {
      const waiting = this.waitingForSignIn(principal, scope, name, 'prompt');
      if (waiting) return this.refuseUntilSignIn('prompt', principal, waiting, args, meta, context);
    }
    return this.run('prompt', principal, this.resolved(principal, route, 'prompt'), name, args, meta, context, 'unknown_prompt', `Unknown prompt: ${name}`);
  }

  /**
   * A name no view lists, whose server part names a remote server waiting for the user to sign in,
   * and which the policy would let this principal see: the caller is told to sign in rather than
   * that the item is unknown. Anything the policy hides still gets the unknown answer.
   */
  private waitingForSignIn(principal: Principal, scope: Scope, exposed: string, kind: 'tool' | 'prompt'): (Route & { reason: string }) | undefined {
    const parts = scope.server !== undefined ? { server: scope.server, item: exposed } : splitName(exposed);
    if (!parts) return undefined;
    const reason = this.deps.directory.signInNeeded?.(parts.server);
    if (reason === undefined) return undefined;
    try {
      if (!this.deps.policy.visible(principal, parts.server, kind, parts.item, { unlisted: true })) return undefined;
    } catch (error) {
      this.deps.logger.log('error', 'policy.visible_failed', { server: parts.server, error: errorMessage(error) });
      return undefined;
    }
    return { server: parts.server, name: parts.item, reason };
  }

  /** Audited like any call; a principal that may not call at all is refused by the identity stage first. */
  private refuseUntilSignIn(
    kind: CallKind,
    principal: Principal,
    waiting: Route & { reason: string },
    args: Record<string, unknown> | undefined,
    meta: Record<string, unknown> | undefined,
    context: CallContext,
  ): Promise<Outcome> {
    const call: GovernedCall = { id: randomUUID(), kind, server: waiting.server, name: waiting.name, principal, context, facts: {} };
    if (args !== undefined) call.arguments = args;
    if (meta !== undefined) call.meta = meta;
    return this.refusing(
      [
        { stage: 'audit', interceptor: auditStage(this.deps.audit, this.deps.clock) },
        { stage: 'identity', interceptor: identityStage(this.deps.identity) },
      ],
      async () => {
        this.signInNeeded(waiting.server, principal);
        return denied('upstream', 'sign_in_required', waiting.reason);
      },
    )(call);
  }

  /** A short chain for a call refused before it reaches the governed one (traced like it when telemetry is on). */
  private refusing(stages: TracedInterceptor[], refuse: Handler): Handler {
    return this.deps.tracer ? tracedChain(this.deps.tracer, ...stages)(refuse, false) : chain(...stages.map((s) => s.interceptor))(refuse);
  }

  private signInNeeded(server: string, principal: Principal): void {
    try {
      this.deps.onSignInNeeded?.(server, principal);
    } catch (error) {
      this.deps.logger.log('error', 'gateway.listener_failed', { error: errorMessage(error) });
    }
  }

  readResource(principal: Principal, scope: Scope, uri: string, meta: Record<string, unknown> | undefined, context: CallContext): Promise<Outcome> {
    const view = this.view(scope);
    const route = routeResource(view, uri);
    return this.run(
      'resource',
      principal,
      this.resolved(principal, route, 'resource'),
      uri,
      undefined,
      meta,
      context,
      'unknown_resource',
      `Resource not found: ${uri}`,
    );
  }

  /** The route of a name, and whether the principal may see it (a hidden item is answered as an unknown one, but audited as what it is). */
  private resolved(principal: Principal, route: Route | undefined, kind: 'tool' | 'prompt' | 'resource'): Resolved {
    if (!route) return undefined;
    return { route, hidden: !this.visible(principal, route, kind) };
  }

  private async run(
    kind: CallKind,
    principal: Principal,
    target: Resolved,
    exposed: string,
    args: Record<string, unknown> | undefined,
    meta: Record<string, unknown> | undefined,
    context: CallContext,
    unknownCode: 'unknown_tool' | 'unknown_prompt' | 'unknown_resource',
    unknownReason: string,
    operation?: 'complete',
  ): Promise<Outcome> {
    const route = target?.route;
    const call: GovernedCall = {
      id: randomUUID(),
      kind,
      server: route?.server ?? '',
      name: route?.name ?? exposed,
      principal,
      context,
      facts: {},
    };
    if (operation) call.operation = operation;
    if (args !== undefined) call.arguments = args;
    if (meta !== undefined) call.meta = meta;
    if (!route || target.hidden) {
      // Unknown and hidden items get the same answer, and both are audited: a hidden one as what it is and what hid it.
      // A caller who can do nothing at all is told why, whatever the name: that says nothing about the item.
      const notice = this.notice(principal);
      if (notice !== undefined) unknownReason = `${unknownReason} (${notice})`;
      const recorded = await this.refusing([{ stage: 'audit', interceptor: auditStage(this.deps.audit, this.deps.clock) }], async (c) =>
        route ? this.hiddenOutcome(c, unknownCode, unknownReason) : denied('policy', unknownCode, unknownReason),
      )(call);
      return recorded.kind === 'denied' && recorded.code === unknownCode ? denied('policy', unknownCode, unknownReason) : recorded;
    }
    const entry: InFlight = { context };
    let set = this.inFlight.get(route.server);
    if (!set) this.inFlight.set(route.server, (set = new Set()));
    set.add(entry);
    try {
      const outcome = await this.handle(call);
      if (outcome.kind === 'denied' && outcome.code === 'sign_in_required') this.signInNeeded(route.server, principal);
      return outcome;
    } finally {
      set.delete(entry);
      if (this.drained && this.callsInFlight() === 0) this.drained();
    }
  }

  private callsInFlight(): number {
    let count = 0;
    for (const set of this.inFlight.values()) count += set.size;
    return count;
  }

  /**
   * For the daemon's stop, before its endpoints close: calls from now on are answered at once, and
   * calls in flight are cancelled upstream (the server is told) and answered, each with `reason`
   * and as a server that is unavailable, while their clients are still connected to hear it. A call
   * waiting on a person is answered when the approvals stop (the daemon stops them first). Resolves
   * once no call is in flight, or after `waitMs`, whichever comes first.
   */
  async stop(reason: string, waitMs: number): Promise<void> {
    this.stopping.abort(new Error(reason));
    if (this.callsInFlight() === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.drained = resolve;
      timer = setTimeout(resolve, waitMs);
    });
    clearTimeout(timer);
    this.drained = undefined;
  }

  /**
   * Why this caller can do nothing at all, with the command that fixes it: not signed in (or the
   * sign-in lapsed), a revoked client, no role under the managed policy. Said in the bridge's stderr,
   * in `initialize` instructions and with every "unknown" answer; it says nothing about any item.
   */
  notice(principal: Principal): string | undefined {
    try {
      const admission = this.deps.identity.verify(principal);
      if (!admission.ok) return admission.reason;
      return this.deps.policy.notice?.(principal);
    } catch (error) {
      this.deps.logger.log('error', 'gateway.notice_failed', { error: errorMessage(error) });
      return undefined;
    }
  }

  /** The refusal of a hidden item for its audit record: the policy in force and what hid the item (the caller hears only "unknown"). */
  private hiddenOutcome(call: GovernedCall, code: 'unknown_tool' | 'unknown_prompt' | 'unknown_resource', answered: string): Outcome {
    const policy = this.deps.policy;
    call.facts.policyMode = policy.mode;
    call.facts.policyVersion = policy.version;
    let why: HiddenBecause = { reason: 'hidden by the policy in force', policyIds: [] };
    try {
      why = policy.explainHidden?.(call.principal, call.server, call.kind, call.name) ?? why;
    } catch (error) {
      this.deps.logger.log('error', 'policy.explain_failed', { server: call.server, error: errorMessage(error) });
    }
    call.facts.policyIds = why.policyIds;
    return denied('policy', code, `hidden from this caller: ${why.reason} (answered "${answered}")`);
  }

  /**
   * Whether a caller may open this server's own view (`connect --server`, `/mcp/<server>`): something
   * of it is visible to them. A server they may not see gets the answer an unknown one gets.
   */
  serverVisible(principal: Principal, server: string): boolean {
    const view = this.singles.get(server);
    try {
      if (view && view.tools.length + view.prompts.length + view.resources.length + view.resourceTemplates.length > 0) {
        // The first visible item decides; `visible` itself fails closed.
        return (
          view.tools.some((t) => this.visible(principal, view.toolRoutes.get(t.name), 'tool')) ||
          view.prompts.some((p) => this.visible(principal, view.promptRoutes.get(p.name), 'prompt')) ||
          view.resources.some((r) => this.visible(principal, view.resourceRoutes.get(r.uri), 'resource')) ||
          view.templateRoutes.some((route) => this.visible(principal, route, 'resource'))
        );
      }
      // Nothing listed yet (the server is starting): the policy's word on the server as a whole.
      return this.deps.policy.serverVisible?.(principal, server) ?? true;
    } catch (error) {
      this.deps.logger.log('error', 'policy.visible_failed', { server, error: errorMessage(error) });
      return false;
    }
  }

  /**
   * `completion/complete`, governed like a call: audited, identity-checked, decided as the visibility
   * of the prompt or resource template it completes, rate-limited, then forwarded to that item's
   * server. A hidden item gets the same answer as an unknown one.
   */
  complete(
    principal: Principal,
    scope: Scope,
    params: Record<string, unknown>,
    meta: Record<string, unknown> | undefined,
    context: CallContext,
  ): Promise<Outcome> {
    const ref = params.ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
    const view = this.view(scope);
    const kind: 'prompt' | 'resource' = ref?.type === 'ref/resource' ? 'resource' : 'prompt';
    let route: Route | undefined;
    let exposed = '';
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      exposed = ref.name;
      route = view.promptRoutes.get(ref.name);
    } else if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      exposed = ref.uri;
      const index = view.resourceTemplates.findIndex((t) => t.uriTemplate === ref.uri);
      route = index >= 0 ? view.templateRoutes[index] : routeResource(view, ref.uri);
    }
    const sent = { argument: params.argument, ...(params.context !== undefined ? { context: params.context } : {}) };
    const unknown =
      kind === 'prompt' ? (['unknown_prompt', `Unknown prompt: ${exposed}`] as const) : (['unknown_resource', `Resource not found: ${exposed}`] as const);
    return this.run(kind, principal, this.resolved(principal, route, kind), exposed, sent, meta, context, unknown[0], unknown[1], 'complete');
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
      throw new Error(
        `Gatehouse cannot relay ${method}: ${calls.length} client calls to "${server}" are in progress and the request does not say which one it belongs to`,
      );
    }
    const send = calls[0]!.context.sendRequest;
    if (!send) throw new Error(`Gatehouse cannot relay ${method}: the calling client cannot receive requests from servers`);
    return send(method, params, signal);
  }
}
