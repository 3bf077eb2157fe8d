/**
 * The pure rules of signing in to remote servers (src/core/upstream-auth/): reading challenges and
 * discovery documents, the registration order, scope selection and step-up, renewal timing, the
 * stored tokens, and the enterprise (ID-JAG) requests. Each case is one rule as the MCP
 * authorization spec or its RFCs state it.
 */
import { describe, expect, it } from 'vitest';
import { bearerChallenge, parseChallenges } from '../../src/core/upstream-auth/challenge.js';
import {
  canonicalResource,
  checkAuthorizationServer,
  checkResourceMetadata,
  checkResponseIssuer,
  isSecureEndpoint,
  resourceCovers,
} from '../../src/core/upstream-auth/metadata.js';
import { chooseRegistration, clientMetadataDocument, dynamicRegistrationMetadata, parseRegistration } from '../../src/core/upstream-auth/registration.js';
import { needsMoreScope, scopeToRequest, scopeUnion } from '../../src/core/upstream-auth/scopes.js';
import { expired, expiresAtFrom, renewalDue, renewalMarginMs } from '../../src/core/upstream-auth/timing.js';
import { clientItem, parseTokens, serializeTokens, subjectFrom, tokenItem, tokensFrom, type UpstreamTokens } from '../../src/core/upstream-auth/tokens.js';
import { enterpriseEntryFor, idJagRequest, jwtBearerRequest, parseIdJagResponse } from '../../src/core/upstream-auth/id-jag.js';
import { Redacted } from '../../src/core/secrets.js';

const AS = {
  issuer: 'https://auth.example.com',
  authorization_endpoint: 'https://auth.example.com/authorize',
  token_endpoint: 'https://auth.example.com/token',
  response_types_supported: ['code'],
  code_challenge_methods_supported: ['S256'],
};

describe('reading a WWW-Authenticate challenge', () => {
  it('takes resource_metadata, scope and error from a Bearer challenge', () => {
    const header =
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read files:write", error="insufficient_scope"';
    expect(bearerChallenge(header)).toEqual({
      resourceMetadata: 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
      scope: 'files:read files:write',
      error: 'insufficient_scope',
    });
  });

  it('finds the Bearer challenge among others, with token params and escaped quotes', () => {
    const header = 'Basic realm="a, b", Bearer realm="x\\"y", error=invalid_token, error_description="the token expired", Newauth dGVzdA==';
    const challenges = parseChallenges(header);
    expect(challenges.map((c) => c.scheme)).toEqual(['basic', 'bearer', 'newauth']);
    expect(challenges[1]!.params).toEqual({ realm: 'x"y', error: 'invalid_token', error_description: 'the token expired' });
    expect(challenges[2]!.params).toEqual({ token68: 'dGVzdA==' });
    expect(bearerChallenge(header)).toEqual({ error: 'invalid_token', errorDescription: 'the token expired' });
  });

  it('reads a DPoP challenge the same way, and nothing from a header without one', () => {
    expect(bearerChallenge('DPoP scope="a"')).toEqual({ scope: 'a' });
    expect(bearerChallenge('Basic realm="x"')).toBeUndefined();
    expect(bearerChallenge(undefined)).toBeUndefined();
  });

  it('stops at garbage and bounds what it reads', () => {
    expect(parseChallenges('Bearer scope="unterminated')).toEqual([{ scheme: 'bearer', params: {} }]);
    expect(bearerChallenge(`Bearer scope="${'a '.repeat(10_000)}"`)).toEqual({});
    expect(bearerChallenge('Bearer scope="ok \u0001bad"')).toEqual({ scope: 'ok' });
  });
});

