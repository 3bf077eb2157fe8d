/**
 * Aggregation semantics, end to end: what a client sees and can do through Gatehouse's one MCP
 * server when several servers stand behind it. server-everything (npm, 2025-era) provides
 * resources, templates, prompts, completions and progress; the lab fixture (test/fixtures/lab-server.mjs)
 * changes its own tool list, asks the user questions mid-call and waits to be cancelled. The lab
 * runs twice: once speaking 2026-07-28 to Gatehouse (`lab`), once 2025-era only (`lab-legacy`).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/common/config.js';
import { callControl } from '../../src/node/control/control-client.js';
import { EVERYTHING } from '../support/servers.js';
import { eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { closeAll, connectBridge, connectHttp, ERAS, textOf, type ClientOptions, type Connected, type Era } from './support/clients.js';

const LAB = fileURLToPath(new URL('../fixtures/lab-server.mjs', import.meta.url));

const SERVERS: NonNullable<ConfigInput['servers']> = {
  everything: { type: 'stdio', command: process.execPath, args: [EVERYTHING(), 'stdio'] },
  lab: { type: 'stdio', command: process.execPath, args: [LAB] },
  'lab-legacy': { type: 'stdio', command: process.execPath, args: [LAB, '--legacy'] },
};
/** Both labs, by the protocol era each speaks to Gatehouse. */
const LABS = [
  ['lab', '2026-07-28'],
  ['lab-legacy', '2025-11-25'],
] as const;

let gh: RunningGatehouse;
beforeAll(async () => {
  gh = await startGatehouse({ servers: SERVERS, clients: ['ide'] });
  const servers = Object.fromEntries((await gh.status()).servers.map((s) => [s.name, [s.state, s.protocolVersion]]));
  expect(servers).toEqual({ everything: ['ready', '2025-11-25'], lab: ['ready', '2026-07-28'], 'lab-legacy': ['ready', '2025-11-25'] });
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
});
afterEach(closeAll);

type Via = 'bridge' | 'http';
function connect(via: Via, options: ClientOptions & { server?: string }): Promise<Connected> {
  if (via === 'bridge') return connectBridge(gh.env, { ...options, client: 'ide', token: gh.tokens.ide });
  return connectHttp(gh.httpUrl, { ...options, token: gh.tokens.ide, ...(options.server ? { path: `/mcp/${options.server}` } : {}) });
}

/** A result's text, or the error's message: some failures arrive as tool errors, others as JSON-RPC errors, depending on the server. */
async function outcomeText(call: Promise<unknown>): Promise<string> {
  try {
    return textOf(await call);
  } catch (error) {
    return (error as Error).message;
  }
}

async function labStats(connected: Connected, server: string): Promise<{ started: number; cancelled: number; finished: number; asked: number }> {
  return JSON.parse(textOf(await connected.client.callTool({ name: `${server}__stats`, arguments: {} }))) as never;
}

/** Starts `<server>__wait` and resolves once the server has reported that it is running. */
async function startWaiting(connected: Connected, server: string, signal?: AbortSignal): Promise<{ done: Promise<unknown> }> {
  let running!: () => void;
  const started = new Promise<void>((resolve) => (running = resolve));
  const done = connected.client.callTool(
    { name: `${server}__wait`, arguments: {} },
    { onprogress: () => running(), ...(signal ? { signal } : {}), timeout: 30_000 },
  );
  done.catch(() => undefined);
  await Promise.race([started, done]);
  return { done };
}

