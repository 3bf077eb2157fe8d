/**
 * Managed mode as an employee meets it (issue 12, finding 9), with the sample bundle: a user who is
 * not signed in, or whose groups map to no role, is told so (the bridge's stderr, the `initialize`
 * instructions, every "unknown" answer) with the command to run, while hidden items stay
 * indistinguishable from unknown ones; `whoami` shows the roles; the pairing page offers only what
 * the user may see; a disconnected client's session quota leaves `gatehouse status`.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HumanQuestion } from '../../src/core/human/channel.js';
import type { HumanSurface } from '../../src/core/human/desk.js';
import type { Logger } from '../../src/core/ports.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { OidcClient } from '../../src/node/identity/oidc.js';
import { IdentitySettingsSchema } from '../../src/node/identity/settings.js';
import { TokenStore } from '../../src/node/identity/token-store.js';
import { makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';
import { CLIENT_ID, signIn, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { errorOf } from './support/approvals.js';
import { bridgeEnv, closeAll, connectBridge, runGatehouse, textOf } from './support/clients.js';
import { eventually, makeHome } from './support/gatehouse.js';

let root: TestKey;
let bundle: Buffer;
beforeAll(async () => {
  root = await makeKey();
  bundle = await signFiles(sampleFiles(), { version: 3, keys: [root] });
});
afterAll(closeAll);

/** A managed home (settings, the bundle, and an identity.json when given), with the clients registered. */
function managedHome(identity?: Record<string, unknown>): { home: ReturnType<typeof makeHome>; managedDir: string; tokens: Record<string, string> } {
  const home = makeHome('gh-newcomer-');
  const managedDir = join(home.home, 'managed');
  mkdirSync(managedDir, { mode: 0o755 });
  writeFileSync(join(managedDir, 'root.pub'), root.publicPem, { mode: 0o644 });
  writeFileSync(join(managedDir, 'policy.json'), JSON.stringify({ trust: ['root.pub'], required: true }), { mode: 0o644 });
  writeFileSync(join(managedDir, 'policy.bundle'), bundle, { mode: 0o644 });
  if (identity) writeFileSync(join(managedDir, 'identity.json'), JSON.stringify(identity), { mode: 0o644 });
  writeFileSync(home.paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } } }), { mode: 0o600 });
  const registry = new ClientRegistry(join(home.paths.stateDir, 'clients.json'));
  return { home, managedDir, tokens: { ide: registry.add('ide') } };
}

const quiet: Logger = { log: () => undefined };
const crmReady = (daemon: Daemon) =>
  eventually(() => daemon.status().servers.some((s) => s.name === 'crm' && s.state === 'ready'), 20_000, 'the catalog CRM server');

describe('an employee who has not signed in yet', () => {
  let idp: TestProvider;
  let daemon: Daemon;
  let setup: ReturnType<typeof managedHome>;
  const keychain = new MemorySecretStore();
  beforeAll(async () => {
    idp = await startProvider();
    idp.groups.set('ann', ['crm-analysts']);
    // identity.json exactly as docs/identity.md shows it.
    setup = managedHome({ issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'profile', 'email', 'offline_access', 'groups'] });
    const { home, managedDir } = setup;
    daemon = await startDaemon({
      paths: home.paths,
      env: home.env,
      logger: quiet,
      secrets: keychain,
      managedDir,
      identity: { trustManagedOwner: true },
      human: { terminal: null, notifier: { notify: () => false } },
    });
    await crmReady(daemon);
  });
  afterAll(async () => {
    await closeAll();
    await daemon?.stop();
    await idp?.stop();
    if (setup) rmSync(setup.home.home, { recursive: true, force: true });
  });

  it("is told in the bridge's stderr, the initialize instructions and every unknown answer that sign-in is needed, and how", async () => {
    const signInNeeded = `you are not signed in to ${idp.issuer}; sign in again with \`gatehouse login\``;
    const bridge = await connectBridge(setup.home.env, { era: 'legacy', client: 'ide', token: setup.tokens.ide! });
    await eventually(() => bridge.stderr().includes(signInNeeded), 5000, "the notice on the bridge's stderr");
    expect(bridge.stderr()).toContain(`gatehouse connect: ${signInNeeded}`);
    expect(bridge.client.getInstructions()).toContain(signInNeeded);
    expect((await bridge.client.listTools()).tools).toEqual([]);
    // Every name gets the same answer, a real tool and a made-up one alike: the notice is about the caller, not the item.
    const real = await errorOf(bridge.client.callTool({ name: 'crm__search_contacts', arguments: { query: 'a' } }));
    const madeUp = await errorOf(bridge.client.callTool({ name: 'crm__made_up', arguments: {} }));
    expect(real.message).toBe(`Unknown tool: crm__search_contacts (${signInNeeded})`);
    expect(madeUp.message).toBe(real.message.replace('crm__search_contacts', 'crm__made_up'));
  });

  it('is served at once after signing in, and `whoami` shows the roles the bundle gives their groups', async () => {
    const settings = IdentitySettingsSchema.parse({
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      scopes: ['openid', 'profile', 'email', 'offline_access', 'groups'],
    });
    const result = await (
      await OidcClient.discover(settings)
    ).loginWithBrowser({ say: () => undefined, openBrowser: async (url) => (void signIn(url, 'ann'), true) });
    await new TokenStore(keychain, idp.issuer, CLIENT_ID).save({ refreshToken: result.refreshToken!, sub: 'ann', displayName: result.user!.displayName });
    await callControl(setup.home.paths.controlSocketPath, 'identity.reload', {});
    const whoami = await runGatehouse(['whoami'], bridgeEnv(setup.home.env));
    expect(whoami.code).toBe(0);
    expect(whoami.stdout).toContain('groups: crm-analysts\nroles: analyst\n');
    const bridge = await connectBridge(setup.home.env, { era: 'legacy', client: 'ide', token: setup.tokens.ide! });
    expect(bridge.client.getInstructions()).toBeUndefined();
    expect(textOf(await bridge.client.callTool({ name: 'crm__search_contacts', arguments: { query: 'ada' } }))).toContain('Ada Lovelace');
  });
});

