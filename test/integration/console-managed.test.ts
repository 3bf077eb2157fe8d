/**
 * The console under a managed policy, with single sign-on (desktop issue): a real OpenID provider
 * (`oidc-provider`), a signed policy bundle from the sample in resources/policy/, and the CRM
 * fixture server it approves. In Chromium: signing in through the provider's own pages, the claims
 * and roles that result, the Tools screen's per-role answers and pins, the Policy screen's bundle
 * and what changed when a new bundle arrives, and signing out.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { Screen } from '../support/screen.js';
import { CLIENT_ID, startProvider, type TestProvider } from '../support/oidc-provider.js';
import { SAMPLE_DIR, makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';
import { artifact, ensureConsoleBuilt, launchChromium, openSignedInConsole } from '../e2e/support.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually, makeHome } from './support/gatehouse.js';

let idp: TestProvider;
let root: TestKey;
let home: ReturnType<typeof makeHome>;
let managedDir: string;
let daemon: Daemon;
let browser: Browser;
let page: Page;
const logins: { url: string; code: string }[] = [];
const pageErrors: string[] = [];
/** The daemon's terminal, where questions reach the person. */
const screen = new Screen();
let agentToken: string;

const shot = (name: string) => page.screenshot({ path: artifact(name), fullPage: true });
const go = async (screen: string) => {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: screen, exact: true }).click();
  await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe(screen);
};
const put = (name: string, data: string | Buffer) => {
  writeFileSync(join(managedDir, `${name}.new`), data, { mode: 0o644 });
  renameSync(join(managedDir, `${name}.new`), join(managedDir, name));
};

beforeAll(async () => {
  ensureConsoleBuilt();
  idp = await startProvider();
  idp.groups.set('alice', ['crm-support']);
  root = await makeKey();
  home = makeHome('gh-console-managed-');
  managedDir = join(home.home, 'managed');
  mkdirSync(managedDir, { mode: 0o755 });
  put('root.pub', root.publicPem);
  put('policy.json', JSON.stringify({ trust: ['root.pub'], required: true }));
  put('policy.bundle', await signFiles(sampleFiles(), { version: 1, keys: [root] }));
  put('identity.json', JSON.stringify({ issuer: idp.issuer, clientId: CLIENT_ID, scopes: ['openid', 'offline_access', 'email', 'groups'] }));
  writeFileSync(home.paths.configFile, JSON.stringify({ servers: {}, listen: { http: { enabled: true, port: 0 } } }), { mode: 0o600 });
  agentToken = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('agent', { scope: { kind: 'all' }, via: 'http' });
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    managedDir,
    secrets: new MemorySecretStore(),
    logger: { log: () => undefined },
    human: { terminal: screen, notifier: { notify: () => false }, notice: { notify: () => undefined } },
    identity: { retry: { initialMs: 200, maxMs: 1000 }, trustManagedOwner: true },
    ui: { announce: (url, code) => (logins.push({ url, code }), true) },
  });
  await eventually(() => daemon.status().servers.find((s) => s.name === 'crm')?.state === 'ready', 30_000, "the catalog's CRM server");
  browser = await launchChromium();
  page = await openSignedInConsole(browser, logins[0]!, pageErrors);
}, 120_000);

