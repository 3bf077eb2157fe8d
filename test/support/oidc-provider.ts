/**
 * A real OpenID provider for tests: `oidc-provider` 9 on 127.0.0.1, in this process, with one
 * native public client (`gatehouse-desktop`, redirect `http://127.0.0.1/callback` on any port as
 * RFC 8252 asks), PKCE required, the device flow, revocation and RP-initiated logout, and a
 * `groups` claim in the ID token. Its own login and consent pages are driven over plain HTTP by
 * `signIn` and `confirmDevice`, as a person's browser would follow them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { pausable } from './pausable.js';

export const CLIENT_ID = 'gatehouse-desktop';

export interface TestProvider {
  issuer: string;
  port: number;
  provider: Provider;
  /** Groups each account gets (login name → groups); changed by tests between renewals. */
  groups: Map<string, string[]>;
  /** Stops answering (the IdP is down), keeping its state. */
  pause(): Promise<void>;
  /** Answers again on the same port. */
  resume(): Promise<void>;
  stop(): Promise<void>;
  /** Every grant of an account is revoked (its refresh tokens stop working). */
  revokeGrantsOf(account: string): Promise<void>;
}

export interface ProviderOptions {
  accessTokenSeconds?: number;
  /** Port to listen on (0: any). */
  port?: number;
  /** Signing keys (private JWKs), for a test that signs tokens of its own as this provider (an ID-JAG). */
  jwks?: { keys: Record<string, unknown>[] };
  /** More grant types the desktop client may use (a custom grant the test registers, such as token exchange). */
  clientGrantTypes?: string[];
}

export async function startProvider(options: ProviderOptions = {}): Promise<TestProvider> {
  const groups = new Map<string, string[]>([['alice', ['engineering', 'sales']]]);
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: options.port ?? 0 }, () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const grants = new Map<string, Set<string>>();
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', ...(options.clientGrantTypes ?? [])],
        response_types: ['code'],
      },
      {
        client_id: 'another-app',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
    claims: { openid: ['sub'], email: ['email'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    ttl: {
      AccessToken: options.accessTokenSeconds ?? 3600,
      IdToken: 3600,
      RefreshToken: 86_400,
      Grant: 86_400,
      Session: 86_400,
      Interaction: 600,
      AuthorizationCode: 60,
      DeviceCode: 600,
    },
    rotateRefreshToken: true,
    ...(options.jwks ? { jwks: options.jwks as never } : {}),
    cookies: { keys: ['test-cookie-key-not-secret'] },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@example.test`, name: id, groups: groups.get(id) ?? [] };
        },
      };
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      return undefined;
    },
  });
  // Keep track of grants by account, so that a test can revoke a user's sessions as an admin would.
  provider.on('grant.success', (ctx) => {
    const account = ctx.oidc.session?.accountId ?? (ctx.oidc.entities as { Grant?: { accountId?: string } }).Grant?.accountId;
    const grantId = (ctx.oidc.entities as { Grant?: { jti?: string } }).Grant?.jti;
    if (account && grantId) grants.set(account, (grants.get(account) ?? new Set()).add(grantId));
  });
  provider.on('server_error', () => undefined);
  server.on('request', provider.callback());
  return {
    issuer,
    port,
    provider,
    groups,
    ...pausable(server, port),
    async revokeGrantsOf(account) {
      for (const grantId of grants.get(account) ?? []) {
        await provider.Grant.adapter.destroy(grantId);
        for (const model of ['RefreshToken', 'AccessToken', 'AuthorizationCode'] as const) {
          await (provider[model] as unknown as { adapter: { revokeByGrantId(id: string): Promise<void> } }).adapter.revokeByGrantId(grantId);
        }
      }
    },
  };
}

/** A tiny browser: a cookie jar, redirects followed by hand, forms submitted as a person would. */
export class TestBrowser {
  private cookies = new Map<string, string>();

  async get(url: string): Promise<Response> {
    return this.request(url, { method: 'GET' });
  }

  async request(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    const host = new URL(url).host;
    const jar = [...this.cookies].filter(([k]) => k.startsWith(`${host}|`)).map(([k, v]) => `${k.slice(host.length + 1)}=${v}`);
    if (jar.length > 0) headers.set('cookie', jar.join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(`${host}|${pair!.slice(0, eq).trim()}`, pair!.slice(eq + 1).trim());
    }
    return res;
  }

  /** Follows redirects from `url` until `stop` says so or a page without a redirect is reached. */
  async follow(url: string, stop: (url: string) => boolean = () => false): Promise<{ url: string; res: Response | undefined; body: string }> {
    let current = url;
    for (let hop = 0; hop < 20; hop++) {
      if (stop(current)) return { url: current, res: undefined, body: '' };
      const res = await this.get(current);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).href;
        continue;
      }
      return { url: current, res, body: await res.text() };
    }
    throw new Error('too many redirects');
  }

  /** Submits the page's first POST form with its hidden fields plus `fields`, then follows redirects. */
  async submit(
    pageUrl: string,
    body: string,
    fields: Record<string, string>,
    stop?: (url: string) => boolean,
  ): Promise<{ url: string; res: Response | undefined; body: string }> {
    const form =
      /<form[^>]*action="([^"]*)"[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(body) ??
      /<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(body);
    if (!form) throw new Error(`no form on ${pageUrl}:\n${body.slice(0, 2000)}`);
    const data = new URLSearchParams();
    for (const input of form[2]!.matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
      const name = /name="([^"]*)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name) data.set(name, value.replace(/&amp;/g, '&').replace(/&quot;/g, '"'));
    }
    for (const [k, v] of Object.entries(fields)) data.set(k, v);
    const action = new URL(form[1]!.replace(/&amp;/g, '&'), pageUrl).href;
    const res = await this.request(action, { method: 'POST', body: data, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) return this.follow(new URL(location, action).href, stop);
    return { url: action, res, body: await res.text() };
  }
}

/**
 * Signs in at the provider as `account`, from the authorization URL to the redirect back to the
 * client: the login page, then the consent page. Stops before fetching a URL for which `stop`
 * says so (the final redirect, to capture the code), else fetches it (delivers it to Gatehouse).
 */
export async function signIn(
  authorizationUrl: string,
  account = 'alice',
  stop?: (url: string) => boolean,
): Promise<{ url: string; body: string; status: number | undefined }> {
  const browser = new TestBrowser();
  let page = await browser.follow(authorizationUrl, stop);
  for (let step = 0; step < 4 && page.res && /\/interaction\//.test(page.url); step++) {
    const fields: Record<string, string> = /name="login"/.test(page.body) ? { login: account, password: 'any' } : {};
    page = await browser.submit(page.url, page.body, fields, stop);
  }
  return { url: page.url, body: page.body, status: page.res?.status };
}

/** Completes a device-flow sign-in: enters the user code at the verification page, signs in and consents. */
export async function confirmDevice(verificationUri: string, userCode: string, account = 'alice'): Promise<string> {
  const browser = new TestBrowser();
  let page = await browser.follow(verificationUri);
  page = await browser.submit(page.url, page.body, { user_code: userCode });
  // The confirmation page's form is named op.deviceConfirmForm; its submit carries confirm=yes.
  page = await browser.submit(page.url, page.body, { confirm: 'yes' });
  for (let step = 0; step < 4 && page.res && /\/interaction\//.test(page.url); step++) {
    const fields: Record<string, string> = /name="login"/.test(page.body) ? { login: account, password: 'any' } : {};
    page = await browser.submit(page.url, page.body, fields);
  }
  return page.body;
}
