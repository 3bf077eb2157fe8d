/**
 * The set of configured servers. `apply` moves the running set to a new configuration by
 * touching only what differs; each server's own life (backoff, crash loops, health checks)
 * is in managed-server.ts.
 */
import { EventEmitter } from 'node:events';
import type { ServerConfig } from '../../common/config.js';
import { errorMessage, GatehouseError } from '../../common/errors.js';
import type { ServerStatus } from '../../common/status.js';
import type { Clock, LogMessage, Logger, ServerLogSink, UpstreamConnection, UpstreamConnector, UpstreamLists } from '../ports.js';
import type { Random } from './backoff.js';
import { ManagedServer, type ManagedServerDeps, type ManagedServerHooks, type ServerRequestHandler } from './managed-server.js';

export { LIFECYCLE_PREFIX, type ServerRequestHandler } from './managed-server.js';

export interface SupervisorOptions {
  connector: UpstreamConnector;
  clock: Clock;
  logger: Logger;
  /** Numbers in [0, 1) for backoff jitter; `Math.random` when omitted. */
  random?: Random;
  /** Where each server's stderr is also written; memory only when omitted. */
  logSink?: ServerLogSink;
  /** Lines of stderr kept in memory per server. */
  ringLines: number;
  /** Routes server-to-client requests (elicitation, sampling, roots); the gateway supplies it. */
  onServerRequest: ServerRequestHandler;
  /** MCP log messages servers send; the gateway relays them to clients. */
  onServerLog?: (server: string, message: LogMessage) => void;
  /** Adds what other parts know of a server to its status (a remote server's sign-in). */
  annotate?: (server: string, status: ServerStatus) => ServerStatus;
}

export interface SupervisorEvents {
  /** A server's state, `lastError` or `nextAttemptAt` changed. */
  state: [name: string, status: ServerStatus];
  /** A server's cached lists changed, or it reached or left `ready`, or it was removed while ready. */
  lists: [name: string];
  /** A server reported that a subscribed resource changed. */
  resourceUpdated: [name: string, uri: string];
}

export interface ApplyResult {
  added: string[];
  removed: string[];
  restarted: string[];
  unchanged: string[];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #deps: ManagedServerDeps;
  readonly #servers = new Map<string, ManagedServer>();
  /** Removed servers still closing, by name: a server added again under that name waits for them. */
  readonly #retiring = new Map<string, Promise<void>>();

