/**
 * Issue 14: the console's Catalog screen in Chromium lists the servers a client runs itself (found in
 * Cursor's own config, outside Gatehouse) with what each runs, the names of its environment
 * variables and never their values; one button imports them, over the same service as
 * `gatehouse clients import`: the server moves behind Gatehouse with its key in the keychain, Cursor
 * points at Gatehouse, and the list empties.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { userSecretItem } from '../../src/node/secrets/resolver.js';
import { CRM_FIXTURE } from '../support/policy.js';
import { artifact, ensureConsoleBuilt, launchChromium, openSignedInConsole } from '../e2e/support.js';
import { eventually, makeHome } from './support/gatehouse.js';

const CANARY = 'sk-shadow-canary-3e8f1a6d9c2b';
let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
let browser: Browser;
let page: Page;
const keychain = new MemorySecretStore();
const logins: { url: string; code: string }[] = [];
const pageErrors: string[] = [];
const cursorFile = () => join(home.home, '.cursor', 'mcp.json');

beforeAll(async () => {
  ensureConsoleBuilt();
  home = makeHome('gh-shadow-console-');
  mkdirSync(join(home.home, '.cursor'));
  writeFileSync(
    cursorFile(),
    JSON.stringify({ mcpServers: { 'crm-local': { command: process.execPath, args: [CRM_FIXTURE], env: { CRM_API_KEY: CANARY } } } }, null, 2),
  );
  writeFileSync(home.paths.configFile, JSON.stringify({ servers: {}, listen: { http: { enabled: false, port: 0 } } }), { mode: 0o600 });
  daemon = await startDaemon({
    paths: home.paths,
    env: { ...home.env, HOME: home.home },
    secrets: keychain,
    logger: { log: () => undefined },
    human: { terminal: null, notifier: { notify: () => false } },
    ui: { announce: (url, code) => (logins.push({ url, code }), true) },
  });
  browser = await launchChromium();
  page = await openSignedInConsole(browser, logins[0]!, pageErrors);
}, 120_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await daemon?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

describe('shadow servers in the console (issue 14)', () => {
  it('shows a server Cursor runs outside Gatehouse, with its command and the names of its environment, never the secret', async () => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Catalog', exact: true }).click();
    const cursor = page.getByRole('region', { name: 'Servers cursor runs itself' });
    await cursor.getByText('crm-local', { exact: true }).waitFor();
    await cursor.getByText(`${process.execPath} ${CRM_FIXTURE}`).waitFor();
    await cursor.getByText('environment: CRM_API_KEY').waitFor();
    await page.screenshot({ path: artifact('43-catalog-shadows.png'), fullPage: true });
    expect(await page.content()).not.toContain(CANARY);
  });

  it('imports them with one button: the server runs behind Gatehouse with its key in the keychain, Cursor points at Gatehouse, and the list empties', async () => {
    await page.getByRole('button', { name: "Import cursor's servers into Gatehouse" }).click();
    await page.getByRole('status').getByText('cursor: moved crm-local behind Gatehouse').waitFor({ timeout: 60_000 });
    await page.getByText('None: every MCP server your clients use goes through Gatehouse.').waitFor();
    await eventually(() => daemon.status().servers.find((v) => v.name === 'crm-local' && v.state === 'ready'), 30_000, 'crm-local to run behind Gatehouse');

    const config = readFileSync(home.paths.configFile, 'utf8');
    expect(config).not.toContain(CANARY);
    const env = (JSON.parse(config) as { servers: Record<string, { env: Record<string, string> }> }).servers['crm-local']!.env;
    const secret = /^\$\{secret:([^}]+)\}$/.exec(env['CRM_API_KEY']!)?.[1];
    expect(secret).toBeDefined();
    expect((await keychain.get(userSecretItem(secret!)))?.unwrap()).toBe(CANARY);
    const cursorConfig = readFileSync(cursorFile(), 'utf8');
    expect(cursorConfig).not.toContain(CANARY);
    expect(Object.keys((JSON.parse(cursorConfig) as { mcpServers: Record<string, unknown> }).mcpServers)).toEqual(['gatehouse']);
    expect(daemon.status().shadowServers ?? []).toEqual([]);
    expect(await page.content()).not.toContain(CANARY);
    expect(pageErrors).toEqual([]);
  });
});
