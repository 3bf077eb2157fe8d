/**
 * Signing in with a real OpenID provider (oidc-provider 9 on 127.0.0.1), through the real flows:
 * authorization code + PKCE with the loopback redirect (the provider's login and consent pages
 * driven over HTTP, as a browser would), the device flow, refresh and revocation. Then every
 * check that must fail closed: a wrong issuer, audience or nonce, an expired ID token, a missing,
 * forged or replayed state, a code redeemed with the wrong PKCE verifier, a revoked refresh token,
 * and a provider that is down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/common/errors.js';
import { OidcClient, type LoginIo } from '../../src/node/identity/oidc.js';
import { IdentitySettingsSchema, type IdentitySettings } from '../../src/node/identity/settings.js';
import { CLIENT_ID, confirmDevice, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { startLyingIdp, type LyingIdp } from '../support/lying-idp.js';

let idp: TestProvider;
let liar: LyingIdp;

const settingsFor = (issuer: string, extra: Partial<IdentitySettings> = {}): IdentitySettings =>
  IdentitySettingsSchema.parse({
    issuer,
    clientId: CLIENT_ID,
    // As docs/identity.md shows it: offline_access, and no prompt of its own. oidc-provider grants offline_access (a refresh
    // token) only with explicit consent, which Gatehouse asks for (OpenID Connect Core §11).
    scopes: ['openid', 'offline_access', 'email', 'groups'],
    ...extra,
  });

/** A "browser" that signs in at the provider as `account` as soon as Gatehouse opens the authorization URL. */
function browserSigningIn(account = 'alice'): LoginIo & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    say: (line) => lines.push(line),
    openBrowser: async (url) => {
      void signIn(url, account).catch(() => undefined);
      return true;
    },
  };
}

async function failure(work: Promise<unknown>): Promise<GatehouseError> {
  try {
    await work;
  } catch (error) {
    if (error instanceof GatehouseError) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  idp = await startProvider();
  liar = await startLyingIdp(CLIENT_ID);
});
afterAll(async () => {
  await idp?.stop();
  await liar?.stop();
});

