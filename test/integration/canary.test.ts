/**
 * The canary test. Real secret values (and the real credentials of a sign-in and a paired bridge)
 * are planted, then every flow runs against `gatehouse daemon` as a child process: sign-in, pairing,
 * calls through the bridge and over HTTP, a server that writes its secret to stderr, into an error
 * and a log message, into its instructions, version, lists, prompts, resources, completions,
 * progress messages, resource updates, elicitation and sampling requests, a crash and its restart, a manual restart, a rotation, logs, status, whoami,
 * the audit log (verify, query, export) and the control API. Then every output, every file under
 * the test home, and the environment of every process but the one that was given the secret are
 * scanned for every planted value: zero hits. (The server that declares the secret is the positive
 * control: its environment must hold it, or the test planted nothing.)
 */
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { callControl } from '../../src/node/control/control-client.js';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { bridgeCredentialItem } from '../../src/node/identity/bridge-credentials.js';
import { sessionItem } from '../../src/node/identity/token-store.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { CLIENT_ID, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { CANARY_SERVER, connectBridgeWith } from '../support/identity-home.js';
import { startHeaderServer, type HeaderServer } from '../support/header-server.js';
import { bridgeEnv, connectHttp, runGatehouse, textOf } from './support/clients.js';
import { BIN, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

const STRIPE = 'sk_live_CANARY_b7c1e93f';
const ROTATED = 'sk_live_CANARY_ROTATED_0a4d';
const HEADER = 'hdr_CANARY_91f0c2aa';

let keyring: TestKeyring;
let idp: TestProvider;
let remote: HeaderServer;
let home: ReturnType<typeof makeHome>;
let daemon: TerminalDaemon;
let binDir: string;
const outputs: string[] = [];

const env = (extra: Record<string, string> = {}) => ({ ...bridgeEnv(home.env, keyring.env), PATH: `${binDir}:${process.env.PATH}`, ...extra });
async function gatehouse(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = await runGatehouse(args, env(), 60_000, input);
  outputs.push(run.stdout, run.stderr);
  return run;
}
const status = async () => (await callControl(home.paths.controlSocketPath, 'status', {})) as DaemonStatus;
const server = async (name: string) => (await status()).servers.find((s) => s.name === name)!;

/** The notifications the daemon sent through (a stand-in for) notify-send. */
function notifications(): string {
  try {
    return readFileSync(join(binDir, 'notifications.log'), 'utf8');
  } catch {
    return '';
  }
}

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  idp = await startProvider();
  remote = await startHeaderServer(HEADER);
  home = makeHome('gh-canary-');
  // A desktop notifier that writes what it is asked to show where the test can read it.
  binDir = mkdtempSync(join(tmpdir(), 'gh-canary-bin-'));
  writeFileSync(join(binDir, 'notify-send'), `#!/bin/sh\nprintf '%s\\n' "$@" >> "${join(binDir, 'notifications.log')}"\n`);
  chmodSync(join(binDir, 'notify-send'), 0o755);
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      listen: { http: { enabled: true, port: 0 } },
      servers: {
        payments: {
          type: 'stdio',
          command: process.execPath,
          args: [CANARY_SERVER],
          env: { CANARY_VAR: 'API_KEY', API_KEY: '${secret:stripe_key}' },
          restart: { initialDelayMs: 100, maxDelayMs: 500 },
        },
        plain: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER], env: { CANARY_VAR: 'API_KEY' } },
        remote: { type: 'http', url: remote.url, headers: { Authorization: 'Bearer ${secret:remote_token}' } },
      },
    }),
  );
  writeFileSync(
    join(home.paths.configDir, 'identity.json'),
    JSON.stringify({ issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'offline_access', 'email', 'groups'] }),
  );
  expect((await gatehouse(['secrets', 'set', 'stripe_key'], STRIPE + '\n')).code).toBe(0);
  expect((await gatehouse(['secrets', 'set', 'remote_token'], HEADER + '\n')).code).toBe(0);

  // The daemon in a terminal, as a person runs it: its questions are shown and answered there.
  daemon = spawnOnTerminal(['daemon'], env(), home.paths);
  // eventually() retries a refused connection: the daemon is up once status answers.
  await eventually(() => status().then(() => true), 30_000, 'the daemon');
  await eventually(async () => (await status()).servers.every((s) => s.state === 'ready'), 30_000, 'the servers');
});

afterAll(async () => {
  await daemon?.stop();
  await remote?.stop();
  await idp?.stop();
  await keyring?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
  if (binDir) rmSync(binDir, { recursive: true, force: true });
});

