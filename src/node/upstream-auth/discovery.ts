/**
 * Finding where a remote server's users sign in: its protected resource metadata (RFC 9728), from
 * the address its 401 challenge names or the well-known path, then the authorization server's
 * metadata (RFC 8414, or OpenID Connect Discovery). The SDK's discovery helpers fetch and
 * schema-check the documents; the core's checks (src/core/upstream-auth/metadata.ts) decide whether
 * Gatehouse may use them. A server of the 2025-03-26 revision publishes no resource metadata: its
 * own origin is then the authorization server, as that revision said.
 */
import { discoverAuthorizationServerMetadata, discoverOAuthProtectedResourceMetadata, type FetchLike } from '@modelcontextprotocol/client';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { BearerChallenge } from '../../core/upstream-auth/challenge.js';
import {
  canonicalResource,
  checkAuthorizationServer,
  checkResourceMetadata,
  isSecureEndpoint,
  type AuthorizationServer,
  type ResourceMetadata,
} from '../../core/upstream-auth/metadata.js';

export interface Discovered {
  resource: ResourceMetadata;
  server: AuthorizationServer;
  /** The document as the SDK parsed it, for its token helpers. */
  metadata: Awaited<ReturnType<typeof discoverAuthorizationServerMetadata>> & object;
}

function refused(server: string, reason: string): GatehouseError {
  return new GatehouseError('upstream_auth_discovery', `cannot sign in to "${server}": ${reason}`);
}

/** The resource and authorization server of `serverUrl`, checked. */
export async function discover(server: string, serverUrl: string, challenge: BearerChallenge | undefined, fetchFn: FetchLike): Promise<Discovered> {
  if (!isSecureEndpoint(serverUrl))
    throw refused(server, `its address ${serverUrl} is not HTTPS; Gatehouse signs in over HTTPS only (plain HTTP on 127.0.0.1 for development)`);
  const hinted = challenge?.resourceMetadata;
  if (hinted !== undefined && !isSecureEndpoint(hinted)) throw refused(server, 'its challenge names a resource metadata address that is not HTTPS');
  let resource: ResourceMetadata;
  try {
    const doc = await discoverOAuthProtectedResourceMetadata(serverUrl, hinted ? { resourceMetadataUrl: hinted } : {}, fetchFn);
    const checked = checkResourceMetadata(doc, serverUrl);
    if (!checked.ok) throw refused(server, checked.reason);
    resource = checked.value;
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    if (!/does not implement OAuth 2\.0 Protected Resource Metadata/.test(errorMessage(error))) {
      throw refused(server, `its protected resource metadata could not be read (${errorMessage(error)})`);
    }
    // A 2025-03-26 server: its origin is its authorization server, and its address its resource.
    resource = { resource: canonicalResource(serverUrl), authorizationServers: [new URL(serverUrl).origin] };
  }
  let lastReason = 'it names no authorization server Gatehouse can use';
  for (const issuer of resource.authorizationServers) {
    let metadata;
    try {
      metadata = await discoverAuthorizationServerMetadata(issuer, { fetchFn });
    } catch (error) {
      lastReason = `the authorization server ${issuer} could not be read (${errorMessage(error)})`;
      continue;
    }
    if (!metadata) {
      lastReason = `the authorization server ${issuer} publishes no metadata`;
      continue;
    }
    const checked = checkAuthorizationServer(metadata, issuer);
    if (!checked.ok) {
      lastReason = checked.reason;
      continue;
    }
    return { resource, server: checked.value, metadata };
  }
  throw refused(server, lastReason);
}

/** The authorization server's metadata alone, for renewing and revoking tokens it issued (no resource discovery needed). */
export async function authorizationServer(issuer: string, fetchFn: FetchLike): Promise<{ server: AuthorizationServer; metadata: Discovered['metadata'] }> {
  const metadata = await discoverAuthorizationServerMetadata(issuer, { fetchFn });
  if (!metadata) throw new GatehouseError('upstream_auth_discovery', `the authorization server ${issuer} publishes no metadata`);
  const checked = checkAuthorizationServer(metadata, issuer);
  if (!checked.ok) throw new GatehouseError('upstream_auth_discovery', checked.reason);
  return { server: checked.value, metadata };
}
