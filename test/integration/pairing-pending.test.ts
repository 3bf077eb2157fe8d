/**
 * Pairing that fits a client's patience (issue 11): the bridge completes `initialize` at once,
 * whatever the pairing state, serves an honest pending state (no tools, instructions and a log
 * line saying where to answer), and announces `list_changed` for tools, prompts and resources once
 * the person has paired it. A refusal or an expiry is a clear error on the next request. Both
 * protocol eras, with the SDK v1 client (as IDEs embed it) at its default timeouts and the SDK v2
 * client. The person answers on the real question page, with the code the daemon's terminal shows.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { bridgeClaimItem } from '../../src/node/identity/bridge-credentials.js';
import { FileKeyStore, fileKeyStoreDir } from '../../src/node/keystore/file.js';
import { CANARY_SERVER, answer, startIdentityHome, type IdentityHome } from '../support/identity-home.js';
import { MODERN_VERSION, runCommand } from './support/clients.js';
import { BIN, eventually } from './support/gatehouse.js';

let gh: IdentityHome;
const opened: { close(): Promise<unknown> }[] = [];

/** What an IDE launched with a minimal environment gets: HOME, PATH and USER (and which Gatehouse, in the test). */
const minimalEnv = (home: IdentityHome) => ({ HOME: home.home, PATH: process.env.PATH ?? '/usr/bin:/bin', USER: 'gatehouse-test', GATEHOUSE_HOME: home.home });

beforeAll(async () => {
  gh = await startIdentityHome({ servers: { canary: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER] } } });
  await eventually(() => gh.daemon.status().servers[0]?.state === 'ready', 20_000, 'the canary server');
});
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await gh?.stop();
});

