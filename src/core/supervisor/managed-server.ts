/**
 * One configured server and its life: stopped → starting → ready, and on a failed start, a crash
 * or a failed health check, backing-off (or crash-looping) → starting again. A remote server that
 * wants the user to sign in waits in needs-sign-in until a sign-in starts it again.
 *
 * Every connection attempt is a `Session`. Whatever arrives late (a connect that resolves after a
 * stop, an exit after a restart, a ping answer after a crash) is matched against the session it
 * belongs to and dropped when that session is no longer the current one; this is what keeps the
 * races (stop during start, crash during stop, config change while backing off) safe.
 */
import type { RestartPolicy, ServerConfig } from '../../common/config.js';
import { errorMessage, GatehouseError, isSignInRequired } from '../../common/errors.js';
import type { ServerState, ServerStatus } from '../../common/status.js';
import type {
  Clock,
  Logger,
  ServerLogSink,
  TimerHandle,
  UpstreamConnection,
  UpstreamConnector,
  UpstreamEvents,
  UpstreamExit,
  UpstreamLists,
  LogMessage,
} from '../ports.js';
import { RingBuffer } from '../ring-buffer.js';
import { backoffDelay, type Random } from './backoff.js';

/** Marks the supervisor's own lines among a server's stderr lines. */
export const LIFECYCLE_PREFIX = '[gatehouse] ';

/** Routes a server-to-client request (elicitation, sampling, roots) to a client session. */
export type ServerRequestHandler = (
  server: string,
  method: string,
  params: Record<string, unknown> | undefined,
  signal: AbortSignal,
) => Promise<Record<string, unknown>>;

export interface ManagedServerDeps {
  connector: UpstreamConnector;
  clock: Clock;
  logger: Logger;
  random: Random;
  logSink?: ServerLogSink;
  ringLines: number;
  onServerRequest: ServerRequestHandler;
  /** MCP log messages the server sends; the gateway relays them to clients. */
  onServerLog?: (server: string, message: LogMessage) => void;
  /** Adds what other parts know of a server to its status (a remote server's sign-in). */
  annotate?: (server: string, status: ServerStatus) => ServerStatus;
}

/** What a server tells the set it belongs to. Calls are synchronous and must not throw. */
export interface ManagedServerHooks {
  state(status: ServerStatus): void;
  /** The cached lists changed, or the server reached or left `ready`. */
  lists(): void;
  resourceUpdated(uri: string): void;
}

/**
 * How long a server must stay ready for its next crash to start the backoff from the beginning:
 * one whole crash-loop window, so a server that fails more often than that keeps backing off further.
 */
export function stableUptimeMs(policy: RestartPolicy): number {
  return policy.crashLoopWindowMs;
}

const EMPTY_COUNTS = { tools: 0, resources: 0, resourceTemplates: 0, prompts: 0 } as const;

/** One connection attempt and, when it succeeds, the connection's life. */
class Session {
  readonly abort = new AbortController();
  readonly timers = new Set<TimerHandle>();
  connection: UpstreamConnection | undefined;
  lists: UpstreamLists | undefined;
  readySince: number | undefined;
  ended = false;
  timedOut = false;
  pingFailures = 0;
  /** A `listAll` is in flight (the first one included). */
  refreshing = false;
  /** A list change arrived while one was in flight: fetch once more when it ends. */
  refreshPending = false;
  readonly settled: Promise<void>;
  settle!: () => void;

  constructor(readonly config: ServerConfig) {
    this.settled = new Promise<void>((resolve) => {
      this.settle = resolve;
    });
  }
}

export class ManagedServer {
  #config: ServerConfig;
  #state: ServerState = 'stopped';
  #session: Session | undefined;
  #retryTimer: TimerHandle | undefined;
  #nextAttemptAt: number | undefined;
  #lastError: string | undefined;
  /** Connection attempts made; every one after the first is a restart. */
  #attempts = 0;
  /** Failures since the server was last stable; the exponent of the next backoff delay. */
  #backoffAttempt = 0;
  /** When automatic restarts happened, for crash-loop detection. */
  #restartTimes: number[] = [];
  #crashLooping = false;
  /** Closes still under way; a new attempt waits for them so two processes never overlap. */
  #teardown: Promise<void>;
  readonly #ring: RingBuffer<string>;
  readonly #deps: ManagedServerDeps;
  readonly #hooks: ManagedServerHooks;
  #sink: { write(line: string): void; close(): void } | undefined;
  #sinkFailed = false;

