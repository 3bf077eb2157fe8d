/**
 * SSO under a managed policy, end to end: the organisation's identity provider is named in the
 * managed location (beside the signed bundle), the user signs in there, and the bundle's role
 * mapping turns the ID token's group claim into roles. Before sign-in the OS user sees nothing; an
 * analyst then sees the analysts' tools; a client paired read-only sees the intersection of the
 * two (and a user's own identity.json cannot replace the organisation's provider).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/core/secrets.js';
import type { Logger } from '../../src/core/ports.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { OidcClient } from '../../src/node/identity/oidc.js';
import { IdentitySettingsSchema } from '../../src/node/identity/settings.js';
import { TokenStore } from '../../src/node/identity/token-store.js';
import { makeKey, sampleFiles, signFiles } from '../support/policy.js';
import { CLIENT_ID, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { closeAll, connectHttp } from './support/clients.js';
import { eventually, makeHome } from './support/gatehouse.js';

let idp: TestProvider;
let daemon: Daemon;
let home: ReturnType<typeof makeHome>;
const keychain = new MemorySecretStore();
let tokens: Record<string, string>;

beforeAll(async () => {
  idp = await startProvider();
  idp.groups.set('ann', ['crm-analysts']);
  home = makeHome('gh-sso-managed-');
  const managedDir = join(home.home, 'managed');
  mkdirSync(managedDir, { mode: 0o755 });
  const root = await makeKey();
  writeFileSync(join(managedDir, 'root.pub'), root.publicPem, { mode: 0o644 });
  writeFileSync(join(managedDir, 'policy.json'), JSON.stringify({ trust: ['root.pub'], required: true }), { mode: 0o644 });
  writeFileSync(join(managedDir, 'policy.bundle'), await signFiles(sampleFiles(), { version: 1, keys: [root] }), { mode: 0o644 });
  const identity = { issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'offline_access', 'email', 'groups'] };
  writeFileSync(join(managedDir, 'identity.json'), JSON.stringify(identity), { mode: 0o644 });
  // The user's own identity.json, naming a provider of their own: ignored on a managed device.
  writeFileSync(join(home.paths.configDir, 'identity.json'), JSON.stringify({ issuer: 'https://my-own-idp.example', clientId: 'mine' }));
  writeFileSync(home.paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } } }));
  const registry = new ClientRegistry(join(home.paths.stateDir, 'clients.json'));
  tokens = { ide: registry.add('ide'), briefing: registry.add('briefing', { scope: { kind: 'listed', servers: [], tools: ['crm__search_contacts'] } }) };
  const logger: Logger = { log: () => undefined };
  // Tests cannot make root own the files; the mode checks still apply.
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    logger,
    secrets: keychain,
    managedDir,
    identity: { trustManagedOwner: true },
    human: { terminal: null, notifier: { notify: () => false } },
  });
  await eventually(() => daemon.status().servers.some((s) => s.name === 'crm' && s.state === 'ready'), 20_000, 'the catalog CRM server');
});
afterAll(async () => {
  await closeAll();
  await daemon?.stop();
  await idp?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});
afterEach(closeAll);

const tools = async (token: string) => {
  const { client } = await connectHttp(daemon.httpUrl!, { era: 'legacy', token });
  return (await client.listTools()).tools.map((t) => t.name).sort();
};

describe('SSO under a managed policy', () => {
  it("uses the organisation's provider from the managed location, and refuses calls until the user signs in", async () => {
    expect(daemon.status().identity).toMatchObject({ mode: 'oidc', state: 'signed-out', issuer: idp.issuer, settingsSource: 'managed' });
    expect(await tools(tokens.ide!)).toEqual([]);
  });

  it("maps the signed-in user's groups to roles through the bundle: an analyst sees the analysts' tools", async () => {
    // What `gatehouse login` does: the browser flow, the refresh token into the keychain, then the daemon reloads.
    const settings = IdentitySettingsSchema.parse({ issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'offline_access', 'email', 'groups'] });
    const client = await OidcClient.discover(settings);
    const result = await client.loginWithBrowser({ say: () => undefined, openBrowser: async (url) => (void signIn(url, 'ann'), true) });
    await new TokenStore(keychain, idp.issuer, CLIENT_ID).save({ refreshToken: result.refreshToken!, sub: 'ann', displayName: result.user!.displayName });
    await callControl(home.paths.controlSocketPath, 'identity.reload', {});
    expect(daemon.status().identity).toMatchObject({ state: 'active', user: 'ann@example.test', groups: ['crm-analysts'] });
    expect(await tools(tokens.ide!)).toEqual(['crm__get_contact', 'crm__search_contacts']);
  });

  it("a client paired for one tool gets the intersection of its scope and the user's rights", async () => {
    expect(await tools(tokens.briefing!)).toEqual(['crm__search_contacts']);
  });
});
