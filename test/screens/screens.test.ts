/**
 * The console's screenshots in docs/screens/ (`npm run screens`; not part of `npm test`): every
 * screen, light and dark, at 1440×900, in Debian's Chromium against the real core with real MCP
 * servers, a real Secret Service and audit records made by real calls (a burst of 200, refusals of
 * a read-only client, a question waiting). The desktop app's question window and inbox are shown
 * through the same stand-in for its preload as test/integration/console-e2e.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_META_KEY } from '../../src/common/catalog.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { ensureConsoleBuilt, launchChromium, signInToConsole } from '../e2e/support.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { Screen } from '../support/screen.js';
import { MEMORY } from '../support/servers.js';
import { makeKey, sampleFiles, signFiles } from '../support/policy.js';
import { closeAll, connectHttp } from '../integration/support/clients.js';
import { REPO, eventually, makeHome } from '../integration/support/gatehouse.js';
import { bridgeStandIn, pairingQuestion } from '../e2e/bridge-stand-in.js';

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
  await claude.client.callTool({
    name: 'memory__create_entities',
    arguments: { entities: [{ name: 'Gatehouse', entityType: 'project', observations: ['governs MCP calls'] }] },
  });
  for (let i = 0; i < 200; i++)
    await claude.client.callTool({ name: i % 4 === 0 ? 'crm__search_contacts' : 'memory__read_graph', arguments: i % 4 === 0 ? { query: 'a' } : {} });
  const cursor = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens.cursor, shared: true });
  for (let i = 0; i < 12; i++) await cursor.client.callTool({ name: 'memory__create_entities', arguments: { entities: [] } }).catch(() => undefined);
  // A question that waits: a refund the person asked to be asked about.
  void claude.client
    .callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 120, currency: 'EUR' } }, { timeout: 600_000 })
    .catch(() => undefined);
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
  const login =
    logins.shift() ??
    (await (async () => {
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
  if (screenId === 'clients')
    await page
      .getByRole('row', { name: /cursor/ })
      .first()
      .waitFor();
  if (screenId === 'approvals')
    await page
      .getByText(/Allow claude-desktop to call crm__refund/)
      .first()
      .waitFor();
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

/**
 * The Catalog screen needs a signed catalogue, so it is shot against a second daemon under a managed
 * policy (keys made here, the sample bundle plus two catalogue entries) whose person's Cursor runs
 * a server of its own: the approved servers above, the shadow server below.
 */
describe('the Catalog screen in docs/screens', () => {
  let managed: Daemon;
  let managedHome: ReturnType<typeof makeHome>;
  const managedLogins: { url: string; code: string }[] = [];

  beforeAll(async () => {
    const root = await makeKey();
    const integrity = (seed: string) => `sha512-${createHash('sha512').update(seed).digest('base64')}`;
    const entry = (
      name: string,
      title: string,
      description: string,
      pkg: string,
      version: string,
      extra: Record<string, unknown>,
      tools: Record<string, { readOnly: boolean }>,
    ) => ({
      server: {
        name: `com.acme/${name}`,
        title,
        description,
        version,
        packages: [{ registryType: 'npm', registryBaseUrl: 'https://npm.acme.example', identifier: pkg, version, transport: { type: 'stdio' } }],
        _meta: { [CATALOG_META_KEY]: { publisher: 'Acme IT', integrity: { npm: integrity(pkg) }, ...extra } },
      },
      tools: Object.fromEntries(Object.entries(tools).map(([tool, t]) => [tool, { sha256: createHash('sha256').update(tool).digest('hex'), ...t }])),
    });
    const bundle = await signFiles(
      sampleFiles({
        catalog: (c) => {
          const servers = c.servers as Record<string, unknown>;
          servers['weather'] = entry(
            'weather',
            'Weather',
            'Forecasts and warnings for any city',
            '@acme/weather-mcp',
            '1.4.2',
            {
              secrets: [{ name: 'weather_key', description: 'Your key for the weather service' }],
              env: { WEATHER_API_KEY: '${secret:weather_key}' },
            },
            { forecast: { readOnly: true }, warnings: { readOnly: true } },
          );
          servers['tickets'] = entry(
            'tickets',
            'Tickets',
            'Read and update support tickets',
            '@acme/tickets-mcp',
            '2.0.1',
            {},
            { search_tickets: { readOnly: true }, update_ticket: { readOnly: false } },
          );
        },
      }),
      { version: 7, keys: [root] },
    );
    managedHome = makeHome('gh-screens-catalog-');
    const managedDir = join(managedHome.home, 'managed');
    mkdirSync(managedDir);
    writeFileSync(join(managedDir, 'root.pub'), root.publicPem);
    writeFileSync(join(managedDir, 'policy.json'), JSON.stringify({ trust: ['root.pub'], required: true }));
    writeFileSync(join(managedDir, 'policy.bundle'), bundle);
    mkdirSync(join(managedHome.home, '.cursor'));
    writeFileSync(
      join(managedHome.home, '.cursor', 'mcp.json'),
      JSON.stringify({
        mcpServers: {
          notes: { command: 'npx', args: ['-y', '@someone/notes-mcp', '--token', 'nt-0c1d2e3f4a5b6c7d8e9f'], env: { NOTES_DIR: '/home/ann/notes' } },
        },
      }),
    );
    writeFileSync(managedHome.paths.configFile, JSON.stringify({ servers: {}, listen: { http: { enabled: false, port: 0 } } }), { mode: 0o600 });
    managed = await startDaemon({
      paths: managedHome.paths,
      env: { ...managedHome.env, HOME: managedHome.home },
      managedDir,
      logger: { log: () => undefined },
      testIdentity: { user: 'ann', groups: ['crm-analysts'] },
      human: { terminal: null, notifier: { notify: () => false } },
      ui: { announce: (url, code) => (managedLogins.push({ url, code }), true) },
    });
  }, 60_000);

  afterAll(async () => {
    await managed?.stop();
    if (managedHome) rmSync(managedHome.home, { recursive: true, force: true });
  });

  for (const theme of ['light', 'dark'] as const) {
    it(`the Catalog screen, ${theme}, at 1440×900`, async () => {
      const context = await browser.newContext({ viewport: VIEWPORT, reducedMotion: 'reduce', colorScheme: theme });
      const page = await context.newPage();
      await page.addInitScript(`window.localStorage.setItem('gatehouse.theme', '${theme}')`);
      if (managedLogins.length === 0) await callControl(managedHome.paths.controlSocketPath, 'console.link', {});
      await signInToConsole(page, managedLogins.shift()!);
      await page.goto(new URL('/#/catalog', new URL(page.url()).origin).href);
      await page.getByRole('article', { name: 'Weather' }).waitFor();
      await page.getByRole('region', { name: 'Servers cursor runs itself' }).waitFor();
      await page.waitForTimeout(400);
      const file = join(OUT, `catalog-${theme}.png`);
      await page.screenshot({ path: file });
      keep(file);
      expect(await page.content()).not.toContain('nt-0c1d2e3f4a5b6c7d8e9f');
      await context.close();
    }, 60_000);
  }
});

const PAIRING = pairingQuestion([
  { name: 'memory', tools: ['read_graph', 'create_entities'] },
  { name: 'crm', tools: ['search_contacts', 'refund'] },
]);
