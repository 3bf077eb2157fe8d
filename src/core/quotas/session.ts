/**
 * Client sessions, as quotas and approvals count them. A session is one principal object: the
 * identity layer makes one per socket connection (one `gatehouse connect`), one per 2025-era HTTP
 * session (`Mcp-Session-Id`), and one per request for 2026-07-28 HTTP clients, which have no
 * sessions. A session ends when its connection does (`end`); nothing of it outlives the daemon.
 */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../principal.js';

interface Known {
  ref: WeakRef<Principal>;
  client: string;
  since: number;
}

export class SessionKeys {
  private readonly ids = new WeakMap<Principal, string>();
  private readonly known = new Map<string, Known>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The session's id; a new one the first time a principal is seen. */
  of(principal: Principal): string {
    let id = this.ids.get(principal);
    if (id === undefined) {
      id = randomUUID();
      this.ids.set(principal, id);
      if (this.known.size >= 10_000) this.prune();
      this.known.set(id, { ref: new WeakRef(principal), client: principal.client.name, since: this.now() });
    }
    return id;
  }

  /**
   * The connection is gone: its session ends now, not when the garbage collector gets to it, so that
   * status stops showing its counters and its "for this session" approvals lapse at once.
   */
  end(principal: Principal): void {
    const id = this.ids.get(principal);
    if (id !== undefined) this.known.delete(id);
  }

  /** A session still held by a connection (and not ended), with its client's name. */
  live(id: string): { client: string; since: number } | undefined {
    const known = this.known.get(id);
    if (!known) return undefined;
    if (known.ref.deref() === undefined) {
      this.known.delete(id);
      return undefined;
    }
    return { client: known.client, since: known.since };
  }

  private prune(): void {
    for (const [id, known] of this.known) if (known.ref.deref() === undefined) this.known.delete(id);
  }
}
