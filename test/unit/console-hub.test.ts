/**
 * The console hub's change announcements (issue 17): a method that changes something names the
 * topics it touched; a method that only reads announces nothing (a screen that refetches on every
 * change would otherwise ask again for ever).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ConsoleEvent } from '../../src/common/console-api.js';
import type { DaemonStatus } from '../../src/common/status.js';
import type { ControlHandlers } from '../../src/node/control/control-server.js';
import { ConsoleHub } from '../../src/node/console/hub.js';

const status = { version: 't', servers: [], clients: [] } as unknown as DaemonStatus;
const handlers = new Proxy({}, { get: () => async () => ({}) }) as unknown as ControlHandlers;
let hub: ConsoleHub | undefined;
afterEach(() => hub?.close());

async function eventsAfter(call: (hub: ConsoleHub) => Promise<unknown>): Promise<ConsoleEvent[]> {
  hub = new ConsoleHub(handlers, () => status);
  const events: ConsoleEvent[] = [];
  hub.subscribe((e) => events.push(e));
  await call(hub);
  await new Promise((resolve) => setTimeout(resolve, 260));
  return events;
}

describe('the console hub', () => {
  it('announces the topics a change touched, with the status that goes with it', async () => {
    const events = await eventsAfter((h) => h.call('clients.revoke', { name: 'cursor' }));
    expect(events).toEqual([
      { type: 'status', status },
      { type: 'changed', topics: ['clients', 'tools'] },
    ]);
  });

  it('announces nothing for a method that only reads', async () => {
    const reads = ['status', 'identity.status', 'clients.list', 'tools.cost', 'audit.timeline', 'policy.status', 'servers.tools', 'questions.list'] as const;
    const events = await eventsAfter(async (h) => {
      for (const method of reads) {
        const params = method === 'audit.timeline' ? { from: new Date(0).toISOString(), by: 'tool' } : method === 'servers.tools' ? { name: 'memory' } : {};
        expect((await h.call(method, params)).ok, method).toBe(true);
      }
    });
    expect(events).toEqual([]);
  });

  it('gathers the topics of a burst of changes into one announcement', async () => {
    const events = await eventsAfter(async (h) => {
      h.changed(['audit']);
      h.changed(['clients']);
      h.changed(['audit', 'servers']);
    });
    expect(events.filter((e) => e.type === 'changed')).toEqual([{ type: 'changed', topics: ['audit', 'clients', 'servers'] }]);
  });
});
