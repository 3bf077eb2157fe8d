/**
 * Remote sign-ins and the user's Gatehouse sign-in, end to end with real parts: `gatehouse daemon` on
 * a terminal with a real Secret Service; the organisation's identity provider (`oidc-provider`,
 * signed in with `gatehouse login`); remote MCP servers (SDK v2, bearer tokens introspected at their
 * own `oidc-provider` authorization server) the person signs in to through Chromium.
 *
 * Each server shows one step of the registration order of the MCP authorization spec, through a
 * real sign-in: `wiki` has a client its administrator registered (preferred even where the
 * authorization server also accepts metadata documents and dynamic registration); `tickets` has
 * none, and its authorization server accepts the Client ID Metadata Document the organisation
 * publishes; `notes`'s authorization server accepts no metadata document, so Gatehouse registers
 * dynamically.
 *
 * `gatehouse logout` ends every remote sign-in too: the tokens are revoked at each server's
 * authorization server while they are still the user's, and nothing of them stays in the key store.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import type { ClientMetadata } from 'oidc-provider';
import type { DaemonStatus, ServerStatus } from '../../src/common/status.js';
import { clientMetadataDocument, LOOPBACK_REDIRECT } from '../../src/core/upstream-auth/registration.js';
import { callControl } from '../../src/node/control/control-client.js';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import {
  RS_CLIENT,
  signInWithBrowser,
  startAuthorizationServer,
  startProtectedServer,
  type AuthorizationServer,
  type AuthorizationServerOptions,
  type ProtectedServer,
} from '../support/oauth-upstream.js';
import { CLIENT_ID, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { launchChromium } from '../e2e/support.js';
import { bridgeEnv, runGatehouse } from './support/clients.js';
import { BIN, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

interface Remote {
  as: AuthorizationServer;
  rs: ProtectedServer;
}

/** Where the organisation publishes Gatehouse's Client ID Metadata Document. */
const METADATA_URL = 'https://it.example.test/gatehouse/client.json';
/** The client the wiki's administrator registered for Gatehouse: public, native, loopback redirect. */
const WIKI_CLIENT = {
  client_id: 'gatehouse-wiki',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  redirect_uris: [LOOPBACK_REDIRECT],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
} satisfies ClientMetadata;

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
async function signingIn(
  args: string[],
  address: RegExp,
  person: (url: string) => Promise<unknown>,
): Promise<{ code: number | null; out: string; err: string }> {
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
  const published = { [METADATA_URL]: clientMetadataDocument(METADATA_URL) };
  const servers: [string, AuthorizationServerOptions][] = [
    ['notes', {}],
    ['wiki', { clients: [WIKI_CLIENT], clientIdMetadataDocuments: published }],
    ['tickets', { clientIdMetadataDocuments: published }],
  ];
  for (const [name, options] of servers) {
    const as = await startAuthorizationServer(options);
    remotes[name] = { as, rs: await startProtectedServer(as) };
  }
  home = makeHome('gh-upstream-accounts-');
  // Every server is told where the metadata document is; only the authorization servers that accept one get it.
  const config = {
    notes: { type: 'http', url: remotes.notes!.rs.url, oauth: { clientMetadataUrl: METADATA_URL } },
    wiki: { type: 'http', url: remotes.wiki!.rs.url, oauth: { clientId: WIKI_CLIENT.client_id, clientMetadataUrl: METADATA_URL } },
    tickets: { type: 'http', url: remotes.tickets!.rs.url, oauth: { clientMetadataUrl: METADATA_URL } },
  };
  writeFileSync(home.paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } }, servers: config }), { mode: 0o600 });
  writeFileSync(
    join(home.paths.configDir, 'identity.json'),
    JSON.stringify({ issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'offline_access', 'email', 'groups'] }),
    { mode: 0o600 },
  );
  browser = await launchChromium();
  person = await browser.newContext();
  daemon = spawnOnTerminal(['daemon'], env(), home.paths);
  // eventually() retries a refused connection: the daemon is up once status answers.
  await eventually(() => status().then(() => true), 30_000, 'the daemon');
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

