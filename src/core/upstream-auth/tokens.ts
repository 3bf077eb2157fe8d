/**
 * A user's tokens for one remote server, as they are kept in the key store: one item per (user,
 * server name, server address), so that another user of the same desktop, a renamed server or a
 * server that moved never reuses them. The values are `Redacted` from the moment they are read; the item is the
 * only place they are written.
 */
import { createHash } from 'node:crypto';
import { GatehouseError } from '../../common/errors.js';
import { Redacted, secretName, type SecretName } from '../secrets.js';

export const TOKEN_ITEM_PREFIX = 'upstream-oauth/';
export const CLIENT_ITEM_PREFIX = 'upstream-client/';

export type TokenSource = 'browser' | 'enterprise';
export type RegistrationKind = 'pre-registered' | 'metadata-document' | 'dynamic';

export interface UpstreamTokens {
  server: string;
  /** The server's configured address (canonical form), part of the item's key. */
  url: string;
  /** The resource indicator the tokens were issued for (RFC 8707). */
  resource: string;
  /** The authorization server that issued them. */
  issuer: string;
  clientId: string;
  registration: RegistrationKind;
  accessToken: Redacted<string>;
  refreshToken?: Redacted<string>;
  /** Epoch ms. */
  obtainedAt: number;
  expiresAt: number;
  /** Space-separated scopes granted (or asked for, when the server did not say). */
  scope?: string;
  /** Who the authorization server says the user is, when its answer said it. */
  subject?: string;
  via: TokenSource;
}

function hashed(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32);
}

/** The key store item of a user's tokens for a server at an address. */
export function tokenItem(user: string, server: string, url: string): SecretName {
  return secretName(`${TOKEN_ITEM_PREFIX}${hashed(user, server, url)}`);
}

/** The key store item of Gatehouse's dynamic registration at an authorization server (shared by its users). */
export function clientItem(issuer: string): SecretName {
  return secretName(`${CLIENT_ITEM_PREFIX}${hashed(issuer)}`);
}

export function serializeTokens(tokens: UpstreamTokens): string {
  return JSON.stringify({
    v: 1,
    server: tokens.server,
    url: tokens.url,
    resource: tokens.resource,
    issuer: tokens.issuer,
    clientId: tokens.clientId,
    registration: tokens.registration,
    accessToken: tokens.accessToken.unwrap(),
    ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken.unwrap() } : {}),
    obtainedAt: tokens.obtainedAt,
    expiresAt: tokens.expiresAt,
    ...(tokens.scope !== undefined ? { scope: tokens.scope } : {}),
    ...(tokens.subject !== undefined ? { subject: tokens.subject } : {}),
    via: tokens.via,
  });
}

/** Reads a stored item; an unreadable one is an error that says what to do (sign in again), never a half-read token. */
export function parseTokens(text: string, expected: { server: string; url: string }): UpstreamTokens {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw unreadable(expected.server);
  }
  const str = (k: string): string | undefined => (typeof doc[k] === 'string' && (doc[k] as string).length > 0 ? (doc[k] as string) : undefined);
  const num = (k: string): number | undefined => (typeof doc[k] === 'number' && Number.isFinite(doc[k]) ? (doc[k] as number) : undefined);
  const access = str('accessToken');
  const resource = str('resource');
  const issuer = str('issuer');
  const clientId = str('clientId');
  const obtainedAt = num('obtainedAt');
  const expiresAt = num('expiresAt');
  const via = doc.via === 'enterprise' ? 'enterprise' : doc.via === 'browser' ? 'browser' : undefined;
  const registration =
    doc.registration === 'pre-registered' || doc.registration === 'metadata-document' || doc.registration === 'dynamic' ? doc.registration : undefined;
  if (doc.v !== 1 || !access || !resource || !issuer || !clientId || obtainedAt === undefined || expiresAt === undefined || !via || !registration)
    throw unreadable(expected.server);
  if (doc.server !== expected.server || doc.url !== expected.url) throw unreadable(expected.server);
  const refresh = str('refreshToken');
  const tokens: UpstreamTokens = {
    server: expected.server,
    url: expected.url,
    resource,
    issuer,
    clientId,
    registration,
    accessToken: new Redacted(access),
    obtainedAt,
    expiresAt,
    via,
  };
  if (refresh) tokens.refreshToken = new Redacted(refresh);
  const scope = str('scope');
  if (scope) tokens.scope = scope;
  const subject = str('subject');
  if (subject) tokens.subject = subject;
  return tokens;
}