describe('sign-in with a real provider', () => {
  it('signs in with authorization code + PKCE through the loopback redirect, and maps the groups claim', async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer));
    const io = browserSigningIn('alice');
    const tokens = await client.loginWithBrowser(io, { timeoutMs: 20_000 });
    expect(tokens.user).toMatchObject({ sub: 'alice', displayName: 'alice@example.test', groups: ['engineering', 'sales'], id: `oidc:${idp.issuer}#alice` });
    expect(tokens.refreshToken).toBeDefined();
    expect(tokens.expiresAt).toBeGreaterThan(Date.now());
    // The redirect went to 127.0.0.1 on a port chosen for this sign-in.
    expect(io.lines.join('\n')).toMatch(/redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fcallback/);
    expect(io.lines.join('\n')).toMatch(/code_challenge_method=S256/);
    // Tokens print as [redacted] wherever they end up.
    expect(JSON.stringify(tokens)).not.toContain(tokens.accessToken.unwrap());
  });

  // Issue 12, finding 9: the documented settings worked only with a prompt the docs do not show.
  it('gets a refresh token with the documented settings from a provider that grants offline_access only with consent', async () => {
    const settings = settingsFor(idp.issuer);
    expect(settings.authorizationParams).toEqual({});
    const io = browserSigningIn('alice');
    const tokens = await (await OidcClient.discover(settings)).loginWithBrowser(io, { timeoutMs: 20_000 });
    expect(tokens.refreshToken).toBeDefined();
    expect(io.lines.join('\n')).toMatch(/[?&]prompt=consent(&|$)/m);
    // A prompt the settings choose is used as it is.
    const own = browserSigningIn('alice');
    await (
      await OidcClient.discover(settingsFor(idp.issuer, { authorizationParams: { prompt: 'login consent' } }))
    ).loginWithBrowser(own, { timeoutMs: 20_000 });
    expect(own.lines.join('\n')).toMatch(/[?&]prompt=login(\+|%20)consent/);
  });

  it('shows the truth in the browser tab: what this side kept, or why the sign-in failed here', async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer));
    const pages: Promise<{ body: string; status: number | undefined }>[] = [];
    const browser: LoginIo = { say: () => undefined, openBrowser: async (url) => (pages.push(signIn(url, 'alice')), true) };
    await client.loginWithBrowser(browser, { timeoutMs: 20_000, accept: async (t) => `Signed in to Gatehouse as ${t.user!.displayName}.` });
    expect(await pages[0]).toMatchObject({ status: 200, body: 'Signed in to Gatehouse as alice@example.test. You can close this tab.\n' });
    const failed = await failure(
      client.loginWithBrowser(browser, {
        timeoutMs: 20_000,
        accept: async () => {
          throw new GatehouseError('no_refresh_token', 'the identity provider returned no refresh token');
        },
      }),
    );
    expect(failed.code).toBe('no_refresh_token');
    const page = await pages[1]!;
    expect(page.status).toBe(400);
    expect(page.body).toMatch(/^Sign-in failed: the identity provider returned no refresh token\. Nothing was kept/);
    expect(page.body).not.toMatch(/Signed in/);
  });

  it('reads groups from the configured claim, and none when the claim is absent', async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer, { groupsClaim: 'roles' }));
    const tokens = await client.loginWithBrowser(browserSigningIn('alice'), { timeoutMs: 20_000 });
    expect(tokens.user?.groups).toEqual([]);
  });

  it('signs in with the device flow where no browser can open', async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer));
    expect(client.supportsDeviceFlow).toBe(true);
    const lines: string[] = [];
    const io: LoginIo = {
      openBrowser: async () => false,
      say: (line) => {
        lines.push(line);
        const m = /visit (\S+) and enter the code (\S+)/.exec(line);
        if (m) void confirmDevice(m[1]!, m[2]!, 'bob').catch(() => undefined);
      },
    };
    idp.groups.set('bob', ['support']);
    const tokens = await client.loginWithDevice(io);
    expect(tokens.user).toMatchObject({ sub: 'bob', groups: ['support'] });
    expect(lines[0]).toMatch(/^To sign in, visit http:\/\/127\.0\.0\.1:\d+\/device and enter the code /);
  });

  it('refreshes (rotating the refresh token, picking up changed groups) and refuses a revoked refresh token', async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer));
    idp.groups.set('carol', ['engineering']);
    const first = await client.loginWithBrowser(browserSigningIn('carol'), { timeoutMs: 20_000 });
    idp.groups.set('carol', ['engineering', 'finance']);
    const second = await client.refresh(first.refreshToken!, 'carol');
    expect(second.user?.groups).toEqual(['engineering', 'finance']);
    expect(second.refreshToken!.unwrap()).not.toBe(first.refreshToken!.unwrap());
    // The rotated-away token no longer works.
    expect((await failure(client.refresh(first.refreshToken!, 'carol'))).code).toBe('oidc_invalid_grant');
    // Revocation (sign-out) makes the current one useless too.
    const third = await client.refresh(second.refreshToken!, 'carol').catch(() => undefined);
    const live = third?.refreshToken ?? second.refreshToken!;
    expect(await client.revoke(live, 'refresh_token')).toBe(true);
    const revoked = await failure(client.refresh(live, 'carol'));
    expect(revoked.code).toBe('oidc_invalid_grant');
    expect(revoked.message).toMatch(/invalid, expired or revoked/);
  });

  it('offers the provider end-session page for RP-initiated logout', async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer));
    const url = client.endSessionUrl(undefined);
    expect(url?.href).toMatch(new RegExp(`^${idp.issuer}/session/end\\?client_id=${CLIENT_ID}`));
  });
});