afterAll(async () => {
  await closeAll();
  await browser?.close().catch(() => undefined);
  await daemon?.stop();
  await idp?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

describe('the console under a managed policy with single sign-on', () => {
  it('Identity: signs in at the identity provider in the browser, then shows the claims, roles and session expiry', async () => {
    await go('Identity');
    await page.getByText('signed-out', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Sign in' }).click();
    const link = page.getByRole('link', { name: 'Open the sign-in page' });
    await link.waitFor();
    const [provider] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
    // The provider's own login and consent pages, as the person would fill them.
    await provider.locator('input[name="login"]').fill('alice');
    await provider.locator('input[name="password"]').fill('any');
    await provider.locator('button[type="submit"]').click();
    await provider.getByRole('button', { name: /continue/i }).click();
    await provider.waitForURL(/127\.0\.0\.1:\d+\/callback/);
    await provider.close();
    await page.getByRole('status').getByText('Signed in.').waitFor({ timeout: 20_000 });
    await page.getByText('active', { exact: true }).waitFor();
    const claims = page.getByRole('region', { name: 'Claims and roles' });
    await claims.getByText('crm-support').waitFor();
    await claims.getByText('support', { exact: true }).waitFor();
    await page.getByText(/Session valid until/).waitFor();
    expect(daemon.status().identity).toMatchObject({ state: 'active', user: 'alice@example.test', groups: ['crm-support'] });
    await shot('21-identity-signed-in.png');
  });

  it("Tools: each tool's pin and which roles may use it, and why a tool is hidden from you", async () => {
    await go('Tools');
    await page.getByText(/with the roles support \(policy v1\)/).waitFor();
    const refund = page.getByRole('row', { name: /crm__refund/ });
    await refund.getByText('may call').waitFor();
    await refund.getByText('matches its pin').waitFor();
    expect(await refund.locator('td').nth(1).textContent()).toContain('support');
    const remove = page.getByRole('row', { name: /crm__delete_contact/ });
    await remove.getByText('hidden', { exact: true }).waitFor();
    await remove.getByText(/only-admins-delete/).waitFor();
    expect(await remove.locator('td').nth(1).textContent()).toContain('admin');
    await shot('22-tools-managed.png');
  });

  it('Policy: the signed bundle in force, its policies and roles, and what changed when a new one arrives', async () => {
    await go('Policy');
    const inForce = page.getByRole('region', { name: 'In force' });
    await inForce.getByText('v1', { exact: true }).waitFor();
    await inForce.getByText(root.public.kid).waitFor();
    await page
      .getByRole('row', { name: /support-refund-large/ })
      .getByText('approval by user, quota large-refunds-per-day')
      .waitFor();
    // The admins publish v2: one more policy, one more group mapped.
    const policies = readFileSync(join(SAMPLE_DIR, 'policies.cedar'), 'utf8');
    const roles = JSON.parse(readFileSync(join(SAMPLE_DIR, 'roles.json'), 'utf8')) as { groups: Record<string, string[]> };
    roles.groups.sales = ['analyst'];
    const v2 = sampleFiles({
      files: {
        'policies.cedar':
          `${policies}\n@id("support-search-anywhere")\n` +
          'permit (principal in Role::"support", action == Action::"call_tool", resource == Tool::"crm__search_contacts");\n',
        'roles.json': JSON.stringify(roles),
      },
    });
    put('policy.bundle', await signFiles(v2, { version: 2, keys: [root] }));
    await inForce.getByText('v2', { exact: true }).waitFor({ timeout: 20_000 });
    const changes = page.getByRole('region', { name: 'What changed from v1 to v2' });
    await changes.getByText('support-search-anywhere').waitFor();
    await changes.getByText('sales').waitFor();
    // The other policies of the file are the same statements: they are not reported as changed.
    expect(await changes.getByText('Policies changed').count()).toBe(0);
    await page.getByRole('region', { name: 'History' }).getByText('bundle v2 in force').waitFor();
    await shot('23-policy-changed.png');
  });

  it("Approvals: a call waiting for the person, answered on the human channel's page, then in the history", async () => {
    const agent = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: agentToken });
    // 9,000 EUR: above what support may refund alone, so the policy asks the user (support-refund-large).
    const waiting = agent.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-3', amount: 9000, currency: 'EUR' } }, { timeout: 60_000 });
    await go('Approvals');
    await page.getByText('Allow agent to call crm__refund?').waitFor({ timeout: 20_000 });
    await page.getByRole('navigation', { name: 'Sections' }).getByLabel('1 pending').waitFor();
    await shot('24-approvals-waiting.png');
    // The person answers where the question reached them: the terminal shows the page's address and code.
    const question = await screen.nextQuestion();
    expect(question.title).toBe('Allow agent to call crm__refund?');
    // In the browser, as a person would: the address, the code, the first answer offered, Approve.
    const human = await browser.newPage();
    await human.goto(question.url!);
    await human.getByLabel('Code').fill(question.pageCode!);
    await human.getByRole('button', { name: 'Show the question' }).click();
    await human.getByText('"amount": 9000', { exact: false }).waitFor();
    await human.screenshot({ path: artifact('27-question-page.png'), fullPage: true });
    await human.getByRole('button', { name: 'Approve' }).click();
    await human.getByText('Your answer was recorded.').waitFor();
    await human.close();
    expect(textOf(await waiting)).toBe('refunded 9000.00 EUR to Alan Turing');
    await page.getByText('Nothing waits for your answer.').waitFor({ timeout: 10_000 });
    await page.getByRole('region', { name: 'Answers given' }).getByText('approved once').waitFor();
    await shot('25-approvals-answered.png');
    await closeAll();
  });

  it('Identity: signs out, and the console says what the person must do', async () => {
    await go('Identity');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('dialog', { name: 'Sign out?' }).getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('signed-out', { exact: true }).waitFor({ timeout: 20_000 });
    await page
      .getByText(/you are not signed in/)
      .first()
      .waitFor();
    expect(daemon.status().identity?.state).toBe('signed-out');
    await shot('26-identity-signed-out.png');
    expect(pageErrors).toEqual([]);
  });
});
