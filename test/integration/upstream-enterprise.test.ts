/**
 * Enterprise-managed authorization (ID-JAG): where the organisation's identity provider and a
 * remote server's authorization server trust each other, Gatehouse exchanges the user's SSO
 * identity for the server's token, with no sign-in page for that server. Real parts: two
 * `oidc-provider` instances, the organisation's IdP with a token-exchange grant that issues identity
 * assertion grants (signed with the IdP's own key), and the server's authorization server with a JWT
 * bearer grant that accepts them; the SDK v2 resource server of the sign-in tests. Only the managed
 * identity settings may name the servers reached this way.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/core/secrets.js';
import type { Logger } from '../../src/core/ports.js';
import { ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT } from '../../src/core/upstream-auth/id-jag.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { OidcClient } from '../../src/node/identity/oidc.js';
import { IdentitySettingsSchema } from '../../src/node/identity/settings.js';
import { TokenStore } from '../../src/node/identity/token-store.js';
import { CLIENT_ID, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { startAuthorizationServer, startProtectedServer, type AuthorizationServer, type ProtectedServer } from '../support/oauth-upstream.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually, makeHome } from './support/gatehouse.js';

/** Gatehouse's client at the server's authorization server, which the ID-JAG names. */
const AS_CLIENT = 'gatehouse-notes';

let idp: TestProvider;
let as: AuthorizationServer;
let rs: ProtectedServer;
let exchanges = 0;

beforeAll(async () => {
  // The IdP's own signing key (RS256, what it signs ID tokens with); the test signs the ID-JAGs it issues with it too.
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
  idp = await startProvider({ jwks: { keys: [jwk as Record<string, unknown>] }, clientGrantTypes: [TOKEN_EXCHANGE_GRANT] });
  const idpKeys = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
  // The IdP's token exchange (RFC 8693): the user's ID token, issued to this client, for an ID-JAG addressed to one authorization server.
  idp.provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx) => {
      exchanges++;
      const p = ctx.oidc.params as Record<string, string | undefined>;
      if (p.requested_token_type !== ID_JAG_TOKEN_TYPE || p.subject_token_type !== ID_TOKEN_TYPE) throw new Error('unsupported token types');
      const { payload } = await jwtVerify(p.subject_token ?? '', idpKeys, { issuer: idp.issuer, audience: ctx.oidc.client!.clientId });
      const now = Math.floor(Date.now() / 1000);
      const grant = await new SignJWT({ client_id: AS_CLIENT, resource: p.resource, ...(p.scope ? { scope: p.scope } : {}), jti: `jag-${now}-${exchanges}` })
        .setProtectedHeader({ alg: 'RS256', kid: 'idp-key-1', typ: 'oauth-id-jag+jwt' })
        .setIssuer(idp.issuer)
        .setSubject(String(payload.sub))
        .setAudience(String(p.audience))
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(privateKey);
      ctx.body = { access_token: grant, issued_token_type: ID_JAG_TOKEN_TYPE, token_type: 'N_A', expires_in: 300 };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope'],
  );
  as = await startAuthorizationServer({
    clients: [{ client_id: AS_CLIENT, token_endpoint_auth_method: 'none', grant_types: [JWT_BEARER_GRANT], response_types: [], redirect_uris: [] }],
    // The server's authorization server trusts the IdP: it checks the assertion's signature, type, audience and client.
    jwtBearer: {
      async verify(assertion, clientId, issuer) {
        const { payload, protectedHeader } = await jwtVerify(assertion, idpKeys, { issuer: idp.issuer, audience: issuer, typ: 'oauth-id-jag+jwt' });
        if (payload.client_id !== clientId) throw new Error(`the assertion names client ${String(payload.client_id)}`);
        if (protectedHeader.typ !== 'oauth-id-jag+jwt') throw new Error('not an ID-JAG');
        return { sub: String(payload.sub), resource: String(payload.resource), ...(typeof payload.scope === 'string' ? { scope: payload.scope } : {}) };
      },
    },
  });
  rs = await startProtectedServer(as);
});

afterAll(async () => {
  await closeAll();
  await rs?.stop();
  await as?.stop();
  await idp?.stop();
});

interface Desktop {
  daemon: Daemon;
  home: ReturnType<typeof makeHome>;
  keychain: MemorySecretStore;
  token: string;
  stop(): Promise<void>;
}

