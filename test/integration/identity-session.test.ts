/**
 * The signed-in user in the call chain, against a real OpenID provider: `gatehouse login` (run
 * in-process, its browser driven over HTTP) stores the refresh token in the keychain and the
 * running daemon picks it up; every call then names that user and their groups. A session that
 * cannot be renewed (the provider revoked it, or is down past the access token's expiry) blocks
 * calls with a "sign in again" error and a notification, and resumes, on the same MCP session
 * with nothing restarted, once the user signs in again or the provider answers again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { loginCommand } from '../../src/cli/login.js';
import { sessionItem } from '../../src/node/identity/token-store.js';
import { CLIENT_ID, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { CANARY_SERVER, startIdentityHome, type IdentityHome } from '../support/identity-home.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually } from './support/gatehouse.js';

let idp: TestProvider;
let gh: IdentityHome;
let token: string;

async function login(account: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = {
    env: {},
    out: (t: string) => void (out += t),
    err: (t: string) => {
      err += t;
      const url = /https?:\/\/\S+\/auth\?\S+/.exec(t)?.[0];
      if (url) void signIn(url, account).catch(() => undefined);
    },
  };
  const code = await loginCommand('login', ['--no-browser'], io, gh.paths, gh.keychain);
  return { code, out, err };
}

async function call(client: Awaited<ReturnType<typeof connectHttp>>['client']): Promise<string> {
  try {
    return textOf(await client.callTool({ name: 'canary__echo', arguments: { message: 'hello' } }));
  } catch (error) {
    return `refused: ${(error as Error).message}`;
  }
}

beforeAll(async () => {
  idp = await startProvider({ accessTokenSeconds: 4 });
  gh = await startIdentityHome({
    servers: { canary: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER] } },
    clients: { ide: {} },
    identity: { issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'offline_access', 'email', 'groups'], refreshMarginSeconds: 1 },
  });
  token = gh.tokens.ide!;
  await eventually(() => gh.daemon.status().servers[0]?.state === 'ready', 20_000, 'the canary server');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  await idp?.stop();
});
afterEach(closeAll);

const identity = (): NonNullable<DaemonStatus['identity']> => gh.daemon.status().identity!;

describe('the signed-in user in the chain', () => {
  it('refuses calls until the user signs in, then names the user and their groups in every call', async () => {
    expect(identity()).toMatchObject({ mode: 'oidc', state: 'signed-out', settingsSource: 'user' });
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    expect(await call(client)).toMatch(/^refused: .*you are not signed in to http:\/\/127\.0\.0\.1:\d+; sign in again with `gatehouse login`/);

    const result = await login('alice');
    expect(result).toMatchObject({ code: 0, out: 'signed in as alice@example.test (groups: engineering, sales)\n' });
    // The daemon was told; the same session's next call goes through, as alice.
    expect(identity()).toMatchObject({ state: 'active', user: 'alice@example.test', groups: ['engineering', 'sales'] });
    expect(await call(client)).toBe('hello');
    expect(gh.daemon.status().user).toBe('alice@example.test');

    // The refresh token is in the keychain, under the provider's item; nothing else holds it.
    expect(await gh.keychain.list()).toContain(sessionItem(idp.issuer, CLIENT_ID));
    expect(gh.logs.join('\n')).toContain('"identity.renewed"');
  });

  it('renews the access token before it expires, picking up changed groups, without interrupting calls', async () => {
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    const before = identity().accessTokenExpiresAt!;
    idp.groups.set('alice', ['engineering', 'sales', 'finance']);
    await eventually(() => identity().accessTokenExpiresAt !== before, 10_000, 'a renewal');
    expect(identity()).toMatchObject({ state: 'active', groups: ['engineering', 'finance', 'sales'] });
    expect(await call(client)).toBe('hello');
  });

  it('blocks calls with "sign in again" and a notification when the provider revokes the session, and resumes after signing in again', async () => {
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    expect(await call(client)).toBe('hello');
    await idp.revokeGrantsOf('alice');
    await eventually(() => identity().state === 'expired', 10_000, 'the session to expire');
    expect(await call(client)).toMatch(
      /^refused: .*your sign-in has expired: the identity provider refused the stored sign-in .*; sign in again with `gatehouse login`/,
    );
    expect(gh.notifications.join('\n')).toMatch(/Gatehouse: sign in again/);
    // The useless refresh token is gone from the keychain.
    expect(await gh.keychain.list()).not.toContain(sessionItem(idp.issuer, CLIENT_ID));

    expect((await login('alice')).code).toBe(0);
    expect(await call(client)).toBe('hello');
    expect(gh.daemon.status().servers[0]).toMatchObject({ state: 'ready', restarts: 0 });
  });

  it('holds the session while the provider is down until the access token expires, then blocks, then resumes when it answers again', async () => {
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    await idp.pause();
    try {
      await eventually(() => identity().state === 'expired', 15_000, 'the access token to run out');
      // Whichever notices the expiry first words it: a call (the token "expired at … and could not be renewed") or
      // the renewal's retry (the provider "could not be reached to renew it"). Both name the provider and the fix.
      expect(await call(client)).toMatch(
        new RegExp(
          '^refused: .*your sign-in has expired: .*(could not be renewed|could not be reached to renew it) ' +
            '\\(cannot reach the identity provider at http://127\\.0\\.0\\.1:\\d+: .*ECONNREFUSED.*; sign in again with `gatehouse login`',
        ),
      );
    } finally {
      await idp.resume();
    }
    await eventually(() => identity().state === 'active', 15_000, 'the session to resume');
    expect(await call(client)).toBe('hello');
  });

  it('signs out: revokes at the provider, forgets the refresh token, and blocks calls', async () => {
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    let out = '';
    const code = await loginCommand('logout', ['--no-browser'], { env: {}, out: (t) => void (out += t), err: () => undefined }, gh.paths, gh.keychain);
    expect(code).toBe(0);
    expect(out).toBe('signed out (the provider revoked the session)\n');
    expect(identity().state).toBe('signed-out');
    expect(await gh.keychain.list()).not.toContain(sessionItem(idp.issuer, CLIENT_ID));
    expect(await call(client)).toMatch(/you are not signed in/);
  });
});
