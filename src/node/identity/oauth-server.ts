/**
 * Gatehouse as the OAuth 2.1 authorization server of HTTP clients that speak MCP authorization:
 * protected resource metadata (RFC 9728) points them here; they name themselves with a Client ID
 * Metadata Document's address (fetched under guards: client-metadata.ts) or, older clients,
 * register (RFC 7591); they send the
 * person's browser to the authorization endpoint with PKCE (S256 only), and redeem the code for a
 * token. Consent is the same pairing as for bridges: the authorization page only waits while the
 * person answers on the human channel's page, which this server cannot reach. The token is the
 * client's Gatehouse credential (kept only as a hash), with the scope and lifetime the person chose.
 *
 * Served on the MCP HTTP listener's port, behind its Host and Origin checks.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { CLIENT_NAME_PATTERN } from '../../common/names.js';
import type { Logger } from '../../core/ports.js';
import type { PairingResult, PairingService } from './pairing.js';
import { readBodyLimited } from '../http-body.js';
import { errorMessage } from '../../common/errors.js';
import { ClientMetadataCache, DEFAULT_METADATA_POLICY, fetchClientMetadata, type ClientMetadataPolicy } from './client-metadata.js';

const MAX_REGISTRATIONS = 200;
const CODE_TTL_MS = 60_000;
const MAX_BODY = 16 * 1024;

const Registration = z.object({
  clientId: z.string(),
  name: z.string(),
  redirectUris: z.array(z.string()),
  createdAt: z.string(),
});
type Registration = z.infer<typeof Registration>;

interface Pending {
  registration: Registration;
  redirectUri: string;
  state: string | undefined;
  challenge: string;
  result: PairingResult | undefined;
  createdAt: number;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  token: string;
  expiresAt: string | undefined;
  clientName: string;
  issuedAt: number;
  used: boolean;
}

export interface OAuthServerOptions {
  stateFile: string;
  pairing: PairingService;
  logger: Logger;
  /** Revokes a client whose authorization code was replayed (the code leaked). */
  revoke?: (clientName: string) => void;
  /** How client ID metadata documents are fetched (src/node/identity/client-metadata.ts); the defaults fetch public HTTPS only. */
  clientMetadata?: Partial<ClientMetadataPolicy>;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** RFC 8252: loopback redirects on http with any port, https, or a private-use scheme; never a fragment. */
export function acceptableRedirect(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.hash !== '' || uri.includes('#')) return false;
  if (url.protocol === 'https:') return true;
  if (url.protocol === 'http:') return url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost';
  // A private-use scheme in reverse-domain form (com.example.app:/callback).
  return /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol);
}