describe('discovery documents', () => {
  it('accepts resource metadata that describes the configured server, or a path above it', () => {
    const ok = checkResourceMetadata(
      { resource: 'https://mcp.example.com/mcp', authorization_servers: ['https://auth.example.com'], scopes_supported: ['a'] },
      'https://mcp.example.com/mcp',
    );
    expect(ok).toEqual({
      ok: true,
      value: { resource: 'https://mcp.example.com/mcp', authorizationServers: ['https://auth.example.com'], scopesSupported: ['a'] },
    });
    expect(resourceCovers('https://mcp.example.com', 'https://mcp.example.com/mcp')).toBe(true);
    expect(resourceCovers('https://mcp.example.com/mc', 'https://mcp.example.com/mcp')).toBe(false);
    expect(resourceCovers('https://mcp.example.com/mcp', 'https://MCP.example.com/mcp/')).toBe(true);
  });

  it('refuses resource metadata that names another server, so that a server cannot send the user to sign in elsewhere', () => {
    const result = checkResourceMetadata(
      { resource: 'https://bank.example.com/mcp', authorization_servers: ['https://auth.example.com'] },
      'https://mcp.example.com/mcp',
    );
    expect(result).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/describes https:\/\/bank\.example\.com\/mcp, not https:\/\/mcp\.example\.com\/mcp/),
    });
  });

  it('refuses authorization servers reached over plain HTTP off this machine', () => {
    expect(
      checkResourceMetadata({ resource: 'https://m.example.com/mcp', authorization_servers: ['http://auth.example.com'] }, 'https://m.example.com/mcp'),
    ).toMatchObject({ ok: false });
    expect(isSecureEndpoint('http://127.0.0.1:4000/token')).toBe(true);
    expect(isSecureEndpoint('http://user:pw@127.0.0.1/token')).toBe(false);
    expect(isSecureEndpoint('https://auth.example.com/token#x')).toBe(false);
  });

  it('refuses authorization server metadata that names another issuer (RFC 8414, 3.3)', () => {
    expect(checkAuthorizationServer({ ...AS, issuer: 'https://evil.example.com' }, AS.issuer)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/names the issuer https:\/\/evil\.example\.com/),
    });
  });

  it('refuses an authorization server that does not say it supports PKCE with S256', () => {
    const { code_challenge_methods_supported: _, ...without } = AS;
    expect(checkAuthorizationServer(without, AS.issuer)).toMatchObject({ ok: false, reason: expect.stringMatching(/PKCE with S256/) });
    expect(checkAuthorizationServer({ ...AS, code_challenge_methods_supported: ['plain'] }, AS.issuer)).toMatchObject({ ok: false });
  });

  it('reads the capabilities that decide registration and the iss check', () => {
    const checked = checkAuthorizationServer(
      {
        ...AS,
        registration_endpoint: 'https://auth.example.com/reg',
        client_id_metadata_document_supported: true,
        authorization_response_iss_parameter_supported: true,
        revocation_endpoint: 'http://evil.example.com/revoke',
      },
      AS.issuer,
    );
    expect(checked).toMatchObject({
      ok: true,
      value: { registrationEndpoint: 'https://auth.example.com/reg', clientIdMetadataDocuments: true, issInResponse: true },
    });
    // An endpoint that is not HTTPS is ignored rather than used.
    expect(checked.ok && checked.value.revocationEndpoint).toBeUndefined();
  });

  it('checks the iss of the authorization response against the server the sign-in went to (RFC 9207)', () => {
    const checked = checkAuthorizationServer({ ...AS, authorization_response_iss_parameter_supported: true }, AS.issuer);
    if (!checked.ok) throw new Error(checked.reason);
    const server = checked.value;
    expect(checkResponseIssuer(AS.issuer, server)).toEqual({ ok: true, value: true });
    expect(checkResponseIssuer('https://evil.example.com', server)).toMatchObject({ ok: false, reason: expect.stringMatching(/mix-up/) });
    expect(checkResponseIssuer(undefined, server)).toMatchObject({ ok: false });
    expect(checkResponseIssuer(undefined, { ...server, issInResponse: false })).toEqual({ ok: true, value: true });
  });

  it('writes the resource indicator in canonical form', () => {
    expect(canonicalResource('HTTPS://MCP.Example.com/mcp/#frag')).toBe('https://mcp.example.com/mcp');
    expect(canonicalResource('https://mcp.example.com')).toBe('https://mcp.example.com/');
  });
});

describe('the registration order', () => {
  const server = { issuer: AS.issuer, clientIdMetadataDocuments: true, registrationEndpoint: 'https://auth.example.com/reg' };

  it('uses a pre-registered client first, then a Client ID Metadata Document, then a stored registration, then dynamic registration', () => {
    expect(
      chooseRegistration({ configured: { clientId: 'admin-made', hasSecret: false }, clientMetadataUrl: 'https://corp.example.com/gatehouse.json', server }),
    ).toEqual({ kind: 'pre-registered', clientId: 'admin-made', hasSecret: false });
    expect(
      chooseRegistration({ clientMetadataUrl: 'https://corp.example.com/gatehouse.json', server, stored: { issuer: AS.issuer, clientId: 'dyn' } }),
    ).toEqual({ kind: 'metadata-document', clientId: 'https://corp.example.com/gatehouse.json' });
    expect(chooseRegistration({ server, stored: { issuer: AS.issuer, clientId: 'dyn' } })).toEqual({ kind: 'stored', clientId: 'dyn' });
    expect(
      chooseRegistration({ server: { ...server, clientIdMetadataDocuments: false }, clientMetadataUrl: 'https://corp.example.com/gatehouse.json' }),
    ).toEqual({ kind: 'dynamic', endpoint: 'https://auth.example.com/reg' });
  });

  it('never reuses a registration with another authorization server', () => {
    expect(chooseRegistration({ server, stored: { issuer: 'https://other.example.com', clientId: 'dyn' } })).toEqual({
      kind: 'dynamic',
      endpoint: 'https://auth.example.com/reg',
    });
  });

  it('says what an administrator must do when the server offers no way to register', () => {
    const none = chooseRegistration({ server: { issuer: AS.issuer, clientIdMetadataDocuments: false } });
    expect(none).toMatchObject({ kind: 'none', reason: expect.stringMatching(/sets its id as oauth\.clientId/) });
  });

  it('registers as a native public client with a loopback redirect, and publishes the same as a metadata document', () => {
    expect(dynamicRegistrationMetadata('a b')).toMatchObject({
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'],
      scope: 'a b',
    });
    expect(clientMetadataDocument('https://corp.example.com/gh.json')).toMatchObject({
      client_id: 'https://corp.example.com/gh.json',
      application_type: 'native',
    });
    expect(parseRegistration({ client_id: 'x', client_secret: 's' })).toEqual({ clientId: 'x', clientSecret: 's' });
    expect(parseRegistration({ client_secret: 's' })).toBeUndefined();
  });
});

