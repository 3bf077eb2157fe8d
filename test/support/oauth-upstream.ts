/**
 * A remote MCP server that needs sign-in, for the upstream sign-in tests, built from real parts:
 *
 * - the authorization server is `oidc-provider` 9 on 127.0.0.1: Dynamic Client Registration, PKCE
 *   required, resource indicators (tokens are issued for the MCP server's own resource only),
 *   refresh tokens, revocation and introspection, and its own login and consent pages;
 * - the resource server is an SDK v2 MCP server (`createMcpHandler`, both eras) behind the SDK's
 *   `requireBearerAuth`: every request's token is introspected at the authorization server (so a
 *   revocation there is seen at once), must be active, issued for this server's resource and carry
 *   `notes:read`; `write_note` also needs `notes:write` and answers `403 insufficient_scope` without it.
 *
 * The resource server records what it saw of every accepted token (subject, audience, client,
 * scopes, the token itself), so a test can check whose token arrived, for which audience.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { errors, type ClientMetadata, type Configuration } from 'oidc-provider';
import {
  McpServer,
  OAuthError,
  OAuthErrorCode,
  bearerAuthChallengeResponse,
  createMcpHandler,
  requireBearerAuth,
  type AuthInfo,
} from '@modelcontextprotocol/server';
import * as z from 'zod/v4';
import { pausable } from './pausable.js';

export const RS_CLIENT = { id: 'notes-resource-server', secret: 'resource-server-secret-not-a-canary' };
export const SCOPES = ['notes:read', 'notes:write'] as const;

export interface AuthorizationServer {
  issuer: string;
  provider: Provider;
  /** Grants issued, by type (`authorization_code`, `refresh_token`), counted as they succeed. */
  grants: string[];
  /** Every request path the server answered, in order (registration, authorize, token, revocation...). */
  requests: string[];
  /** Every access and refresh token the token endpoint issued (for the canary scan). */
  issued: string[];
  /** Every Client ID Metadata Document address the server fetched, in order. */
  fetched: string[];
  /** Sets the resource the server issues tokens for (the MCP server's, once it listens). */
  setResource(resource: string): void;
  /** Sets the lifetime of access tokens issued from now on. */
  setAccessTokenSeconds(seconds: number): void;
  /** Revokes every grant of an account, as an administrator ending its sessions would. */
  revokeAccount(account: string): Promise<void>;
  /** Stops answering (the server is down), keeping its state; `resume` answers again on the same port. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface AuthorizationServerOptions {
  accessTokenSeconds?: number;
  /** Extra pre-registered clients (for the registration-order test). */
  clients?: ClientMetadata[];
  /**
   * Accepts Client ID Metadata Documents (oidc-provider's own support, draft-02), and says so in its
   * metadata. The organisation's web server that publishes them is this map (https address →
   * document): the provider fetches through it, and any other address fails as an unreachable one.
   */
  clientIdMetadataDocuments?: Record<string, Record<string, unknown>>;
  /**
   * Accepts the JWT bearer grant (RFC 7523) with an identity assertion (ID-JAG) that `verify` checks
   * for the authenticated client: the enterprise-managed authorization of the MCP spec.
   */
  jwtBearer?: { verify(assertion: string, clientId: string, issuer: string): Promise<{ sub: string; scope?: string; resource: string }> };
}