/** The SDK v1 client, as Claude Desktop, Cursor and the Inspector embed it, with its default request timeout. */
async function v1(client: string, home = gh) {
  const transport = new StdioV1({ command: process.execPath, args: [BIN, 'connect', '--client', client], env: minimalEnv(home), stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const mcp = new ClientV1({ name: 'ide', version: '1.0.0' }, { capabilities: {} });
  const seen = { tools: 0, prompts: 0, resources: 0, logs: [] as string[] };
  mcp.setNotificationHandler(ToolListChangedNotificationSchema, () => void seen.tools++);
  mcp.setNotificationHandler(PromptListChangedNotificationSchema, () => void seen.prompts++);
  mcp.setNotificationHandler(ResourceListChangedNotificationSchema, () => void seen.resources++);
  mcp.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.logs.push(String(n.params.data)));
  await mcp.connect(transport);
  opened.push(mcp);
  return { mcp, seen, stderr: () => stderr };
}

const toolNames = async (mcp: { listTools(): Promise<{ tools: { name: string }[] }> }) => (await mcp.listTools()).tools.map((t) => t.name).sort();

describe('a bridge waiting to be paired, 2025 era (SDK v1 client)', () => {
  it('completes initialize before the person answers, serves no tools with instructions and a log line saying where to answer, then lists the tools after list_changed', async () => {
    const connecting = v1('ide-one');
    const question = await gh.nextQuestion(/"ide-one"/);
    const { mcp, seen, stderr } = await connecting;
    // Connected while the question still waits for the person.
    expect(gh.daemon.status().pendingQuestions).toBe(1);
    expect(mcp.getInstructions()).toContain(`check that it shows the code ${question.clientCode}`);
    expect(mcp.getInstructions()).toContain('answer on the terminal where Gatehouse runs');
    expect(await toolNames(mcp)).toEqual([]);
    expect((await mcp.listPrompts()).prompts).toEqual([]);
    expect((await mcp.listResources()).resources).toEqual([]);
    await eventually(() => seen.logs.some((l) => l.includes(question.clientCode!)), 5000, 'the log line with the code');
    await expect(mcp.callTool({ name: 'canary__read', arguments: {} })).rejects.toThrow(/waiting for you to pair "ide-one"/);
    expect((await refusal(mcp.callTool({ name: 'canary__read', arguments: {} }))).data).toEqual({ reason: 'pairing_pending' });
    expect(stderr()).toContain(`check that it shows the code ${question.clientCode}`);
    expect(gh.daemon.status().clients.find((c) => c.name === 'ide-one')).toMatchObject({ pairing: 'pending', verified: false });

    // The person answers later, while the client keeps the connection.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await answer(question, { decision: 'approve', scope: 'all', expiry: '30' })).status).toBe(200);
    await eventually(() => seen.tools >= 1 && seen.prompts >= 1 && seen.resources >= 1, 10_000, 'list_changed for tools, prompts and resources');
    expect(await toolNames(mcp)).toContain('canary__read');
    expect((await mcp.callTool({ name: 'canary__read', arguments: {} })).content).toEqual([{ type: 'text', text: 'read ok' }]);
    await eventually(() => stderr().includes('paired as "ide-one"; the credential is kept in the file store in'), 5000, 'the bridge keeping its credential');
    expect(gh.daemon.status().clients.find((c) => c.name === 'ide-one')).toMatchObject({ verified: true });
    expect(gh.daemon.status().clients.find((c) => c.name === 'ide-one')?.pairing).toBeUndefined();

    // The next launch presents the kept credential: no question, tools at once.
    const before = gh.questions.length;
    const again = await v1('ide-one');
    expect(await toolNames(again.mcp)).toContain('canary__read');
    expect(gh.questions.length).toBe(before);
  });

  it('keeps the credential in a 0600 file in a 0700 directory when no keychain answers', () => {
    const dir = join(gh.paths.stateDir, 'keys');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir).filter((f) => f.startsWith('client-credential'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
  });

  it('turns a refusal into a clear error on the next request, and says so on stderr', async () => {
    const connecting = v1('ide-declined');
    const question = await gh.nextQuestion(/"ide-declined"/);
    const { mcp, stderr } = await connecting;
    expect(await toolNames(mcp)).toEqual([]);
    await answer(question, { decision: 'decline' });
    await eventually(() => stderr().includes('declined to pair "ide-declined"'), 5000, 'the refusal on stderr');
    await expect(mcp.listTools()).rejects.toThrow(/the person at this computer declined to pair "ide-declined"/);
    expect((await refusal(mcp.listTools())).data).toEqual({ reason: 'pairing_declined' });
    expect(new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).list().some((r) => r.name === 'ide-declined')).toBe(false);
  });

  it('turns an expiry into a clear error on the next request', async () => {
    const short = await startIdentityHome({ pairingDeadlineMs: 1500 });
    try {
      const { mcp, stderr } = await v1('ide-late', short);
      expect(await toolNames(mcp)).toEqual([]);
      await eventually(() => stderr().includes('nobody answered the pairing request for "ide-late"'), 10_000, 'the expiry on stderr');
      await expect(mcp.callTool({ name: 'x', arguments: {} })).rejects.toThrow(/nobody answered the pairing request for "ide-late" within 2 s/);
      expect((await refusal(mcp.listTools())).data).toEqual({ reason: 'pairing_expired' });
    } finally {
      await short.stop();
    }
  });
});

describe('a bridge waiting to be paired, 2026-07-28 era (SDK v2 client)', () => {
  it('answers at once with no tools, and announces the tools on its listen stream once paired', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'connect', '--client', 'modern-ide'],
      env: minimalEnv(gh),
      stderr: 'pipe',
    });
    const client = new Client({ name: 'modern', version: '1.0.0' }, { capabilities: {}, versionNegotiation: { mode: { pin: MODERN_VERSION } } });
    let changes = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void changes++);
    const asked = gh.nextQuestion(/"modern-ide"/);
    await client.connect(transport, { timeout: 15_000 });
    opened.push(client);
    const question = await asked;
    expect((await client.listTools()).tools).toEqual([]);
    await client.listen({ toolsListChanged: true });
    await expect(client.callTool({ name: 'canary__read', arguments: {} })).rejects.toThrow(/waiting for you to pair "modern-ide"/);
    await answer(question, { decision: 'approve', scope: 'read-only', expiry: '1' });
    await eventually(() => changes >= 1, 10_000, 'tools/list_changed on the listen stream');
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['canary__read']);
  });
});

/** The SDK v2 client of the 2026-07-28 era, pinned to it, as a newer IDE embeds it. */
async function v2(client: string, home = gh) {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'connect', '--client', client], env: minimalEnv(home), stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const mcp = new Client({ name: 'modern', version: '1.0.0' }, { capabilities: {}, versionNegotiation: { mode: { pin: MODERN_VERSION } } });
  await mcp.connect(transport, { timeout: 15_000 });
  opened.push(mcp);
  return { mcp, stderr: () => stderr };
}

