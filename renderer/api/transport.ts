/**
 * One client of the control contract, whatever carries it: the preload's IPC channels in the
 * desktop app, or the loopback WebSocket of `gatehouse daemon --ui`. Screens never see which.
 */
import type { BridgeResult, ConsoleError, ConsoleEvent, ConsoleMethod } from '../../src/common/console-api.js';

export class CallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CallError';
  }
}

export type ConnectionState = 'connecting' | 'open' | 'closed' | 'signed-out';

export interface Transport {
  readonly kind: 'ipc' | 'websocket';
  call(method: ConsoleMethod, params?: unknown): Promise<unknown>;
  /** Console events, and `connection` events when the link to the daemon changes. */
  subscribe(listener: (event: ConsoleEvent) => void): () => void;
  readonly state: ConnectionState;
}

function unwrap(answer: BridgeResult | { ok: false; error: ConsoleError }): unknown {
  if (answer.ok) return answer.result;
  throw new CallError(answer.error.code, answer.error.message);
}

/** The desktop app: `window.gatehouse`, the functions the preload exposed. */
export class IpcTransport implements Transport {
  readonly kind = 'ipc' as const;
  readonly state: ConnectionState = 'open';
  constructor(private readonly bridge: NonNullable<Window['gatehouse']>) {}

  async call(method: ConsoleMethod, params?: unknown): Promise<unknown> {
    const fn = this.bridge[method];
    if (typeof fn !== 'function') throw new CallError('unknown_method', `the desktop app does not offer ${method}`);
    return unwrap(await fn(params ?? {}));
  }

  subscribe(listener: (event: ConsoleEvent) => void): () => void {
    return this.bridge.onEvent(listener);
  }
}

/** Where the page keeps the session token the login redirect handed it (this origin's storage only). */
export const SESSION_KEY = 'gatehouse.session';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  method: string;
  params: unknown;
}

/**
 * Headless: a WebSocket to `/api/ws` on the page's own origin. The first message proves the
 * session (the token from the login redirect); calls made while the socket is down wait for it to
 * come back (for a while) rather than fail at once.
 */
export class WebSocketTransport implements Transport {
  readonly kind = 'websocket' as const;
  state: ConnectionState = 'connecting';
  private socket: WebSocket | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: number[] = [];
  private readonly listeners = new Set<(event: ConsoleEvent) => void>();
  private retryMs = 500;

  constructor(
    private readonly url: string,
    private readonly token: () => string | null,
  ) {
    this.connect();
  }

  call(method: ConsoleMethod, params?: unknown): Promise<unknown> {
    if (this.state === 'signed-out')
      return Promise.reject(new CallError('signed_out', 'the console session ended: open a new login link (run `gatehouse console` for one)'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method, params: params ?? {} });
      if (this.state === 'open') this.send(id);
      else this.queue.push(id);
    });
  }

  subscribe(listener: (event: ConsoleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ConsoleEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  private send(id: number): void {
    const p = this.pending.get(id);
    if (!p || !this.socket) return;
    this.socket.send(JSON.stringify({ id, method: p.method, params: p.params }));
  }

  private setState(state: ConnectionState, reason?: string): void {
    if (this.state === state) return;
    this.state = state;
    if (state === 'open' || state === 'closed' || state === 'signed-out') {
      this.emit({ type: 'connection', state: state === 'open' ? 'open' : 'closed', ...(reason ? { reason } : {}) });
    }
  }

  private endSession(reason: string): void {
    this.setState('signed-out', reason);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new CallError('signed_out', 'the console session ended: open a new login link (run `gatehouse console` for one)'));
    }
    this.queue.length = 0;
  }

  private connect(): void {
    const token = this.token();
    if (!token) {
      this.setState('signed-out', 'no session: open the one-time login link printed by `gatehouse daemon --ui`');
      return;
    }
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => socket.send(JSON.stringify({ type: 'hello', token })));
    socket.addEventListener('message', (message) => {
      let data: { welcome?: boolean; event?: ConsoleEvent; id?: number; ok?: boolean; result?: unknown; error?: ConsoleError };
      try {
        data = JSON.parse(String(message.data)) as typeof data;
      } catch {
        return;
      }
      if (data.welcome) {
        this.retryMs = 500;
        this.setState('open');
        for (const id of this.queue.splice(0)) this.send(id);
        return;
      }
      if (data.event) return this.emit(data.event);
      if (typeof data.id === 'number') {
        const p = this.pending.get(data.id);
        if (!p) return;
        this.pending.delete(data.id);
        if (data.ok) p.resolve(data.result);
        else p.reject(new CallError(data.error?.code ?? 'failed', data.error?.message ?? 'the call failed'));
      }
    });
    socket.addEventListener('close', (close) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      // Calls that were sent get no answer now; those not sent yet wait for the next connection.
      for (const [id, p] of this.pending) {
        if (this.queue.includes(id)) continue;
        this.pending.delete(id);
        p.reject(
          new CallError(
            'disconnected',
            'the connection to Gatehouse was lost before it answered; the console reconnects by itself — try again once it is back',
          ),
        );
      }
      if (close.code === 4401) return this.endSession(close.reason || 'the console session ended');
      this.setState('closed', 'the connection to Gatehouse was lost; reconnecting');
      const delay = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, 10_000);
      // A daemon that restarted has forgotten this session: the page itself then answers 401.
      void fetch(new URL('/', this.url.replace(/^ws/, 'http')), { method: 'HEAD', cache: 'no-store' })
        .then((res) => {
          if (res.status === 401)
            this.endSession('Gatehouse restarted, so this console session ended: open a new login link (run `gatehouse console` for one)');
          else setTimeout(() => this.connect(), delay);
        })
        .catch(() => setTimeout(() => this.connect(), delay));
    });
  }
}

/** The transport for this page: IPC in the desktop app, else the WebSocket of the page's own origin. */
export function defaultTransport(): Transport {
  if (window.gatehouse) return new IpcTransport(window.gatehouse);
  const url = new URL('/api/ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return new WebSocketTransport(url.href, () => window.localStorage.getItem(SESSION_KEY));
}
