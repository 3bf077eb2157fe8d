/**
 * A scriptable `UpstreamConnector` for unit tests. Each connect follows the next plan queued for
 * that server name (or the server's standing plan): succeed (optionally after a delay on the fake
 * clock), reject, throw synchronously, or hang. Connections it hands out can be crashed, made to
 * exit cleanly, made to fail or ignore pings, and made to hold their list fetches.
 */
import type { ServerConfig } from '../../../src/common/config.js';
import { GatehouseError } from '../../../src/common/errors.js';
import type { ListKind, UpstreamConnection, UpstreamConnector, UpstreamEvents, UpstreamExit, UpstreamLists } from '../../../src/core/ports.js';
import type { FakeClock } from './fake-clock.js';

export type ConnectPlan =
  /** Connects (after `delayMs` of fake time when given); `setup` adjusts the connection first. */
  | { kind: 'ok'; delayMs?: number; ignoreAbort?: boolean; setup?: (connection: FakeConnection) => void }
  | { kind: 'reject'; message?: string; delayMs?: number }
  | { kind: 'throw'; message?: string }
  /** Rejects as a remote server does when the user must sign in first (`sign_in_required`). */
  | { kind: 'sign-in'; message?: string }
  /** Never answers; rejects when the signal aborts unless `ignoreAbort`. */
  | { kind: 'hang'; ignoreAbort?: boolean };

export interface ConnectAttempt {
  name: string;
  config: ServerConfig;
  events: UpstreamEvents;
  signal: AbortSignal;
  connection?: FakeConnection;
}

export type PingBehaviour = 'ok' | 'fail' | 'hang';

export function listsFor(name: string, tools = 1): UpstreamLists {
  return {
    tools: Array.from({ length: tools }, (_, i) => ({ name: `${name}-tool-${i}` })),
    resources: [{ uri: `mem://${name}/readme`, name: 'readme' }],
    resourceTemplates: [],
    prompts: [{ name: `${name}-prompt` }],
  };
}

interface Deferred<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

let nextPid = 4000;

export class FakeConnection implements UpstreamConnection {
  readonly protocolVersion = '2025-06-18';
  readonly serverInfo: { name: string; version: string };
  readonly capabilities: Record<string, unknown> = { tools: { listChanged: true } };
  readonly instructions = undefined;
  readonly pid = nextPid++;
  readonly exited: Promise<UpstreamExit>;

  lists: UpstreamLists;
  pingBehaviour: PingBehaviour = 'ok';
  /** When true, `listAll` calls wait until `releaseListAll` / `failListAll`. */
  holdListAll = false;
  /** When set, `listAll` rejects with this message. */
  listAllError: string | undefined;
  /** When set, `close` rejects with this message (the connection still ends). */
  closeError: string | undefined;
  /** When true, `close` waits for `releaseClose` (or a crash) before the connection ends. */
  holdClose = false;

  listAllCalls = 0;
  pings = 0;
  closeCalls = 0;
  #ended: UpstreamExit | undefined;
  #resolveExit!: (exit: UpstreamExit) => void;
  readonly #heldLists: Deferred<UpstreamLists>[] = [];

  constructor(
    readonly name: string,
    readonly events: UpstreamEvents,
  ) {
    this.serverInfo = { name: `fake-${name}`, version: '1.0.0' };
    this.lists = listsFor(name);
    this.exited = new Promise<UpstreamExit>((resolve) => {
      this.#resolveExit = resolve;
    });
  }

  /** True once the connection has ended, by a crash, an exit or `close`. */
  get ended(): boolean {
    return this.#ended !== undefined;
  }