/** Whether a presented redirect matches a registered one (for loopback, any port, as RFC 8252 asks). */
function redirectMatches(registered: string, presented: string): boolean {
  if (registered === presented) return true;
  try {
    const a = new URL(registered);
    const b = new URL(presented);
    const loopback = (u: URL) => u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === '[::1]' || u.hostname === 'localhost');
    return loopback(a) && loopback(b) && a.hostname === b.hostname && a.pathname === b.pathname && a.search === b.search;
  } catch {
    return false;
  }
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** A Gatehouse client name from what the client calls itself, with a short tag of its id (a metadata document's address is hashed). */
function clientNameFrom(requested: unknown, clientId: string): string {
  const tag = /^https?:/.test(clientId)
    ? createHash('sha256')
        .update(clientId)
        .digest('base64url')
        .replace(/[^A-Za-z0-9]/g, '')
        .slice(0, 6)
    : clientId.slice(0, 6);
  const base =
    (typeof requested === 'string' ? requested : 'oauth-client')
      .replace(/[^A-Za-z0-9 ._-]/g, '')
      .trim()
      .slice(0, 48) || 'oauth-client';
  const name = `${base} ${tag}`;
  return CLIENT_NAME_PATTERN.test(name) ? name : `oauth-client ${tag}`;
}

export class OAuthServer {
  private registrations: Registration[] = [];
  private pending = new Map<string, Pending>();
  private codes = new Map<string, IssuedCode>();
  private readonly documents = new ClientMetadataCache();
  private readonly metadataPolicy: ClientMetadataPolicy;

  constructor(private readonly options: OAuthServerOptions) {
    this.metadataPolicy = { ...DEFAULT_METADATA_POLICY, ...(options.clientMetadata ?? {}) };
    try {
      const parsed = z.object({ clients: z.array(Registration) }).safeParse(JSON.parse(readFileSync(options.stateFile, 'utf8')));
      if (parsed.success) this.registrations = parsed.data.clients;
    } catch {
      // None yet.
    }
  }

  private save(): void {
    const temp = `${this.options.stateFile}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify({ clients: this.registrations }, null, 2) + '\n', { mode: 0o600 });
    renameSync(temp, this.options.stateFile);
  }

  /** The `resource_metadata` address for a 401 on this path of the MCP endpoint. */
  resourceMetadataUrl(origin: string, path: string): string {
    return `${origin}/.well-known/oauth-protected-resource${path.replace(/\/$/, '')}`;
  }

  /** Drops codes of clients that are no longer paired. */
  forgetRevoked(paired: Set<string>): void {
    for (const [code, issued] of this.codes) if (!paired.has(issued.clientName)) this.codes.delete(code);
  }

  /** Answers the OAuth paths; false for any other path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, origin: string): Promise<boolean> {
    const path = url.pathname;
    if (path === '/.well-known/oauth-authorization-server' || path === '/.well-known/openid-configuration') {
      if (req.method !== 'GET') return this.json(res, 405, { error: 'invalid_request' });
      return this.json(res, 200, {
        issuer: origin,
        authorization_endpoint: `${origin}/oauth/authorize`,
        token_endpoint: `${origin}/oauth/token`,
        registration_endpoint: `${origin}/oauth/register`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
        scopes_supported: ['mcp'],
        authorization_response_iss_parameter_supported: true,
        // The current spec's order: a Client ID Metadata Document first; dynamic registration is kept for older clients.
        client_id_metadata_document_supported: true,
      });
    }
    const prm = /^\/\.well-known\/oauth-protected-resource(\/mcp(?:\/[a-z0-9-]+)?)?\/?$/.exec(path);
    if (prm) {
      if (req.method !== 'GET') return this.json(res, 405, { error: 'invalid_request' });
      return this.json(res, 200, {
        resource: `${origin}${prm[1] ?? '/mcp'}`,
        authorization_servers: [origin],
        bearer_methods_supported: ['header'],
        scopes_supported: ['mcp'],
        resource_name: 'Gatehouse',
      });
    }
    if (path === '/oauth/register') return this.register(req, res);
    if (path === '/oauth/authorize') return await this.authorize(req, res, url, origin);
    const wait = /^\/oauth\/authorize\/wait\/([A-Za-z0-9_-]{22})$/.exec(path);
    if (wait) return this.waitPage(res, wait[1]!, origin);
    if (path === '/oauth/token') return this.token(req, res);
    return false;
  }

  private json(res: ServerResponse, status: number, body: unknown): true {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' });
    res.end(JSON.stringify(body));
    return true;
  }

  private page(res: ServerResponse, status: number, title: string, html: string, refresh?: string): true {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    });
    const meta = refresh ? `<meta http-equiv="refresh" content="2;url=${escapeHtml(refresh)}">` : '';
    res.end(
      `<!doctype html><html><head><meta charset="utf-8">${meta}<title>${escapeHtml(title)}</title></head><body style="font:15px system-ui;max-width:40em;margin:2em auto"><h1>${escapeHtml(title)}</h1>${html}</body></html>`,
    );
    return true;
  }

  private async register(req: IncomingMessage, res: ServerResponse): Promise<true> {
    if (req.method !== 'POST') return this.json(res, 405, { error: 'invalid_request' });
    const body = (await readBodyLimited(req, MAX_BODY))?.toString('utf8');
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(body ?? '') as Record<string, unknown>;
      if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error('not an object');
    } catch {
      return this.json(res, 400, { error: 'invalid_client_metadata', error_description: 'the body must be a JSON object' });
    }
    const uris = meta.redirect_uris;
    if (
      !Array.isArray(uris) ||
      uris.length === 0 ||
      uris.length > 10 ||
      !uris.every((u) => typeof u === 'string' && u.length <= 2000 && acceptableRedirect(u))
    ) {
      return this.json(res, 400, {
        error: 'invalid_redirect_uri',
        error_description: 'redirect_uris must be http://127.0.0.1 (any port), https:// or private-use scheme addresses without fragments',
      });
    }
    const method = meta.token_endpoint_auth_method ?? 'none';
    if (method !== 'none')
      return this.json(res, 400, {
        error: 'invalid_client_metadata',
        error_description: 'only public clients (token_endpoint_auth_method "none") with PKCE are supported',
      });
    const clientId = randomBytes(16).toString('base64url');
    const registration: Registration = {
      clientId,
      name: clientNameFrom(meta.client_name, clientId),
      redirectUris: uris as string[],
      createdAt: new Date().toISOString(),
    };
    this.registrations.push(registration);
    if (this.registrations.length > MAX_REGISTRATIONS) this.registrations.splice(0, this.registrations.length - MAX_REGISTRATIONS);
    this.save();
    this.options.logger.log('info', 'oauth.registered', { client: registration.name });
    return this.json(res, 201, {
      client_id: clientId,
      client_name: registration.name,
      redirect_uris: registration.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      client_id_issued_at: Math.floor(Date.now() / 1000),
    });
  }

  /**
   * The client of an authorization request: one registered dynamically, or one named by the address
   * of its Client ID Metadata Document, fetched under the guards of client-metadata.ts.
   */
  private async clientOf(clientId: string): Promise<{ registration: Registration; document: boolean } | { error: string }> {
    const registered = this.registrations.find((r) => r.clientId === clientId);
    if (registered) return { registration: registered, document: false };
    if (!/^https?:\/\//i.test(clientId)) return { error: 'This client is not registered with Gatehouse.' };
    let doc = this.documents.get(clientId);
    if (!doc) {
      try {
        doc = await fetchClientMetadata(clientId, this.metadataPolicy, acceptableRedirect);
      } catch (error) {
        this.options.logger.log('warn', 'oauth.client_metadata_refused', { error: errorMessage(error) });
        return { error: errorMessage(error) };
      }
      this.documents.set(doc);
    }
    return {
      registration: { clientId, name: clientNameFrom(doc.clientName, clientId), redirectUris: doc.redirectUris, createdAt: new Date().toISOString() },
      document: true,
    };
  }

  private async authorize(req: IncomingMessage, res: ServerResponse, url: URL, origin: string): Promise<true> {
    if (req.method !== 'GET') return this.page(res, 405, 'Method not allowed', '');
    const q = url.searchParams;
    const client = await this.clientOf(q.get('client_id') ?? '');
    if ('error' in client) return this.page(res, 400, 'Unknown client', `<p>${escapeHtml(client.error)}</p>`);
    const registration = client.registration;
    const redirectUri = q.get('redirect_uri') ?? (registration.redirectUris.length === 1 ? registration.redirectUris[0]! : '');
    // Never redirect anywhere before the redirect address is known to be the client's own.
    if (!registration.redirectUris.some((r) => redirectMatches(r, redirectUri)))
      return this.page(res, 400, 'Wrong redirect address', '<p>The redirect address is not one this client registered.</p>');
    const state = q.get('state') ?? undefined;
    const fail = (error: string, description: string): true => {
      const to = new URL(redirectUri);
      to.searchParams.set('error', error);
      to.searchParams.set('error_description', description);
      if (state !== undefined) to.searchParams.set('state', state);
      to.searchParams.set('iss', origin);
      res.writeHead(302, { location: to.href, 'cache-control': 'no-store' });
      res.end();
      return true;
    };
    if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported');
    const challenge = q.get('code_challenge');
    if (!challenge || q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(challenge))
      return fail('invalid_request', 'PKCE with code_challenge_method=S256 is required');
    const resource = q.get('resource');
    if (resource !== null && !/^\/mcp(\/[a-z0-9-]+)?\/?$/.test(new URL(resource, origin).pathname))
      return fail('invalid_target', "the resource must be this Gatehouse's /mcp endpoint");
    if (resource !== null && new URL(resource, origin).origin !== origin) return fail('invalid_target', "the resource must be this Gatehouse's /mcp endpoint");
    if (this.pending.size >= 8) return fail('temporarily_unavailable', 'too many authorizations are waiting for an answer');
    const rid = randomBytes(16).toString('base64url');
    const pending: Pending = { registration, redirectUri, state, challenge, result: undefined, createdAt: Date.now() };
    this.pending.set(rid, pending);
    const about = client.document
      ? `an HTTP client whose metadata document is at ${registration.clientId}, which will receive its credential at ${redirectUri}`
      : `an HTTP client that will receive its credential at ${redirectUri}`;
    void this.options.pairing
      .pair({ client: registration.name, via: 'oauth', about })
      .then((result) => (pending.result = result))
      .catch((error: unknown) => (pending.result = { ok: false, code: 'pairing_refused', reason: String(error) }));
    return this.waitPage(res, rid, origin);
  }

  private waitPage(res: ServerResponse, rid: string, origin: string): true {
    const pending = this.pending.get(rid);
    if (!pending) return this.page(res, 404, 'Nothing waiting', '<p>This authorization is not waiting (it finished or expired).</p>');
    if (!pending.result) {
      return this.page(
        res,
        200,
        'Waiting for your approval',
        `<p>Gatehouse asked you to pair <b>${escapeHtml(pending.registration.name)}</b>. Answer on the Gatehouse pairing page: open it from the desktop notification or the daemon's terminal. This page moves on by itself.</p>`,
        `/oauth/authorize/wait/${rid}`,
      );
    }
    this.pending.delete(rid);
    const to = new URL(pending.redirectUri);
    if (pending.state !== undefined) to.searchParams.set('state', pending.state);
    to.searchParams.set('iss', origin);
    const result = pending.result;
    if (result.ok) {
      const code = randomBytes(32).toString('base64url');
      this.codes.set(code, {
        clientId: pending.registration.clientId,
        redirectUri: pending.redirectUri,
        challenge: pending.challenge,
        token: result.token,
        expiresAt: result.record.expiresAt,
        clientName: result.record.name,
        issuedAt: Date.now(),
        used: false,
      });
      to.searchParams.set('code', code);
    } else {
      to.searchParams.set('error', 'access_denied');
      to.searchParams.set('error_description', result.reason);
    }
    res.writeHead(302, { location: to.href, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end();
    return true;
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<true> {
    if (req.method !== 'POST') return this.json(res, 405, { error: 'invalid_request' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
      return this.json(res, 400, { error: 'invalid_request', error_description: 'use application/x-www-form-urlencoded' });
    const body = (await readBodyLimited(req, MAX_BODY))?.toString('utf8');
    if (body === undefined) return this.json(res, 413, { error: 'invalid_request' });
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'authorization_code')
      return this.json(res, 400, { error: 'unsupported_grant_type', error_description: 'only authorization_code is supported' });
    const codeValue = form.get('code') ?? '';
    const issued = this.codes.get(codeValue);
    if (!issued) return this.json(res, 400, { error: 'invalid_grant', error_description: 'unknown or expired authorization code' });
    if (issued.used) {
      // A code presented twice has leaked: the credential issued from it is revoked (OAuth 2.1, 4.1.3).
      this.codes.delete(codeValue);
      this.options.revoke?.(issued.clientName);
      this.options.logger.log('warn', 'oauth.code_replayed', { client: issued.clientName });
      return this.json(res, 400, {
        error: 'invalid_grant',
        error_description: 'the authorization code was already used; the credential issued with it is revoked',
      });
    }
    issued.used = true;
    if (Date.now() - issued.issuedAt > CODE_TTL_MS) return this.json(res, 400, { error: 'invalid_grant', error_description: 'the authorization code expired' });
    if (form.get('client_id') !== issued.clientId)
      return this.json(res, 400, { error: 'invalid_grant', error_description: 'the code was issued to another client' });
    if (form.get('redirect_uri') !== issued.redirectUri)
      return this.json(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri does not match the authorization request' });
    const verifier = form.get('code_verifier') ?? '';
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier))
      return this.json(res, 400, { error: 'invalid_grant', error_description: 'a PKCE code_verifier is required' });
    const a = Buffer.from(s256(verifier));
    const b = Buffer.from(issued.challenge);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return this.json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
    const expiresIn = issued.expiresAt ? Math.max(1, Math.floor((Date.parse(issued.expiresAt) - Date.now()) / 1000)) : undefined;
    this.options.logger.log('info', 'oauth.token_issued', { client: issued.clientName });
    return this.json(res, 200, { access_token: issued.token, token_type: 'Bearer', ...(expiresIn ? { expires_in: expiresIn } : {}), scope: 'mcp' });
  }
}