/** A desktop whose identity.json (managed, or the user's own) allows the exchange for the notes server. */
async function desktop(where: 'managed' | 'user'): Promise<Desktop> {
  const home = makeHome(`gh-idjag-${where}-`);
  const managedDir = join(home.home, 'managed');
  mkdirSync(managedDir, { mode: 0o755 });
  const identity = {
    issuer: idp.issuer,
    clientId: CLIENT_ID,
    scopes: ['openid', 'offline_access', 'email'],
    authorizationParams: { prompt: 'consent' },
    enterpriseAuthorization: { upstreams: [{ resource: rs.url, clientId: AS_CLIENT }] },
  };
  writeFileSync(join(where === 'managed' ? managedDir : home.paths.configDir, 'identity.json'), JSON.stringify(identity), { mode: 0o644 });
  writeFileSync(home.paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } }, servers: { notes: { type: 'http', url: rs.url } } }));
  const token = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('agent');
  const keychain = new MemorySecretStore();
  const logger: Logger = { log: (level, event, fields) => process.env.GH_DEBUG && console.error(level, event, JSON.stringify(fields)) };
  const daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    logger,
    secrets: keychain,
    managedDir,
    identity: { trustManagedOwner: true },
    human: { terminal: null, notifier: { notify: () => false } },
  });
  return {
    daemon,
    home,
    keychain,
    token,
    async stop() {
      await daemon.stop();
      rmSync(home.home, { recursive: true, force: true });
    },
  };
}

/** What `gatehouse login` does: the organisation's sign-in in the browser, kept in the key store, then the daemon reloads it. */
async function ssoSignIn(d: Desktop): Promise<void> {
  const settings = IdentitySettingsSchema.parse({
    issuer: idp.issuer,
    clientId: CLIENT_ID,
    scopes: ['openid', 'offline_access', 'email'],
    authorizationParams: { prompt: 'consent' },
  });
  const client = await OidcClient.discover(settings);
  const result = await client.loginWithBrowser({ say: () => undefined, openBrowser: async (url) => (void signIn(url, 'alice'), true) });
  await new TokenStore(d.keychain, idp.issuer, CLIENT_ID).save({ refreshToken: result.refreshToken!, sub: 'alice', displayName: result.user!.displayName });
  await callControl(d.home.paths.controlSocketPath, 'identity.reload', {});
}

const notes = (d: Desktop) => d.daemon.status().servers.find((s) => s.name === 'notes')!;

describe('enterprise-managed authorization (ID-JAG)', () => {
  it("exchanges the organisation's sign-in for the server's token, with no sign-in page for the server", async () => {
    const d = await desktop('managed');
    try {
      // Before the SSO sign-in there is no identity to exchange: the server waits.
      await eventually(() => notes(d).state === 'needs-sign-in', 20_000, 'notes to wait for a sign-in');
      await ssoSignIn(d);
      await eventually(() => notes(d).state === 'ready', 20_000, 'notes ready through the exchange');
      expect(notes(d).auth).toMatchObject({ state: 'signed-in', via: 'enterprise', subject: 'alice', issuer: as.issuer, registration: 'pre-registered' });
      expect(as.requests).not.toContain('/auth');
      expect(as.grants).toContain('jwt-bearer');

      const { client } = await connectHttp(d.daemon.httpUrl!, { era: 'modern', token: d.token });
      expect(textOf(await client.callTool({ name: 'notes__read_notes', arguments: {} }))).toBe('notes of alice: (none)');
      expect(rs.seen.at(-1)).toMatchObject({ subject: 'alice', audience: rs.url, clientId: AS_CLIENT });
      const audit = (await callControl(d.home.paths.controlSocketPath, 'audit.query', { type: 'upstream.signed_in' })) as { events: Record<string, unknown>[] };
      expect(audit.events).toEqual([
        expect.objectContaining({ server: 'notes', upstream: { issuer: as.issuer, subject: 'alice' }, detail: expect.objectContaining({ via: 'enterprise' }) }),
      ]);
    } finally {
      await d.stop();
    }
  });

  it('exchanges again when the token expires (an ID-JAG grant brings no refresh token)', async () => {
    as.setAccessTokenSeconds(3);
    const d = await desktop('managed');
    try {
      await ssoSignIn(d);
      await eventually(() => notes(d).state === 'ready', 20_000, 'notes ready');
      const before = exchanges;
      await new Promise((r) => setTimeout(r, 3500));
      const { client } = await connectHttp(d.daemon.httpUrl!, { era: 'modern', token: d.token });
      expect(textOf(await client.callTool({ name: 'notes__read_notes', arguments: {} }))).toBe('notes of alice: (none)');
      expect(exchanges).toBeGreaterThan(before);
    } finally {
      as.setAccessTokenSeconds(3600);
      await d.stop();
    }
  });

  it("ignores the same settings in the user's own identity.json: only the organisation decides which servers trust its sign-in", async () => {
    const d = await desktop('user');
    try {
      const before = exchanges;
      await ssoSignIn(d);
      await eventually(() => d.daemon.status().identity?.state === 'active', 10_000, 'the SSO session');
      await callControl(d.home.paths.controlSocketPath, 'servers.restart', { name: 'notes' });
      expect(notes(d).state).toBe('needs-sign-in');
      expect(exchanges).toBe(before);
    } finally {
      await d.stop();
    }
  });
});