/** `gatehouse login --no-browser`, with its sign-in address followed by the provider's pages as a browser would. */
async function login(): Promise<void> {
  const child = spawn(process.execPath, [BIN, 'login', '--no-browser'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    const url = /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+/.exec(err)?.[0];
    if (url && !signing) signing = signIn(url, 'alice');
  });
  let signing: Promise<unknown> | undefined;
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  outputs.push(out, err);
  expect(code, err).toBe(0);
  expect(out).toBe('signed in as alice@example.test (groups: engineering, sales)\n');
}

/** Pairs a bridge: the person reads the question on the daemon's terminal and answers there ("all my tools"). */
async function pairBridge(name: string) {
  const connecting = connectBridgeWith(env(), name);
  const number = await eventually(
    () => new RegExp(`Gatehouse asks \\[(\\d+)\\]: Pair the client "${name}"`).exec(daemon.screen())?.[1],
    15_000,
    'the pairing question',
  );
  // The notification said what is asked and where to answer, and nothing that answers it.
  await eventually(() => notifications().includes(`Pair the client "${name}"`), 5_000, 'the notification');
  expect(notifications()).not.toMatch(/http:\/\/|[0-9A-Z]{4}-[0-9A-Z]{4}/);
  daemon.type(`${number} a`);
  return connecting;
}

