/**
 * The SDK servers kept between 2026-07-28 requests (src/node/downstream/kept-servers.ts), on real SDK
 * servers: which one a request gets, when a lent one comes back, and the bounds on what is kept.
 */
import { describe, expect, it } from 'vitest';
import { InMemoryTransport, Server } from '@modelcontextprotocol/server';
import { KeptServers, keptServerKey, type KeptServerLimits } from '../../src/node/downstream/kept-servers.js';
import type { DownstreamSession, SessionBinding } from '../../src/node/downstream/mcp-server.js';
import type { Principal } from '../../src/core/principal.js';

function principal(user: string, client: string): Principal {
  return {
    user: { id: user, source: 'os', displayName: user, groups: [], roles: [] },
    client: { id: client, name: client, verified: true, transport: 'http' },
  } as Principal;
}

function session(p: Principal): DownstreamSession {
  return { principal: p, scope: {}, era: 'modern' };
}

function pool(limits: Partial<KeptServerLimits> = {}, now: () => number = Date.now) {
  const bindings = new Map<Server, SessionBinding>();
  const kept = new KeptServers(
    (binding) => {
      const server = new Server({ name: 'test', version: '1' }, { capabilities: {} });
      bindings.set(server, binding);
      return server;
    },
    { perKey: 4, total: 8, idleMs: 60_000, ...limits },
    now,
  );
  return { kept, bindings };
}

describe('kept 2026-07-28 servers', () => {
  it('lends a released server to the next request of the same key, bound to that request’s session', () => {
    const { kept, bindings } = pool();
    const first = session(principal('ann', 'ide'));
    const lease = kept.take('k', first);
    lease.release();
    const second = session(principal('ann', 'ide'));
    const again = kept.take('k', second);
    expect(again.server).toBe(lease.server);
    expect(bindings.get(again.server)!.session).toBe(second);
    expect(kept.stats()).toEqual({ idle: 0, built: 1, reused: 1 });
  });

  it('never lends a server kept for one key to another', () => {
    const { kept } = pool();
    const ann = kept.take('ann', session(principal('ann', 'ide')));
    ann.release();
    const bob = kept.take('bob', session(principal('bob', 'ide')));
    expect(bob.server).not.toBe(ann.server);
  });

  it('keys servers by user, client, scope, view and instructions', () => {
    const ann = principal('ann', 'ide');
    const base = keptServerKey(ann, {}, session(ann), undefined);
    expect(keptServerKey(principal('ann', 'ide'), {}, session(ann), undefined)).toBe(base);
    expect(keptServerKey(principal('bob', 'ide'), {}, session(ann), undefined)).not.toBe(base);
    expect(keptServerKey(principal('ann', 'agent'), {}, session(ann), undefined)).not.toBe(base);
    expect(keptServerKey(ann, { server: 'everything' }, session(ann), undefined)).not.toBe(base);
    expect(keptServerKey(ann, {}, { ...session(ann), view: { kind: 'search', pinned: [] } }, undefined)).not.toBe(base);
    expect(keptServerKey(ann, {}, session(ann), 'Gatehouse shows you no tools yet: x.')).not.toBe(base);
  });

  it('keeps a server out of reach while a handler its last request started still runs', () => {
    const { kept, bindings } = pool();
    const lease = kept.take('k', session(principal('ann', 'ide')));
    const binding = bindings.get(lease.server)!;
    // A call the client abandoned: its exchange ended, its handler waits for the upstream.
    binding.running = 1;
    lease.release();
    const meanwhile = kept.take('k', session(principal('ann', 'ide')));
    expect(meanwhile.server).not.toBe(lease.server);
    binding.running = 0;
    binding.onIdle?.();
    expect(kept.take('k', session(principal('ann', 'ide'))).server).toBe(lease.server);
  });

  it('does not keep a server that is still connected', async () => {
    const { kept } = pool();
    const lease = kept.take('k', session(principal('ann', 'ide')));
    const [, serverSide] = InMemoryTransport.createLinkedPair();
    await lease.server.connect(serverSide);
    lease.release();
    expect(kept.stats().idle).toBe(0);
    expect(kept.take('k', session(principal('ann', 'ide'))).server).not.toBe(lease.server);
  });

  it('keeps at most perKey idle servers of one key and total in all, dropping the least recently used key first', () => {
    const { kept } = pool({ perKey: 2, total: 3 });
    const many = (key: string, n: number) => Array.from({ length: n }, () => kept.take(key, session(principal(key, 'ide'))));
    for (const lease of many('a', 3)) lease.release();
    expect(kept.stats().idle).toBe(2);
    const b = many('b', 2);
    for (const lease of b) lease.release();
    expect(kept.stats().idle).toBe(3);
    // Key a was used least recently: it gave way, b kept both.
    expect(b.map((l) => l.server)).toContain(kept.take('b', session(principal('b', 'ide'))).server);
    expect(kept.stats().built).toBe(5);
  });

  it('drops servers idle since before the sweep’s bound', () => {
    let now = 1_000;
    const { kept } = pool({}, () => now);
    const old = kept.take('k', session(principal('ann', 'ide')));
    const young = kept.take('k', session(principal('ann', 'ide')));
    old.release();
    now = 5_000;
    young.release();
    kept.sweep(2_000);
    expect(kept.stats().idle).toBe(1);
    expect(kept.take('k', session(principal('ann', 'ide'))).server).toBe(young.server);
    kept.sweep(10_000);
    expect(kept.stats().idle).toBe(0);
  });
});