/** What a request is answered with, as the client sees it: the error's class, code and message. */
async function refusal(request: Promise<unknown>): Promise<{ type: string; code: unknown; message: string; data: unknown }> {
  const error = await request.then(
    () => undefined,
    (e: unknown) => e as Error & { code?: unknown; data?: unknown },
  );
  if (!error) throw new Error('the request was answered, not refused');
  return { type: error.constructor.name, code: error.code, message: error.message, data: error.data };
}

/**
 * Gatehouse's "unauthorized" JSON-RPC code (src/common/errors.ts), the one every pairing refusal carries, with the reason as its
 * message and the stable code in `data.reason`, so that a client can tell a refusal from an expiry without reading the words.
 */
const UNAUTHORIZED = -32001;
const REFUSED = {
  type: 'ProtocolError',
  code: UNAUTHORIZED,
  message: 'the person at this computer declined to pair "modern-declined"',
  data: { reason: 'pairing_declined' },
};
const EXPIRED = {
  type: 'ProtocolError',
  code: UNAUTHORIZED,
  message: 'nobody answered the pairing request for "modern-late" within 2 s',
  data: { reason: 'pairing_expired' },
};

describe('a refused or expired pairing, 2026-07-28 era (SDK v2 client)', () => {
  it('answers every request after a refusal with an unauthorized error saying the person declined', async () => {
    const connecting = v2('modern-declined');
    const question = await gh.nextQuestion(/"modern-declined"/);
    const { mcp, stderr } = await connecting;
    expect(mcp.getNegotiatedProtocolVersion()).toBe(MODERN_VERSION);
    expect((await mcp.listTools()).tools).toEqual([]);
    await answer(question, { decision: 'decline' });
    await eventually(() => stderr().includes('declined to pair "modern-declined"'), 5000, 'the refusal on stderr');
    expect(await refusal(mcp.listTools())).toEqual(REFUSED);
    expect(await refusal(mcp.callTool({ name: 'canary__read', arguments: {} }))).toEqual(REFUSED);
    expect(new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).list().some((r) => r.name === 'modern-declined')).toBe(false);
  });

  it('answers every request after an expiry with an unauthorized error saying nobody answered in time', async () => {
    const short = await startIdentityHome({ pairingDeadlineMs: 1500 });
    try {
      const { mcp, stderr } = await v2('modern-late', short);
      expect((await mcp.listTools()).tools).toEqual([]);
      await eventually(() => stderr().includes('nobody answered the pairing request for "modern-late"'), 10_000, 'the expiry on stderr');
      expect(await refusal(mcp.callTool({ name: 'x', arguments: {} }))).toEqual(EXPIRED);
      expect(await refusal(mcp.listTools())).toEqual(EXPIRED);
    } finally {
      await short.stop();
    }
  });
});

describe('a one-shot client (the bridge is gone when the person answers)', () => {
  it('leaves the question open, and the next launch of the same client picks up the approval without a new question', async () => {
    const first = await v1('one-shot');
    const question = await gh.nextQuestion(/"one-shot"/);
    expect(await toolNames(first.mcp)).toEqual([]);
    await first.mcp.close();
    opened.splice(opened.indexOf(first.mcp), 1);
    // The question is still there after the bridge went away.
    await new Promise((r) => setTimeout(r, 300));
    expect(gh.daemon.status().pendingQuestions).toBe(1);
    expect((await answer(question, { decision: 'approve', scope: 'all', expiry: '7' })).status).toBe(200);

    const count = gh.questions.length;
    const next = await v1('one-shot');
    expect(await toolNames(next.mcp)).toContain('canary__read');
    expect(gh.questions.length).toBe(count);
    expect(next.stderr()).toContain('paired as "one-shot"');
  });

  it('refuses another bridge of that name that does not hold the claim', async () => {
    const first = await v1('claimed');
    const question = await gh.nextQuestion(/"claimed"/);
    await first.mcp.close();
    opened.splice(opened.indexOf(first.mcp), 1);
    await answer(question, { decision: 'approve', scope: 'all', expiry: '1' });
    // Another process of the user, without the claim the first bridge kept, cannot take the approval.
    await new FileKeyStore(fileKeyStoreDir(gh.paths.stateDir)).delete(bridgeClaimItem(gh.paths.socketPath, 'claimed'));
    const stranger = await runCommand(process.execPath, [BIN, 'connect', '--client', 'claimed'], minimalEnv(gh), 15_000, '');
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain('Gatehouse refused the connection: the pairing of "claimed" was approved and waits for the bridge that asked for it');
    expect(new ClientRegistry(join(gh.paths.stateDir, 'clients.json')).list().some((r) => r.name === 'claimed')).toBe(false);
  });
});
