/**
 * Enterprise-managed authorization (the MCP identity assertion authorization grant, ID-JAG): where
 * the organisation's identity provider and a remote server's authorization server trust each
 * other, Gatehouse exchanges the user's SSO ID token at the IdP for an identity assertion JWT
 * addressed to that authorization server (RFC 8693 token exchange), then redeems the assertion
 * there for an access token (RFC 7523 JWT bearer grant). The user sees no consent screen; the
 * managed identity settings say which servers may be reached this way.
 *
 * Pure request building and response reading; src/node/upstream-auth/ sends them.
 */
import { GatehouseError } from '../../common/errors.js';
import { resourceCovers } from './metadata.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** One remote server the managed settings let Gatehouse reach with the user's SSO identity. */
export interface EnterpriseUpstream {
  /** The server's resource identifier (what its protected resource metadata names), or a prefix of it. */
  resource: string;
  /** Gatehouse's client id at that server's authorization server (the ID-JAG names it). */
  clientId: string;
}

/** The managed entry that covers this resource, if any: only an exact resource or one under an entry's path. */
export function enterpriseEntryFor(entries: readonly EnterpriseUpstream[], resource: string): EnterpriseUpstream | undefined {
  return entries.find((e) => resourceCovers(e.resource, resource));
}

/** Client authentication Gatehouse uses at a token endpoint: a public client, or a secret in the body (client_secret_post). */
export interface ClientAuth {
  clientId: string;
  clientSecret?: string;
}

function withClient(params: URLSearchParams, client: ClientAuth): URLSearchParams {
  params.set('client_id', client.clientId);
  if (client.clientSecret) params.set('client_secret', client.clientSecret);
  return params;
}

/** Step 1, at the IdP's token endpoint: the user's ID token for an ID-JAG addressed to `audience` (the authorization server's issuer). */
export function idJagRequest(input: { idToken: string; audience: string; resource: string; scope?: string; client: ClientAuth }): URLSearchParams {
  const params = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    requested_token_type: ID_JAG_TOKEN_TYPE,
    audience: input.audience,
    resource: input.resource,
    subject_token: input.idToken,
    subject_token_type: ID_TOKEN_TYPE,
  });
  if (input.scope) params.set('scope', input.scope);
  return withClient(params, input.client);
}

/** Reads the IdP's answer: the assertion, which must be of the ID-JAG type (RFC 8693, 2.2.1). */
export function parseIdJagResponse(doc: unknown): { assertion: string; expiresIn?: number; scope?: string } {
  const r = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  if (r.issued_token_type !== ID_JAG_TOKEN_TYPE) {
    throw new GatehouseError(
      'id_jag_refused',
      `the identity provider answered the token exchange with ${typeof r.issued_token_type === 'string' ? `a token of type ${r.issued_token_type.slice(0, 100)}` : 'no token type'}, not an identity assertion grant`,
    );
  }
  const assertion = r.access_token;
  if (typeof assertion !== 'string' || assertion.split('.').length !== 3 || assertion.length > 16_384) {
    throw new GatehouseError('id_jag_refused', "the identity provider's identity assertion grant is not a JWT");
  }
  return {
    assertion,
    ...(typeof r.expires_in === 'number' ? { expiresIn: r.expires_in } : {}),
    ...(typeof r.scope === 'string' ? { scope: r.scope } : {}),
  };
}

/** Step 2, at the authorization server's token endpoint: the assertion for an access token. */
export function jwtBearerRequest(input: { assertion: string; scope?: string; resource?: string; client: ClientAuth }): URLSearchParams {
  const params = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: input.assertion });
  if (input.scope) params.set('scope', input.scope);
  if (input.resource) params.set('resource', input.resource);
  return withClient(params, input.client);
}