describe.each(ERAS)('the aggregate, %s era', (era) => {
  // One bridge for the whole describe: these tests leave nothing behind in the session.
  let connected: Connected;
  let client: Connected['client'];
  beforeAll(async () => {
    connected = await connect('bridge', { era, shared: true });
    client = connected.client;
  });
  afterAll(() => connected?.close());

  it('lists the resources of every server and reads each from its own server', async () => {
    const resources = (await client.listResources()).resources;
    expect(resources).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ uri: 'demo://resource/static/document/architecture.md', name: 'everything__architecture.md' }),
        expect.objectContaining({ uri: 'lab://readme', name: 'lab__readme' }),
      ]),
    );
    // Two servers list the same URI: the first keeps it, the other's copy gets a gatehouse:// address.
    const readmes = resources.filter((r) => r.name.endsWith('__readme')).map((r) => [r.name, r.uri]);
    expect(readmes).toEqual([
      ['lab__readme', 'lab://readme'],
      ['lab-legacy__readme', `gatehouse://lab-legacy/${encodeURIComponent('lab://readme')}`],
    ]);
    for (const [, uri] of readmes) {
      const read = await client.readResource({ uri: uri! });
      expect(read.contents).toEqual([expect.objectContaining({ uri: 'lab://readme', text: 'the lab readme' })]);
    }
    const doc = await client.readResource({ uri: 'demo://resource/static/document/architecture.md' });
    expect(doc.contents[0]).toMatchObject({ uri: 'demo://resource/static/document/architecture.md' });
    expect((doc.contents[0] as { text?: string }).text?.length).toBeGreaterThan(100);
  });

  it('lists resource templates and routes a read that matches one to its server', async () => {
    const templates = (await client.listResourceTemplates()).resourceTemplates;
    expect(templates).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ uriTemplate: 'demo://resource/dynamic/text/{resourceId}', name: 'everything__Dynamic Text Resource' }),
        expect.objectContaining({ uriTemplate: 'demo://resource/dynamic/blob/{resourceId}', name: 'everything__Dynamic Blob Resource' }),
        expect.objectContaining({ uriTemplate: 'lab://error/{code}', name: 'lab__error' }),
      ]),
    );
    const read = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
    expect(read.contents).toEqual([expect.objectContaining({ uri: 'demo://resource/dynamic/text/7', mimeType: 'text/plain' })]);
    expect((read.contents[0] as { text: string }).text).toMatch(/\b7\b/);
    await expect(client.readResource({ uri: 'nowhere://nothing' })).rejects.toThrow('Resource not found: nowhere://nothing');
  });

  it('lists prompts under <server>__<prompt> names and gets them with their arguments', async () => {
    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual(
      expect.arrayContaining(['everything__simple-prompt', 'everything__args-prompt', 'everything__completable-prompt', 'everything__resource-prompt']),
    );
    const simple = await client.getPrompt({ name: 'everything__simple-prompt' });
    expect(simple.messages.length).toBeGreaterThan(0);
    const withArgs = await client.getPrompt({ name: 'everything__args-prompt', arguments: { city: 'Lisbon', state: 'Estremadura' } });
    expect(JSON.stringify(withArgs.messages)).toContain('Lisbon');
    await expect(client.getPrompt({ name: 'simple-prompt' })).rejects.toThrow('Unknown prompt: simple-prompt');
  });

  it('completes prompt arguments and template variables through the aggregate', async () => {
    const departments = await client.complete({
      ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
      argument: { name: 'department', value: 'S' },
    });
    expect(departments.completion.values.sort()).toEqual(['Sales', 'Support']);
    // The context (arguments already chosen) reaches the server too.
    const names = await client.complete({
      ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
      argument: { name: 'name', value: '' },
      context: { arguments: { department: 'Sales' } },
    });
    expect(names.completion.values).toEqual(['David', 'Eve', 'Frank']);
    const ids = await client.complete({
      ref: { type: 'ref/resource', uri: 'demo://resource/dynamic/text/{resourceId}' },
      argument: { name: 'resourceId', value: '42' },
    });
    expect(ids.completion.values).toEqual(['42']);
    // Nothing is completed for a prompt that is not there.
    const none = await client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'S' } });
    expect(none.completion.values).toEqual([]);
  });

  it('passes progress notifications through to the caller', async () => {
    const progress: { progress: number; total?: number }[] = [];
    const result = await client.callTool(
      { name: 'everything__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      { onprogress: (p) => progress.push({ progress: p.progress, ...(p.total !== undefined ? { total: p.total } : {}) }) },
    );
    expect(textOf(result)).toMatch(/Long running operation completed/);
    // server-everything does not wait for its last notification to be written before answering, so the last one may lose the race, with or without Gatehouse.
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.slice(0, 2)).toEqual([
      { progress: 1, total: 3 },
      { progress: 2, total: 3 },
    ]);
  });

  it.each(LABS)('passes progress notifications from %s through in order, before the result', async (server) => {
    const progress: number[] = [];
    const result = await client.callTool({ name: `${server}__count`, arguments: { steps: 5, gapMs: 50 } }, { onprogress: (p) => progress.push(p.progress) });
    expect(textOf(result)).toBe('counted to 5');
    // In order and none skipped. Only the tail may be missing: the SDK client drops a notification
    // that it reads together with the response (typescript-sdk#2580), which on a loaded machine can
    // happen to the last one despite the server's 50 ms gaps.
    expect(progress).toEqual([1, 2, 3, 4, 5].slice(0, progress.length));
    expect(progress.length).toBeGreaterThanOrEqual(3);
  });

  it.each(LABS)('cancels the upstream request when the client aborts a call to %s, and other calls keep working', async (server) => {
    const before = await labStats(connected, server);
    const abort = new AbortController();
    const { done } = await startWaiting(connected, server, abort.signal);
    abort.abort();
    await expect(done).rejects.toThrow(/abort/i);
    // The server saw the cancellation: its handler's signal fired.
    await eventually(async () => (await labStats(connected, server)).cancelled === before.cancelled + 1, 5000, `${server} to see the cancellation`);
    // The connection, the server and the others are all still in service.
    expect(textOf(await connected.client.callTool({ name: 'everything__echo', arguments: { message: 'still here' } }))).toBe('Echo: still here');
    const after = await labStats(connected, server);
    expect(after).toMatchObject({ started: before.started + 1, cancelled: before.cancelled + 1, finished: before.finished });
  });

  it('cancels a long-running server-everything operation mid-way', async () => {
    const abort = new AbortController();
    const started = Date.now();
    const call = client.callTool(
      { name: 'everything__trigger-long-running-operation', arguments: { duration: 10, steps: 40 } },
      { signal: abort.signal, onprogress: () => abort.abort() },
    );
    await expect(call).rejects.toThrow(/abort/i);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(textOf(await client.callTool({ name: 'everything__echo', arguments: { message: 'next' } }))).toBe('Echo: next');
  });

  it.each(LABS)('passes an upstream JSON-RPC error from %s through without nested "MCP error" prefixes', async (server) => {
    const uri = server === 'lab' ? 'lab://error/-32602' : `gatehouse://lab-legacy/${encodeURIComponent('lab://error/-32602')}`;
    const error = await client.readResource({ uri }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: number },
    );
    expect(error?.code).toBe(-32602);
    expect(error?.message).toBe('the lab refuses to read this (code -32602)');
  });

  it("passes server-everything's own error through without nested prefixes", async () => {
    const error = await client.readResource({ uri: 'demo://resource/dynamic/text/not-a-number' }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: number },
    );
    expect(error?.message).toMatch(/^Unknown resource: demo:\/\/resource\/dynamic\/text\/not-a-number$/);
    expect(error?.message).not.toMatch(/MCP error/);
  });
});