  constructor(options: SupervisorOptions) {
    super();
    this.#deps = {
      connector: options.connector,
      clock: options.clock,
      logger: options.logger,
      random: options.random ?? Math.random,
      ringLines: options.ringLines,
      onServerRequest: options.onServerRequest,
      ...(options.onServerLog ? { onServerLog: options.onServerLog } : {}),
      ...(options.logSink ? { logSink: options.logSink } : {}),
      ...(options.annotate ? { annotate: options.annotate } : {}),
    };
  }

  /**
   * Moves to `servers`, touching only what differs: new servers start, removed ones stop, changed
   * ones (compared field by field) restart with their new configuration, unchanged ones are left
   * exactly as they are, whatever their state. Everything happens in parallel.
   *
   * The returned lists are decided before anything is awaited, so two calls in a row each see the
   * configuration the previous call left. The promise settles once removed servers have closed and
   * every started server's first attempt has ended (ready, or failed and backing off); it never
   * rejects because a server failed to start.
   */
  async apply(servers: Record<string, ServerConfig>): Promise<ApplyResult> {
    const result: ApplyResult = { added: [], removed: [], restarted: [], unchanged: [] };
    const work: Promise<void>[] = [];

    for (const [name, server] of [...this.#servers]) {
      if (Object.hasOwn(servers, name)) continue;
      result.removed.push(name);
      this.#servers.delete(name);
      work.push(this.#retire(name, server));
    }

    for (const [name, given] of Object.entries(servers)) {
      const config = structuredClone(given);
      const existing = this.#servers.get(name);
      if (!existing) {
        result.added.push(name);
        const server = new ManagedServer(name, config, this.#deps, this.#hooksFor(name), this.#retiring.get(name));
        this.#servers.set(name, server);
        if (config.enabled) work.push(server.start());
        else this.#emitSafe('state', name, server.status());
      } else if (!deepEqual(existing.config, config)) {
        result.restarted.push(name);
        work.push(existing.reconfigure(config));
      } else {
        result.unchanged.push(name);
      }
    }

    this.#deps.logger.log('info', 'supervisor.applied', {
      added: result.added,
      removed: result.removed,
      restarted: result.restarted,
      unchanged: result.unchanged.length,
    });
    await Promise.all(work);
    return result;
  }

  /** Starts a stopped server (at once, if it is backing off). Settles when the attempt has ended. */
  start(name: string): Promise<void> {
    return this.#command(name, (server) => server.start());
  }

  /** Closes the server gracefully; aborts a connect in flight and cancels a pending restart. */
  stop(name: string): Promise<void> {
    return this.#command(name, (server) => server.stop());
  }

  /** Stops and starts the server with its backoff and crash-loop history cleared. */
  restart(name: string): Promise<void> {
    return this.#command(name, (server) => server.restart());
  }

  /** Stops every server in parallel; leaves no timer and no connection behind. */
  async stopAll(): Promise<void> {
    await Promise.all([...[...this.#servers.values()].map((server) => server.stop()), ...this.#retiring.values()]);
  }

  /** Stops everything and closes every server's log file. The supervisor is not used again. */
  async dispose(): Promise<void> {
    const servers = [...this.#servers.values()];
    this.#servers.clear();
    await Promise.all([...servers.map((server) => server.dispose()), ...this.#retiring.values()]);
    this.removeAllListeners();
  }

  names(): string[] {
    return [...this.#servers.keys()];
  }

  config(name: string): ServerConfig | undefined {
    return this.#servers.get(name)?.config;
  }

  status(name: string): ServerStatus | undefined {
    return this.#servers.get(name)?.status();
  }

  statuses(): ServerStatus[] {
    return [...this.#servers.values()].map((server) => server.status());
  }

  /** The live connection, only while the server is ready. */
  connection(name: string): UpstreamConnection | undefined {
    return this.#servers.get(name)?.connection();
  }

  /** The server's cached lists, only while it is ready. */
  lists(name: string): UpstreamLists | undefined {
    return this.#servers.get(name)?.lists();
  }

  /** The last `n` lines (all kept lines when omitted) of the server's stderr and lifecycle notes. */
  logs(name: string, n?: number): string[] | undefined {
    return this.#servers.get(name)?.logs(n);
  }

  #command(name: string, run: (server: ManagedServer) => Promise<void>): Promise<void> {
    const server = this.#servers.get(name);
    if (!server) return Promise.reject(new GatehouseError('unknown_server', `no server is configured as "${name}"`));
    return run(server);
  }

  #retire(name: string, server: ManagedServer): Promise<void> {
    // A server that was ready announces `lists` as it leaves `ready`; one that was not had nothing listed.
    const closing = server.dispose().then(() => {
      if (this.#retiring.get(name) === closing) this.#retiring.delete(name);
    });
    this.#retiring.set(name, closing);
    return closing;
  }

  #hooksFor(name: string): ManagedServerHooks {
    return {
      state: (status) => this.#emitSafe('state', name, status),
      lists: () => this.#emitSafe('lists', name),
      resourceUpdated: (uri) => this.#emitSafe('resourceUpdated', name, uri),
    };
  }

  /** A listener that throws must not break a server's state machine. */
  #emitSafe<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: SupervisorEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.#deps.logger.log('error', 'supervisor.listener_failed', { event, error: errorMessage(error) });
    }
  }
}

/** Structural equality of JSON-like values; key order does not matter. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keysA = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const keysB = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return keysA.length === keysB.length && keysA.every((k) => Object.hasOwn(rb, k) && deepEqual(ra[k], rb[k]));
}