describe('scopes', () => {
  it("asks for the challenge's scope, else the resource metadata's, else none", () => {
    expect(scopeToRequest({ challenged: 'a', resourceScopes: ['b'] })).toBe('a');
    expect(scopeToRequest({ resourceScopes: ['b', 'c'] })).toBe('b c');
    expect(scopeToRequest({})).toBeUndefined();
  });

  it('adds configured scopes, and openid and offline_access when the authorization server lists them', () => {
    expect(scopeToRequest({ challenged: 'a', configured: ['x'], serverScopes: ['offline_access'] })).toBe('a x offline_access');
    expect(scopeToRequest({ challenged: 'a', serverScopes: ['profile', 'offline_access', 'openid'] })).toBe('a openid offline_access');
    expect(scopeToRequest({ serverScopes: ['offline_access'] })).toBeUndefined();
  });

  it('keeps every scope already granted on a step-up, and knows a refresh cannot widen the grant', () => {
    const wanted = scopeToRequest({ challenged: 'notes:write', granted: 'notes:read' });
    expect(wanted).toBe('notes:read notes:write');
    expect(needsMoreScope(wanted, 'notes:read')).toBe(true);
    expect(needsMoreScope('notes:read', 'notes:read notes:write')).toBe(false);
    expect(scopeUnion('a b', ['b', 'c'], undefined)).toBe('a b c');
  });
});

describe('renewal timing', () => {
  it('renews a fifth of the lifetime before expiry, within two seconds and five minutes', () => {
    expect(renewalMarginMs(0, 3600_000)).toBe(300_000);
    expect(renewalMarginMs(0, 60_000)).toBe(12_000);
    expect(renewalMarginMs(0, 4000)).toBe(2000);
    expect(renewalDue({ obtainedAt: 0, expiresAt: 60_000 }, 47_999)).toBe(false);
    expect(renewalDue({ obtainedAt: 0, expiresAt: 60_000 }, 48_000)).toBe(true);
    expect(expired({ expiresAt: 10 }, 10)).toBe(true);
  });

  it('assumes an hour when the token response does not say, and clamps nonsense', () => {
    expect(expiresAtFrom(undefined, 1000)).toBe(1000 + 3600_000);
    expect(expiresAtFrom(-5, 0)).toBe(1000);
    expect(expiresAtFrom(Number.NaN, 0)).toBe(3600_000);
  });
});

