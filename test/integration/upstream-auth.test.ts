/**
 * Remote servers that need sign-in (issue 18), end to end with real parts: `gatehouse daemon` as a
 * child on a terminal with a real Secret Service; an SDK v2 MCP server that takes only Bearer tokens
 * issued for its own resource and introspects each one; `oidc-provider` as its authorization server
 * (dynamic registration, resource indicators, refresh, revocation); the person signing in through
 * Chromium. The story runs in order, as a user meets it: the server asks for sign-in, a call before
 * sign-in is told the command, the person signs in, calls carry their token, a step-up adds a scope,
 * an expired token is renewed unseen, a restart keeps the sign-in, sign-out revokes, an administrator's
 * revocation brings the sign-in question back; then every output and file is scanned for the tokens.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import type { DaemonStatus, ServerStatus } from '../../src/common/status.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import {
  signInWithBrowser,
  startAuthorizationServer,
  startProtectedServer,
  type AuthorizationServer,
  type ProtectedServer,
} from '../support/oauth-upstream.js';
import { launchChromium } from '../e2e/support.js';
import { bridgeEnv, connectHttp, runGatehouse, textOf, type Connected } from './support/clients.js';
import { BIN, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

let keyring: TestKeyring;
let as: AuthorizationServer;
let rs: ProtectedServer;
let home: ReturnType<typeof makeHome>;
let daemon: TerminalDaemon;
let browser: Browser;
let person: BrowserContext;
let token: string;
/** Everything a person, a script or an agent was shown, for the canary scan. */
const outputs: string[] = [];

const env = () => bridgeEnv(home.env, keyring.env);
async function gatehouse(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = await runGatehouse(args, env(), 60_000);
  outputs.push(run.stdout, run.stderr);
  return run;
}
const status = async () => (await callControl(home.paths.controlSocketPath, 'status', {})) as DaemonStatus;
const notes = async (): Promise<ServerStatus> => (await status()).servers.find((s) => s.name === 'notes')!;

function startDaemon(): void {
  daemon = spawnOnTerminal(['daemon'], env(), home.paths);
}

/** A call as an agent makes it over HTTP; its answer (or error) is what the agent sees. */
async function call(tool: string, args: Record<string, unknown> = {}): Promise<string> {
  const httpUrl = (JSON.parse(readFileSync(join(home.paths.runtimeDir, 'daemon.json'), 'utf8')) as { httpUrl: string }).httpUrl;
  let client: Connected | undefined;
  try {
    client = await connectHttp(httpUrl, { era: 'modern', token });
    const result = textOf(await client.client.callTool({ name: tool, arguments: args }));
    outputs.push(result);
    return result;
  } catch (error) {
    const message = `refused: ${(error as Error).message}`;
    outputs.push(message);
    return message;
  } finally {
    await client?.close();
  }
}

/** `gatehouse servers login notes --no-browser`, its address opened in Chromium by the person. */
async function login(): Promise<{ code: number | null; out: string; err: string; page: string }> {
  const child = spawn(process.execPath, [BIN, 'servers', 'login', 'notes', '--no-browser'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let signing: Promise<string> | undefined;
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    const url = /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+/.exec(err)?.[0];
    if (url && !signing) signing = signInWithBrowser(person, url, 'alice');
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  outputs.push(out, err);
  return { code, out, err, page: (await signing) ?? '' };
}

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  // Short-lived access tokens, so that renewal is part of the story.
  as = await startAuthorizationServer({ accessTokenSeconds: 6 });
  rs = await startProtectedServer(as);
  home = makeHome('gh-upstream-');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(home.paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } }, servers: { notes: { type: 'http', url: rs.url } } }), {
    mode: 0o600,
  });
  token = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('agent');
  browser = await launchChromium();
  person = await browser.newContext();
  startDaemon();
  // eventually() retries a refused connection: the daemon is up once status answers.
  await eventually(() => status().then(() => true), 30_000, 'the daemon');
});

