/**
 * Live state the console can trust (issue 17): what "connected now" and "last seen" say, and that
 * the console hears what changed, against the real core (the composition root, the real socket
 * bridge and HTTP endpoint, a real MCP server), with the desktop app's question surface standing
 * in for the person who pairs the bridge.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeTopic, ClientEntry, ConsoleEvent } from '../../src/common/console-api.js';
import type { WaitingQuestion } from '../../src/common/questions.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { AppSurface, humanIpcHandlers } from '../../main/human-windows.js';
import { recordingWindows } from '../support/question-windows.js';
import { APP_ORIGIN } from '../../main/ipc.js';
import { bridgeEnv, closeAll, connectBridge, connectHttp, textOf } from './support/clients.js';
import { BIN, REPO, eventually, makeHome } from './support/gatehouse.js';

const CRM = join(REPO, 'test', 'fixtures', 'crm-server.mjs');
const CHANNELS = { question: 'q', answer: 'a', inbox: 'i', inboxAnswer: 'ia' };

let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
let tokens: Record<string, string>;
const { port, opened: windows } = recordingWindows();
let answer: (windowId: number, payload: unknown) => unknown;
let question: (windowId: number) => WaitingQuestion;
const events: { at: number; event: ConsoleEvent }[] = [];

const clientsList = async (): Promise<ClientEntry[]> => {
  const reply = await daemon.console.call('clients.list', {});
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result as ClientEntry[];
};
const connected = () => daemon.status().clients.map((c) => c.name);

beforeAll(async () => {
  home = makeHome('gh-live-');
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({ servers: { crm: { type: 'stdio', command: process.execPath, args: [CRM] } }, listen: { http: { enabled: true, port: 0 } } }),
    { mode: 0o600 },
  );
  const registry = new ClientRegistry(join(home.paths.stateDir, 'clients.json'));
  tokens = { web: registry.add('web', { scope: { kind: 'all' }, via: 'http' }), cli: registry.add('cli-agent', { scope: { kind: 'all' }, via: 'http' }) };
  const surface = new AppSurface(port);
  const handlers = humanIpcHandlers(surface, () => false, CHANNELS);
  const event = (id: number) => ({ sender: { id }, senderFrame: { url: `${APP_ORIGIN}/index.html#/question`, parent: null } });
  answer = (id, payload) => handlers.get(CHANNELS.answer)!(event(id), payload);
  question = (id) => (handlers.get(CHANNELS.question)!(event(id), undefined) as { ok: true; result: WaitingQuestion }).result;
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    secrets: new MemorySecretStore(),
    managedDir: join(home.home, 'no-managed-settings'),
    logger: { log: () => undefined },
    human: { terminal: null, surfaces: [surface], notice: { notify: () => undefined } },
  });
  daemon.console.subscribe((e) => events.push({ at: Date.now(), event: e }));
  await eventually(() => daemon.status().servers.find((s) => s.name === 'crm')?.state === 'ready', 30_000, 'the CRM');
}, 60_000);

afterAll(async () => {
  await closeAll();
  await daemon?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

/** Waits for a `changed` event naming `topic` that arrived after `since`; resolves with how long after `since` it came. */
async function changedAfter(since: number, topic: ChangeTopic): Promise<number> {
  const found = await eventually(
    () => events.find((e) => e.at >= since && e.event.type === 'changed' && e.event.topics.includes(topic)),
    5000,
    `a change of ${topic}`,
  );
  return found.at - since;
}

describe('what the console shows of clients is true, at once', () => {
  it('shows a bridge that paired a moment ago and made three calls as seen now, never as "never" (issue 17)', async () => {
    const connecting = connectBridge(home.env, { era: 'legacy', client: 'notes-agent' });
    const win = await eventually(() => windows.find((w) => w.title === 'Pair the client "notes-agent"?'), 15_000, 'the pairing window');
    const shown = question(win.id);
    expect(answer(win.id, { decision: 'approve', scope: { kind: 'all', servers: [], tools: [], expiryDays: shown.scope!.expiryDays[0]! } })).toEqual({
      ok: true,
      result: { recorded: true },
    });
    const { client } = await connecting;
    const before = Date.now();
    for (let i = 0; i < 3; i++) expect(textOf(await client.callTool({ name: 'crm__search_contacts', arguments: { query: 'a' } }))).toContain('Ada');
    const entry = (await clientsList()).find((c) => c.name === 'notes-agent')!;
    expect(entry.sessions).toBe(1);
    expect(entry.lastSeen).toBeDefined();
    expect(Date.parse(entry.lastSeen!)).toBeGreaterThanOrEqual(before - 1000);
    const session = daemon.status().clients.find((c) => c.name === 'notes-agent')!;
    expect(session.calls).toBe(3);
    expect(Date.parse(session.lastCallAt!)).toBeGreaterThanOrEqual(before);
  });

  it("ends a revoked client's live sessions, socket and HTTP alike, the moment the console revokes it", async () => {
    const web = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens.web });
    await web.client.listTools();
    expect(connected()).toEqual(expect.arrayContaining(['notes-agent', 'web']));
    const since = Date.now();
    for (const name of ['notes-agent', 'web']) expect(await daemon.console.call('clients.revoke', { name })).toEqual({ ok: true, result: { revoked: true } });
    // Gone from "connected now" before the console even asks again.
    expect(connected()).not.toContain('notes-agent');
    expect(connected()).not.toContain('web');
    expect((await clientsList()).map((c) => c.name)).toEqual(['cli-agent']);
    // The console is told within its throttle, not at its next tick.
    expect(await changedAfter(since, 'clients')).toBeLessThan(1000);
    // The 2025-era HTTP session is gone: the same session id is no longer known, and the token no longer admits.
    await expect(web.client.listTools()).rejects.toThrow();
  });

  it('ends the sessions of a client revoked on the command line too', async () => {
    const agent = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens.cli });
    await agent.client.listTools();
    expect(connected()).toContain('cli-agent');
    // Asynchronously: the daemon runs in this process and must answer the command's notification.
    const run = await promisify(execFile)(process.execPath, [BIN, 'clients', 'revoke', 'cli-agent'], {
      env: bridgeEnv(home.env),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.stdout).toBe('revoked "cli-agent"\n');
    await eventually(() => !connected().includes('cli-agent'), 2000, 'the session ended');
  });
});

describe('the console hears what changed', () => {
  it('names the topics a change touched, so each screen refetches only what it shows', async () => {
    const since = Date.now();
    const web = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('late-comer', { scope: { kind: 'read-only' }, via: 'http' });
    // A client paired behind the console's back (another process wrote the file) shows up once the daemon reads it.
    await daemon.console.call('clients.list', {});
    const http = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: web });
    await http.client.listTools();
    expect(await changedAfter(since, 'clients')).toBeLessThan(2000);
    const restart = Date.now();
    await daemon.console.call('servers.restart', { name: 'crm' });
    expect(await changedAfter(restart, 'servers')).toBeLessThan(2000);
    const secret = Date.now();
    await daemon.console.call('secrets.set', { name: 'probe', value: 'x-value' });
    expect(await changedAfter(secret, 'secrets')).toBeLessThan(2000);
  });
});