/** A client that counts the `notifications/tools/list_changed` it receives, in either era. */
async function watchTools(via: Via, era: Era, server?: string): Promise<{ connected: Connected; changes: () => number; names: () => Promise<string[]> }> {
  const connected = await connect(via, { era, ...(server ? { server } : {}) });
  let changes = 0;
  connected.client.setNotificationHandler('notifications/tools/list_changed', () => void changes++);
  // 2026-07-28 has no unsolicited notifications: the client asks for them on a subscriptions/listen stream.
  if (era === 'modern') {
    const subscription = await connected.client.listen({ toolsListChanged: true });
    expect(subscription.honoredFilter).toEqual({ toolsListChanged: true });
  }
  return { connected, changes: () => changes, names: async () => (await connected.client.listTools()).tools.map((t) => t.name) };
}

describe.each([
  ['legacy', 'bridge'],
  ['legacy', 'http'],
  ['modern', 'bridge'],
  ['modern', 'http'],
] as const)('tools/list_changed, %s era over the %s', (era, via) => {
  it('reaches a connected client when a server comes or goes with a config reload', async () => {
    const watcher = await watchTools(via, era);
    expect(await watcher.names()).not.toContain('extra__stats');

    gh.writeConfig({ ...SERVERS, extra: { type: 'stdio', command: process.execPath, args: [LAB, '--legacy'] } });
    await callControl(gh.paths.controlSocketPath, 'config.reload', {});
    await eventually(() => watcher.changes() >= 1, 10_000, 'list_changed after a server was added');
    await eventually(async () => (await watcher.names()).includes('extra__stats'), 10_000, 'the new server in tools/list');

    const seen = watcher.changes();
    gh.writeConfig(SERVERS);
    await callControl(gh.paths.controlSocketPath, 'config.reload', {});
    await eventually(() => watcher.changes() > seen, 10_000, 'list_changed after a server was removed');
    expect((await watcher.names()).some((n) => n.startsWith('extra__'))).toBe(false);
  });

  it.each(LABS)('reaches a connected client when %s (speaking %s upstream) changes its own tool list', async (server) => {
    const watcher = await watchTools(via, era);
    const tool = `added_${era}_${via}`;
    await watcher.connected.client.callTool({ name: `${server}__add_tool`, arguments: { name: tool } });
    await eventually(() => watcher.changes() >= 1, 10_000, 'list_changed after add_tool');
    await eventually(async () => (await watcher.names()).includes(`${server}__${tool}`), 10_000, 'the added tool in tools/list');
    expect(textOf(await watcher.connected.client.callTool({ name: `${server}__${tool}`, arguments: {} }))).toBe(`${tool} ran`);

    const seen = watcher.changes();
    await watcher.connected.client.callTool({ name: `${server}__remove_tool`, arguments: { name: tool } });
    await eventually(() => watcher.changes() > seen, 10_000, 'list_changed after remove_tool');
    await eventually(async () => !(await watcher.names()).includes(`${server}__${tool}`), 10_000, 'the removed tool gone from tools/list');
  });

  it('reaches a single-server view when its server changes its list', async () => {
    const watcher = await watchTools(via, era, 'lab-legacy');
    const tool = `solo_${era}_${via}`;
    await watcher.connected.client.callTool({ name: 'add_tool', arguments: { name: tool } });
    await eventually(() => watcher.changes() >= 1, 10_000, 'list_changed in the single-server view');
    await eventually(async () => (await watcher.names()).includes(tool), 10_000, 'the added tool under its own name');
    await watcher.connected.client.callTool({ name: 'remove_tool', arguments: { name: tool } });
  });
});

