/**
 * What Gatehouse accepts of a remote server's discovery documents before it sends the person's
 * browser anywhere: the protected resource metadata (RFC 9728) must describe the server Gatehouse
 * was configured with, and the authorization server's metadata (RFC 8414 / OpenID Connect
 * Discovery) must name the issuer it was fetched for and offer what MCP authorization needs
 * (the authorization code flow with PKCE S256, endpoints over HTTPS).
 *
 * The documents come from the network; these checks are pure and answer with a reason a person can act on.
 */
import { isPlainObject } from '../../common/objects.js';

/** The resource metadata fields Gatehouse reads. */
export interface ResourceMetadata {
  resource: string;
  authorizationServers: string[];
  scopesSupported?: string[];
  resourceName?: string;
}

/** The authorization server fields Gatehouse reads. */
export interface AuthorizationServer {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  registrationEndpoint?: string;
  revocationEndpoint?: string;
  scopesSupported?: string[];
  /** The server accepts a Client ID Metadata Document's URL as a client id. */
  clientIdMetadataDocuments: boolean;
  /** The server puts `iss` in its authorization responses (RFC 9207): then a response without it is refused. */
  issInResponse: boolean;
  tokenEndpointAuthMethods?: string[];
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** An endpoint credentials may go to: HTTPS, or plain HTTP on this machine's loopback only (development and tests). */
export function isSecureEndpoint(value: string): boolean {
  const url = parseUrl(value);
  if (!url || url.hash !== '' || url.username !== '' || url.password !== '') return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
}

/**
 * The server's resource identifier (RFC 8707) as MCP asks clients to write it: scheme and host in
 * lower case, no fragment, no trailing slash after the path (except the root).
 */
export function canonicalResource(serverUrl: string): string {
  const url = new URL(serverUrl);
  url.hash = '';
  let text = `${url.protocol}//${url.host.toLowerCase()}${url.pathname}${url.search}`;
  if (url.pathname.length > 1 && url.pathname.endsWith('/') && url.search === '') text = text.slice(0, -1);
  return text;
}

/**
 * Does the metadata's `resource` cover this server? The same origin, and the server's path is the
 * resource's path or below it (on a segment boundary): `https://api.example.com` covers
 * `https://api.example.com/mcp`, `https://api.example.com/mc` does not.
 */
export function resourceCovers(resource: string, serverUrl: string): boolean {
  const a = parseUrl(resource);
  const b = parseUrl(serverUrl);
  if (!a || !b || a.hash !== '') return false;
  if (a.protocol !== b.protocol || a.host.toLowerCase() !== b.host.toLowerCase()) return false;
  const base = a.pathname.endsWith('/') ? a.pathname : `${a.pathname}/`;
  const path = b.pathname.endsWith('/') ? b.pathname : `${b.pathname}/`;
  return path.startsWith(base);
}

/** Checks a protected resource metadata document against the server it was fetched for. */
export function checkResourceMetadata(doc: unknown, serverUrl: string): Checked<ResourceMetadata> {
  if (!isPlainObject(doc)) return { ok: false, reason: 'its protected resource metadata is not a JSON object' };
  const resource = doc.resource;
  if (typeof resource !== 'string' || resource.length > 2048) return { ok: false, reason: 'its protected resource metadata names no resource' };
  if (!resourceCovers(resource, serverUrl)) {
    return {
      ok: false,
      reason: `its protected resource metadata describes ${clip(resource)}, not ${serverUrl}; a server may only send Gatehouse to sign in for itself`,
    };
  }
  const servers = doc.authorization_servers;
  if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string')) {
    return { ok: false, reason: 'its protected resource metadata names no authorization server' };
  }
  const usable = (servers as string[]).filter((s) => s.length <= 2048 && isSecureEndpoint(s)).slice(0, 10);
  if (usable.length === 0) return { ok: false, reason: 'its authorization servers are not reachable over HTTPS' };
  const value: ResourceMetadata = { resource, authorizationServers: usable };
  const scopes = stringList(doc.scopes_supported);
  if (scopes) value.scopesSupported = scopes;
  if (typeof doc.resource_name === 'string') value.resourceName = clip(doc.resource_name, 200);
  return { ok: true, value };
}

/** Checks an authorization server's metadata document: the issuer it was fetched for, and what MCP authorization needs. */
export function checkAuthorizationServer(doc: unknown, expectedIssuer: string): Checked<AuthorizationServer> {
  if (!isPlainObject(doc)) return { ok: false, reason: "the authorization server's metadata is not a JSON object" };
  if (doc.issuer !== expectedIssuer) {
    return { ok: false, reason: `the authorization server's metadata names the issuer ${clip(String(doc.issuer))}, not ${expectedIssuer} (RFC 8414, 3.3)` };
  }
  const endpoint = (name: string): string | undefined => {
    const v = doc[name];
    return typeof v === 'string' && v.length <= 2048 && isSecureEndpoint(v) ? v : undefined;
  };
  const authorizationEndpoint = endpoint('authorization_endpoint');
  const tokenEndpoint = endpoint('token_endpoint');
  if (!authorizationEndpoint || !tokenEndpoint) return { ok: false, reason: 'the authorization server offers no HTTPS authorization and token endpoints' };
  const responseTypes = stringList(doc.response_types_supported);
  if (responseTypes && !responseTypes.includes('code')) return { ok: false, reason: 'the authorization server does not offer the authorization code flow' };
  // MCP authorization: a client must refuse to proceed when the server does not say it supports PKCE with S256.
  const pkce = stringList(doc.code_challenge_methods_supported);
  if (!pkce || !pkce.includes('S256'))
    return { ok: false, reason: 'the authorization server does not say it supports PKCE with S256, which MCP authorization requires' };
  const value: AuthorizationServer = {
    issuer: expectedIssuer,
    authorizationEndpoint,
    tokenEndpoint,
    clientIdMetadataDocuments: doc.client_id_metadata_document_supported === true,
    issInResponse: doc.authorization_response_iss_parameter_supported === true,
  };
  const registration = endpoint('registration_endpoint');
  if (registration) value.registrationEndpoint = registration;
  const revocation = endpoint('revocation_endpoint');
  if (revocation) value.revocationEndpoint = revocation;
  const scopes = stringList(doc.scopes_supported);
  if (scopes) value.scopesSupported = scopes;
  const methods = stringList(doc.token_endpoint_auth_methods_supported);
  if (methods) value.tokenEndpointAuthMethods = methods;
  return { ok: true, value };
}

/**
 * Checks the `iss` of an authorization response (RFC 9207, 2.4) against the server the sign-in was
 * sent to: a mismatch is a mix-up attack; a missing `iss` is refused when the server said it sends one.
 */
export function checkResponseIssuer(iss: string | undefined, server: AuthorizationServer): Checked<true> {
  if (iss === undefined) {
    return server.issInResponse
      ? { ok: false, reason: 'the authorization response carries no iss although the authorization server says it sends one (RFC 9207)' }
      : { ok: true, value: true };
  }
  if (iss !== server.issuer)
    return {
      ok: false,
      reason: 'the authorization response names another issuer than the server the sign-in was sent to (a mix-up attack, RFC 9207); it was refused',
    };
  return { ok: true, value: true };
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.filter((v): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200).slice(0, 200);
}

function clip(text: string, max = 120): string {
  const clean = text.replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
