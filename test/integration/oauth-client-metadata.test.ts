/**
 * Gatehouse's authorization server and Client ID Metadata Documents: an HTTP client names itself
 * with the address of its metadata document, which Gatehouse fetches, checks and uses as the
 * client's registration (the current MCP spec's order; dynamic registration stays for older
 * clients), and the authorization response carries `iss` (RFC 9207). The fetch is aimed by whoever
 * sends the request, so it is guarded, and every guard is tried against a real server: HTTPS only,
 * no private or loopback address (by name or literal, also after a redirect), time and size
 * limits, and a document that must name itself.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_METADATA_POLICY, fetchClientMetadata, type ClientMetadataPolicy } from '../../src/node/identity/client-metadata.js';
import { acceptableRedirect } from '../../src/node/identity/oauth-server.js';
import { CANARY_SERVER, answer, startIdentityHome, type IdentityHome } from '../support/identity-home.js';
import { TestBrowser } from '../support/oidc-provider.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually } from './support/gatehouse.js';

const REDIRECT = 'http://127.0.0.1:43211/callback';

/** A loopback server answering each path as the test says (documents, redirects, floods, silence). */
let docs: Server;
let docsOrigin: string;
const routes = new Map<string, (res: ServerResponse) => void>();
let gh: IdentityHome;
let base: string;