describe('sign-in failures fail closed with a precise error', () => {
  it('refuses a discovery document that names another issuer', async () => {
    const error = await failure(OidcClient.discover(settingsFor(idp.issuer.replace('127.0.0.1', 'localhost'))));
    expect(error.code).toBe('oidc_wrong_issuer');
  });

  it('says the provider cannot be reached when it is down', async () => {
    const error = await failure(OidcClient.discover(settingsFor('http://127.0.0.1:9')));
    expect(error.code).toBe('idp_unreachable');
    expect(error.message).toMatch(/^cannot reach the identity provider at http:\/\/127\.0\.0\.1:9/);
  });

  it("refuses a response without state, with another sign-in's state, and a replayed one", async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer));
    const deliver = (transform: (callback: URL) => URL[]) => ({
      say: () => undefined,
      openBrowser: async (url: string) => {
        const redirect = new URL(new URL(url).searchParams.get('redirect_uri')!);
        const state = new URL(url).searchParams.get('state')!;
        const callback = new URL(redirect);
        callback.searchParams.set('code', 'whatever');
        callback.searchParams.set('state', state);
        void (async () => {
          for (const target of transform(callback)) await fetch(target).catch(() => undefined);
        })();
        return true;
      },
    });
    const missing = await failure(client.loginWithBrowser(deliver((c) => [(c.searchParams.delete('state'), c)])));
    expect(missing.code).toBe('oidc_state_missing');
    const forged = await failure(client.loginWithBrowser(deliver((c) => [(c.searchParams.set('state', 'someone-elses'), c)])));
    expect(forged.code).toBe('oidc_state_mismatch');

    // A real response delivered twice: the first is used, the second is refused by the loopback server.
    let second: Response | undefined;
    const io: LoginIo = {
      say: () => undefined,
      openBrowser: async (url) => {
        void (async () => {
          const page = await signIn(url, 'alice', (u) => u.includes('/callback?'));
          await fetch(page.url);
          second = await fetch(page.url).catch(() => undefined);
        })();
        return true;
      },
    };
    const tokens = await client.loginWithBrowser(io, { timeoutMs: 20_000 });
    expect(tokens.user?.sub).toBe('alice');
    // Either refused as used, or the server is already gone: never a second sign-in.
    if (second) expect(second.status).toBe(400);
  });

  it("refuses a code redeemed with another sign-in's PKCE verifier (an intercepted code)", async () => {
    const client = await OidcClient.discover(settingsFor(idp.issuer));
    // Sign-in A gets as far as a code, which an attacker intercepts instead of A's loopback server.
    let stolen = '';
    const a = client.loginWithBrowser(
      {
        say: () => undefined,
        openBrowser: async (url) => {
          void signIn(url, 'alice', (u) => u.includes('/callback?')).then((page) => (stolen = new URL(page.url).searchParams.get('code') ?? ''));
          return true;
        },
      },
      { timeoutMs: 3000 },
    );
    await expect(a).rejects.toThrow(/no sign-in response/);
    expect(stolen).not.toBe('');
    // The attacker injects it into sign-in B (with B's state): the provider refuses it, B's verifier does not match.
    const b = await failure(
      client.loginWithBrowser({
        say: () => undefined,
        openBrowser: async (url) => {
          const u = new URL(url);
          const callback = new URL(u.searchParams.get('redirect_uri')!);
          callback.searchParams.set('code', stolen);
          callback.searchParams.set('state', u.searchParams.get('state')!);
          callback.searchParams.set('iss', idp.issuer);
          void fetch(callback).catch(() => undefined);
          return true;
        },
      }),
    );
    expect(b.code).toBe('oidc_code_rejected');
    expect(b.message).toMatch(/PKCE verification/);
  });

  /** Runs the loopback flow against the lying provider, whose ID token carries `claims`. */
  async function lie(claims: (nonce: string | undefined) => Record<string, unknown>): Promise<GatehouseError> {
    liar.idTokenClaims = claims;
    const client = await OidcClient.discover(settingsFor(liar.issuer, { clockToleranceSeconds: 5 }));
    return failure(
      client.loginWithBrowser({
        say: () => undefined,
        openBrowser: async (url) => {
          void fetch(url, { redirect: 'follow' }).catch(() => undefined);
          return true;
        },
      }),
    );
  }

  it('refuses an ID token issued for another client (audience)', async () => {
    expect((await lie(() => ({ aud: 'another-app' }))).code).toBe('oidc_wrong_audience');
  });

  it("refuses an ID token whose nonce is not this sign-in's", async () => {
    expect((await lie(() => ({ nonce: 'replayed-from-elsewhere' }))).code).toBe('oidc_nonce_mismatch');
  });

  it('refuses an expired ID token, beyond the clock tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await lie(() => ({ iat: now - 600, exp: now - 60 }))).code).toBe('oidc_token_expired');
  });

  it('refuses an ID token from another issuer', async () => {
    expect((await lie(() => ({ iss: 'https://evil.example' }))).code).toBe('oidc_wrong_issuer');
  });

  it("accepts the lying provider's honest token, so the refusals above are the checks at work", async () => {
    liar.idTokenClaims = () => ({});
    const client = await OidcClient.discover(settingsFor(liar.issuer));
    const tokens = await client.loginWithBrowser({ say: () => undefined, openBrowser: async (url) => (void fetch(url).catch(() => undefined), true) });
    expect(tokens.user).toMatchObject({ sub: 'mallory', groups: ['admins'] });
  });
});
