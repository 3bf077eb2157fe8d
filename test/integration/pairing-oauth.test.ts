/**
 * HTTP clients that speak MCP authorization: Gatehouse is their OAuth 2.1 authorization server.
 * The client finds it through protected resource metadata (RFC 9728), registers (RFC 7591),
 * sends the person's browser to the authorization endpoint with PKCE, and redeems the code once
 * the person has paired it on the pairing page. Also: the HTTP client that takes a fixed token
 * (`gatehouse clients pair`), and every way the flow must refuse.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CANARY_SERVER, answer, startIdentityHome, type IdentityHome } from '../support/identity-home.js';
import { TestBrowser } from '../support/oidc-provider.js';
import { bridgeEnv, closeAll, connectHttp, runGatehouse, textOf } from './support/clients.js';
import { eventually } from './support/gatehouse.js';

let gh: IdentityHome;
let base: string;
const REDIRECT = 'http://127.0.0.1:43210/oauth/callback';

beforeAll(async () => {
  gh = await startIdentityHome({ servers: { canary: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER] } }, pairingDeadlineMs: 20_000 });
  base = gh.daemon.httpUrl!;
  await eventually(() => gh.daemon.status().servers[0]?.state === 'ready', 20_000, 'the canary server');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
});
afterEach(closeAll);

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

async function register(name = 'Claude Desktop', redirect = REDIRECT): Promise<string> {
  const res = await fetch(`${base}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: [redirect], token_endpoint_auth_method: 'none' }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { client_id: string }).client_id;
}

function authorizeUrl(clientId: string, challenge: string, extra: Record<string, string> = {}): string {
  const url = new URL(`${base}/oauth/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'st-123',
    resource: `${base}/mcp`,
    ...extra,
  }))
    url.searchParams.set(k, v);
  return url.href;
}

/** The browser waits on the authorization page while the person answers; returns where it is finally sent. */
async function authorize(url: string, decide: (fields: Record<string, string>) => Record<string, string>): Promise<URL> {
  const browser = new TestBrowser();
  const waiting = browser
    .follow(url, (u) => u.startsWith(REDIRECT))
    .then(async function poll(page): Promise<URL> {
      if (page.url.startsWith(REDIRECT)) return new URL(page.url);
      expect(page.body).toContain('Waiting for your approval');
      await new Promise((r) => setTimeout(r, 200));
      const next = /url=([^"]+)"/.exec(page.body)?.[1];
      return poll(await browser.follow(new URL(next!.replace(/&amp;/g, '&'), base).href, (u) => u.startsWith(REDIRECT)));
    });
  const question = await gh.nextQuestion(/Pair the client/);
  await answer(question, decide({}));
  return waiting;
}

async function redeem(clientId: string, code: string, verifier: string, redirect = REDIRECT): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId, redirect_uri: redirect }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('MCP authorization', () => {
  it('points a client without a token at its authorization server (RFC 9728, RFC 8414)', async () => {
    const res = await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate')!;
    expect(challenge).toBe(`Bearer realm="gatehouse", resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
    const prm = (await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
    expect(prm).toMatchObject({ resource: `${base}/mcp`, authorization_servers: [base] });
    const as = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(as).toMatchObject({
      issuer: base,
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none'],
      registration_endpoint: `${base}/oauth/register`,
    });
  });

  it('registers, is paired by the person with the scope they choose, and calls with the token it redeemed', async () => {
    const clientId = await register('Claude Desktop');
    const { verifier, challenge } = pkce();
    const back = await authorize(authorizeUrl(clientId, challenge), () => ({ decision: 'approve', scope: 'listed', tool: 'canary__echo', expiry: '7' }));
    expect(back.searchParams.get('state')).toBe('st-123');
    expect(back.searchParams.get('iss')).toBe(base);
    const code = back.searchParams.get('code')!;
    const token = await redeem(clientId, code, verifier);
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({ token_type: 'Bearer', access_token: expect.stringMatching(/^ghc_/) });
    expect(token.body.expires_in as number).toBeGreaterThan(6 * 86_400);

    const { client } = await connectHttp(base, { era: 'legacy', token: token.body.access_token as string });
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['canary__echo']);
    expect(textOf(await client.callTool({ name: 'canary__echo', arguments: { message: 'via oauth' } }))).toBe('via oauth');
    expect(gh.daemon.status().clients.find((c) => c.transport === 'http')).toMatchObject({ name: `Claude Desktop ${clientId.slice(0, 6)}`, verified: true });
  });

  it('refuses a code redeemed with the wrong PKCE verifier, and revokes the credential when a code is replayed', async () => {
    const clientId = await register('Replay Target');
    const { verifier, challenge } = pkce();
    const back = await authorize(authorizeUrl(clientId, challenge), () => ({ decision: 'approve', scope: 'all', expiry: '1' }));
    const code = back.searchParams.get('code')!;
    expect(await redeem(clientId, code, pkce().verifier)).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'PKCE verification failed' },
    });
    // The code was spent by that attempt; presenting it again is a replay, and whatever it issued is revoked.
    const replay = await redeem(clientId, code, verifier);
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(String(replay.body.error_description)).toMatch(/already used; the credential issued with it is revoked/);
    const list = JSON.parse((await runGatehouse(['clients', 'list', '--json'], bridgeEnv(gh.env))).stdout) as { name: string }[];
    expect(list.map((c) => c.name)).not.toContain(`Replay Target ${clientId.slice(0, 6)}`);
  });

  it('sends the browser back with access_denied when the person declines', async () => {
    const clientId = await register('Declined App');
    const back = await authorize(authorizeUrl(clientId, pkce().challenge), () => ({ decision: 'decline' }));
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
  });

  it('never redirects to an address the client did not register, and requires PKCE S256', async () => {
    const clientId = await register('Strict App');
    const wrong = await fetch(authorizeUrl(clientId, pkce().challenge, { redirect_uri: 'https://evil.example/cb' }), { redirect: 'manual' });
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get('location')).toBeNull();
    const plain = await fetch(authorizeUrl(clientId, 'x'.repeat(43), { code_challenge_method: 'plain' }), { redirect: 'manual' });
    expect(plain.status).toBe(302);
    expect(new URL(plain.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
    const unknown = await fetch(authorizeUrl('no-such-client', pkce().challenge), { redirect: 'manual' });
    expect(unknown.status).toBe(400);
    const badRegistration = await fetch(`${base}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://evil.example/cb'] }),
    });
    expect(badRegistration.status).toBe(400);
  });

  it('refuses the token endpoint to a web page (foreign Origin), like every other path on this port', async () => {
    const res = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=authorization_code',
    });
    expect(res.status).toBe(403);
  });
});

describe('an HTTP client with a fixed token', () => {
  it('`gatehouse clients pair NAME` only asks; the person approves on the page; the token is printed once', async () => {
    const running = runGatehouse(['clients', 'pair', 'reporting-job'], bridgeEnv(gh.env), 60_000);
    const question = await gh.nextQuestion(/"reporting-job"/);
    expect((await answer(question, { decision: 'approve', scope: 'read-only', expiry: '1' })).page).toContain('HTTP, with a token');
    const run = await running;
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    expect(token).toMatch(/^ghc_/);
    expect(run.stderr).toMatch(/Paired "reporting-job" \(read-only, until /);
    const { client } = await connectHttp(base, { era: 'modern', token });
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['canary__read']);
  });
});
