/**
 * Issue 14: the console's Catalog screen in Chromium, against a real daemon under a signed
 * catalogue and an npm registry on loopback: search, an entry's publisher, tools and secrets, the
 * install button that asks for the secret first, and a refusal (a tampered package) shown with its
 * reason. The secret's value never comes back to the page.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_META_KEY } from '../../src/common/catalog.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { toolDefinitionHash } from '../../src/core/policy/tool-hash.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { makeKey, sampleFiles, signFiles } from '../support/policy.js';
import { startRegistry, type TestRegistry } from '../support/npm-registry.js';
import { artifact, ensureConsoleBuilt, launchChromium, openSignedInConsole } from '../e2e/support.js';
import { eventually, makeHome } from './support/gatehouse.js';

const SECRET = 'wx-canary-51d0c7e2a9b8';
let registry: TestRegistry;
let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
let browser: Browser;
let page: Page;
const logins: { url: string; code: string }[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  ensureConsoleBuilt();
  registry = await startRegistry();
  const good = registry.publish({ name: '@acme/weather-mcp', version: '1.0.0' });
  const approved = registry.publish({ name: 'tampered-mcp', version: '2.0.0' });
  registry.tamper({ name: 'tampered-mcp', version: '2.0.0', marker: 'other bytes' });
  const entry = (title: string, pkg: string, version: string, sri: string, secrets: boolean) => ({
    server: {
      name: `com.acme/${title.toLowerCase()}`,
      title,
      description: title === 'Weather' ? 'Forecasts for any city' : 'A package whose registry copy was changed',
      version,
      packages: [{ registryType: 'npm', registryBaseUrl: registry.url, identifier: pkg, version, transport: { type: 'stdio' } }],
      _meta: {
        [CATALOG_META_KEY]: {
          publisher: 'Acme IT',
          integrity: { npm: sri },
          ...(secrets
            ? { secrets: [{ name: 'weather_key', description: 'Your key for the weather service' }], env: { WEATHER_API_KEY: '${secret:weather_key}' } }
            : {}),
        },
      },
    },
    tools: {
      forecast: {
        sha256: toolDefinitionHash({
          name: 'forecast',
          description: 'The weather forecast for a city.',
          inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        }),
        readOnly: true,
      },
    },
  });
  const root = await makeKey();
  const bundle = await signFiles(
    sampleFiles({
      catalog: (c) => {
        (c.servers as Record<string, unknown>)['weather'] = entry('Weather', '@acme/weather-mcp', '1.0.0', good, true);
        (c.servers as Record<string, unknown>)['tampered'] = entry('Tampered', 'tampered-mcp', '2.0.0', approved, false);
      },
    }),
    { version: 1, keys: [root] },
  );
  home = makeHome('gh-catalog-console-');
  const managedDir = join(home.home, 'managed');
  mkdirSync(managedDir, { mode: 0o755 });
  const put = (name: string, data: string | Buffer) => {
    writeFileSync(join(managedDir, `${name}.new`), data, { mode: 0o644 });
    renameSync(join(managedDir, `${name}.new`), join(managedDir, name));
  };
  put('root.pub', root.publicPem);
  put('policy.json', JSON.stringify({ trust: ['root.pub'], required: true }));
  put('policy.bundle', bundle);
  writeFileSync(home.paths.configFile, JSON.stringify({ servers: {}, listen: { http: { enabled: false, port: 0 } } }), { mode: 0o600 });
  daemon = await startDaemon({
    paths: home.paths,
    env: { ...home.env, HOME: home.home },
    managedDir,
    secrets: new MemorySecretStore(),
    logger: { log: () => undefined },
    testIdentity: { user: 'ann', groups: ['crm-analysts'] },
    human: { terminal: null, notifier: { notify: () => false } },
    ui: { announce: (url, code) => (logins.push({ url, code }), true) },
  });
  browser = await launchChromium();
  page = await openSignedInConsole(browser, logins[0]!, pageErrors);
}, 120_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await daemon?.stop();
  await registry?.close();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

describe('the Catalog screen (issue 14)', () => {
  it("searches the signed catalogue and shows each entry's publisher, package, tools and secrets", async () => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Catalog', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Catalog' }).waitFor();
    await page.getByRole('article', { name: 'Tampered' }).waitFor();
    await page.getByLabel('Search').fill('forecasts city');
    await expect.poll(() => page.getByRole('article').count()).toBe(1);
    const card = page.getByRole('article', { name: 'Weather' });
    await card.getByText('by Acme IT · npm @acme/weather-mcp@1.0.0').waitFor();
    await card.getByText('Tools: forecast (read-only)').waitFor();
    await card.getByText('Needs: weather_key').waitFor();
    await page.getByLabel('Search').fill('no such server');
    await page.getByText('No approved server matches "no such server".').waitFor();
    await page.screenshot({ path: artifact('40-catalog.png'), fullPage: true });
  });

  it('installs with one button that asks for the secret first, and the server starts verified', async () => {
    await page.getByLabel('Search').fill('weather');
    await page.getByRole('button', { name: 'Install Weather' }).click();
    const dialog = page.getByRole('dialog', { name: 'Install Weather' });
    await dialog.getByRole('button', { name: 'Install' }).click();
    await dialog.getByText('Weather needs weather_key to start; type its value (it is not shown)').waitFor();
    await dialog.getByLabel('Secret weather_key').fill(SECRET);
    await page.screenshot({ path: artifact('41-catalog-secrets.png'), fullPage: true });
    await dialog.getByRole('button', { name: 'Install' }).click();
    await page.getByRole('status').getByText('Weather installed: @acme/weather-mcp@1.0.0, verified').waitFor({ timeout: 60_000 });
    await page.getByRole('article', { name: 'Weather' }).getByText('installed', { exact: true }).waitFor();
    const s = await eventually(
      () => (daemon.status().servers.find((v) => v.name === 'weather')?.state === 'ready' ? daemon.status() : undefined),
      30_000,
      'weather to be ready',
    );
    expect(s.installs).toEqual([expect.objectContaining({ server: 'weather', state: 'ready', version: '1.0.0' })]);
    expect(await page.content()).not.toContain(SECRET);
  });

  it('shows a refusal with its reason when the registry serves other bytes than the catalogue signed', async () => {
    await page.getByLabel('Search').fill('tampered');
    await page.getByRole('button', { name: 'Install Tampered' }).click();
    const dialog = page.getByRole('dialog', { name: 'Install Tampered' });
    await dialog.getByRole('button', { name: 'Install' }).click();
    await dialog.getByText(/refused tampered-mcp@2\.0\.0: the registry served other bytes than the catalogue approved/).waitFor({ timeout: 60_000 });
    await page.screenshot({ path: artifact('42-catalog-refused.png'), fullPage: true });
    expect(daemon.status().servers.map((v) => v.name)).not.toContain('tampered');
    expect(pageErrors).toEqual([]);
  });
});