export async function startAuthorizationServer(options: AuthorizationServerOptions = {}): Promise<AuthorizationServer> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  let resource = '';
  let accessTokenSeconds = options.accessTokenSeconds ?? 3600;
  const grants: string[] = [];
  const requests: string[] = [];
  const byAccount = new Map<string, Set<string>>();
  const fetched: string[] = [];
  const configuration: Configuration = {
    clients: [
      {
        client_id: RS_CLIENT.id,
        client_secret: RS_CLIENT.secret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      ...(options.clients ?? []),
    ],
    scopes: ['openid', 'offline_access'],
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      ...(options.clientIdMetadataDocuments ? { clientIdMetadataDocument: { enabled: true, ack: 'draft-02' } } : {}),
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== resource) throw new errors.InvalidTarget(`tokens are only issued for ${resource}`);
          return { scope: SCOPES.join(' '), audience: resource, accessTokenTTL: accessTokenSeconds, accessTokenFormat: 'opaque' };
        },
      },
    },
    pkce: { required: () => true },
    // Refresh tokens for every client allowed the grant (plain OAuth: no offline_access needed), outliving the browser session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    rotateRefreshToken: true,
    ttl: { AccessToken: options.accessTokenSeconds ?? 3600, RefreshToken: 86_400, Grant: 86_400, Session: 86_400, Interaction: 600, AuthorizationCode: 60 },
    cookies: { keys: ['test-cookie-key-not-secret'] },
    ...(options.clientIdMetadataDocuments ? { fetch: publishedBy(options.clientIdMetadataDocuments, fetched) } : {}),
    async findAccount(_ctx, id) {
      return { accountId: id, claims: async () => ({ sub: id }) };
    },
  };
  const provider = new Provider(issuer, configuration);
  if (options.jwtBearer) {
    const verify = options.jwtBearer.verify;
    provider.registerGrantType(
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
      async (ctx) => {
        const params = ctx.oidc.params as { assertion?: string; scope?: string };
        const client = ctx.oidc.client!;
        let claims: { sub: string; scope?: string; resource: string };
        try {
          claims = await verify(String(params.assertion ?? ''), client.clientId, issuer);
        } catch (error) {
          throw new errors.InvalidGrant(`the assertion was refused: ${(error as Error).message}`);
        }
        if (claims.resource !== resource) throw new errors.InvalidTarget('the assertion is for another resource');
        const scope = (params.scope ?? claims.scope ?? '')
          .split(' ')
          .filter((s) => (SCOPES as readonly string[]).includes(s))
          .join(' ');
        const grant = new provider.Grant({ accountId: claims.sub, clientId: client.clientId });
        grant.addResourceScope(resource, scope);
        const grantId = await grant.save();
        const token = new provider.AccessToken({ accountId: claims.sub, client, grantId, gty: 'jwt-bearer', scope });
        token.resourceServer = new provider.ResourceServer(resource, {
          scope: SCOPES.join(' '),
          audience: resource,
          accessTokenTTL: accessTokenSeconds,
          accessTokenFormat: 'opaque',
        });
        const value = await token.save();
        grants.push('jwt-bearer');
        ctx.body = { access_token: value, token_type: 'Bearer', expires_in: accessTokenSeconds, scope };
      },
      ['assertion', 'scope', 'resource'],
    );
  }
  provider.on('grant.success', (ctx) => {
    const type = String((ctx.oidc.params as { grant_type?: unknown } | undefined)?.grant_type ?? '');
    grants.push(type);
    const grant = (ctx.oidc.entities as { Grant?: { jti?: string; accountId?: string } }).Grant;
    const account = ctx.oidc.session?.accountId ?? grant?.accountId ?? (ctx.oidc.entities as { Account?: { accountId?: string } }).Account?.accountId;
    if (account && grant?.jti) byAccount.set(account, (byAccount.get(account) ?? new Set()).add(grant.jti));
  });
  provider.on('server_error', () => undefined);
  const issued: string[] = [];
  const callback = provider.callback();
  server.on('request', (req, res) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    requests.push(path);
    if (path === '/token') {
      // Keep every token the endpoint hands out, as it leaves, for the canary scan.
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      res.end = ((chunk?: unknown, ...rest: unknown[]) => {
        try {
          const body = JSON.parse(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk ?? '')) as { access_token?: string; refresh_token?: string };
          for (const token of [body.access_token, body.refresh_token]) if (token) issued.push(token);
        } catch {
          // An error answer: nothing issued.
        }
        return end(chunk, ...rest);
      }) as typeof res.end;
    }
    callback(req, res);
  });
  return {
    issuer,
    provider,
    grants,
    requests,
    issued,
    fetched,
    setResource: (r) => (resource = r),
    setAccessTokenSeconds: (seconds) => (accessTokenSeconds = seconds),
    async revokeAccount(account) {
      for (const grantId of byAccount.get(account) ?? []) {
        await provider.Grant.adapter.destroy(grantId);
        for (const model of ['RefreshToken', 'AccessToken', 'AuthorizationCode'] as const) {
          await (provider[model] as unknown as { adapter: { revokeByGrantId(id: string): Promise<void> } }).adapter.revokeByGrantId(grantId);
        }
      }
    },
    ...pausable(server, port),
  };
}

/** The organisation's web server, as the authorization server's `fetch` sees it: the published documents, and nothing else. */
function publishedBy(documents: Record<string, Record<string, unknown>>, fetched: string[]): (input: string | URL | Request) => Promise<Response> {
  return async (input) => {
    const address = input instanceof Request ? input.url : String(input);
    fetched.push(address);
    const document = documents[address];
    if (!document) throw new TypeError(`fetch failed: nothing is published at ${address}`);
    return new Response(JSON.stringify(document), { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'max-age=60' } });
  };
}

export interface SeenToken {
  token: string;
  subject: string | undefined;
  audience: string | undefined;
  clientId: string;
  scopes: string[];
}

export interface ProtectedServer {
  /** The MCP endpoint (and the resource identifier tokens must be issued for). */
  url: string;
  /** Every accepted token, in order. */
  seen: SeenToken[];
  /** Requests refused, by status (401, 403). */
  refused: number[];
  stop(): Promise<void>;
}

