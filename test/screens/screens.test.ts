/**
 * The console's screenshots in docs/screens/ (`npm run screens`; not part of `npm test`): every
 * screen, light and dark, at 1440×900, in Debian's Chromium against the real core with real MCP
 * servers, a real Secret Service and audit records made by real calls (a burst of 200, refusals of
 * a read-only client, a question waiting). The desktop app's question window and inbox are shown
 * through the same stand-in for its preload as test/integration/console-e2e.test.ts.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { ensureConsoleBuilt, launchChromium, signInToConsole } from '../e2e/support.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { Screen } from '../support/screen.js';
import { MEMORY } from '../support/servers.js';
import { closeAll, connectHttp } from '../integration/support/clients.js';
import { REPO, eventually, makeHome } from '../integration/support/gatehouse.js';
import { bridgeStandIn } from '../e2e/bridge-stand-in.js';

const OUT = join(REPO, 'docs', 'screens');
const CRM = join(REPO, 'test', 'fixtures', 'crm-server.mjs');
const VIEWPORT = { width: 1440, height: 900 };

let keyring: TestKeyring;
let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
let browser: Browser;
const logins: { url: string; code: string }[] = [];
const screen = new Screen();

beforeAll(async () => {
  ensureConsoleBuilt();
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed');
  keyring = await startKeyring();
  home = makeHome('gh-screens-');
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      servers: {
        memory: { type: 'stdio', command: process.execPath, args: [MEMORY()], env: { MEMORY_FILE_PATH: join(home.home, 'memory.json') } },
        crm: { type: 'stdio', command: process.execPath, args: [CRM], env: { CRM_TOKEN: '${secret:crm_token}' } },
      },
      approvals: { ask: ['crm__refund'] },
      listen: { http: { enabled: true, port: 0 } },
    }),
    { mode: 0o600 },
  );
  const registry = new ClientRegistry(join(home.paths.stateDir, 'clients.json'));
  const tokens = {
    claude: registry.add('claude-desktop', { scope: { kind: 'all' }, via: 'http' }),
    cursor: registry.add('cursor', { scope: { kind: 'read-only' }, via: 'http', expiresAt: new Date(Date.now() + 30 * 86_400_000) }),
  };
  const managedDir = join(home.home, 'no-managed-settings');
  mkdirSync(managedDir);
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    managedDir,
    logger: { log: () => undefined },
    human: { terminal: screen, notifier: { notify: () => false }, notice: { notify: () => undefined } },
    ui: { announce: (url, code) => (logins.push({ url, code }), true) },
  });
  await eventually(() => daemon.status().servers.find((s) => s.name === 'memory')?.state === 'ready', 30_000, 'the memory server');
  await daemon.console.call('secrets.set', { name: 'crm_token', value: 'crm-demo-token' });
  await eventually(() => daemon.status().servers.find((s) => s.name === 'crm')?.state === 'ready', 30_000, 'the CRM');
  const claude = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens.claude, shared: true });
  await claude.client.callTool({ name: 'memory__create_entities', arguments: { entities: [{ name: 'Gatehouse', entityType: 'project', observations: ['governs MCP calls'] }] } });
  for (let i = 0; i < 200; i++) await claude.client.callTool({ name: i % 4 === 0 ? 'crm__search_contacts' : 'memory__read_graph', arguments: i % 4 === 0 ? { query: 'a' } : {} });
  const cursor = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens.cursor, shared: true });
  for (let i = 0; i < 12; i++) await cursor.client.callTool({ name: 'memory__create_entities', arguments: { entities: [] } }).catch(() => undefined);
  // A question that waits: a refund the person asked to be asked about.
  void claude.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 120, currency: 'EUR' } }, { timeout: 600_000 }).catch(() => undefined);
  await screen.nextQuestion();
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await closeAll();
  await browser?.close().catch(() => undefined);
  await daemon?.stop();
  await keyring?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

const SCREENS = ['overview', 'approvals', 'servers', 'tools', 'audit', 'secrets', 'identity', 'policy', 'clients'] as const;

async function signIn(page: Page): Promise<void> {
  await daemon.console.call('status', {});
  const login = logins.shift() ?? (await (async () => {
    const { callControl } = await import('../../src/node/control/control-client.js');
    await callControl(home.paths.controlSocketPath, 'console.link', {});
    return logins.shift()!;
  })());
  await signInToConsole(page, login);
}

async function settle(page: Page, screenId: string): Promise<void> {
  if (screenId === 'overview') await page.locator('[data-chart="overview-calls"] canvas').first().waitFor();
  if (screenId === 'audit') {
    await page.locator('[data-chart="calls"] canvas').first().waitFor();
    await page.getByRole('region', { name: 'Audit events (scrollable)' }).locator('tbody tr').nth(3).click();
    await page.getByRole('heading', { name: /^Event \d+$/ }).waitFor();
    // The chart and the table with its details, rather than the filters above them.
    await page.evaluate(`[...document.querySelectorAll('h2')].find((h) => h.textContent === 'Calls over time')?.scrollIntoView({ block: 'start' })`);
  }
  if (screenId === 'servers') await page.getByRole('link', { name: 'crm', exact: true }).click();
  if (screenId === 'tools') await page.getByRole('row', { name: /crm__refund/ }).waitFor();
  if (screenId === 'clients') await page.getByRole('row', { name: /cursor/ }).first().waitFor();
  if (screenId === 'approvals') await page.getByText(/Allow claude-desktop to call crm__refund/).first().waitFor();
  await page.waitForTimeout(400);
}

function keep(file: string): void {
  const size = statSync(file).size;
  expect(size).toBeGreaterThan(20_000);
  expect(size).toBeLessThan(400_000);
}

describe('the screenshots in docs/screens', () => {
  for (const theme of ['light', 'dark'] as const) {
    it(`every screen, ${theme}, at 1440×900`, async () => {
      mkdirSync(OUT, { recursive: true });
      const context = await browser.newContext({ viewport: VIEWPORT, reducedMotion: 'reduce', colorScheme: theme });
      const page = await context.newPage();
      await page.addInitScript(`window.localStorage.setItem('gatehouse.theme', '${theme}')`);
      await signIn(page);
      for (const id of SCREENS) {
        await page.goto(new URL(`/#/${id}`, new URL(page.url()).origin).href);
        await page.getByRole('heading', { level: 1 }).waitFor();
        await settle(page, id);
        const file = join(OUT, `${id}-${theme}.png`);
        await page.screenshot({ path: file });
        keep(file);
      }
      // The desktop app's question window, through the stand-in for its preload.
      const popup = await context.newPage();
      await popup.addInitScript(bridgeStandIn(PAIRING));
      await popup.goto(new URL('/#/question', new URL(page.url()).origin).href);
      await popup.getByRole('heading', { level: 1, name: 'Pair the client "cursor"?' }).waitFor();
      await popup.setViewportSize({ width: 560, height: 640 });
      const file = join(OUT, `question-${theme}.png`);
      await popup.screenshot({ path: file });
      expect(statSync(file).size).toBeGreaterThan(10_000);
      await context.close();
    }, 180_000);
  }
});

const PAIRING = {
  id: 'q-pairing-0000001',
  askedAt: new Date().toISOString(),
  kind: 'pairing',
  title: 'Pair the client "cursor"?',
  facts: [
    { label: 'Client', value: 'cursor' },
    { label: 'Connects through', value: 'gatehouse connect (the local socket)' },
  ],
  code: 'QX7-42K',
  scope: { servers: [{ name: 'memory', tools: ['read_graph', 'create_entities'] }, { name: 'crm', tools: ['search_contacts', 'refund'] }], expiryDays: [30, 7, 1] },
  deadline: new Date(Date.now() + 120_000).toISOString(),
};
