/**
 * The console's entry into the daemon, whatever carries it (Electron IPC in main/, the loopback
 * WebSocket of `gatehouse daemon --ui`): a call is refused unless its method is one the console
 * may use (`CONSOLE_METHODS`) and its params parse against the control contract's schema; then the
 * daemon's own control handler answers it, exactly as for the control socket. Events (status
 * changes, server log lines, sign-in progress) fan out to every subscriber.
 */
import { ControlRequests } from '../../common/control-api.js';
import { CHANGE_TOPICS, isConsoleMethod, type ChangeTopic, type ConsoleError, type ConsoleEvent } from '../../common/console-api.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { DaemonStatus } from '../../common/status.js';
import type { ControlHandlers } from '../control/control-server.js';

export type HubAnswer = { ok: true; result: unknown } | { ok: false; error: ConsoleError };

/** How often a status is pushed while nothing announced a change (clients connecting, calls counted). */
const STATUS_TICK_MS = 2000;
/** Changes closer together than this are pushed as one status. */
const STATUS_THROTTLE_MS = 200;

/**
 * What each console method that changes something may have changed (the screens that show it
 * refetch). Every other method only reads: answering it must announce nothing, or a screen that
 * reads on every change would ask again for ever.
 */
const CHANGES: Partial<Record<string, readonly ChangeTopic[]>> = {
  'servers.start': ['servers', 'tools'],
  'servers.stop': ['servers', 'tools'],
  'servers.restart': ['servers', 'tools'],
  'servers.add': ['servers', 'tools', 'secrets'],
  'servers.update': ['servers', 'tools', 'secrets'],
  'servers.remove': ['servers', 'tools', 'secrets'],
  'config.reload': ['servers', 'tools', 'clients', 'secrets'],
  'clients.revoke': ['clients', 'tools'],
  'clients.setView': ['clients', 'tools'],
  'secrets.set': ['secrets', 'servers'],
  'secrets.delete': ['secrets', 'servers'],
  'identity.login': ['identity', 'tools', 'policy'],
  'identity.logout': ['identity', 'tools', 'policy'],
};

export class ConsoleHub {
  private listeners = new Set<(event: ConsoleEvent) => void>();
  private pending: ReturnType<typeof setTimeout> | undefined;
  private readonly topics = new Set<ChangeTopic>();
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly handlers: ControlHandlers,
    private readonly status: () => DaemonStatus,
  ) {}

  /** Parses and answers one call; never throws. */
  async call(method: unknown, params: unknown): Promise<HubAnswer> {
    if (!isConsoleMethod(method))
      return { ok: false, error: { code: 'unknown_method', message: `the console cannot call ${JSON.stringify(String(method)).slice(0, 80)}` } };
    const parsed = ControlRequests[method].safeParse(params ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { ok: false, error: { code: 'invalid_params', message: `${issue?.path.join('.') || 'params'}: ${issue?.message ?? 'invalid'}` } };
    }
    try {
      const handler = this.handlers[method] as (p: unknown) => Promise<unknown>;
      const result = await handler(parsed.data);
      const changes = CHANGES[method];
      if (changes) this.changed(changes);
      return { ok: true, result };
    } catch (error) {
      return { ok: false, error: { code: error instanceof GatehouseError ? error.code : 'failed', message: errorMessage(error) } };
    }
  }

  subscribe(listener: (event: ConsoleEvent) => void): () => void {
    this.listeners.add(listener);
    if (!this.ticker) {
      this.ticker = setInterval(() => this.pushStatus(), STATUS_TICK_MS);
      this.ticker.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.ticker) {
        clearInterval(this.ticker);
        this.ticker = undefined;
      }
    };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /**
   * Something changed (by default: anything a screen shows): push the status and which topics
   * changed, soon; several changes in a burst push once, with every topic they named.
   */
  changed(topics: readonly ChangeTopic[] = CHANGE_TOPICS): void {
    if (this.listeners.size === 0) return;
    for (const topic of topics) this.topics.add(topic);
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      const changed = [...this.topics];
      this.topics.clear();
      this.pushStatus();
      if (changed.length > 0) this.emit({ type: 'changed', topics: changed });
    }, STATUS_THROTTLE_MS);
    this.pending.unref();
  }

  /** A server wrote a line to stderr (already scrubbed). */
  log(server: string, line: string): void {
    if (this.listeners.size > 0) this.emit({ type: 'log', server, line });
  }

  emit(event: ConsoleEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // One broken subscriber must not keep the others from hearing.
      }
    }
  }

  close(): void {
    if (this.pending) clearTimeout(this.pending);
    if (this.ticker) clearInterval(this.ticker);
    this.pending = undefined;
    this.ticker = undefined;
    this.topics.clear();
    this.listeners.clear();
  }

  private pushStatus(): void {
    if (this.listeners.size === 0) return;
    let status: DaemonStatus;
    try {
      status = this.status();
    } catch {
      return;
    }
    this.emit({ type: 'status', status });
  }
}