describe('stored tokens', () => {
  const tokens: UpstreamTokens = {
    server: 'notes',
    url: 'https://mcp.example.com/mcp',
    resource: 'https://mcp.example.com/mcp',
    issuer: AS.issuer,
    clientId: 'c',
    registration: 'dynamic',
    accessToken: new Redacted('at-1'),
    refreshToken: new Redacted('rt-1'),
    obtainedAt: 1,
    expiresAt: 2,
    scope: 'a',
    subject: 'alice',
    via: 'browser',
  };

  it('keeps one item per user, server and resource, apart from registrations', () => {
    expect(tokenItem('os:ann', 'notes', tokens.resource)).toMatch(/^upstream-oauth\/[0-9a-f]{32}$/);
    expect(tokenItem('os:ann', 'notes', tokens.resource)).not.toBe(tokenItem('os:bob', 'notes', tokens.resource));
    expect(tokenItem('os:ann', 'notes', tokens.resource)).not.toBe(tokenItem('os:ann', 'notes', 'https://other.example.com/mcp'));
    expect(clientItem(AS.issuer)).toMatch(/^upstream-client\//);
  });

  it('reads back what it wrote, and refuses an item written for another server', () => {
    const back = parseTokens(serializeTokens(tokens), { server: 'notes', url: tokens.url });
    expect(back.accessToken.unwrap()).toBe('at-1');
    expect(back.refreshToken?.unwrap()).toBe('rt-1');
    expect({ ...back, accessToken: undefined, refreshToken: undefined }).toEqual({ ...tokens, accessToken: undefined, refreshToken: undefined });
    expect(() => parseTokens(serializeTokens(tokens), { server: 'other', url: tokens.url })).toThrow(/sign in again with `gatehouse servers login other`/);
    expect(() => parseTokens(serializeTokens(tokens), { server: 'notes', url: 'https://moved.example.com/mcp' })).toThrow(/unreadable/);
    expect(() => parseTokens('{', { server: 'notes', url: tokens.url })).toThrow(/unreadable/);
  });

  it('prints as redacted wherever it is logged', () => {
    expect(JSON.stringify({ tokens })).not.toContain('at-1');
  });

  it('keeps only Bearer tokens from a token response, with the refresh token it had when none is sent', () => {
    const context = {
      server: 'notes',
      url: tokens.url,
      resource: tokens.resource,
      issuer: AS.issuer,
      clientId: 'c',
      registration: 'dynamic' as const,
      via: 'browser' as const,
      requested: 'a b',
      previousRefresh: new Redacted('old'),
      now: 100,
    };
    const fresh = tokensFrom({ access_token: 'x', token_type: 'bearer', expires_in: 60 }, context, expiresAtFrom);
    expect(fresh).toMatchObject({ expiresAt: 60_100, scope: 'a b', obtainedAt: 100 });
    expect(fresh.refreshToken?.unwrap()).toBe('old');
    expect(() => tokensFrom({ access_token: 'x', token_type: 'DPoP' }, context, expiresAtFrom)).toThrow(/Bearer tokens only/);
    expect(() => tokensFrom({ token_type: 'Bearer' }, context, expiresAtFrom)).toThrow(/without an access token/);
  });

  it('reads the subject from an ID token or a JWT access token, and nothing from an opaque one', () => {
    const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
    expect(subjectFrom({ id_token: jwt({ sub: 'alice' }), access_token: jwt({ sub: 'other' }) })).toBe('alice');
    expect(subjectFrom({ access_token: jwt({ sub: 'bob' }) })).toBe('bob');
    expect(subjectFrom({ access_token: 'opaque-token' })).toBeUndefined();
  });
});

describe('enterprise-managed authorization (ID-JAG)', () => {
  it('asks the IdP for an identity assertion grant addressed to the authorization server, for the resource', () => {
    const params = idJagRequest({
      idToken: 'id.tok.en',
      audience: AS.issuer,
      resource: 'https://mcp.example.com/mcp',
      scope: 'a',
      client: { clientId: 'gatehouse' },
    });
    expect(Object.fromEntries(params)).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      requested_token_type: 'urn:ietf:params:oauth:token-type:id-jag',
      audience: AS.issuer,
      resource: 'https://mcp.example.com/mcp',
      subject_token: 'id.tok.en',
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      scope: 'a',
      client_id: 'gatehouse',
    });
  });

  it('refuses an answer that is not an ID-JAG', () => {
    expect(parseIdJagResponse({ issued_token_type: 'urn:ietf:params:oauth:token-type:id-jag', access_token: 'a.b.c', expires_in: 300 })).toEqual({
      assertion: 'a.b.c',
      expiresIn: 300,
    });
    expect(() => parseIdJagResponse({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', access_token: 'a.b.c' })).toThrow(
      /not an identity assertion grant/,
    );
    expect(() => parseIdJagResponse({ issued_token_type: 'urn:ietf:params:oauth:token-type:id-jag', access_token: 'opaque' })).toThrow(/not a JWT/);
  });

  it('redeems the assertion with the JWT bearer grant', () => {
    expect(Object.fromEntries(jwtBearerRequest({ assertion: 'a.b.c', client: { clientId: 'gh', clientSecret: 's' } }))).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: 'a.b.c',
      client_id: 'gh',
      client_secret: 's',
    });
  });

  it('lets only the servers the managed settings name be reached this way', () => {
    const entries = [{ resource: 'https://mcp.corp.example.com', clientId: 'gh' }];
    expect(enterpriseEntryFor(entries, 'https://mcp.corp.example.com/notes')).toEqual(entries[0]);
    expect(enterpriseEntryFor(entries, 'https://mcp.corp.example.com.evil.test/notes')).toBeUndefined();
    expect(enterpriseEntryFor(entries, 'https://other.example.com/mcp')).toBeUndefined();
  });
});