/** A 2025-era HTTP client that answers elicitation and sampling requests, keeping what it was asked. */
async function connectAsking(token: string, asked: unknown[]): Promise<Client> {
  const client = new Client({ name: 'canary-asker', version: '1.0.0' }, { capabilities: { elicitation: { form: {} }, sampling: {} } });
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params);
    return { action: 'decline' } as never;
  });
  client.setRequestHandler('sampling/createMessage', async (request) => {
    asked.push(request.params);
    return { role: 'assistant', content: { type: 'text', text: 'no' }, model: 'canary-model' } as never;
  });
  const httpUrl = JSON.parse(readFileSync(join(home.paths.runtimeDir, 'daemon.json'), 'utf8')).httpUrl as string;
  await client.connect(new StreamableHTTPClientTransport(new URL(`${httpUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => ({ path: join(e.parentPath, e.name), bytes: readFileSync(join(e.parentPath, e.name)) }));
}

describe('canary: no secret value leaves the place it was put', () => {
  it('runs every flow, then finds no planted value in any output, file or other process environment', async () => {
    await login();
    const bridge = await pairBridge('canary-ide');
    outputs.push(bridge.stderr());
    const keychain = new KeychainSecretStore();
    const refreshItem = await keychain.get(sessionItem(idp.issuer, CLIENT_ID));
    // The answer is typed; the bridge keeps its credential a moment later (pairBridge does not wait for that).
    const bridgeItem = await eventually(
      () => keychain.get(bridgeCredentialItem(home.paths.socketPath, 'canary-ide')),
      15_000,
      'the bridge to keep its credential',
    );
    const bridgeToken = bridgeItem.unwrap();
    const refreshToken = (JSON.parse(refreshItem!.unwrap()) as { refreshToken: string }).refreshToken;

    // Calls through the bridge and over HTTP, including every way the server tries to leak.
    const results: unknown[] = [];
    const c = bridge.client;
    results.push(await c.callTool({ name: 'payments__has_secret', arguments: {} }));
    expect(textOf(results.at(-1))).toMatch(/^set=true /);
    results.push(await c.callTool({ name: 'payments__leak_stderr', arguments: {} }));
    results.push(await c.callTool({ name: 'payments__leak_error', arguments: {} }).catch((e: Error) => e.message));
    results.push(await c.callTool({ name: 'payments__leak_log', arguments: {} }));
    results.push(await c.callTool({ name: 'remote__whoami', arguments: {} }));
    const http = await connectHttp(JSON.parse(readFileSync(join(home.paths.runtimeDir, 'daemon.json'), 'utf8')).httpUrl as string, {
      era: 'modern',
      token: bridgeToken,
    });
    results.push(await http.client.callTool({ name: 'plain__has_secret', arguments: {} }));
    results.push(await http.client.listTools());
    await http.close();

    // Every other channel a server speaks on (issue 12, finding 2): its lists (names, descriptions, schemas), a prompt, a
    // resource, a completion, a progress message, a resource update, and the requests it sends the client mid-call.
    const [tools, prompts, resources] = [await c.listTools(), await c.listPrompts(), await c.listResources()];
    results.push(tools, prompts, resources);
    expect(JSON.stringify(tools)).toContain('Lists the key [secret stripe_key redacted]');
    results.push(await c.getPrompt({ name: 'payments__leak_prompt', arguments: { topic: 'x' } }));
    for (const resource of resources.resources) results.push(await c.readResource({ uri: resource.uri }));
    const completion = await c.complete({ ref: { type: 'ref/prompt', name: 'payments__leak_prompt' }, argument: { name: 'topic', value: '' } });
    expect(completion.completion.values).toContain('[secret stripe_key redacted]');
    results.push(completion);
    const progress: unknown[] = [];
    results.push(await c.callTool({ name: 'payments__leak_progress', arguments: {} }, { onprogress: (p) => void progress.push(p) }));
    expect(JSON.stringify(progress)).toContain('halfway with [secret stripe_key redacted]');
    results.push(progress, await c.callTool({ name: 'payments__leak_update', arguments: {} }));
    const asked: unknown[] = [];
    const asker = await connectAsking(bridgeToken, asked);
    results.push(
      await asker.callTool({ name: 'payments__leak_elicit', arguments: {} }),
      await asker.callTool({ name: 'payments__leak_sampling', arguments: {} }),
    );
    await asker.close();
    expect(asked).toHaveLength(2);
    expect(JSON.stringify(asked)).toContain('Please confirm the key [secret stripe_key redacted]');
    expect(JSON.stringify(asked)).toContain('You hold [secret stripe_key redacted]');
    results.push(asked);

    // A crash (the server prints its secret as it dies) and the restart that follows.
    const crashedPid = (await server('payments')).pid;
    results.push(await c.callTool({ name: 'payments__crash', arguments: {} }).catch((e: Error) => e.message));
    await eventually(
      async () => (await server('payments')).state === 'ready' && (await server('payments')).pid !== crashedPid,
      20_000,
      'payments to come back',
    );
    // A manual restart, and a rotation (which restarts it again).
    expect((await gatehouse(['servers', 'restart', 'payments'])).code).toBe(0);
    expect((await gatehouse(['secrets', 'set', 'stripe_key'], ROTATED + '\n')).code).toBe(0);
    await eventually(async () => (await server('payments')).state === 'ready', 20_000, 'payments after rotation');
    // A secret missing and restored (the error names it, never a value).
    results.push(await c.callTool({ name: 'payments__has_secret', arguments: {} }));
    await bridge.close();

    // Everything a person or a script can read.
    for (const args of [
      ['status'],
      ['status', '--json'],
      ['whoami', '--json'],
      ['logs', 'payments', '--lines', '1000'],
      ['logs', 'plain'],
      ['clients', 'list', '--json'],
      ['secrets', 'list', '--json'],
      ['servers', 'list', '--json'],
      ['audit', 'verify'],
      ['audit', 'query', '--limit', '1000', '--json'],
      ['audit', 'export'],
    ]) {
      const run = await gatehouse(args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
    }
    for (const method of ['status', 'identity.status'] as const) outputs.push(JSON.stringify(await callControl(home.paths.controlSocketPath, method, {})));
    outputs.push(JSON.stringify(await callControl(home.paths.controlSocketPath, 'logs', { name: 'payments', lines: 1000 })));
    outputs.push(JSON.stringify(results));

    // The positive control: the server that declares the secret has it (the rotated value now).
    const paymentsPid = (await server('payments')).pid!;
    expect(readFileSync(`/proc/${paymentsPid}/environ`, 'utf8')).toContain(`API_KEY=${ROTATED}`);
    expect(outputs.join('\n')).toContain('[secret stripe_key redacted]');

    // The scan.
    const canaries = { STRIPE, ROTATED, HEADER, refreshToken, bridgeToken };
    const environs = [(await server('plain')).pid!, daemon.pid()!].map((pid) => ({
      path: `/proc/${pid}/environ`,
      bytes: readFileSync(`/proc/${pid}/environ`),
    }));
    const sources = [
      ...filesUnder(home.home),
      ...environs,
      { path: "the daemon's terminal", bytes: Buffer.from(daemon.screen()) },
      { path: 'command and MCP outputs', bytes: Buffer.from(outputs.join('\n')) },
    ];
    expect(sources.length).toBeGreaterThan(8);
    const hits: string[] = [];
    for (const [name, value] of Object.entries(canaries)) {
      for (const source of sources) if (source.bytes.includes(Buffer.from(value))) hits.push(`${name} in ${source.path}`);
    }
    if (hits.length > 0) {
      const all = outputs.join('\n');
      for (const value of Object.values(canaries)) {
        const at = all.indexOf(value);
        if (at >= 0) console.error(`CONTEXT: ${all.slice(Math.max(0, at - 400), at + 100)}`);
      }
    }
    expect(hits).toEqual([]);
  });
});
