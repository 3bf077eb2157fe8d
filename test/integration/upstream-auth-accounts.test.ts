/**
 * Remote sign-ins and the user's Gatehouse sign-in, end to end with real parts: `gatehouse daemon` on
 * a terminal with a real Secret Service; the organisation's identity provider (`oidc-provider`,
 * signed in with `gatehouse login`); remote MCP servers (SDK v2, bearer tokens introspected at their
 * own `oidc-provider` authorization server) the person signs in to through Chromium.
 *
 * `gatehouse logout` ends every remote sign-in too: the tokens are revoked at each server's
 * authorization server while they are still the user's, and nothing of them stays in the key store.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import type { DaemonStatus, ServerStatus } from '../../src/common/status.js';
import { callControl } from '../../src/node/control/control-client.js';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { RS_CLIENT, signInWithBrowser, startAuthorizationServer, startProtectedServer, type AuthorizationServer, type ProtectedServer } from '../support/oauth-upstream.js';
import { CLIENT_ID, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { launchChromium } from '../e2e/support.js';
import { bridgeEnv, runGatehouse } from './support/clients.js';
import { BIN, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

interface Remote {
  as: AuthorizationServer;
  rs: ProtectedServer;
}

let keyring: TestKeyring;
let idp: TestProvider;
const remotes: Record<string, Remote> = {};
let home: ReturnType<typeof makeHome>;
let daemon: TerminalDaemon;
let browser: Browser;
let person: BrowserContext;

const env = () => bridgeEnv(home.env, keyring.env);
const status = async () => (await callControl(home.paths.controlSocketPath, 'status', {})) as DaemonStatus;
const server = async (name: string): Promise<ServerStatus> => (await status()).servers.find((s) => s.name === name)!;
const upstreamItems = async () => (await new KeychainSecretStore().list()).filter((n) => n.startsWith('upstream-oauth/'));

/** Runs a command whose sign-in address (printed on stderr with `--no-browser`) the person opens. */
async function signingIn(args: string[], address: RegExp, person: (url: string) => Promise<unknown>): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, ...args, '--no-browser'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let opened: Promise<unknown> | undefined;
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    const url = address.exec(err)?.[0];
    if (url && !opened) opened = person(url).catch((error: unknown) => (err += `\n[the person could not sign in: ${String(error)}]`));
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  await opened;
  return { code, out, err };
}

/** `gatehouse servers login NAME`, the person signing in as alice at that server's authorization server in Chromium. */
function serversLogin(name: string): Promise<{ code: number | null; out: string; err: string }> {
  const issuer = remotes[name]!.as.issuer.replace(/[.]/g, '\\.');
  return signingIn(['servers', 'login', name], new RegExp(`${issuer}/auth\\?\\S+`), (url) => signInWithBrowser(person, url, 'alice'));
}

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  idp = await startProvider();
  const as = await startAuthorizationServer();
  remotes.notes = { as, rs: await startProtectedServer(as) };
  home = makeHome('gh-upstream-accounts-');
  const servers = { notes: { type: 'http', url: remotes.notes.rs.url } };
  writeFileSync(home.paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } }, servers }), { mode: 0o600 });
  writeFileSync(join(home.paths.configDir, 'identity.json'), JSON.stringify({ issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'offline_access', 'email', 'groups'] }), { mode: 0o600 });
  browser = await launchChromium();
  person = await browser.newContext();
  daemon = spawnOnTerminal(['daemon'], env(), home.paths);
  await eventually(() => status().then(() => true, () => undefined), 30_000, 'the daemon');
});

afterAll(async () => {
  await daemon?.stop();
  await person?.close();
  await browser?.close();
  for (const { as, rs } of Object.values(remotes)) {
    await rs.stop();
    await as.stop();
  }
  await idp?.stop();
  await keyring?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

describe('signing out of Gatehouse', () => {
  it('signs the user in to Gatehouse, then to the remote server', async () => {
    const login = await signingIn(['login'], /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+/, (url) => signIn(url, 'alice'));
    expect(login.code, login.err).toBe(0);
    expect(login.out).toBe('signed in as alice@example.test (groups: engineering, sales)\n');
    await eventually(async () => ((await status()).identity?.state === 'active' ? true : undefined), 15_000, 'the daemon to take the sign-in');

    const notes = await serversLogin('notes');
    expect(notes.code, notes.err).toBe(0);
    expect(notes.out).toMatch(/^signed in to notes as alice at /);
    expect((await server('notes')).auth).toMatchObject({ state: 'signed-in', subject: 'alice' });
    expect(await upstreamItems()).not.toEqual([]);
  });

  it('revokes every remote sign-in at its authorization server and forgets its tokens, with `gatehouse logout`', async () => {
    const { as, rs } = remotes.notes!;
    expect(rs.seen.length).toBeGreaterThan(0);
    expect(as.requests).not.toContain('/token/revocation');

    const out = await runGatehouse(['logout', '--no-browser'], env(), 60_000);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^signed out \(the provider revoked the session\)/);
    expect((await status()).identity?.state).toBe('signed-out');

    // Revoked at the remote server's authorization server: the refresh token, then the access token.
    expect(as.requests.filter((p) => p === '/token/revocation')).toHaveLength(2);
    expect(as.issued.length).toBeGreaterThan(1);
    for (const token of as.issued) expect(await introspect(as, token)).toBe(false);
    // Nothing of the sign-in is left in the key store, and the server waits for a sign-in again.
    expect(await upstreamItems()).toEqual([]);
    await eventually(async () => ((await server('notes')).auth?.state === 'needs-sign-in' ? true : undefined), 15_000, 'notes to wait for a sign-in');
    const audit = await runGatehouse(['audit', 'query', '--type', 'upstream.signed_out', '--json'], env(), 30_000);
    expect(JSON.parse(audit.stdout)).toEqual([expect.objectContaining({ server: 'notes', reason: 'signed out of Gatehouse', detail: { revoked: true } })]);
  });
});

/** RFC 7662 introspection as the resource server's client: is this token still good? */
async function introspect(as: AuthorizationServer, token: string): Promise<boolean> {
  const res = await fetch(`${as.issuer}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${RS_CLIENT.id}:${RS_CLIENT.secret}`).toString('base64')}` },
    body: new URLSearchParams({ token }),
  });
  return ((await res.json()) as { active?: boolean }).active === true;
}
