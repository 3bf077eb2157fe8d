/**
 * The desktop app's side of the human channel, with everything but Electron real (issue 10): the
 * core built by the same composition root the app uses, the app's surface (main/human-windows.ts)
 * with a stand-in for BrowserWindow, the IPC handlers main registers, and the questions the real
 * chain asks: an agent's pairing over the real socket, and a refund the person's own rule holds.
 * The window content is tested in Chromium (console-e2e: the question window and the inbox).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BridgeResult } from '../../src/common/console-api.js';
import type { WaitingQuestion } from '../../src/common/questions.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { AppSurface, humanIpcHandlers } from '../../main/human-windows.js';
import { recordingWindows } from '../support/question-windows.js';
import { APP_ORIGIN, type IpcEventLike } from '../../main/ipc.js';
import { auditEvents, errorOf, executed } from './support/approvals.js';
import { closeAll, connectBridge, textOf } from './support/clients.js';
import { REPO, eventually, makeHome } from './support/gatehouse.js';

const CRM = join(REPO, 'test', 'fixtures', 'crm-server.mjs');
const CHANNELS = { question: 'q', answer: 'a', inbox: 'i', inboxAnswer: 'ia' };
const CONSOLE_WINDOW = 1;

let home: ReturnType<typeof makeHome>;
let scratch: string;
let callLog: string;
let daemon: Daemon;
let token: string;
const { port, opened: windows } = recordingWindows();
let call: (channel: string, sender: number, payload?: unknown) => BridgeResult;

beforeAll(async () => {
  home = makeHome('gh-app-');
  scratch = mkdtempSync(join(tmpdir(), 'gh-app-'));
  callLog = join(scratch, 'calls.jsonl');
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      servers: { crm: { type: 'stdio', command: process.execPath, args: [CRM, '--log', callLog], sandbox: { write: [dirname(callLog)] } } },
      listen: { http: { enabled: false, port: 0 } },
      approvals: { ask: ['crm__refund'] },
    }),
    { mode: 0o600 },
  );
  token = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('ide', { scope: { kind: 'all' }, via: 'socket' });
  const surface = new AppSurface(port);
  const handlers = humanIpcHandlers(surface, (id) => id === CONSOLE_WINDOW, CHANNELS);
  call = (channel, sender, payload) => {
    const event: IpcEventLike = { sender: { id: sender }, senderFrame: { url: `${APP_ORIGIN}/index.html#/question`, parent: null } };
    return handlers.get(channel)!(event, payload);
  };
  // As main.ts builds it: no terminal, the app's windows, notifications that answer nothing.
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    secrets: new MemorySecretStore(),
    managedDir: join(home.home, 'no-managed-settings'),
    logger: { log: () => undefined },
    human: { terminal: null, surfaces: [surface], notice: { notify: () => undefined } },
  });
  await eventually(() => daemon.status().servers.find((s) => s.name === 'crm')?.state === 'ready', 30_000, 'the CRM');
});
afterAll(async () => {
  await closeAll();
  await daemon?.stop();
  rmSync(home.home, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe('the desktop app answering the human channel', () => {
  it("opens a window for the refund the person's rule holds, shows it every fact, and runs the call once the window approves", async () => {
    const { client } = await connectBridge(home.env, { era: 'legacy', client: 'ide', token });
    const refund = client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-2', amount: 260, currency: 'EUR' } }, { timeout: 60_000 });
    const win = await eventually(() => windows.find((w) => w.title === 'Allow ide to call crm__refund?' && !w.closed), 15_000, 'the question window');
    const shown = call(CHANNELS.question, win.id) as unknown as { ok: true; result: WaitingQuestion };
    const facts = Object.fromEntries(shown.result.facts.map((f) => [f.label, f.value]));
    expect(facts['Client']).toBe('ide (paired, over socket)');
    expect(facts['Why you are asked']).toBe('This call is one you asked to approve first in your Gatehouse config (approvals.ask: crm__refund)');
    expect(facts['Arguments']).toContain('"amount": 260');
    expect(facts['Request']).toMatch(/digest sha256:[0-9a-f]{64}/);
    expect(daemon.questions.list()).toHaveLength(1);
    expect(daemon.status().pendingQuestions).toBe(1);
    // A forged choice (another request's digest) is refused, and the call still waits.
    const once = shown.result.choices!.find((c) => c.id.startsWith('once:'))!.id;
    expect(call(CHANNELS.answer, win.id, { decision: 'approve', choice: once.replace(/[0-9a-f]{8}$/, '00000000') })).toMatchObject({ ok: false });
    expect(executed(callLog)).toEqual([]);
    expect(call(CHANNELS.answer, win.id, { decision: 'approve', choice: once })).toEqual({ ok: true, result: { recorded: true } });
    expect(textOf(await refund)).toBe('refunded 260.00 EUR to Grace Hopper');
    expect(win.closed).toBe(true);
    expect(auditEvents(home.paths, 'approval.decided').at(-1)).toMatchObject({ decision: 'allowed', detail: { via: 'desktop app' } });
  });

  it('takes the answer from the console window\'s inbox too, and treats a closed window as "no"', async () => {
    const { client } = await connectBridge(home.env, { era: 'modern', client: 'ide', token });
    const first = errorOf(client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-3', amount: 11, currency: 'EUR' } }, { timeout: 60_000 }));
    const inbox = await eventually(
      () => {
        const reply = call(CHANNELS.inbox, CONSOLE_WINDOW) as unknown as { ok: true; result: WaitingQuestion[] };
        return reply.result.length === 1 ? reply.result : undefined;
      },
      15_000,
      'the question in the inbox',
    );
    expect(call(CHANNELS.inboxAnswer, CONSOLE_WINDOW, { id: inbox[0]!.id, answer: { decision: 'decline' } })).toMatchObject({ ok: true });
    expect((await first).message).toContain('the person at this computer declined');

    const second = errorOf(client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-3', amount: 12, currency: 'EUR' } }, { timeout: 60_000 }));
    const win = await eventually(() => windows.find((w) => !w.closed), 15_000, 'the question window');
    win.onClosed();
    expect((await second).message).toContain('the person at this computer declined');
    expect(executed(callLog).filter((c) => c.args.contact_id === 'c-3')).toEqual([]);
  });

  it('pairs a new bridge from its window, with the scope the person picked', async () => {
    const connecting = connectBridge(home.env, { era: 'legacy', client: 'notes-agent' });
    const win = await eventually(() => windows.find((w) => w.title === 'Pair the client "notes-agent"?' && !w.closed), 15_000, 'the pairing window');
    const shown = call(CHANNELS.question, win.id) as unknown as { ok: true; result: WaitingQuestion };
    expect(shown.result.scope!.servers.map((s) => s.name)).toEqual(['crm']);
    const scope = { kind: 'listed', servers: [], tools: ['crm__search_contacts'], expiryDays: shown.result.scope!.expiryDays.at(-1)! };
    expect(call(CHANNELS.answer, win.id, { decision: 'approve', scope })).toMatchObject({ ok: true });
    const { client } = await connecting;
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['crm__search_contacts']);
  });
});
