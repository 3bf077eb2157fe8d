/**
 * The daemon's sign-in session, with a stand-in provider and keychain: what the identity stage
 * answers when the keychain is locked or absent, when nobody is signed in, and when the provider
 * ends the session. (Against a real provider: test/integration/identity-session.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/common/errors.js';
import { MemorySecretStore, Redacted, type SecretStore } from '../../src/core/secrets.js';
import type { OidcClient, TokenSet } from '../../src/node/identity/oidc.js';
import { UserSession } from '../../src/node/identity/session.js';
import { IdentitySettingsSchema } from '../../src/node/identity/settings.js';
import { TokenStore, sessionItem } from '../../src/node/identity/token-store.js';

const settings = IdentitySettingsSchema.parse({ issuer: 'https://idp.example', clientId: 'gatehouse' });
const quiet = { log: () => undefined };

function session(store: SecretStore, refresh: () => Promise<TokenSet>, notes: string[] = []): UserSession {
  const provider = { refresh } as unknown as OidcClient;
  return new UserSession({
    settings,
    source: 'user',
    store,
    logger: quiet,
    notifier: { notify: (t) => (notes.push(t), true) },
    connect: async () => provider,
    retry: { initialMs: 10, maxMs: 20 },
  });
}

const locked: SecretStore = {
  description: 'test keychain',
  get: async () => {
    throw new GatehouseError('keychain_unavailable', 'the keychain (test keychain) could not read: the collection is locked. Unlock it.');
  },
  set: async () => undefined,
  delete: async () => false,
  list: async () => [],
};

describe('UserSession', () => {
  it("refuses every call with the keychain's own reason when it is locked or absent", async () => {
    const s = session(locked, async () => {
      throw new Error('never asked');
    });
    await s.start();
    expect(s.status()).toMatchObject({ state: 'unavailable' });
    expect(s.admission()).toEqual({
      ok: false,
      code: 'unauthenticated',
      reason: 'your sign-in cannot be read: the keychain (test keychain) could not read: the collection is locked. Unlock it.',
    });
    expect(s.currentUser()).toBeUndefined();
  });

  it('refuses calls until someone signs in', async () => {
    const s = session(new MemorySecretStore(), async () => {
      throw new Error('never asked');
    });
    await s.start();
    expect(s.admission()).toMatchObject({ ok: false, reason: 'you are not signed in to https://idp.example; sign in again with `gatehouse login`' });
  });

  it('ends the session, forgets the token and notifies when the provider refuses the refresh token', async () => {
    const store = new MemorySecretStore();
    await new TokenStore(store, settings.issuer, settings.clientId).save({ refreshToken: new Redacted('rt-1'), sub: 'ann', displayName: 'Ann' });
    const notes: string[] = [];
    const s = session(
      store,
      async () => {
        throw new GatehouseError('oidc_invalid_grant', 'the identity provider refused the grant (invalid_grant): revoked');
      },
      notes,
    );
    await s.start();
    expect(s.status()).toMatchObject({ state: 'expired', user: 'Ann' });
    expect(s.admission()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^your sign-in has expired: the identity provider refused the stored sign-in .*; sign in again with `gatehouse login`$/),
    });
    expect(notes).toEqual(['Gatehouse: sign in again']);
    await new Promise((r) => setTimeout(r, 10));
    expect(await store.list()).not.toContain(sessionItem(settings.issuer, settings.clientId));
    // Until a fresh ID token says otherwise, the user is named but holds no groups.
    expect(s.currentUser()).toMatchObject({ id: 'oidc:https://idp.example#ann', groups: [] });
    s.stop();
  });

  it('becomes active with the groups of the fresh ID token, and keeps the rotated refresh token in the keychain', async () => {
    const store = new MemorySecretStore();
    await new TokenStore(store, settings.issuer, settings.clientId).save({ refreshToken: new Redacted('rt-1'), sub: 'ann', displayName: 'Ann' });
    const s = session(store, async () => ({
      accessToken: new Redacted('at'),
      refreshToken: new Redacted('rt-2'),
      idToken: undefined,
      expiresAt: Date.now() + 3_600_000,
      user: { id: 'oidc:https://idp.example#ann', sub: 'ann', issuer: 'https://idp.example', displayName: 'ann@example.com', groups: ['sales'] },
    }));
    await s.start();
    expect(s.admission()).toEqual({ ok: true });
    expect(s.currentUser()).toMatchObject({ displayName: 'ann@example.com', groups: ['sales'], source: 'oidc' });
    expect((await new TokenStore(store, settings.issuer, settings.clientId).load())?.refreshToken.unwrap()).toBe('rt-2');
    expect(JSON.stringify(s.status())).not.toContain('rt-2');
    s.stop();
  });
});