/** The person, scripted: sees every question, keeps it and declines it. */
class DecliningPerson implements HumanSurface {
  readonly name = 'test' as const;
  readonly asked: HumanQuestion[] = [];
  show(entry: Parameters<HumanSurface['show']>[0], respond: Parameters<HumanSurface['show']>[1]): boolean {
    this.asked.push(entry.question);
    queueMicrotask(() => respond({ decision: 'decline' }));
    return true;
  }
  withdraw(): void {}
}

describe('an employee whose groups map to no role', () => {
  it('is told so, with the command that shows their groups and roles', async () => {
    const setup = managedHome();
    const daemon = await startDaemon({
      paths: setup.home.paths,
      env: setup.home.env,
      logger: quiet,
      secrets: new MemorySecretStore(),
      managedDir: setup.managedDir,
      testIdentity: { user: 'eve@example.com', groups: ['marketing'] },
    });
    try {
      await crmReady(daemon);
      const bridge = await connectBridge(setup.home.env, { era: 'legacy', client: 'ide', token: setup.tokens.ide! });
      const notice =
        'your groups (marketing) map to no role in the managed policy (bundle v3), so it permits you nothing; ' +
        'ask your administrator for access (`gatehouse whoami` shows your groups and roles)';
      await eventually(() => bridge.stderr().includes(notice), 5000, "the notice on the bridge's stderr");
      expect(bridge.client.getInstructions()).toContain(notice);
      expect((await errorOf(bridge.client.callTool({ name: 'crm__refund', arguments: {} }))).message).toContain(
        `Unknown tool: crm__refund (you are signed in as eve@example.com (test identity), but ${notice})`,
      );
    } finally {
      await closeAll();
      await daemon.stop();
      rmSync(setup.home.home, { recursive: true, force: true });
    }
  });
});

describe('a support employee', () => {
  let daemon: Daemon;
  let setup: ReturnType<typeof managedHome>;
  const person = new DecliningPerson();
  beforeAll(async () => {
    setup = managedHome();
    daemon = await startDaemon({
      paths: setup.home.paths,
      env: setup.home.env,
      logger: quiet,
      secrets: new MemorySecretStore(),
      managedDir: setup.managedDir,
      testIdentity: { user: 'sam@example.com', groups: ['crm-support'] },
      human: { terminal: null, surfaces: [person], notice: { notify: () => undefined } },
    });
    await crmReady(daemon);
  });
  afterAll(async () => {
    await closeAll();
    await daemon?.stop();
    if (setup) rmSync(setup.home.home, { recursive: true, force: true });
  });

  it('is offered, when pairing a client, exactly the tools they may see: no delete_contact', async () => {
    // The bridge is welcomed at once while the person is asked (issue 11); the person declines.
    const run = await runGatehouse(['connect', '--client', 'new-agent'], bridgeEnv(setup.home.env));
    expect(run.stderr).toMatch(/"new-agent" is not paired yet|declined to pair "new-agent"/);
    await eventually(() => person.asked.length === 1 || undefined, 5000, 'the pairing question');
    expect(person.asked[0]!.scope!.servers).toEqual([{ name: 'crm', tools: ['search_contacts', 'get_contact', 'refund'] }]);
  });

  it("sees a session's quota in status while its client is connected, and no longer once it has gone", async () => {
    const bridge = await connectBridge(setup.home.env, { era: 'legacy', client: 'ide', token: setup.tokens.ide! });
    expect(textOf(await bridge.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 5, currency: 'EUR' } }))).toContain(
      'refunded 5.00 EUR',
    );
    const sessionRows = () => daemon.status().quotas!.quotas.find((q) => q.id === 'writes-per-session')!.usage;
    expect(sessionRows()).toEqual([expect.objectContaining({ scope: expect.stringMatching(/^session of client ide since /), used: 1 })]);
    await bridge.close();
    await eventually(() => sessionRows().length === 0, 5000, 'the closed session to leave status');
  });
});
