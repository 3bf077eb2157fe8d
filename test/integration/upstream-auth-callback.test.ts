/**
 * The upstream sign-in against an attacker: the loopback redirect takes only this sign-in's
 * response (forged state refused, the sign-in keeps waiting); a response naming another issuer is a
 * mix-up and is refused (RFC 9207); a code obtained with someone else's PKCE challenge fails at the
 * authorization server; a hostile resource server's oversized metadata is refused. Real parts:
 * `oidc-provider`, the SDK v2 resource server, the daemon in this process; the authorization
 * server's pages are driven over HTTP.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerStatus } from '../../src/common/status.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { signIn } from '../support/oidc-provider.js';
import { startAuthorizationServer, startProtectedServer, type AuthorizationServer, type ProtectedServer } from '../support/oauth-upstream.js';
import { eventually, makeHome } from './support/gatehouse.js';

let as: AuthorizationServer;
let rs: ProtectedServer;
let hostile: Server;
let hostileUrl: string;
let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
const keychain = new MemorySecretStore();

beforeAll(async () => {
  as = await startAuthorizationServer();
  rs = await startProtectedServer(as);
  // A resource server whose metadata is 300 KB: a sign-in must not read it.
  hostile = createServer((req, res) => {
    if (req.url?.startsWith('/.well-known/')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ resource: hostileUrl, authorization_servers: [as.issuer], pad: 'x'.repeat(300 * 1024) }));
      return;
    }
    res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${new URL('/.well-known/oauth-protected-resource/mcp', hostileUrl).href}"` }).end();
  });
  await new Promise<void>((resolve) => hostile.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  hostileUrl = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/mcp`;
  home = makeHome('gh-upstream-callback-');
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      listen: { http: { enabled: true, port: 0 } },
      servers: { notes: { type: 'http', url: rs.url }, greedy: { type: 'http', url: hostileUrl } },
    }),
    { mode: 0o600 },
  );
  const managedDir = join(home.home, 'no-managed-settings');
  mkdirSync(managedDir);
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    managedDir,
    secrets: keychain,
    logger: { log: () => undefined },
    human: { terminal: null, notifier: { notify: () => false } },
  });
  await eventually(() => daemon.status().servers.every((s) => s.state === 'needs-sign-in'), 20_000, 'both servers to ask for sign-in');
});

afterAll(async () => {
  await daemon?.stop();
  hostile?.closeAllConnections();
  await new Promise<void>((resolve) => hostile?.close(() => resolve()));
  await rs?.stop();
  await as?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

const notes = (): ServerStatus => daemon.status().servers.find((s) => s.name === 'notes')!;
const login = async (): Promise<URL> => new URL(((await callControl(home.paths.controlSocketPath, 'servers.login', { name: 'notes' })) as { url: string }).url);

/** The person signs in at the authorization server; the browser is stopped before it reaches Gatehouse, and the redirect returned. */
async function codeFor(authorizationUrl: string): Promise<URL> {
  const redirect = new URL(authorizationUrl).searchParams.get('redirect_uri')!;
  const page = await signIn(authorizationUrl, 'alice', (url) => url.startsWith(redirect));
  return new URL(page.url);
}

describe("the sign-in's loopback redirect", () => {
  it('carries the PKCE challenge and the resource, never the verifier', async () => {
    const url = await login();
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('resource')).toBe(rs.url);
    expect(url.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect([...url.searchParams.keys()]).not.toContain('code_verifier');
  });

  it('refuses a response carrying another state, and keeps waiting for the real one', async () => {
    const url = await login();
    const redirect = new URL(url.searchParams.get('redirect_uri')!);
    redirect.searchParams.set('state', randomBytes(32).toString('base64url'));
    redirect.searchParams.set('code', 'forged');
    const res = await fetch(redirect);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('does not belong to the sign-in');
    expect(notes().auth?.state).toBe('signing-in');
  });

  it('refuses a response that names another issuer (a mix-up), and stores nothing', async () => {
    const url = await login();
    const back = await codeFor(url.href);
    expect(back.searchParams.get('iss')).toBe(as.issuer);
    back.searchParams.set('iss', 'https://evil.example.com');
    expect((await fetch(back)).status).toBe(200);
    await eventually(() => notes().auth?.lastSignIn?.ok === false, 10_000, 'the sign-in to fail');
    expect(notes().auth?.lastSignIn?.reason).toMatch(/another issuer than the server the sign-in was sent to \(a mix-up attack, RFC 9207\)/);
    expect((await keychain.list()).filter((n) => n.startsWith('upstream-oauth/'))).toEqual([]);
  });

  it("gets nothing for a code issued to someone else's PKCE challenge, delivered with this sign-in's state", async () => {
    const ours = await login();
    // An attacker's own authorization request for Gatehouse's client, with a challenge of its own.
    const theirs = new URL(ours);
    const verifier = randomBytes(32).toString('base64url');
    theirs.searchParams.set('code_challenge', createHash('sha256').update(verifier).digest('base64url'));
    theirs.searchParams.set('state', 'attacker');
    const stolen = await codeFor(theirs.href);
    const injected = new URL(ours.searchParams.get('redirect_uri')!);
    injected.searchParams.set('code', stolen.searchParams.get('code')!);
    injected.searchParams.set('state', ours.searchParams.get('state')!);
    injected.searchParams.set('iss', as.issuer);
    const before = notes().auth?.lastSignIn?.at;
    expect((await fetch(injected)).status).toBe(200);
    await eventually(() => notes().auth?.lastSignIn && notes().auth?.lastSignIn?.at !== before, 10_000, 'the sign-in to end');
    expect(notes().auth?.lastSignIn).toMatchObject({ ok: false, reason: expect.stringMatching(/refused the sign-in \(invalid_grant: /) });
    expect(notes().state).toBe('needs-sign-in');
  });

  it('answers a sign-in asked for a server that is not there, or a malformed name, with a clear error', async () => {
    await expect(callControl(home.paths.controlSocketPath, 'servers.login', { name: 'nope' })).rejects.toThrow('no server named "nope" is configured');
    await expect(callControl(home.paths.controlSocketPath, 'servers.login', { name: 'Bad_Name!' })).rejects.toThrow(/not a valid server name/);
    await expect(callControl(home.paths.controlSocketPath, 'servers.logout', { name: 'nope' })).rejects.toThrow('no server named "nope" is configured');
  });

  it("refuses a resource server's metadata over the size limit, before any sign-in starts", async () => {
    await expect(callControl(home.paths.controlSocketPath, 'servers.login', { name: 'greedy' })).rejects.toThrow(
      /over the 262144-byte limit|more than 262144 bytes/,
    );
  });
});