describe('signing in to remote servers, in the registration order of the spec', () => {
  it('signs the user in to Gatehouse first', async () => {
    const login = await signingIn(['login'], /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+/, (url) => signIn(url, 'alice'));
    expect(login.code, login.err).toBe(0);
    expect(login.out).toBe('signed in as alice@example.test (groups: engineering, sales)\n');
    await eventually(async () => ((await status()).identity?.state === 'active' ? true : undefined), 15_000, 'the daemon to take the sign-in');
  });

  it('uses the client an administrator registered, though the authorization server also takes metadata documents and dynamic registration', async () => {
    const { as, rs } = remotes.wiki!;
    const run = await serversLogin('wiki');
    expect(run.code, run.err).toBe(0);
    expect(run.out).toMatch(/^signed in to wiki as alice at /);
    expect((await server('wiki')).auth).toMatchObject({ state: 'signed-in', registration: 'pre-registered', subject: 'alice' });
    expect(as.requests).not.toContain('/reg');
    expect(as.fetched).toEqual([]);
    await eventually(() => rs.seen.at(-1), 10_000, 'a call to wiki with the token');
    expect(rs.seen.at(-1)).toMatchObject({ clientId: 'gatehouse-wiki', subject: 'alice', audience: rs.url });
  });

  it("names itself with the organisation's Client ID Metadata Document where the authorization server accepts one, instead of registering", async () => {
    const { as, rs } = remotes.tickets!;
    const run = await serversLogin('tickets');
    expect(run.code, run.err).toBe(0);
    expect((await server('tickets')).auth).toMatchObject({ state: 'signed-in', registration: 'metadata-document', subject: 'alice' });
    expect(as.requests).not.toContain('/reg');
    // The authorization server read the document Gatehouse named, and issued the token to that client.
    expect(as.fetched).toContain(METADATA_URL);
    await eventually(() => rs.seen.at(-1), 10_000, 'a call to tickets with the token');
    expect(rs.seen.at(-1)).toMatchObject({ clientId: METADATA_URL, subject: 'alice', audience: rs.url });
  });

  it('registers dynamically, as a native client, where the authorization server accepts no metadata document', async () => {
    const { as, rs } = remotes.notes!;
    const run = await serversLogin('notes');
    expect(run.code, run.err).toBe(0);
    expect((await server('notes')).auth).toMatchObject({ state: 'signed-in', registration: 'dynamic', subject: 'alice' });
    expect(as.requests).toContain('/reg');
    await eventually(() => rs.seen.at(-1), 10_000, 'a call to notes with the token');
    expect(rs.seen.at(-1)!.clientId).not.toBe(METADATA_URL);
    expect(await upstreamItems()).not.toEqual([]);
  });
});

describe('signing out of Gatehouse', () => {
  it('revokes every remote sign-in at its authorization server and forgets its tokens, with `gatehouse logout`', async () => {
    for (const { as, rs } of Object.values(remotes)) {
      expect(rs.seen.length).toBeGreaterThan(0);
      expect(as.requests).not.toContain('/token/revocation');
    }

    const out = await runGatehouse(['logout', '--no-browser'], env(), 60_000);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^signed out \(the provider revoked the session\)/);
    expect((await status()).identity?.state).toBe('signed-out');

    for (const [name, { as }] of Object.entries(remotes)) {
      // Revoked at the server's own authorization server: the refresh token, then the access token; every token it issued is dead.
      expect(
        as.requests.filter((p) => p === '/token/revocation'),
        name,
      ).toHaveLength(2);
      expect(as.issued.length, name).toBeGreaterThan(1);
      for (const token of as.issued) expect(await introspect(as, token), `a token of ${name}`).toBe(false);
    }
    // Nothing of the sign-ins is left in the key store, and each server waits for a sign-in again.
    expect(await upstreamItems()).toEqual([]);
    for (const name of Object.keys(remotes)) {
      await eventually(async () => ((await server(name)).auth?.state === 'needs-sign-in' ? true : undefined), 15_000, `${name} to wait for a sign-in`);
    }
    const audit = await runGatehouse(['audit', 'query', '--type', 'upstream.signed_out', '--json'], env(), 30_000);
    const events = JSON.parse(audit.stdout) as { server: string; reason: string; detail: unknown }[];
    expect(events.map((e) => e.server).sort()).toEqual(['notes', 'tickets', 'wiki']);
    for (const event of events) expect(event).toMatchObject({ reason: 'signed out of Gatehouse', detail: { revoked: true } });
  });
});

/** RFC 7662 introspection as the resource server's client: is this token still good? */
async function introspect(as: AuthorizationServer, token: string): Promise<boolean> {
  const res = await fetch(`${as.issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${RS_CLIENT.id}:${RS_CLIENT.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token }),
  });
  return ((await res.json()) as { active?: boolean }).active === true;
}
