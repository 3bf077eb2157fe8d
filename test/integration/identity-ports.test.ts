/**
 * No composition of the daemon lets a client in without a credential (issue 12, finding 6). The
 * test identity, which stands in for a signed-in user, sits behind the sign-in's port; pairing is
 * wired all the same, so a bare hello is asked about, never admitted unverified.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import type { DeskQuestion, HumanSurface } from '../../src/core/human/desk.js';
import { LocalIdentity } from '../../src/node/local-identity.js';
import { eventually, makeHome } from './support/gatehouse.js';

let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
/** Where the person would see questions; this one only keeps them. */
const asked: DeskQuestion[] = [];
const person: HumanSurface = { name: 'test', show: (entry) => (asked.push(entry), true), withdraw: () => undefined };

beforeAll(async () => {
  home = makeHome('gh-ports-');
  writeFileSync(home.paths.configFile, JSON.stringify({ servers: {}, listen: { http: { enabled: false } } }), { mode: 0o600 });
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    logger: { log: () => undefined },
    secrets: new MemorySecretStore(),
    managedDir: join(home.home, 'no-managed-settings'),
    testIdentity: { user: 'sam@example.com', groups: ['crm-support'] },
    human: { terminal: null, surfaces: [person], notice: { notify: () => undefined } },
  });
});
afterAll(async () => {
  await daemon?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

/** Sends a hello on the socket and returns the first line the daemon answers, then hangs up. */
function firstReply(hello: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(home.paths.socketPath);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer to the hello'));
    }, 10_000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(hello) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>);
    });
    socket.on('error', reject);
  });
}

describe('a daemon with a test identity', () => {
  it('asks the person to pair a client that says hello without a credential, and lets nothing in meanwhile', async () => {
    const reply = await firstReply({ gatehouse: 'hello', version: 1, client: 'sneaky' });
    // Welcomed at once (issue 11), but pending: no credential, and the person is asked.
    expect(reply).toMatchObject({ gatehouse: 'welcome', pairing: { code: expect.stringMatching(/^[A-Z2-9]{3}-[A-Z2-9]{3}$/) } });
    expect(reply).not.toHaveProperty('credential');
    await eventually(() => asked.find((q) => q.question.title.includes('"sneaky"')), 5000, 'the pairing question');
    // Its session (while it lasts) is not verified and sees nothing.
    expect(daemon.status().clients.every((c) => c.name !== 'sneaky' || (c.verified === false && c.pairing === 'pending'))).toBe(true);
  });

  it('admits a paired client as verified, acting for the test user', async () => {
    const token = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('ide');
    const reply = await firstReply({ gatehouse: 'hello', version: 1, client: 'ide', token });
    expect(reply).toMatchObject({ gatehouse: 'welcome' });
    expect(daemon.status().user).toBe('sam@example.com (test identity)');
  });
});

describe('the local identity', () => {
  it('cannot be built without a way to pair clients', () => {
    const registry = new ClientRegistry(join(home.paths.stateDir, 'other-clients.json'));
    expect(() => new LocalIdentity(registry, {} as never)).toThrow(/needs the bridges' pairing/);
  });
});
