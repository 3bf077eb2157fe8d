/**
 * The SDK servers that answer 2026-07-28 requests, kept between requests. The era is stateless: each
 * request opens a Gatehouse session of its own (the chain sees exactly what it saw when a server was
 * built per request: the session, its "for this session" approvals and quota counters, end with the
 * request). Only the SDK server object is reused: building one (its handlers, its schemas) and tearing
 * it down cost each request more than Gatehouse's own HTTP layer did (BENCHMARKS.md).
 *
 * A server is kept per key, which names everything the server was built with: the user and client it
 * answers for, the scope and view, and its instructions. Two principals never share one, so nothing a
 * server holds between requests (its instructions, the client identity the SDK seeds from a request's
 * envelope) reaches anyone else. A server serves one request at a time (the SDK refuses one still
 * connected), and returns to its key's idle list only when its request's exchange has ended *and* every
 * handler that request started has settled: a handler still running (a call the client abandoned,
 * waiting for its upstream) keeps its server out of reach, so that nothing it sends can reach the next
 * request. The idle lists are bounded per key and in total (least recently used keys give way first),
 * and a server idle longer than `idleMs` is dropped; a dropped server is disconnected and holds nothing.
 */
import type { Server } from '@modelcontextprotocol/server';
import type { Principal } from '../../core/principal.js';
import type { Scope } from '../../core/gateway.js';
import type { DownstreamSession, SessionBinding } from './mcp-server.js';

export interface KeptServerLimits {
  /** Idle servers kept for one key: as many as one client runs requests at once, within reason. */
  perKey: number;
  /** Idle servers kept in all. */
  total: number;
  /** An idle server unused this long is dropped (on the listener's sweep). */
  idleMs: number;
}

export const DEFAULT_KEPT_SERVER_LIMITS: KeptServerLimits = { perKey: 16, total: 128, idleMs: 60_000 };

/** A server lent to one request. */
export interface Lease<S extends Server = Server> {
  server: S;
  /** The request is done with it: it is kept again once every handler the request started has settled. */
  release(): void;
}

interface Kept<S extends Server> {
  server: S;
  binding: SessionBinding;
  idleSince: number;
}

export interface KeptServerStats {
  idle: number;
  built: number;
  reused: number;
}

/** The key of a server built for this principal, scope and view, with these instructions. */
export function keptServerKey(principal: Principal, scope: Scope, session: DownstreamSession, instructions: string | undefined): string {
  const view = session.view ? `search:${JSON.stringify(session.view.pinned)}` : 'aggregate';
  return JSON.stringify([principal.user.source, principal.user.id, principal.client.id, scope.server ?? null, view, instructions ?? null]);
}

export class KeptServers<S extends Server = Server> {
  /** Idle servers by key; the map's order is the keys' use, least recent first. */
  private idle = new Map<string, Kept<S>[]>();
  private idleCount = 0;
  private built = 0;
  private reused = 0;

  constructor(
    private readonly build: (binding: SessionBinding) => S,
    private readonly limits: KeptServerLimits = DEFAULT_KEPT_SERVER_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A server for `key`, answering for `session`: an idle one kept for that key, else a new one. */
  take(key: string, session: DownstreamSession): Lease<S> {
    const list = this.idle.get(key);
    let kept = list?.pop();
    if (list?.length === 0) this.idle.delete(key);
    if (kept) {
      this.idleCount--;
      this.reused++;
      kept.binding.session = session;
    } else {
      const binding: SessionBinding = { session, running: 0 };
      kept = { server: this.build(binding), binding, idleSince: 0 };
      this.built++;
    }
    const lent = kept;
    let released = false;
    return {
      server: lent.server,
      release: () => {
        if (released) return;
        released = true;
        if (lent.binding.running === 0) return this.keep(key, lent);
        lent.binding.onIdle = () => {
          delete lent.binding.onIdle;
          this.keep(key, lent);
        };
      },
    };
  }

  private keep(key: string, kept: Kept<S>): void {
    // Still connected (it would be refused by the SDK) or built for a handler that outlived it: not kept.
    if (kept.server.transport !== undefined || kept.binding.running > 0) return;
    kept.server.onclose = undefined;
    kept.idleSince = this.now();
    const list = this.idle.get(key) ?? [];
    this.idle.delete(key);
    this.idle.set(key, list);
    list.push(kept);
    this.idleCount++;
    if (list.length > this.limits.perKey) this.drop(key, list, 1);
    while (this.idleCount > this.limits.total) {
      const [oldestKey, oldest] = this.idle.entries().next().value as [string, Kept<S>[]];
      this.drop(oldestKey, oldest, 1);
    }
  }

  /** Drops the `count` longest idle servers of one key. */
  private drop(key: string, list: Kept<S>[], count: number): void {
    list.splice(0, count);
    this.idleCount -= count;
    if (list.length === 0) this.idle.delete(key);
  }

  /** Drops the servers idle since before `before`. */
  sweep(before: number): void {
    for (const [key, list] of [...this.idle]) {
      const stale = list.findIndex((k) => k.idleSince >= before);
      this.drop(key, list, stale < 0 ? list.length : stale);
    }
  }

  clear(): void {
    this.idle.clear();
    this.idleCount = 0;
  }

  stats(): KeptServerStats {
    return { idle: this.idleCount, built: this.built, reused: this.reused };
  }
}