/** The SDK v2 MCP server behind bearer authentication, introspecting every token at `as`. */
export async function startProtectedServer(as: AuthorizationServer): Promise<ProtectedServer> {
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const url = `${origin}/mcp`;
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
  as.setResource(url);
  const seen: SeenToken[] = [];
  const refused: number[] = [];
  const notes: string[] = [];

  // RFC 7662 introspection at the authorization server, as the resource server's own confidential client.
  const verifier = {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      const res = await fetch(`${as.issuer}/token/introspection`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${RS_CLIENT.id}:${RS_CLIENT.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token }),
      });
      const info = (await res.json()) as { active?: boolean; sub?: string; aud?: string | string[]; client_id?: string; scope?: string; exp?: number };
      if (!info.active) throw new OAuthError(OAuthErrorCode.InvalidToken, 'the token is not active');
      const audience = Array.isArray(info.aud) ? info.aud[0] : info.aud;
      return {
        token,
        clientId: info.client_id ?? '',
        scopes: (info.scope ?? '').split(' ').filter(Boolean),
        ...(info.exp ? { expiresAt: info.exp } : {}),
        ...(audience ? { resource: new URL(audience) } : {}),
        extra: { sub: info.sub },
      };
    },
  };
  const gate = requireBearerAuth({ verifier, requiredScopes: ['notes:read'], resourceMetadataUrl: metadataUrl, expectedResource: new URL(url) });

  const mcp = createMcpHandler(({ authInfo }) => {
    const server = new McpServer({ name: 'notes-remote', version: '1.0.0' });
    const who = String(authInfo?.extra?.sub ?? 'nobody');
    server.registerTool('read_notes', { description: 'Reads your notes', annotations: { readOnlyHint: true } }, async () => ({
      content: [{ type: 'text', text: `notes of ${who}: ${notes.join('; ') || '(none)'}` }],
    }));
    // A server that echoes the token it was sent (a debug tool, or a hostile server): the agent must never see it.
    server.registerTool('echo_token', { description: 'Says which token it was called with' }, async () => ({
      content: [{ type: 'text', text: `you called with ${authInfo?.token ?? 'nothing'}` }],
    }));
    server.registerTool('write_note', { description: 'Adds a note (needs notes:write)', inputSchema: { text: z.string() } }, async ({ text }) => {
      notes.push(text);
      return { content: [{ type: 'text', text: `noted for ${who}` }] };
    });
    return server;
  });

  http.on('request', (req: IncomingMessage, res: ServerResponse) => void serve(req, res));
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', origin).pathname;
    if (path === '/.well-known/oauth-protected-resource/mcp' || path === '/.well-known/oauth-protected-resource') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          resource: url,
          authorization_servers: [as.issuer],
          scopes_supported: ['notes:read'],
          bearer_methods_supported: ['header'],
          resource_name: 'Notes',
        }),
      );
      return;
    }
    if (path !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else if (value !== undefined) headers.set(name, value);
    }
    const request = new Request(`${origin}${req.url ?? '/mcp'}`, { method: req.method ?? 'GET', headers, ...(body && req.method !== 'GET' ? { body } : {}) });
    let response: Response;
    const auth = await gate(request);
    if (auth instanceof Response) {
      refused.push(auth.status);
      response = auth;
    } else {
      seen.push({
        token: auth.token,
        subject: auth.extra?.sub as string | undefined,
        audience: auth.resource?.href,
        clientId: auth.clientId,
        scopes: auth.scopes,
      });
      const call = body ? (JSON.parse(body.toString('utf8')) as { method?: string; params?: { name?: string } }) : undefined;
      if (call?.method === 'tools/call' && call.params?.name === 'write_note' && !auth.scopes.includes('notes:write')) {
        refused.push(403);
        response = bearerAuthChallengeResponse(new OAuthError(OAuthErrorCode.InsufficientScope, 'writing needs notes:write'), {
          requiredScopes: ['notes:read', 'notes:write'],
          resourceMetadataUrl: metadataUrl,
        });
      } else {
        response = await mcp.fetch(request, { authInfo: auth });
      }
    }
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    res.writeHead(response.status, out);
    if (!response.body) {
      res.end();
      return;
    }
    const reader = response.body.getReader();
    res.on('close', () => void reader.cancel().catch(() => undefined));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      res.write(value);
    }
    res.end();
  }

  return {
    url,
    seen,
    refused,
    async stop() {
      await mcp.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/**
 * A person signing in at the authorization server in Chromium: from the sign-in address to the
 * redirect back to Gatehouse, through the login page (when the browser has no session there yet)
 * and the consent page. Answers with what the last page says.
 */
export async function signInWithBrowser(context: import('playwright-core').BrowserContext, url: string, account: string): Promise<string> {
  const page = await context.newPage();
  try {
    await page.goto(url);
    for (let step = 0; step < 6; step++) {
      if (new URL(page.url()).pathname === '/callback') break;
      const login = page.locator('input[name="login"]');
      if ((await login.count()) > 0) {
        await login.fill(account);
        await page.locator('input[name="password"]').fill('any password');
      }
      await Promise.all([page.waitForNavigation(), page.locator('button[type="submit"]').first().click()]);
    }
    return (await page.textContent('body')) ?? '';
  } finally {
    await page.close();
  }
}