  listAll(signal: AbortSignal): Promise<UpstreamLists> {
    this.listAllCalls++;
    if (this.listAllError !== undefined) return Promise.reject(new Error(this.listAllError));
    if (!this.holdListAll) return Promise.resolve(structuredClone(this.lists));
    return new Promise<UpstreamLists>((resolve, reject) => {
      this.#heldLists.push({ resolve, reject });
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
  }

  /** Answers the oldest held `listAll` with the current lists. */
  releaseListAll(): void {
    const held = this.#heldLists.shift();
    if (!held) throw new Error('no listAll is waiting');
    held.resolve(structuredClone(this.lists));
  }

  get heldListAlls(): number {
    return this.#heldLists.length;
  }

  request(): Promise<Record<string, unknown>> {
    return Promise.resolve({ content: [] });
  }

  ping(): Promise<void> {
    this.pings++;
    if (this.#ended) return Promise.reject(new Error('connection closed'));
    switch (this.pingBehaviour) {
      case 'ok':
        return Promise.resolve();
      case 'fail':
        return Promise.reject(new Error('ping refused'));
      case 'hang':
        return new Promise<void>(() => {});
    }
  }

  close(): Promise<void> {
    this.closeCalls++;
    if (this.holdClose && !this.#ended) {
      return this.exited.then(() => undefined);
    }
    this.#end({ reason: 'closed by Gatehouse', clean: true });
    return this.closeError === undefined ? Promise.resolve() : Promise.reject(new Error(this.closeError));
  }

  /** Lets a held `close` finish. */
  releaseClose(): void {
    this.#end({ reason: 'closed by Gatehouse', clean: true });
  }

  /** The server dies. */
  crash(reason = 'exited with code 1'): void {
    this.#end({ reason, clean: false });
  }

  /** The remote server refused the user's sign-in (revoked): the connection ends waiting for a new one. */
  signInLost(reason = 'server "x" needs you to sign in: run `gatehouse servers login x`'): void {
    this.#end({ reason, clean: false, signIn: true });
  }

  /** The server ends by itself, cleanly. */
  exitCleanly(reason = 'exited with code 0'): void {
    this.#end({ reason, clean: true });
  }

  stderr(line: string): void {
    this.events.stderr(line);
  }

  listChanged(kind: ListKind = 'tools'): void {
    this.events.listChanged(kind);
  }

  #end(exit: UpstreamExit): void {
    if (this.#ended) return;
    this.#ended = exit;
    this.#resolveExit(exit);
  }
}

export class FakeConnector implements UpstreamConnector {
  readonly attempts: ConnectAttempt[] = [];
  readonly #queued = new Map<string, ConnectPlan[]>();
  readonly #standing = new Map<string, ConnectPlan>();

  constructor(readonly clock: FakeClock) {}

  /** The next connects for `name` follow these plans, in order; then the standing plan. */
  plan(name: string, ...plans: ConnectPlan[]): this {
    this.#queued.set(name, [...(this.#queued.get(name) ?? []), ...plans]);
    return this;
  }

  /** Every connect for `name` follows this plan unless one is queued (default: connect at once). */
  always(name: string, plan: ConnectPlan): this {
    this.#standing.set(name, plan);
    return this;
  }

  attemptsFor(name: string): ConnectAttempt[] {
    return this.attempts.filter((a) => a.name === name);
  }

  connections(name: string): FakeConnection[] {
    return this.attemptsFor(name).flatMap((a) => (a.connection ? [a.connection] : []));
  }

  /** The newest connection handed out for `name`. */
  last(name: string): FakeConnection {
    const all = this.connections(name);
    const connection = all[all.length - 1];
    if (!connection) throw new Error(`no connection was made to "${name}"`);
    return connection;
  }

  /** Connections handed out and not yet ended. */
  open(): FakeConnection[] {
    return this.attempts.flatMap((a) => (a.connection && !a.connection.ended ? [a.connection] : []));
  }

  connect(name: string, config: ServerConfig, events: UpstreamEvents, signal: AbortSignal): Promise<UpstreamConnection> {
    const attempt: ConnectAttempt = { name, config, events, signal };
    this.attempts.push(attempt);
    const plan = this.#queued.get(name)?.shift() ?? this.#standing.get(name) ?? { kind: 'ok' };
    const make = (setup?: (c: FakeConnection) => void): FakeConnection => {
      const connection = new FakeConnection(name, events);
      setup?.(connection);
      attempt.connection = connection;
      return connection;
    };

    switch (plan.kind) {
      case 'throw':
        throw new Error(plan.message ?? 'spawn failed');
      case 'sign-in':
        return Promise.reject(
          new GatehouseError('sign_in_required', plan.message ?? `server "${name}" needs you to sign in: run \`gatehouse servers login ${name}\``),
        );
      case 'hang':
        return new Promise<UpstreamConnection>((_resolve, reject) => {
          if (!plan.ignoreAbort) signal.addEventListener('abort', () => reject(new Error('connect aborted')), { once: true });
        });
      case 'reject':
      case 'ok': {
        const settle = (): Promise<UpstreamConnection> =>
          plan.kind === 'reject' ? Promise.reject(new Error(plan.message ?? 'connection refused')) : Promise.resolve(make(plan.setup));
        if (!plan.delayMs) return settle();
        return new Promise<UpstreamConnection>((resolve, reject) => {
          const timer = this.clock.setTimeout(() => settle().then(resolve, reject), plan.delayMs ?? 0);
          const ignoreAbort = plan.kind === 'ok' && plan.ignoreAbort;
          if (!ignoreAbort) {
            signal.addEventListener(
              'abort',
              () => {
                this.clock.clearTimeout(timer);
                reject(new Error('connect aborted'));
              },
              { once: true },
            );
          }
        });
      }
    }
  }
}