describe.each(['bridge', 'http'] as const)('elicitation over the %s', (via) => {
  /** Two 2025-era clients whose users answer differently, so an answer shows whose it was. */
  async function twoUsers(era: Era = 'legacy') {
    const asked: string[] = [];
    const user = (who: string) =>
      connect(via, {
        era,
        onElicit: (params) => {
          asked.push(who);
          return { action: 'accept', content: { answer: `${who} says ${String(params.message)}` } };
        },
      });
    return { a: await user('A'), b: await user('B'), asked };
  }

  it.each(LABS)('relays a 2025-era client its question from %s (speaking %s upstream), and the result carries the answer', async (server) => {
    const { a, b, asked } = await twoUsers();
    expect(textOf(await a.client.callTool({ name: `${server}__ask`, arguments: { question: 'which colour?' } }))).toBe(
      'action=accept answer=A says which colour?',
    );
    expect(textOf(await b.client.callTool({ name: `${server}__ask`, arguments: { question: 'which size?' } }))).toBe('action=accept answer=B says which size?');
    // Each question went to the session whose call caused it, and only there.
    expect(asked).toEqual(['A', 'B']);
  });

  it.each(LABS)('refuses the question with a clear error while two calls to %s are in flight', async (server) => {
    const { a, b, asked } = await twoUsers();
    const abort = new AbortController();
    const { done } = await startWaiting(b, server, abort.signal);
    try {
      const text = await outcomeText(a.client.callTool({ name: `${server}__ask`, arguments: { question: 'which one?' } }));
      expect(text).toContain(
        `Gatehouse cannot relay elicitation/create: 2 client calls to "${server}" are in progress and the request does not say which one it belongs to`,
      );
      expect(asked).toEqual([]);
    } finally {
      const before = await labStats(a, server);
      abort.abort();
      await done.catch(() => undefined);
      // The abort settles the client's promise at once; wait until Gatehouse has let go of the call too.
      await eventually(async () => (await labStats(a, server)).cancelled > before.cancelled, 5000, `${server} to see the cancellation`);
    }
    // With the other call gone, the question gets through again.
    expect(textOf(await a.client.callTool({ name: `${server}__ask`, arguments: { question: 'now?' } }))).toBe('action=accept answer=A says now?');
  });

  it.each(LABS)('refuses the question from %s with a clear error when the caller speaks 2026-07-28', async (server) => {
    const { a, asked } = await twoUsers('modern');
    const text = await outcomeText(a.client.callTool({ name: `${server}__ask`, arguments: { question: 'anyone?' } }));
    expect(text).toContain('the calling client speaks the 2026-07-28 protocol, which has no server-to-client elicitation/create request during a call');
    expect(asked).toEqual([]);
  });
});