  constructor(
    readonly name: string,
    config: ServerConfig,
    deps: ManagedServerDeps,
    hooks: ManagedServerHooks,
    /** Settles when a previous holder of this name has finished closing. */
    after: Promise<void> = Promise.resolve(),
  ) {
    this.#config = config;
    this.#deps = deps;
    this.#hooks = hooks;
    this.#ring = new RingBuffer<string>(deps.ringLines);
    this.#teardown = after.then(noop, noop);
  }

  get config(): ServerConfig {
    return this.#config;
  }

  get state(): ServerState {
    return this.#state;
  }

  /**
   * Starts the server if it is not running or about to run; while it backs off, tries at once.
   * Settles when this attempt has ended: ready, or failed (then backing off or stopped). Never rejects
   * for a failed start; rejects only when the configuration disables the server.
   */
  start(): Promise<void> {
    if (!this.#config.enabled) return Promise.reject(this.#disabledError());
    if (this.#session) return this.#session.settled;
    this.#cancelRetry();
    this.#lastError = undefined;
    return this.#begin();
  }

  /** Closes the connection gracefully, aborts an attempt in flight and cancels a pending restart. */
  async stop(): Promise<void> {
    this.#cancelRetry();
    if (this.#session) this.#endSession(this.#session);
    if (this.#state !== 'stopped') {
      this.#setState('stopped');
      this.#note('stopped');
      this.#deps.logger.log('info', 'server.stopped', { server: this.name });
    }
    await this.#teardown;
  }

  /** Stops whatever runs and starts afresh, with the backoff and crash-loop history cleared. */
  restart(): Promise<void> {
    if (!this.#config.enabled) return Promise.reject(this.#disabledError());
    this.#cancelRetry();
    if (this.#session) this.#endSession(this.#session);
    this.#resetBackoff();
    this.#lastError = undefined;
    this.#note('restart requested');
    return this.#begin();
  }

  /** Takes a new configuration: restarts with it, or stops when it disables the server. */
  async reconfigure(config: ServerConfig): Promise<void> {
    this.#config = config;
    this.#cancelRetry();
    if (this.#session) this.#endSession(this.#session);
    this.#resetBackoff();
    this.#lastError = undefined;
    if (!config.enabled) {
      if (this.#state !== 'stopped') {
        this.#setState('stopped');
        this.#note('disabled by a configuration change');
      }
      await this.#teardown;
      return;
    }
    this.#note('configuration changed');
    await this.#begin();
  }

  /** Stops the server and releases its log file; the object is not used again. */
  async dispose(): Promise<void> {
    await this.stop();
    const sink = this.#sink;
    this.#sink = undefined;
    if (sink) {
      try {
        sink.close();
      } catch (error) {
        this.#deps.logger.log('warn', 'server.log_sink_failed', { server: this.name, error: errorMessage(error) });
      }
    }
  }

  /** The live connection, only while ready. */
  connection(): UpstreamConnection | undefined {
    const s = this.#session;
    return this.#state === 'ready' && s && s.readySince !== undefined ? s.connection : undefined;
  }

  /** The cached lists, only while ready. */
  lists(): UpstreamLists | undefined {
    const s = this.#session;
    return this.#state === 'ready' && s && s.readySince !== undefined ? s.lists : undefined;
  }

  /** The last `n` lines of stderr and lifecycle notes (all kept lines when `n` is omitted). */
  logs(n?: number): string[] {
    return this.#ring.last(n);
  }

  status(): ServerStatus {
    const status: ServerStatus = {
      name: this.name,
      type: this.#config.type,
      enabled: this.#config.enabled,
      state: this.#state,
      restarts: Math.max(0, this.#attempts - 1),
      counts: { ...EMPTY_COUNTS },
    };
    if (this.#lastError !== undefined) status.lastError = this.#lastError;
    if (this.#nextAttemptAt !== undefined) status.nextAttemptAt = new Date(this.#nextAttemptAt).toISOString();
    const s = this.#session;
    const connection = this.connection();
    if (s && connection) {
      if (connection.pid !== undefined) status.pid = connection.pid;
      if (connection.confinement !== undefined) status.confinement = connection.confinement;
      if (connection.protocolVersion !== undefined) status.protocolVersion = connection.protocolVersion;
      if (connection.serverInfo !== undefined) status.serverInfo = { ...connection.serverInfo };
      if (s.readySince !== undefined) status.readySince = new Date(s.readySince).toISOString();
      if (s.lists) {
        status.counts = {
          tools: s.lists.tools.length,
          resources: s.lists.resources.length,
          resourceTemplates: s.lists.resourceTemplates.length,
          prompts: s.lists.prompts.length,
        };
      }
    }
    return this.#deps.annotate ? this.#deps.annotate(this.name, status) : status;
  }

  // ---- the attempt ------------------------------------------------------------------------

  #begin(): Promise<void> {
    const session = new Session(this.#config);
    this.#attempts++;
    this.#session = session;
    this.#setState('starting');
    this.#note(this.#attempts === 1 ? 'starting' : `starting (restart ${this.#attempts - 1})`);
    void this.#run(session);
    return session.settled;
  }

  async #run(session: Session): Promise<void> {
    await this.#teardown;
    if (!this.#isCurrent(session)) return;
    const { signal } = session.abort;
    const timeoutMs = session.config.startupTimeoutMs;
    this.#sessionTimer(session, timeoutMs, () => {
      session.timedOut = true;
      session.abort.abort(new Error(`did not start within ${timeoutMs} ms`));
    });

    const connecting = invoke(() => this.#deps.connector.connect(this.name, session.config, this.#eventsFor(session), signal));
    let connection: UpstreamConnection;
    try {
      connection = await raceSignal(connecting, signal);
    } catch (error) {
      // Whatever the connector hands back after we gave up is closed at once.
      connecting.then((late) => this.#track(this.#closeQuietly(late)), noop);
      if (!this.#isCurrent(session)) return;
      if (!session.timedOut && isSignInRequired(error)) return this.#park(session, error.message);
      this.#fail(session, session.timedOut ? `did not start within ${timeoutMs} ms` : `failed to start: ${errorMessage(error)}`, false);
      return;
    }
    if (!this.#isCurrent(session)) {
      this.#track(this.#closeQuietly(connection));
      return;
    }
    session.connection = connection;
    Promise.resolve(connection.exited).then(
      (exit) => this.#onExit(session, exit),
      (error: unknown) => this.#onExit(session, { reason: errorMessage(error), clean: false }),
    );

    session.refreshing = true;
    let lists: UpstreamLists;
    try {
      lists = await raceSignal(
        invoke(() => connection.listAll(signal)),
        signal,
      );
    } catch (error) {
      if (!this.#isCurrent(session)) return;
      if (!session.timedOut && isSignInRequired(error)) return this.#park(session, error.message);
      this.#fail(
        session,
        session.timedOut ? `did not start within ${timeoutMs} ms` : `failed to start: could not list its tools, resources and prompts: ${errorMessage(error)}`,
        false,
      );
      return;
    }
    if (!this.#isCurrent(session)) return;
    session.refreshing = false;
    this.#clearSessionTimers(session);
    session.lists = normalizeLists(lists);
    session.readySince = this.#deps.clock.now();
    const info = connection.serverInfo ? `${connection.serverInfo.name} ${connection.serverInfo.version}` : 'unnamed server';
    const pid = connection.pid !== undefined ? `, pid ${connection.pid}` : '';
    this.#note(`started: ${info}, protocol ${connection.protocolVersion ?? 'unknown'}${pid}`);
    this.#deps.logger.log('info', 'server.ready', { server: this.name, pid: connection.pid, protocolVersion: connection.protocolVersion });
    this.#setState('ready');
    session.settle();
    // A listener may have stopped or restarted the server from inside the `ready` event.
    if (!this.#isCurrent(session)) return;
    this.#scheduleHealthCheck(session);
    if (session.refreshPending) void this.#refresh(session);
  }

  #eventsFor(session: Session): UpstreamEvents {
    return {
      listChanged: () => this.#requestRefresh(session),
      resourceUpdated: (uri) => {
        if (this.#isCurrent(session)) this.#hooks.resourceUpdated(uri);
      },
      serverRequest: (method, params, signal) => {
        if (!this.#isCurrent(session)) {
          return Promise.reject(new GatehouseError('server_unavailable', `server "${this.name}" is no longer connected`));
        }
        return invoke(() => this.#deps.onServerRequest(this.name, method, params, signal));
      },
      // Late lines from a dying process still belong in the server's log.
      stderr: (line) => this.#write(line),
      log: (message) => {
        if (this.#isCurrent(session)) this.#deps.onServerLog?.(this.name, message);
      },
    };
  }

  #onExit(session: Session, exit: UpstreamExit): void {
    if (!this.#isCurrent(session)) return;
    if (exit.signIn) return this.#park(session, exit.reason);
    if (session.readySince === undefined) {
      this.#fail(session, `failed to start: exited during startup: ${exit.reason}`, false);
    } else {
      this.#fail(session, `exited: ${exit.reason}`, exit.clean);
    }
  }

  /** The current session has failed: close it, then restart after a delay, or stay stopped. */
  #fail(session: Session, reason: string, clean: boolean): void {
    const now = this.#deps.clock.now();
    const policy = session.config.restart;
    const stable = session.readySince !== undefined && now - session.readySince >= stableUptimeMs(policy);
    this.#endSession(session);
    this.#lastError = reason;
    this.#note(reason);
    this.#deps.logger.log(clean ? 'info' : 'warn', 'server.exited', { server: this.name, reason, clean });
    if (stable) this.#resetBackoff();

    if (policy.mode === 'never' || (policy.mode === 'on-failure' && clean)) {
      this.#setState('stopped');
      this.#note(`not restarting (restart mode "${policy.mode}")`);
      return;
    }

    this.#restartTimes = this.#restartTimes.filter((t) => now - t < policy.crashLoopWindowMs);
    if (this.#restartTimes.length >= policy.crashLoopRestarts) this.#crashLooping = true;
    const delay = this.#crashLooping ? policy.maxDelayMs : backoffDelay(this.#backoffAttempt, policy, this.#deps.random);
    this.#backoffAttempt++;
    this.#nextAttemptAt = now + delay;
    this.#retryTimer = this.#deps.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#restartTimes.push(this.#deps.clock.now());
      void this.#begin();
    }, delay);
    this.#setState(this.#crashLooping ? 'crash-looping' : 'backing-off');
    this.#note(
      this.#crashLooping
        ? `crash-looping (${this.#restartTimes.length} restarts within ${policy.crashLoopWindowMs} ms); restarting in ${delay} ms`
        : `restarting in ${delay} ms`,
    );
    if (this.#crashLooping) this.#deps.logger.log('error', 'server.crash_looping', { server: this.name, reason, delayMs: delay });
  }

  /**
   * The remote server wants the user to sign in (none held, or the one held was revoked): waiting
   * for that is not a failure, so nothing is retried and no backoff grows. A sign-in restarts it.
   */
  #park(session: Session, reason: string): void {
    this.#endSession(session);
    this.#lastError = reason;
    this.#note(reason);
    this.#deps.logger.log('info', 'server.needs_sign_in', { server: this.name });
    this.#resetBackoff();
    this.#setState('needs-sign-in');
  }

  /** Ends a session for good: timers cleared, work in flight aborted, connection closed. */
  #endSession(session: Session): void {
    if (session.ended) return;
    session.ended = true;
    if (this.#session === session) this.#session = undefined;
    this.#clearSessionTimers(session);
    session.abort.abort(new Error('the connection attempt was cancelled'));
    if (session.connection) this.#track(this.#closeQuietly(session.connection));
    session.settle();
  }

  // ---- lists ------------------------------------------------------------------------------

  #requestRefresh(session: Session): void {
    if (!this.#isCurrent(session)) return;
    if (session.refreshing) {
      session.refreshPending = true;
      return;
    }
    // Before the first listing the coming `listAll` sees the change anyway.
    if (session.readySince === undefined) return;
    void this.#refresh(session);
  }

  /** Fetches the lists until no change arrived meanwhile: one fetch in flight, at most one pending. */
  async #refresh(session: Session): Promise<void> {
    session.refreshing = true;
    try {
      do {
        session.refreshPending = false;
        const connection = session.connection;
        if (!connection) return;
        let lists: UpstreamLists | undefined;
        try {
          lists = await raceSignal(
            invoke(() => connection.listAll(session.abort.signal)),
            session.abort.signal,
          );
        } catch (error) {
          if (!this.#isCurrent(session)) return;
          this.#deps.logger.log('warn', 'server.list_failed', { server: this.name, error: errorMessage(error) });
        }
        if (!this.#isCurrent(session)) return;
        if (lists) {
          session.lists = normalizeLists(lists);
          this.#hooks.lists();
        }
      } while (session.refreshPending && this.#isCurrent(session));
    } finally {
      session.refreshing = false;
    }
  }

  // ---- health -----------------------------------------------------------------------------

  #scheduleHealthCheck(session: Session): void {
    this.#sessionTimer(session, session.config.health.intervalMs, () => void this.#checkHealth(session));
  }

  async #checkHealth(session: Session): Promise<void> {
    const connection = session.connection;
    if (!this.#isCurrent(session) || !connection) return;
    const { timeoutMs, failuresBeforeRestart } = session.config.health;
    let failure: string | undefined;
    try {
      await this.#withinSession(
        session,
        invoke(() => connection.ping(timeoutMs)),
        timeoutMs,
      );
    } catch (error) {
      failure = errorMessage(error);
    }
    if (!this.#isCurrent(session)) return;
    if (failure === undefined) {
      session.pingFailures = 0;
    } else {
      session.pingFailures++;
      this.#deps.logger.log('warn', 'server.ping_failed', { server: this.name, failures: session.pingFailures, error: failure });
      if (session.pingFailures >= failuresBeforeRestart) {
        this.#fail(session, `stopped answering pings (${session.pingFailures} failed in a row; last: ${failure})`, false);
        return;
      }
    }
    this.#scheduleHealthCheck(session);
  }

  /** `promise`, or a rejection after `ms` or when the session ends, whichever comes first. */
  #withinSession<T>(session: Session, promise: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.#sessionTimer(session, ms, () => reject(new Error(`no answer within ${ms} ms`)));
      raceSignal(promise, session.abort.signal).then(
        (value) => {
          this.#clearSessionTimer(session, timer);
          resolve(value);
        },
        (error: unknown) => {
          this.#clearSessionTimer(session, timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  // ---- helpers ----------------------------------------------------------------------------

  #isCurrent(session: Session): boolean {
    return this.#session === session && !session.ended;
  }

  #setState(state: ServerState): void {
    const previous = this.#state;
    this.#state = state;
    if (state !== 'backing-off' && state !== 'crash-looping') this.#nextAttemptAt = undefined;
    this.#hooks.state(this.status());
    if (previous !== state && (previous === 'ready' || state === 'ready')) this.#hooks.lists();
  }

  #cancelRetry(): void {
    if (this.#retryTimer !== undefined) {
      this.#deps.clock.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    this.#nextAttemptAt = undefined;
  }

  #resetBackoff(): void {
    this.#backoffAttempt = 0;
    this.#restartTimes = [];
    this.#crashLooping = false;
  }

  #sessionTimer(session: Session, ms: number, fn: () => void): TimerHandle {
    const handle = this.#deps.clock.setTimeout(() => {
      session.timers.delete(handle);
      fn();
    }, ms);
    session.timers.add(handle);
    return handle;
  }

  #clearSessionTimer(session: Session, handle: TimerHandle): void {
    if (session.timers.delete(handle)) this.#deps.clock.clearTimeout(handle);
  }

  #clearSessionTimers(session: Session): void {
    for (const handle of session.timers) this.#deps.clock.clearTimeout(handle);
    session.timers.clear();
  }

  #track(closing: Promise<void>): void {
    this.#teardown = Promise.all([this.#teardown, closing]).then(noop, noop);
  }

  async #closeQuietly(connection: UpstreamConnection): Promise<void> {
    try {
      await connection.close();
    } catch (error) {
      this.#deps.logger.log('warn', 'server.close_failed', { server: this.name, error: errorMessage(error) });
    }
  }

  #note(text: string): void {
    this.#write(`${LIFECYCLE_PREFIX}${text}`);
  }

  #write(line: string): void {
    this.#ring.push(line);
    const sink = this.#openSink();
    if (!sink) return;
    try {
      sink.write(line);
    } catch (error) {
      this.#sinkFailed = true;
      this.#deps.logger.log('warn', 'server.log_sink_failed', { server: this.name, error: errorMessage(error) });
    }
  }

  #openSink(): { write(line: string): void; close(): void } | undefined {
    if (this.#sink || this.#sinkFailed || !this.#deps.logSink) return this.#sink;
    try {
      this.#sink = this.#deps.logSink.open(this.name);
    } catch (error) {
      this.#sinkFailed = true;
      this.#deps.logger.log('warn', 'server.log_sink_failed', { server: this.name, error: errorMessage(error) });
    }
    return this.#sink;
  }

  #disabledError(): GatehouseError {
    return new GatehouseError('server_disabled', `server "${this.name}" is disabled in the configuration`);
  }
}

function noop(): void {}

/** Calls `fn`, turning a synchronous throw into a rejection. */
function invoke<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** Settles with `promise`, or rejects as soon as `signal` aborts. Leaves no listener behind. */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.then(noop, noop);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}

function normalizeLists(lists: Partial<UpstreamLists> | undefined): UpstreamLists {
  return {
    tools: Array.isArray(lists?.tools) ? lists.tools : [],
    resources: Array.isArray(lists?.resources) ? lists.resources : [],
    resourceTemplates: Array.isArray(lists?.resourceTemplates) ? lists.resourceTemplates : [],
    prompts: Array.isArray(lists?.prompts) ? lists.prompts : [],
  };
}
