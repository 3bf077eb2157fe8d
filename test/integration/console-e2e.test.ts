/**
 * The console end to end (desktop issue): Debian's Chromium, driven by playwright-core, against
 * the real core started by the same composition root with `ui` (as `gatehouse daemon --ui`), with
 * real MCP servers from npm, a real Secret Service, and audit records made by real MCP calls.
 * Every screen is exercised: a server restarted, added with validation and removed, a secret set
 * (and its value never reaching the page), a client revoked, a client given the search view (with
 * its tool list's cost in tokens in each view), an audit filter applied and the chain
 * verified, the keyboard and the dark theme. Screenshots land in test-results/console/.
 * Last, the console in a real window on an X display (Xvfb), captured with `import -window root`.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { MEMORY } from '../support/servers.js';
import { artifact, ensureConsoleBuilt, launchChromium, openAppWindow, screenshotDisplay, startXvfb } from '../e2e/support.js';
import { Screen } from '../support/screen.js';
import { bridgeStandIn, pairingQuestion } from '../e2e/bridge-stand-in.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { REPO, eventually, makeHome } from './support/gatehouse.js';

const SECRET_VALUE = 'sk-console-canary-7f3a9e1c5b';
/** A stdio server that reports whether the variable holding its secret is set (never its value). */
const CANARY_SERVER = join(REPO, 'test', 'fixtures', 'canary-server.mjs');

let keyring: TestKeyring;
let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** The sign-in codes the daemon's terminal showed, with the address to type them at. */
const logins: { url: string; code: string }[] = [];
/** The daemon's terminal. */
const screen = new Screen();
const logs: string[] = [];
/** Every WebSocket frame the page received from Gatehouse. */
const frames: string[] = [];
const pageErrors: string[] = [];
let tokens: Record<string, string>;

/** The console's origin (its address without a path). */
const origin = () => new URL(logins[0]!.url).origin;
const shot = (name: string) => page.screenshot({ path: artifact(name), fullPage: true });
const go = async (screen: string) => {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: screen, exact: true }).click();
  await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe(screen);
};

beforeAll(async () => {
  ensureConsoleBuilt();
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  home = makeHome('gh-console-e2e-');
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      servers: {
        memory: {
          type: 'stdio',
          command: process.execPath,
          args: [MEMORY()],
          // In Gatehouse's data folder, the one folder of its own a server may be granted.
          env: { MEMORY_FILE_PATH: join(home.paths.dataDir, 'memory', 'memory.json') },
          sandbox: { write: [join(home.paths.dataDir, 'memory')] },
        },
        // Needs a secret that is not set yet: it cannot start until the Secrets screen sets it.
        canary: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER], env: { API_KEY: '${secret:canary_key}' } },
      },
      // The person asked to be asked before anything is deleted from the memory graph.
      approvals: { ask: ['memory__delete_*'] },
      listen: { http: { enabled: true, port: 0 } },
    }),
    { mode: 0o600 },
  );
  const registry = new ClientRegistry(join(home.paths.stateDir, 'clients.json'));
  tokens = {
    'claude-desktop': registry.add('claude-desktop', { scope: { kind: 'all' }, via: 'http' }),
    cursor: registry.add('cursor', { scope: { kind: 'read-only' }, via: 'http', expiresAt: new Date(Date.now() + 30 * 86_400_000) }),
  };
  const managedDir = join(home.home, 'no-managed-settings');
  mkdirSync(managedDir);
  daemon = await startDaemon({
    paths: home.paths,
    // A throwaway HOME: the Clients screen's Set up buttons write IDE configs there.
    env: { ...home.env, HOME: home.home },
    managedDir,
    logger: { log: (level, event, fields) => logs.push(JSON.stringify({ level, event, ...fields })) },
    human: { terminal: screen, notifier: { notify: () => false }, notice: { notify: () => undefined } },
    ui: { announce: (url, code) => (logins.push({ url, code }), true) },
  });
  await eventually(() => daemon.status().servers.find((s) => s.name === 'memory')?.state === 'ready', 30_000, 'the memory server');

  // Real calls, so that the audit log has real records: allowed ones, and refusals of a read-only client.
  const claude = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens['claude-desktop'] });
  await claude.client.callTool({
    name: 'memory__create_entities',
    arguments: { entities: [{ name: 'Gatehouse', entityType: 'project', observations: ['governs MCP calls'] }] },
  });
  for (let i = 0; i < 3; i++) expect(textOf(await claude.client.callTool({ name: 'memory__read_graph', arguments: {} }))).toContain('Gatehouse');
  const cursor = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens.cursor });
  for (let i = 0; i < 2; i++)
    await expect(cursor.client.callTool({ name: 'memory__create_entities', arguments: { entities: [] } })).rejects.toThrow(/Unknown tool/);
  await closeAll();

  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, reducedMotion: 'reduce' });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => message.type() === 'error' && pageErrors.push(message.text()));
  page.on('websocket', (ws) => ws.on('framereceived', (frame) => frames.push(String(frame.payload))));
}, 120_000);

