/**
 * How Gatehouse is known to a remote server's authorization server, in the order the MCP
 * authorization spec (2026-07-28) gives:
 *
 * 1. a client an administrator registered beforehand (`oauth.clientId` in the config or the policy
 *    catalog's entry);
 * 2. a Client ID Metadata Document: the client id is the https address where the organisation
 *    publishes Gatehouse's client metadata, used when the authorization server says it accepts one;
 * 3. Dynamic Client Registration (RFC 7591) as a native application, for authorization servers that
 *    offer neither (kept for older servers: the spec deprecates it); a registration made earlier
 *    with the same authorization server is reused.
 *
 * Pure: the adapter (src/node/upstream-auth/) does the HTTP and keeps registrations in the key store.
 */
import type { AuthorizationServer } from './metadata.js';

/** The loopback redirect registered for Gatehouse: any port, as RFC 8252 (7.3) requires servers to accept. */
export const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';

export interface RegistrationInput {
  /** From the config or the catalog entry. */
  configured?: { clientId: string; hasSecret: boolean };
  /** Where the organisation publishes Gatehouse's Client ID Metadata Document. */
  clientMetadataUrl?: string;
  server: Pick<AuthorizationServer, 'issuer' | 'clientIdMetadataDocuments' | 'registrationEndpoint'>;
  /** A dynamic registration kept from an earlier sign-in with this authorization server. */
  stored?: { issuer: string; clientId: string };
}

export type RegistrationChoice =
  | { kind: 'pre-registered'; clientId: string; hasSecret: boolean }
  | { kind: 'metadata-document'; clientId: string }
  | { kind: 'stored'; clientId: string }
  | { kind: 'dynamic'; endpoint: string }
  | { kind: 'none'; reason: string };

export function chooseRegistration(input: RegistrationInput): RegistrationChoice {
  if (input.configured) return { kind: 'pre-registered', clientId: input.configured.clientId, hasSecret: input.configured.hasSecret };
  if (input.clientMetadataUrl && input.server.clientIdMetadataDocuments) return { kind: 'metadata-document', clientId: input.clientMetadataUrl };
  // A registration belongs to the authorization server that issued it (RFC 6749, 2.2): never sent to another.
  if (input.stored && input.stored.issuer === input.server.issuer) return { kind: 'stored', clientId: input.stored.clientId };
  if (input.server.registrationEndpoint) return { kind: 'dynamic', endpoint: input.server.registrationEndpoint };
  const cimd = input.server.clientIdMetadataDocuments
    ? 'it accepts Client ID Metadata Documents, but no oauth.clientMetadataUrl is set'
    : 'it accepts neither Client ID Metadata Documents nor dynamic registration';
  return {
    kind: 'none',
    reason: `Gatehouse cannot register with the authorization server ${input.server.issuer}: ${cimd}; an administrator registers a client there and sets its id as oauth.clientId`,
  };
}

/** The metadata Gatehouse registers dynamically, as a native public client with PKCE (RFC 7591, RFC 8252). */
export function dynamicRegistrationMetadata(scope: string | undefined): Record<string, unknown> {
  return {
    client_name: 'Gatehouse',
    application_type: 'native',
    redirect_uris: [LOOPBACK_REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...(scope ? { scope } : {}),
  };
}

/**
 * The Client ID Metadata Document an organisation publishes at `url` for its Gatehouse desktops
 * (docs/remote-servers.md): a public native client with a loopback redirect. `client_id` must be
 * the document's own address.
 */
export function clientMetadataDocument(url: string, options: { clientUri?: string; logoUri?: string } = {}): Record<string, unknown> {
  return {
    client_id: url,
    client_name: 'Gatehouse',
    ...(options.clientUri ? { client_uri: options.clientUri } : {}),
    ...(options.logoUri ? { logo_uri: options.logoUri } : {}),
    application_type: 'native',
    redirect_uris: [LOOPBACK_REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

/** Reads a dynamic registration response: a client id, and a secret only if the server insisted on one. */
export function parseRegistration(doc: unknown): { clientId: string; clientSecret?: string } | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const r = doc as Record<string, unknown>;
  if (typeof r.client_id !== 'string' || r.client_id.length === 0 || r.client_id.length > 500) return undefined;
  const secret = typeof r.client_secret === 'string' && r.client_secret.length > 0 && r.client_secret.length <= 500 ? r.client_secret : undefined;
  return secret ? { clientId: r.client_id, clientSecret: secret } : { clientId: r.client_id };
}