afterAll(async () => {
  await daemon?.stop();
  await person?.close();
  await browser?.close();
  await rs?.stop();
  await as?.stop();
  await keyring?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

describe('a remote server that needs sign-in', () => {
  it('shows "needs-sign-in" with the command to run, not an error loop', async () => {
    const server = await eventually(async () => ((await notes()).state === 'needs-sign-in' ? notes() : undefined), 20_000, 'notes to ask for sign-in');
    expect(server.auth).toMatchObject({ state: 'needs-sign-in', command: 'gatehouse servers login notes' });
    expect(server.lastError).toMatch(/server "notes" needs you to sign in: run `gatehouse servers login notes`/);
    const shown = await gatehouse(['status']);
    expect(shown.stdout).toMatch(/notes\s+needs-sign-in\s+0\s+0\s+server "notes" needs you to sign in/);
    // Waiting is not failing: no restart is scheduled.
    expect(server.nextAttemptAt).toBeUndefined();
  });

  it("answers a call before sign-in with an error naming the command, and offers the sign-in on the person's terminal", async () => {
    expect(await call('notes__read_notes')).toMatch(/^refused: .*server "notes" needs you to sign in.*run `gatehouse servers login notes`/);
    // The human channel shows the question, with the sign-in page for a person whose browser cannot be opened.
    await eventually(() => daemon.screen().includes('Sign in to "notes"?'), 10_000, 'the sign-in question on the terminal');
    // The page's address follows once the sign-in has been prepared (the authorization server's metadata read).
    await eventually(() => /Sign-in page: http:\/\/127\.0\.0\.1:\d+\/auth\?/.test(daemon.screen()), 10_000, 'the sign-in page on the terminal');
  });

  it("signs the person in through the browser; then calls carry their token, issued for the server's own audience", async () => {
    const result = await login();
    expect(result.code, result.err).toBe(0);
    expect(result.page).toContain('Signed in to notes for Gatehouse');
    expect(result.out).toMatch(/^signed in to notes as alice at http:\/\/127\.0\.0\.1:\d+ \(scopes: [^)]*notes:read/);
    expect(result.out).toContain('notes: ready, 3 tools');
    // Gatehouse registered itself (dynamic registration, the fallback), as a native client.
    expect(as.requests).toContain('/reg');

    expect(await call('notes__read_notes')).toBe('notes of alice: (none)');
    // A server that echoes the token back: the agent sees it redacted.
    expect(await call('notes__echo_token')).toBe('you called with [secret upstream notes token redacted]');
    const seen = rs.seen.at(-1)!;
    expect(seen).toMatchObject({ subject: 'alice', audience: rs.url, scopes: expect.arrayContaining(['notes:read']) });
    expect((await notes()).auth).toMatchObject({ state: 'signed-in', via: 'browser', registration: 'dynamic', subject: 'alice', issuer: as.issuer });
  });

  it('steps up on 403 insufficient_scope: the call names the command, and a new consent adds the scope to those granted', async () => {
    expect(await call('notes__write_note', { text: 'buy milk' })).toMatch(
      /^refused: .*server "notes" needs more permission for this \(scope: notes:read notes:write\).*`gatehouse servers login notes`/,
    );
    // The server stays ready: read_notes still works meanwhile.
    expect(await call('notes__read_notes')).toBe('notes of alice: (none)');
    const result = await login();
    expect(result.code, result.err).toBe(0);
    expect(result.out).toMatch(/scopes: [^)]*notes:read[^)]*notes:write|scopes: [^)]*notes:write[^)]*notes:read/);
    expect(await call('notes__write_note', { text: 'buy milk' })).toBe('noted for alice');
    expect(rs.seen.at(-1)!.scopes).toEqual(expect.arrayContaining(['notes:read', 'notes:write']));
  });

  it('renews an expired access token without the person noticing', async () => {
    const before = rs.seen.at(-1)!.token;
    const refreshes = as.grants.filter((g) => g === 'refresh_token').length;
    await new Promise((r) => setTimeout(r, 6500));
    expect(await call('notes__read_notes')).toBe('notes of alice: buy milk');
    expect(rs.seen.at(-1)!.token).not.toBe(before);
    expect(as.grants.filter((g) => g === 'refresh_token').length).toBeGreaterThan(refreshes);
  });

  it('keeps the sign-in while the authorization server cannot be reached, and renews it once it answers again', async () => {
    await as.pause();
    try {
      await new Promise((r) => setTimeout(r, 6500));
      expect(await call('notes__read_notes')).toMatch(/^refused: .*could not be renewed just now.*tries again at the next call/);
      expect((await notes()).state).toBe('ready');
      expect((await notes()).auth?.state).toBe('signed-in');
    } finally {
      await as.resume();
    }
    expect(await call('notes__read_notes')).toBe('notes of alice: buy milk');
  });

  it('keeps the sign-in across a restart of the daemon', async () => {
    await daemon.stop();
    startDaemon();
    await eventually(async () => (await notes().catch(() => undefined))?.state === 'ready', 30_000, 'notes ready after the restart, with no sign-in');
    expect(await call('notes__read_notes')).toBe('notes of alice: buy milk');
  });

  it('records which upstream identity each call used, never the token', async () => {
    const audit = await gatehouse(['audit', 'query', '--server', 'notes', '--type', 'call.outcome', '--json', '--limit', '100']);
    expect(audit.code, audit.stderr).toBe(0);
    const outcomes = JSON.parse(audit.stdout) as { decision?: string; code?: string; upstream?: { issuer: string; subject?: string } }[];
    expect(outcomes.filter((o) => o.decision === 'ok').every((o) => o.upstream?.issuer === as.issuer && o.upstream.subject === 'alice')).toBe(true);
    expect(outcomes.some((o) => o.code === 'sign_in_required')).toBe(true);
    const events = await gatehouse(['audit', 'query', '--type', 'upstream.signed_in', '--json']);
    expect(JSON.parse(events.stdout)).toEqual(
      expect.arrayContaining([expect.objectContaining({ server: 'notes', upstream: { issuer: as.issuer, subject: 'alice' } })]),
    );
  });

  it('signs out: the tokens are revoked at the authorization server, forgotten, and the server waits for a sign-in again', async () => {
    const held = rs.seen.at(-1)!.token;
    const out = await gatehouse(['servers', 'logout', 'notes']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('signed out of notes (its authorization server revoked the tokens)\n');
    expect(as.requests).toContain('/token/revocation');
    // The token the server last saw is dead at the authorization server too.
    const res = await fetch(rs.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${held}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    expect(res.status).toBe(401);
    await eventually(async () => (await notes()).state === 'needs-sign-in', 15_000, 'notes to wait for a sign-in');
    expect((await new KeychainSecretStore().list()).filter((n) => n.startsWith('upstream-oauth/'))).toEqual([]);
    // Signed in again for what follows (the browser's session at the authorization server skips the login page).
    const again = await login();
    expect(again.code, again.err).toBe(0);
  });

  it('turns a token the authorization server revoked into "needs-sign-in" again, not an error loop', async () => {
    await as.revokeAccount('alice');
    expect(await call('notes__read_notes')).toMatch(/^refused: .*server "notes" needs you to sign in.*`gatehouse servers login notes`/);
    const server = await eventually(async () => ((await notes()).state === 'needs-sign-in' ? notes() : undefined), 15_000, 'needs-sign-in');
    await new Promise((r) => setTimeout(r, 1500));
    const later = await notes();
    expect(later.state).toBe('needs-sign-in');
    expect(later.restarts).toBe(server.restarts);
    expect(await call('notes__read_notes')).toMatch(/needs you to sign in/);
  });

  it('canary: no token reaches a log, the audit log, status, the console, a client, a file, a command line or an environment', async () => {
    for (const args of [
      ['status'],
      ['status', '--json'],
      ['servers', 'list', '--json'],
      ['logs', 'notes', '--lines', '1000'],
      ['audit', 'query', '--limit', '5000', '--json'],
      ['audit', 'export'],
    ]) {
      const run = await gatehouse(args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
    }
    for (const method of ['status', 'servers.list', 'questions.list'] as const)
      outputs.push(JSON.stringify(await callControl(home.paths.controlSocketPath, method, {})));

    const tokens = [...new Set(as.issued)];
    // The positive control: tokens were issued, and the resource server received them.
    expect(tokens.length).toBeGreaterThan(4);
    expect(tokens).toContain(rs.seen[0]!.token);
    const files = readdirSync(home.home, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => ({ path: join(e.parentPath, e.name), bytes: readFileSync(join(e.parentPath, e.name)) }));
    const processes = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    const proc: { path: string; bytes: Buffer }[] = [];
    for (const pid of processes) {
      for (const what of ['cmdline', 'environ']) {
        try {
          proc.push({ path: `/proc/${pid}/${what}`, bytes: readFileSync(`/proc/${pid}/${what}`) });
        } catch {
          // Gone, or another user's.
        }
      }
    }
    const sources = [
      ...files,
      ...proc,
      { path: "the daemon's terminal", bytes: Buffer.from(daemon.screen()) },
      { path: 'command, console and MCP outputs', bytes: Buffer.from(outputs.join('\n')) },
    ];
    const hits = tokens.flatMap((t, i) => sources.filter((s) => s.bytes.includes(Buffer.from(t))).map((s) => `token ${i} in ${s.path}`));
    expect(hits).toEqual([]);
  });
});
