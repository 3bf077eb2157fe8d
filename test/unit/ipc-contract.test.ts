/**
 * The IPC contract between the console and the main process (desktop issue): the preload exposes
 * exactly the channels declared in src/common, and main refuses a message from a foreign sender
 * or with a payload that does not parse, before anything reaches the daemon.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { CONSOLE_METHODS, IPC_EVENT_CHANNEL, IPC_PREFIX, ipcChannel, isConsoleMethod } from '../../src/common/console-channels.js';
import { ControlRequests } from '../../src/common/control-api.js';
import type { DaemonStatus } from '../../src/common/status.js';
import type { ControlHandlers } from '../../src/node/control/control-server.js';
import { ConsoleHub } from '../../src/node/console/hub.js';
import { buildBridge, declaredChannels, type IpcRendererLike } from '../../main/bridge.js';
import { APP_ORIGIN, FORBIDDEN, consoleIpcHandlers, isTrustedSender, type IpcEventLike } from '../../main/ipc.js';

const WINDOW = 7;
const known = (id: number) => id === WINDOW;
const fromConsole = (overrides: Partial<IpcEventLike> = {}): IpcEventLike => ({
  sender: { id: WINDOW },
  senderFrame: { url: `${APP_ORIGIN}/index.html#/servers`, parent: null },
  ...overrides,
});

/** A hub over handlers that record what reached them. */
function hubWith(reached: { method: string; params: unknown }[]) {
  const handlers = new Proxy({} as ControlHandlers, {
    get: (_target, method: string) => async (params: unknown) => {
      reached.push({ method, params });
      return { answered: method };
    },
  });
  return new ConsoleHub(handlers, () => ({}) as DaemonStatus);
}

describe('the declared channels', () => {
  it('are one per console method, all under the gatehouse: prefix, and each a method of the control contract', () => {
    const channels = CONSOLE_METHODS.map(ipcChannel);
    expect(new Set(channels).size).toBe(CONSOLE_METHODS.length);
    for (const channel of channels) expect(channel.startsWith(IPC_PREFIX)).toBe(true);
    for (const method of CONSOLE_METHODS) expect(Object.hasOwn(ControlRequests, method)).toBe(true);
  });

  it('leave out what only the CLI may ask (pairing a token client, announcing secrets, printing a login link)', () => {
    for (const method of ['clients.pair', 'clients.reload', 'secrets.changed', 'identity.reload', 'console.link']) expect(isConsoleMethod(method)).toBe(false);
  });
});