const json = (body: unknown) => (res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

beforeAll(async () => {
  docs = createServer((req, res) => {
    const route = routes.get(req.url ?? '');
    if (route) route(res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => docs.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  docsOrigin = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;
  // Plain HTTP on loopback is a test-only allowance: in use, client documents come over HTTPS from public addresses.
  gh = await startIdentityHome({
    servers: { canary: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER] } },
    pairingDeadlineMs: 20_000,
    daemon: { clientMetadata: { allowLoopbackHttp: true, timeoutMs: 2000 } },
  });
  base = gh.daemon.httpUrl!;
  await eventually(() => gh.daemon.status().servers[0]?.state === 'ready', 20_000, 'the canary server');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  docs?.closeAllConnections();
  await new Promise<void>((resolve) => docs?.close(() => resolve()));
});
afterEach(closeAll);

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

function authorizeUrl(clientId: string, challenge: string, redirect = REDIRECT): string {
  const url = new URL(`${base}/oauth/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirect,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'st-9',
    resource: `${base}/mcp`,
  }))
    url.searchParams.set(k, v);
  return url.href;
}

describe("Client ID Metadata Documents at Gatehouse's authorization server", () => {
  it('says it accepts them, keeps dynamic registration for older clients, and sends iss', async () => {
    const as = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(as).toMatchObject({
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
      registration_endpoint: `${base}/oauth/register`,
    });
  });

  it('authorizes a client named by its document: the person pairs it, the code comes back with iss, and the token works', async () => {
    const clientId = `${docsOrigin}/clients/ide.json`;
    routes.set(
      '/clients/ide.json',
      json({
        client_id: clientId,
        client_name: 'Metadata IDE',
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
      }),
    );
    const { verifier, challenge } = pkce();
    const browser = new TestBrowser();
    const waiting = browser
      .follow(authorizeUrl(clientId, challenge), (u) => u.startsWith(REDIRECT))
      .then(async function poll(page): Promise<URL> {
        if (page.url.startsWith(REDIRECT)) return new URL(page.url);
        expect(page.body).toContain('Waiting for your approval');
        await new Promise((r) => setTimeout(r, 200));
        const next = /url=([^"]+)"/.exec(page.body)?.[1];
        return poll(await browser.follow(new URL(next!.replace(/&amp;/g, '&'), base).href, (u) => u.startsWith(REDIRECT)));
      });
    const question = await gh.nextQuestion(/Pair the client "Metadata IDE/);
    // The person sees where the client's description comes from.
    expect(question.text).toContain(`metadata document is at ${clientId}`);
    await answer(question, { decision: 'approve', scope: 'all', expiry: '1' });
    const back = await waiting;
    expect(back.searchParams.get('iss')).toBe(base);
    expect(back.searchParams.get('state')).toBe('st-9');
    const res = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: back.searchParams.get('code')!,
        code_verifier: verifier,
        client_id: clientId,
        redirect_uri: REDIRECT,
      }),
    });
    expect(res.status).toBe(200);
    const token = ((await res.json()) as { access_token: string }).access_token;
    const { client } = await connectHttp(base, { era: 'modern', token });
    expect(textOf(await client.callTool({ name: 'canary__echo', arguments: { message: 'via a metadata document' } }))).toBe('via a metadata document');
  });

  it('refuses a redirect address its document does not list, before sending the browser anywhere', async () => {
    const clientId = `${docsOrigin}/clients/narrow.json`;
    routes.set('/clients/narrow.json', json({ client_id: clientId, redirect_uris: ['http://127.0.0.1:9/elsewhere'] }));
    const res = await fetch(authorizeUrl(clientId, pkce().challenge), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('The redirect address is not one this client registered.');
  });

  it('refuses a document that names another client, carries a secret, or is not JSON, and says why on the page', async () => {
    const cases: [string, (res: ServerResponse) => void, RegExp][] = [
      ['/bad/other.json', json({ client_id: 'https://elsewhere.example.com/client.json', redirect_uris: [REDIRECT] }), /names another client_id/],
      ['/bad/secret.json', json({ client_id: `${docsOrigin}/bad/secret.json`, redirect_uris: [REDIRECT], client_secret: 's3cret' }), /carries a client secret/],
      ['/bad/html.json', (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'), /is not JSON/],
      ['/bad/missing.json', (res) => res.writeHead(404).end(), /answered HTTP 404/],
    ];
    for (const [path, route, why] of cases) {
      routes.set(path, route);
      const res = await fetch(authorizeUrl(`${docsOrigin}${path}`, pkce().challenge), { redirect: 'manual' });
      expect(res.status, path).toBe(400);
      expect(await res.text(), path).toMatch(why);
    }
  });
});

describe('the guarded fetch of a client metadata document', () => {
  const policy = (over: Partial<ClientMetadataPolicy> = {}): ClientMetadataPolicy => ({ ...DEFAULT_METADATA_POLICY, timeoutMs: 800, ...over });
  const fetchDoc = (url: string, over: Partial<ClientMetadataPolicy> = {}) => fetchClientMetadata(url, policy(over), acceptableRedirect);

  it("fetches only https addresses: plain http is refused outside the tests' loopback allowance", async () => {
    await expect(fetchDoc('http://clients.example.com/ide.json')).rejects.toThrow(/only https:\/\/ addresses are fetched/);
    await expect(fetchDoc(`${docsOrigin}/clients/ide.json`)).rejects.toThrow(/only https:\/\/ addresses are fetched/);
    await expect(fetchDoc('https://clients.example.com/')).rejects.toThrow(/has no path/);
    await expect(fetchDoc('https://user:pw@clients.example.com/ide.json')).rejects.toThrow(/carries credentials/);
  });

  it('refuses private, loopback and link-local addresses, as literals and as what a name resolves to', async () => {
    for (const url of [
      'https://10.1.2.3/c.json',
      'https://192.168.0.9/c.json',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/c.json',
      'https://[fd00::1]/c.json',
      'https://[::ffff:127.0.0.1]/c.json',
    ]) {
      await expect(fetchDoc(url), url).rejects.toThrow(/private or special-purpose address/);
    }
    // A public-looking name that resolves inward (DNS rebinding, an /etc/hosts entry): refused after resolution, before connecting.
    await expect(fetchDoc('https://localhost/c.json')).rejects.toThrow(/127\.0\.0\.1 is a private or special-purpose address/);
  });

  it('refuses a redirect to a private address, and one to plain http', async () => {
    routes.set('/hop/private', (res) => res.writeHead(302, { location: 'https://10.0.0.5/c.json' }).end());
    routes.set('/hop/http', (res) => res.writeHead(302, { location: 'http://clients.example.com/c.json' }).end());
    await expect(fetchDoc(`${docsOrigin}/hop/private`, { allowLoopbackHttp: true })).rejects.toThrow(/10\.0\.0\.5 is a private or special-purpose address/);
    await expect(fetchDoc(`${docsOrigin}/hop/http`, { allowLoopbackHttp: true })).rejects.toThrow(
      /redirects to http:\/\/clients\.example\.com\/c\.json, where only https/,
    );
  });

  it('follows a few redirects that stay allowed, and no more', async () => {
    const clientId = `${docsOrigin}/hop/a`;
    routes.set('/hop/a', (res) => res.writeHead(302, { location: '/hop/b' }).end());
    routes.set('/hop/b', json({ client_id: clientId, redirect_uris: [REDIRECT] }));
    await expect(fetchDoc(clientId, { allowLoopbackHttp: true })).resolves.toMatchObject({ clientId, redirectUris: [REDIRECT] });
    routes.set('/hop/loop', (res) => res.writeHead(302, { location: '/hop/loop' }).end());
    await expect(fetchDoc(`${docsOrigin}/hop/loop`, { allowLoopbackHttp: true })).rejects.toThrow(/more than 3 redirects/);
  });

  it('gives up on a server that does not answer in time, and on an answer over the size limit', async () => {
    routes.set('/slow', () => undefined);
    const started = Date.now();
    await expect(fetchDoc(`${docsOrigin}/slow`, { allowLoopbackHttp: true })).rejects.toThrow(/no answer within 800 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
    routes.set('/flood', (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"pad":"${'x'.repeat(64 * 1024)}"}`);
    });
    await expect(fetchDoc(`${docsOrigin}/flood`, { allowLoopbackHttp: true })).rejects.toThrow(/over the 16384-byte limit/);
  });

  it('tries private addresses only when the configuration allows them, still within the time limit and with TLS checked', async () => {
    // Nothing Gatehouse trusts serves https://10.255.255.1 here: allowed, the fetch is tried and fails on the network or on
    // TLS within the limit, instead of being refused before any connection.
    const started = Date.now();
    const error = await fetchDoc('https://10.255.255.1/c.json', { allowPrivateAddresses: true, timeoutMs: 500 }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^the client metadata document at https:\/\/10\.255\.255\.1\/c\.json was not fetched: /);
    expect(error?.message).not.toMatch(/private or special-purpose/);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