afterAll(async () => {
  await closeAll();
  await context?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await daemon?.stop();
  await keyring?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

describe('the console, headless, in Chromium', () => {
  it("signs in with the code from the daemon's terminal and shows the Overview", async () => {
    expect(logins).toHaveLength(1);
    await page.goto(logins[0]!.url);
    await page.getByLabel('Code').fill(logins[0]!.code);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.url()).toMatch(/#\/overview$/);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Overview');
    await page.getByText('1 of 2 servers ready').waitFor();
    await page.getByText('Unmanaged', { exact: true }).waitFor();
    // The recent calls come from the audit log.
    await page.getByRole('cell', { name: 'memory__read_graph' }).first().waitFor();
    await shot('01-overview.png');
    // The code worked once: typed again, it is refused.
    const again = await context.request.post(logins[0]!.url, { form: { code: logins[0]!.code }, maxRedirects: 0, headers: { origin: origin() } });
    expect(again.status()).toBe(403);
  });

  it('Servers: restarts a server with progress, shows its live log and tools', async () => {
    await go('Servers');
    await page.getByRole('link', { name: 'memory', exact: true }).click();
    const detail = page.getByRole('region', { name: 'Server memory' });
    await detail.getByRole('button', { name: 'Restart' }).click();
    await page.getByRole('status').getByText('memory: ready').waitFor({ timeout: 30_000 });
    expect(daemon.status().servers.find((s) => s.name === 'memory')!.restarts).toBe(1);
    await expect.poll(() => detail.locator('dd').nth(1).textContent()).toBe('1');
    // Its confinement, in words: the mechanism, where it may write, and whether refused file calls reach the audit.
    const sandbox = (await detail.locator('dt', { hasText: 'Sandbox' }).locator('xpath=following-sibling::dd[1]').textContent()) ?? '';
    expect(sandbox).toMatch(/^bubblewrap \(config profile\); network none; writes .*memory; refused file calls audited$/);
    // The canary server says what it needs, and where to set it.
    await page.getByRole('link', { name: 'canary', exact: true }).click();
    await page.getByRole('region', { name: 'Server canary' }).getByRole('link', { name: 'Secrets' }).waitFor();
    await shot('02-servers.png');
    await page.getByRole('link', { name: 'memory', exact: true }).click();
    await page.getByRole('tab', { name: 'Tools' }).click();
    await page.getByRole('cell', { name: 'read_graph', exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Live log' }).click();
    await expect.poll(() => page.getByRole('region', { name: 'Log of memory' }).textContent()).toContain('[gatehouse]');
    await shot('03-server-log.png');
  });

  it('Servers: refuses an invalid new server field by field, adds a valid one, and removes it', async () => {
    await page.getByRole('button', { name: 'Add a server' }).click();
    const form = page.getByRole('form', { name: 'Add a server' });
    await form.getByLabel('Name').fill('Notes_Server');
    await form.getByLabel('Environment').fill('no equals sign');
    await form.getByRole('button', { name: 'Add the server' }).click();
    await form.getByText(/lower-case letters/).waitFor();
    await form.getByText('give the program to run (for example node or npx)').waitFor();
    await form.getByText(/line 1: write NAME=value/).waitFor();
    await form.getByRole('alert').getByText('3 fields need correcting: Name, Command, Environment.').waitFor();
    expect(await form.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
    await shot('04-server-form-errors.png');
    await form.getByLabel('Name').fill('notes');
    await form.getByLabel('Command').fill(process.execPath);
    await form.getByLabel('Arguments').fill(MEMORY());
    await form.getByLabel('Environment').fill(`MEMORY_FILE_PATH=${join(home.home, 'notes.json')}`);
    await form.getByRole('button', { name: 'Add the server' }).click();
    await expect.poll(() => page.url()).toMatch(/#\/servers\/notes$/);
    await eventually(() => daemon.status().servers.find((s) => s.name === 'notes')?.state === 'ready', 30_000, 'the added server');
    await page.getByRole('region', { name: 'Server notes' }).getByText('ready', { exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Configuration' }).click();
    await page.getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('dialog', { name: 'Remove notes?' }).getByRole('button', { name: 'Remove the server' }).click();
    await eventually(() => !daemon.status().servers.some((s) => s.name === 'notes'), 15_000, 'the server removed');
  });

  it('Tools: says who may see and call each tool', async () => {
    await go('Tools');
    const row = page.getByRole('row', { name: /memory__create_entities/ });
    await row.getByText('may call').waitFor();
    // The read-only client does not see a writing tool; the full-scope one does.
    await expect.poll(() => row.locator('td').nth(1).textContent()).toBe('claude-desktop');
    await page.getByRole('button', { name: 'memory__read_graph' }).click();
    await page.getByRole('region', { name: 'memory__read_graph' }).getByText('Definition hash').waitFor();
    await shot('05-tools.png');
  });

  it('Secrets: sets a missing secret, which starts the server that needs it, and the value never reaches the page', async () => {
    await go('Secrets');
    const row = page.getByRole('row', { name: /canary_key/ });
    await row.getByText('missing').waitFor();
    await row.getByRole('button', { name: 'Set canary_key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Set canary_key' });
    await dialog.getByLabel('Value').fill(SECRET_VALUE);
    await dialog.getByRole('button', { name: 'Store' }).click();
    await page
      .getByRole('status')
      .getByText(/canary_key stored in the keychain; restarted canary/)
      .waitFor({ timeout: 30_000 });
    await row.getByText('stored', { exact: true }).waitFor();
    await eventually(() => daemon.status().servers.find((s) => s.name === 'canary')?.state === 'ready', 30_000, 'the canary server');
    await shot('06-secrets.png');
    expect(frames.length).toBeGreaterThan(5);
    for (const frame of frames) expect(frame).not.toContain(SECRET_VALUE);
    expect(await page.content()).not.toContain(SECRET_VALUE);
    // The server got it: its own tool reports the variable is set (never its value).
    const claude = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens['claude-desktop'] });
    expect(textOf(await claude.client.callTool({ name: 'canary__has_secret', arguments: {} }))).toContain(`set=true length=${SECRET_VALUE.length}`);
    await closeAll();
  });

  it('Clients: revokes a client, which loses access at once, and gives each IDE its snippet', async () => {
    await go('Clients');
    const paired = page.getByRole('table', { name: 'Paired clients' });
    await paired
      .getByRole('row', { name: /cursor/ })
      .getByText('read-only')
      .waitFor();
    await page.getByRole('button', { name: 'Revoke cursor' }).click();
    await page.getByRole('dialog', { name: 'Revoke cursor?' }).getByRole('button', { name: 'Revoke the client' }).click();
    await page.getByRole('status').getByText('cursor revoked').waitFor();
    await expect.poll(() => paired.getByRole('row', { name: /cursor/ }).count()).toBe(0);
    await expect(connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens.cursor })).rejects.toThrow();
    // Snippets: the tabs work by keyboard.
    await page.getByRole('tab', { name: 'Claude Desktop' }).focus();
    await page.keyboard.press('End');
    await expect.poll(() => page.getByRole('tab', { name: 'VS Code' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByLabel('VS Code configuration').textContent()).toContain('"type": "stdio"');
    expect(await page.getByLabel('VS Code configuration').textContent()).toContain(JSON.stringify(process.execPath));
    // Set up: the button writes Zed's own settings file and checks it: the bridge connects at once, and the person is asked to pair it.
    const zed = page.getByRole('row', { name: /^Zed/ });
    await zed.getByRole('button', { name: 'Set up' }).click();
    await zed
      .getByRole('status')
      .getByText(/Written\. Checked: it connected in \d+ ms; pair it when Gatehouse asks\./)
      .waitFor();
    const pairing = await screen.nextQuestion();
    expect(pairing.title).toBe('Pair the client "zed"?');
    // Not now: the person declines at the terminal.
    screen.type('d');
    await expect.poll(() => daemon.status().pendingQuestions).toBe(0);
    const settings = readFileSync(join(home.home, '.config', 'zed', 'settings.json'), 'utf8');
    expect(JSON.parse(settings).context_servers.gatehouse).toMatchObject({
      command: process.execPath,
      args: [expect.stringMatching(/bin\/gatehouse\.js$/), 'connect', '--client', 'zed'],
    });
    await shot('07-clients.png');
  });

  it("Clients: shows what each client's tool list costs in each view, and gives a client the search view (issue 19)", async () => {
    await go('Clients');
    const row = page.getByRole('row', { name: /claude-desktop/ });
    await expect.poll(async () => (await row.locator('strong').textContent()) ?? '').toMatch(/^every tool: [\d,]+ tokens \(\d+ tools\)$/);
    await row.getByLabel('View for claude-desktop').selectOption('search');
    await page.getByRole('status').getByText('claude-desktop gets the search view from its next connection').waitFor();
    const written = () =>
      (JSON.parse(readFileSync(home.paths.configFile, 'utf8')) as { clients?: Record<string, { view?: string }> }).clients?.['claude-desktop']?.view;
    expect(written()).toBe('search');
    await expect.poll(async () => (await row.locator('strong').textContent()) ?? '').toMatch(/^search: \d+ tokens \(2 tools\)$/);
    const claude = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens['claude-desktop'] });
    expect((await claude.client.listTools()).tools.map((t) => t.name)).toEqual(['find_tools', 'call_tool']);
    await closeAll();
    await shot('07b-clients-search-view.png');
  });

  it('Audit: filters the virtualized table, charts calls per tool and per client, and verifies the chain', async () => {
    await go('Audit');
    const events = page.getByRole('region', { name: 'Audit events (scrollable)' });
    await events.waitFor();
    const all = Number(await events.locator('table').getAttribute('aria-rowcount'));
    expect(all).toBeGreaterThan(20);
    const filters = page.getByRole('form', { name: 'Audit filters' });
    await filters.getByLabel('Outcome').selectOption('denied');
    await filters.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(async () => Number(await events.locator('table').getAttribute('aria-rowcount'))).toBe(3);
    const shown = await events.locator('tbody tr:not(.spacer)').allTextContents();
    for (const row of shown) expect(row).toContain('denied');
    for (const row of shown) expect(row).toContain('cursor');
    await page.getByRole('img', { name: /calls? from .* per tool/ }).waitFor();
    await page.getByRole('radio', { name: 'per client' }).check();
    await page.getByRole('img', { name: /per client, .*; busiest: cursor \(2\)/ }).waitFor();
    await events.locator('tbody tr[data-index="0"]').click();
    await page
      .getByRole('complementary', { name: /^Event \d+$/ })
      .getByText('Stage and code')
      .waitFor();
    await page.getByRole('button', { name: 'Verify the whole chain' }).click();
    await page.getByText(/^Intact: \d+ events/).waitFor({ timeout: 30_000 });
    await shot('08-audit.png');
  });

  it('Audit: shows a burst of 200 calls as a visible rise at the default range (issue 17)', async () => {
    const claude = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens['claude-desktop'] });
    // claude-desktop got the search view above: its calls go through call_tool, audited as the real tool.
    for (let i = 0; i < 200; i++) await claude.client.callTool({ name: 'call_tool', arguments: { name: 'memory__read_graph', arguments: {} } });
    await closeAll();
    // A fresh Audit screen: the default filters, as a person opening it finds them.
    await page.goto(new URL('/#/overview', origin()).href);
    await go('Audit');
    expect(await page.getByLabel('Time', { exact: true }).inputValue()).toBe('24h');
    const canvas = page.locator('[data-chart="calls"] canvas').first();
    await canvas.waitFor();
    await page.getByRole('img', { name: /busiest: memory__read_graph \(2\d\d\)/ }).waitFor();
    // Read the drawn pixels: per column of the plot, how high the bars reach (in the series' colours).
    const heights = (await page.evaluate(`(() => {
      const canvas = document.querySelector('[data-chart="calls"] canvas');
      const over = document.querySelector('[data-chart="calls"] .u-over').getBoundingClientRect();
      const box = canvas.getBoundingClientRect();
      const scale = canvas.width / box.width;
      const colours = [...document.querySelectorAll('.legend .swatch')].map((s) => getComputedStyle(s).backgroundColor.match(/\\d+/g).slice(0, 3).map(Number));
      const ctx = canvas.getContext('2d');
      const x0 = Math.round((over.left - box.left) * scale), y0 = Math.round((over.top - box.top) * scale);
      const w = Math.round(over.width * scale), h = Math.round(over.height * scale);
      const data = ctx.getImageData(x0, y0, w, h).data;
      const isBar = (i) => colours.some((c) => Math.abs(data[i] - c[0]) < 12 && Math.abs(data[i + 1] - c[1]) < 12 && Math.abs(data[i + 2] - c[2]) < 12);
      const out = [];
      for (let x = 0; x < w; x++) {
        let top = h;
        for (let y = 0; y < h; y++) if (isBar((y * w + x) * 4)) { top = y; break; }
        out.push((h - top) / h);
      }
      return out;
    })()`)) as number[];
    const tallest = Math.max(...heights);
    // The burst reaches most of the plot's height, under the top (nothing cut off)...
    expect(tallest).toBeGreaterThan(0.6);
    expect(tallest).toBeLessThan(1);
    // ... and rises out of a calm stretch: it is a rise, not the whole chart filled.
    expect(heights.filter((h) => h === 0).length).toBeGreaterThan(heights.length * 0.3);
    expect(heights.filter((h) => h > 0.05).length).toBeGreaterThan(3);
    await shot('08b-audit-burst.png');
  });

  it('Audit: sorts, resizes and filters the events, moves through them by keyboard and opens one beside the table (issue 17)', async () => {
    await page.goto(new URL('/#/overview', origin()).href);
    await go('Audit');
    const events = page.getByRole('region', { name: 'Audit events (scrollable)' });
    const firstSeq = async () => Number(await events.locator('tbody tr[data-index="0"] td').first().textContent());
    const newest = await firstSeq();
    const seqHeader = events.getByRole('columnheader', { name: '#' });
    await seqHeader.getByRole('button').click();
    await expect.poll(() => seqHeader.getAttribute('aria-sort')).toBe('ascending');
    expect(await firstSeq()).toBeLessThan(newest);
    await seqHeader.getByRole('button').click();
    await expect.poll(() => seqHeader.getAttribute('aria-sort')).toBe('descending');
    expect(await firstSeq()).toBe(newest);
    // Resize the Tool column by dragging its edge, then by keyboard.
    const toolHeader = events.getByRole('columnheader', { name: 'Tool' });
    const before = (await toolHeader.boundingBox())!.width;
    const edge = (await toolHeader.getByRole('separator').boundingBox())!;
    await page.mouse.move(edge.x + edge.width / 2, edge.y + edge.height / 2);
    await page.mouse.down();
    await page.mouse.move(edge.x + edge.width / 2 + 90, edge.y + edge.height / 2, { steps: 6 });
    await page.mouse.up();
    await expect.poll(async () => (await toolHeader.boundingBox())!.width).toBeGreaterThan(before + 70);
    const dragged = (await toolHeader.boundingBox())!.width;
    await toolHeader.getByRole('separator').focus();
    await page.keyboard.press('ArrowLeft');
    await expect.poll(async () => Math.round((await toolHeader.boundingBox())!.width)).toBe(Math.round(dragged - 16));
    // Keyboard: the first row, two down, Enter: that event opens beside the table.
    await events.locator('tbody tr[data-index="0"]').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const third = Number(await events.locator('tbody tr[data-index="2"] td').first().textContent());
    expect(await page.evaluate('document.activeElement?.dataset.index')).toBe('2');
    await page.keyboard.press('Enter');
    const details = page.getByRole('complementary', { name: `Event ${third}` });
    await details.waitFor();
    const table = (await events.boundingBox())!;
    const side = (await details.boundingBox())!;
    expect(side.x).toBeGreaterThan(table.x + table.width - 1);
    expect(side.y).toBeLessThan(table.y + table.height);
    await page.keyboard.press('Escape');
    await expect.poll(() => details.count()).toBe(0);
    // The quick filter narrows the rows drawn to those that mention it.
    const all = Number(await events.locator('table').getAttribute('aria-rowcount'));
    await page.getByLabel('Filter these rows').fill('denied');
    await expect.poll(async () => Number(await events.locator('table').getAttribute('aria-rowcount'))).toBeLessThan(all);
    const kept = await events.locator('tbody tr[data-index]').allTextContents();
    expect(kept.length).toBeGreaterThan(0);
    for (const row of kept) expect(row).toContain('denied');
    await page.getByLabel('Filter these rows').fill('');
    await shot('08c-audit-table.png');
  });

  it('Clients and Overview: a revoked client with a live session vanishes from "connected now" by the live push, and stays gone after a reload (issue 17)', async () => {
    const token = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('zed', { scope: { kind: 'all' }, via: 'http' });
    await daemon.console.call('clients.list', {});
    const zed = await connectHttp(daemon.httpUrl!, { era: 'legacy', token, shared: true });
    for (let i = 0; i < 3; i++) await zed.client.callTool({ name: 'memory__read_graph', arguments: {} });
    await go('Clients');
    const connected = page.getByRole('region', { name: 'Connected now' });
    await connected.getByRole('row', { name: /zed/ }).waitFor();
    // Seen now, not "never": it has a live session that made three calls.
    await expect
      .poll(async () => (await page.getByRole('table', { name: 'Paired clients' }).getByRole('row', { name: /zed/ }).textContent()) ?? '')
      .toMatch(/just now|s ago/);
    await page.getByRole('button', { name: 'Revoke zed' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke zed?' }).getByRole('button', { name: 'Revoke the client' });
    await confirm.click();
    // No reload and no navigation: the revocation ends the session and the screen's live topic removes the row.
    await connected.getByRole('row', { name: /zed/ }).waitFor({ state: 'detached' });
    await go('Overview');
    await page.getByRole('region', { name: 'Connected clients' }).waitFor();
    expect(await page.getByRole('region', { name: 'Connected clients' }).getByText('zed').count()).toBe(0);
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByRole('region', { name: 'Connected clients' }).waitFor();
    expect(await page.getByRole('region', { name: 'Connected clients' }).getByText('zed').count()).toBe(0);
    await zed.close().catch(() => undefined);
  });

  it('Identity, Policy and Approvals: the OS user in unmanaged mode, its history, nothing waiting', async () => {
    await go('Identity');
    await page.getByText(/No identity provider is configured, so calls are made as the OS user/).waitFor();
    await shot('09-identity.png');
    await go('Policy');
    await page.getByText(/Unmanaged: no policy bundle is in force/).waitFor();
    await shot('10-policy.png');
    await go('Approvals');
    await page.getByText('Nothing waits for your answer.').waitFor();
    await shot('11-approvals.png');
  });

  it("works by keyboard: a skip link first, section links, focus on the new screen's heading", async () => {
    await page.goto(new URL('/#/overview', origin()).href);
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to the content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement?.tagName')).toBe('H1');
    await page.getByRole('link', { name: 'Servers', exact: true }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate('document.activeElement?.textContent')).toBe('Servers');
    // Every control has a name a screen reader can say.
    // (A string: the page's DOM types are not this test project's.)
    const unnamed = await page.evaluate(`[...document.querySelectorAll('button, a[href], input, select, textarea')]
      .filter((e) => !(e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || (e.labels && e.labels.length > 0) || e.textContent.trim()))
      .map((e) => e.outerHTML.slice(0, 80))`);
    expect(unnamed).toEqual([]);
  });

  it('has a dark theme, and loaded without a script error or a CSP violation', async () => {
    await page.goto(new URL('/#/overview', origin()).href);
    await page.getByRole('button', { name: 'Dark theme' }).click();
    expect(await page.evaluate('document.documentElement.dataset.theme')).toBe('dark');
    await page.getByText('2 of 2 servers ready').waitFor();
    await shot('12-overview-dark.png');
    expect(pageErrors).toEqual([]);
  });
});

describe("the desktop app's pages, with a stand-in for its preload", () => {
  /** Electron cannot run here, so its preload is stood in for (test/e2e/bridge-stand-in.ts); the pages are the real console's. */
  const bridgeScript = bridgeStandIn;

  it("the pairing popup: shows the code and the scope form, and sends the person's answer", async () => {
    const popup = await context.newPage();
    const question = pairingQuestion([{ name: 'memory', tools: ['read_graph', 'create_entities'] }]);
    await popup.addInitScript(bridgeScript(question));
    await popup.goto(new URL('/#/question', origin()).href);
    await popup.getByRole('heading', { level: 1, name: 'Pair the client "cursor"?' }).waitFor();
    await popup.getByText('QX7-42K').waitFor();
    await popup.getByRole('radio', { name: 'Only what I tick below' }).check();
    await popup.getByRole('checkbox', { name: 'read_graph' }).check();
    await popup.getByLabel('Credential valid for').selectOption('7');
    await popup.screenshot({ path: artifact('14-popup-pairing.png'), fullPage: true });
    await popup.getByRole('button', { name: 'Approve' }).click();
    await popup.getByText('Your answer was recorded.').waitFor();
    expect(await popup.evaluate('window.__answers')).toEqual([
      { decision: 'approve', scope: { kind: 'listed', servers: [], tools: ['memory__read_graph'], expiryDays: 7 } },
    ]);
    await popup.close();
  });

  it("the desktop app's inbox: each waiting question with every fact, answered from the console window", async () => {
    const app = await context.newPage();
    const waiting = {
      id: 'q-approval-000001',
      kind: 'approval',
      title: 'Allow cursor to call crm__refund?',
      facts: [
        { label: 'Client', value: 'cursor (paired, over socket)' },
        { label: 'Arguments', value: '{\n  "amount": 260\n}' },
        { label: 'Request', value: 'r-1, digest sha256:' + 'a'.repeat(64) },
      ],
      choices: [
        { id: `once:sha256:${'a'.repeat(64)}`, label: 'Allow once: this call only' },
        { id: `session:sha256:${'a'.repeat(64)}`, label: 'Allow for this session of cursor' },
      ],
      askedAt: new Date().toISOString(),
      deadline: new Date(Date.now() + 120_000).toISOString(),
    };
    await app.addInitScript(bridgeScript({}, [waiting]));
    await app.goto(new URL('/#/approvals', origin()).href);
    await app.getByText('Allow cursor to call crm__refund?').waitFor();
    await app.getByRole('button', { name: 'Answer…' }).click();
    await app.getByText('"amount": 260').waitFor();
    await app.getByText(`r-1, digest sha256:${'a'.repeat(64)}`).waitFor();
    await app.getByRole('radio', { name: 'Allow for this session of cursor' }).check();
    await app.screenshot({ path: artifact('15-inbox-approval.png'), fullPage: true });
    await app.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => app.evaluate('window.__answers')).toEqual([{ id: waiting.id, decision: 'approve', choice: `session:sha256:${'a'.repeat(64)}` }]);
    await app.close();
  });

  it('headless, Approvals lists a real waiting question and says where to answer, with no way to answer here', async () => {
    const claude = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: tokens['claude-desktop'] });
    const call = claude.client.callTool({ name: 'memory__delete_entities', arguments: { entityNames: ['Gatehouse'] } }).then(
      (r) => ({ ok: textOf(r) }),
      (e: Error) => ({ error: e.message }),
    );
    const shown = await screen.nextQuestion();
    expect(shown.title).toBe('Allow claude-desktop to call memory__delete_entities?');
    await go('Approvals');
    await page.getByText('Allow claude-desktop to call memory__delete_entities?').waitFor();
    await page.getByText('This console cannot answer.', { exact: false }).waitFor();
    expect(await page.getByRole('button', { name: 'Answer…' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Open its question page' }).getAttribute('href')).toBe(shown.url);
    await shot('16-approvals-headless.png');
    // The person answers where they can: in the terminal.
    screen.type('d');
    expect(await call).toMatchObject({ error: expect.stringContaining('the person at this computer declined') });
    await page.getByText('Nothing waits for your answer.').waitFor();
    await claude.close();
  });

  it("the desktop app's start-at-login setting, off until the person turns it on", async () => {
    const app = await context.newPage();
    await app.addInitScript(bridgeScript({}));
    await app.goto(new URL('/#/overview', origin()).href);
    const box = app.getByRole('checkbox', { name: 'Start Gatehouse when I log in' });
    await box.waitFor();
    expect(await box.isChecked()).toBe(false);
    await box.check();
    await expect.poll(() => app.evaluate('window.__settings.openAtLogin')).toBe(true);
    await app.close();
  });
});

describe('the console in a real window', () => {
  it('shows on an X display (Xvfb), captured with import -window root', async () => {
    const x = await startXvfb();
    let windowed: Awaited<ReturnType<typeof openAppWindow>> | undefined;
    try {
      const reply = (await callControl(home.paths.controlSocketPath, 'console.link', {})) as { announced: boolean };
      expect(reply.announced).toBe(true);
      windowed = await openAppWindow(x.display, logins.at(-1)!.url);
      await windowed.page.getByLabel('Code').fill(logins.at(-1)!.code);
      await windowed.page.getByRole('button', { name: 'Sign in' }).click();
      await windowed.page.getByText(/of 2 servers ready/).waitFor({ timeout: 20_000 });
      await windowed.page.waitForTimeout(300);
      const file = artifact('13-window-xvfb.png');
      screenshotDisplay(x.display, file);
      expect(statSync(file).size).toBeGreaterThan(20_000);
    } finally {
      await windowed?.close();
      await x.stop();
    }
  });
});