describe('the preload bridge', () => {
  function fakeIpc() {
    const invoked: { channel: string; args: unknown[] }[] = [];
    const listeners = new Map<string, Set<(event: unknown, ...args: unknown[]) => void>>();
    const ipc: IpcRendererLike = {
      invoke: async (channel, ...args) => {
        invoked.push({ channel, args });
        return { ok: true, result: channel };
      },
      on: (channel, listener) => listeners.set(channel, (listeners.get(channel) ?? new Set()).add(listener)),
      removeListener: (channel, listener) => listeners.get(channel)?.delete(listener),
    };
    return { ipc, invoked, listeners };
  }

  it('exposes exactly the declared methods, the event feed, the popup question and the app settings, and nothing of ipcRenderer', () => {
    const bridge = buildBridge(fakeIpc().ipc);
    expect(Object.keys(bridge).sort()).toEqual([...CONSOLE_METHODS, 'onEvent', 'human', 'app'].sort());
    expect(Object.keys(bridge.human).sort()).toEqual(['answer', 'answerOne', 'inbox', 'question']);
    expect(Object.keys(bridge.app).sort()).toEqual(['setSettings', 'settings']);
    expect(bridge).not.toHaveProperty('invoke');
    expect(bridge).not.toHaveProperty('send');
  });

  it('sends each method on its own declared channel, and only on declared channels', async () => {
    const { ipc, invoked } = fakeIpc();
    const bridge = buildBridge(ipc);
    for (const method of CONSOLE_METHODS) await bridge[method]({ probe: method });
    await bridge.human.question();
    await bridge.human.answer({ decision: 'decline' });
    await bridge.app.settings();
    await bridge.app.setSettings({ openAtLogin: true });
    expect(invoked.slice(0, CONSOLE_METHODS.length).map((i) => i.channel)).toEqual(CONSOLE_METHODS.map(ipcChannel));
    expect(invoked[0]!.args).toEqual([{ probe: 'status' }]);
    for (const { channel } of invoked) expect(declaredChannels()).toContain(channel);
  });

  it("hands the page the event data only, never Electron's event object, and unsubscribes", () => {
    const { ipc, listeners } = fakeIpc();
    const bridge = buildBridge(ipc);
    const seen: unknown[] = [];
    const unsubscribe = bridge.onEvent((event) => seen.push(event));
    const electronEvent = { sender: { send: () => undefined }, senderFrame: {} };
    for (const listener of listeners.get(IPC_EVENT_CHANNEL)!) listener(electronEvent, { type: 'log', server: 'memory', line: 'hello' });
    expect(seen).toEqual([{ type: 'log', server: 'memory', line: 'hello' }]);
    unsubscribe();
    expect(listeners.get(IPC_EVENT_CHANNEL)!.size).toBe(0);
  });

  it('is what the preload puts on window, and the preload requires nothing but electron', () => {
    const source = readFileSync(new URL('../../main/preload.ts', import.meta.url), 'utf8');
    const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(imports.sort()).toEqual(['./bridge.js', 'electron']);
    expect(source).toContain("contextBridge.exposeInMainWorld('gatehouse', buildBridge(ipcRenderer))");
    const bridge = readFileSync(new URL('../../main/bridge.ts', import.meta.url), 'utf8');
    // The bridge bundles into the sandboxed preload: it may take only the zod-free channel list at run time.
    const runtime = [...bridge.matchAll(/^import (?!type)[^;]* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(runtime).toEqual(['../src/common/console-channels.js']);
  });
});

describe('the main process handlers', () => {
  it('register exactly one handler per declared channel', () => {
    const handlers = consoleIpcHandlers(hubWith([]), known);
    expect([...handlers.keys()].sort()).toEqual(CONSOLE_METHODS.map(ipcChannel).sort());
  });

  it('answer a well-formed call from the console window', async () => {
    const reached: { method: string; params: unknown }[] = [];
    const handlers = consoleIpcHandlers(hubWith(reached), known);
    const answer = await handlers.get(ipcChannel('servers.restart'))!(fromConsole(), { name: 'memory' });
    expect(answer).toEqual({ ok: true, result: { answered: 'servers.restart' } });
    expect(reached).toEqual([{ method: 'servers.restart', params: { name: 'memory' } }]);
  });

  it.each([
    ['a web contents Gatehouse did not open', fromConsole({ sender: { id: 99 } })],
    ['a subframe of the console', fromConsole({ senderFrame: { url: `${APP_ORIGIN}/index.html`, parent: {} } })],
    ['a page from another origin', fromConsole({ senderFrame: { url: 'https://evil.example/', parent: null } })],
    ['a file:// page', fromConsole({ senderFrame: { url: 'file:///home/me/index.html', parent: null } })],
    ['a look-alike scheme host', fromConsole({ senderFrame: { url: 'app://console.evil/index.html', parent: null } })],
    ['a frame that is gone', fromConsole({ senderFrame: null })],
  ])('refuse a foreign sender: %s, before the daemon hears of it', async (_what, event) => {
    const reached: { method: string; params: unknown }[] = [];
    const refused = vi.fn();
    const handlers = consoleIpcHandlers(hubWith(reached), known, refused);
    expect(await handlers.get(ipcChannel('clients.revoke'))!(event, { name: 'cursor' })).toEqual(FORBIDDEN);
    expect(reached).toEqual([]);
    expect(refused).toHaveBeenCalledOnce();
  });

  it.each([
    ['servers.restart', { name: 'Not A Server Name!' }, /name: not a valid server name/],
    ['servers.restart', { name: 'memory', extra: true }, /Unrecognized key/],
    ['servers.restart', 'memory', /expected object/],
    ['secrets.set', { name: 'stripe_key' }, /value/],
    ['secrets.set', { name: '../etc/passwd', value: 'x' }, /name: a secret name/],
    ['audit.query', { limit: 1_000_000 }, /limit/],
    ['audit.timeline', { from: 'yesterday', by: 'tool' }, /from/],
    ['servers.add', { name: 'notes', config: { type: 'stdio' } }, /config\.command/],
    ['servers.add', { name: 'notes', config: { type: 'stdio', command: 'node', args: 'not-a-list' } }, /config\.args/],
  ] as const)('refuse a bad payload for %s (%j) without running the handler', async (method, payload, message) => {
    const reached: { method: string; params: unknown }[] = [];
    const handlers = consoleIpcHandlers(hubWith(reached), known);
    const answer = await handlers.get(ipcChannel(method))!(fromConsole(), payload);
    expect(answer.ok).toBe(false);
    expect(answer.ok ? '' : answer.error.code).toBe('invalid_params');
    expect(answer.ok ? '' : answer.error.message).toMatch(message);
    expect(reached).toEqual([]);
  });

  it('refuse a method the console may not call, even through the hub directly', async () => {
    const reached: { method: string; params: unknown }[] = [];
    const hub = hubWith(reached);
    for (const method of ['clients.pair', 'secrets.changed', 'console.link', '__proto__', 'constructor']) {
      const answer = await hub.call(method, {});
      expect(answer).toMatchObject({ ok: false, error: { code: 'unknown_method' } });
    }
    expect(reached).toEqual([]);
  });
});

describe('isTrustedSender', () => {
  it('accepts the top frame of a known window on app://console only', () => {
    expect(isTrustedSender(fromConsole(), known)).toBe(true);
    expect(isTrustedSender(fromConsole({ senderFrame: { url: 'app://console/index.html#/question', parent: null } }), known)).toBe(true);
    expect(isTrustedSender(fromConsole({ senderFrame: { url: 'not a url', parent: null } }), known)).toBe(false);
  });
});