function unreadable(server: string): GatehouseError {
  return new GatehouseError(
    'upstream_token_invalid',
    `the stored sign-in to "${server}" is unreadable; sign in again with \`gatehouse servers login ${server}\``,
  );
}

/**
 * Who the token response says the user is: the `sub` of its ID token, or of a JWT access token.
 * Both came straight from the token endpoint over TLS, which is what vouches for them (OpenID
 * Connect Core, 3.1.3.7); the value is only recorded (status, audit), never used to decide anything.
 */
export function subjectFrom(response: { id_token?: unknown; access_token?: unknown }): string | undefined {
  for (const candidate of [response.id_token, response.access_token]) {
    if (typeof candidate !== 'string') continue;
    const parts = candidate.split('.');
    if (parts.length !== 3 || parts[1]!.length > 16_384) continue;
    try {
      const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { sub?: unknown };
      if (typeof claims.sub === 'string' && claims.sub.length > 0 && claims.sub.length <= 256) return claims.sub.replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
    } catch {
      // Not a JWT: opaque tokens say nothing.
    }
  }
  return undefined;
}

/** What a token response must hold to be kept (RFC 6749, 5.1). */
export interface TokenResponseContext {
  server: string;
  url: string;
  resource: string;
  issuer: string;
  clientId: string;
  registration: RegistrationKind;
  via: TokenSource;
  /** The scope that was asked for: what was granted when the response does not say (RFC 6749, 5.1). */
  requested?: string;
  /** A refresh token kept from before, when a refresh answer carries none. */
  previousRefresh?: Redacted<string>;
  now: number;
}

/** Turns a token endpoint's answer into tokens to keep; refuses what is not a Bearer access token. */
export function tokensFrom(doc: unknown, context: TokenResponseContext, expiresAt: (expiresIn: unknown, now: number) => number): UpstreamTokens {
  const r = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  if (typeof r.access_token !== 'string' || r.access_token.length === 0 || r.access_token.length > 16_384) {
    throw new GatehouseError('upstream_token_refused', `the authorization server of "${context.server}" answered without an access token`);
  }
  if (typeof r.token_type !== 'string' || r.token_type.toLowerCase() !== 'bearer') {
    throw new GatehouseError(
      'upstream_token_refused',
      `the authorization server of "${context.server}" issued a token of type ${typeof r.token_type === 'string' ? r.token_type.slice(0, 40) : '(none)'}; Gatehouse sends Bearer tokens only`,
    );
  }
  const tokens: UpstreamTokens = {
    server: context.server,
    url: context.url,
    resource: context.resource,
    issuer: context.issuer,
    clientId: context.clientId,
    registration: context.registration,
    accessToken: new Redacted(r.access_token),
    obtainedAt: context.now,
    expiresAt: expiresAt(r.expires_in, context.now),
    via: context.via,
  };
  const refresh = typeof r.refresh_token === 'string' && r.refresh_token.length > 0 ? new Redacted(r.refresh_token) : context.previousRefresh;
  if (refresh) tokens.refreshToken = refresh;
  const scope = typeof r.scope === 'string' ? r.scope : context.requested;
  if (scope) tokens.scope = scope;
  const subject = subjectFrom(r);
  if (subject) tokens.subject = subject;
  return tokens;
}

/** The command that signs a user in to a server, as every message names it. */
export function signInCommand(server: string): string {
  return `gatehouse servers login ${server}`;
}
