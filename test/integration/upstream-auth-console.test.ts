/**
 * The console's side of signing in to a remote server: the Servers screen shows a server that
 * needs sign-in, its Sign in button starts the sign-in in Gatehouse and offers the authorization
 * server's page, the person signs in there (Chromium), the screen then says who the server knows
 * them as; Sign out revokes the tokens at the authorization server. Real parts as in
 * upstream-auth.test.ts, with the console served as `gatehouse daemon --ui` serves it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import {
  signInWithBrowser,
  startAuthorizationServer,
  startProtectedServer,
  type AuthorizationServer,
  type ProtectedServer,
} from '../support/oauth-upstream.js';
import { ensureConsoleBuilt, launchChromium } from '../e2e/support.js';
import { eventually, makeHome } from './support/gatehouse.js';

let as: AuthorizationServer;
let rs: ProtectedServer;
let home: ReturnType<typeof makeHome>;
let daemon: Daemon;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const logins: { url: string; code: string }[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  ensureConsoleBuilt();
  as = await startAuthorizationServer();
  rs = await startProtectedServer(as);
  home = makeHome('gh-upstream-console-');
  writeFileSync(home.paths.configFile, JSON.stringify({ listen: { http: { enabled: true, port: 0 } }, servers: { notes: { type: 'http', url: rs.url } } }), {
    mode: 0o600,
  });
  const managedDir = join(home.home, 'no-managed-settings');
  mkdirSync(managedDir);
  daemon = await startDaemon({
    paths: home.paths,
    env: home.env,
    managedDir,
    secrets: new MemorySecretStore(),
    logger: { log: () => undefined },
    human: { terminal: null, notifier: { notify: () => false } },
    ui: { announce: (url, code) => (logins.push({ url, code }), true) },
  });
  await eventually(() => daemon.status().servers.find((s) => s.name === 'notes')?.state === 'needs-sign-in', 20_000, 'notes to ask for sign-in');
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
}, 120_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await daemon?.stop();
  await rs?.stop();
  await as?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
});

describe('the Servers screen and a remote server that needs sign-in', () => {
  it('offers Sign in; the person signs in at the authorization server; the screen then names them', async () => {
    await page.goto(logins[0]!.url);
    await page.getByLabel('Code').fill(logins[0]!.code);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.url()).toMatch(/#\/overview$/);
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Servers', exact: true }).click();
    await page.getByRole('link', { name: 'notes', exact: true }).click();
    const detail = page.getByRole('region', { name: 'Server notes' });
    await detail.getByText('gatehouse servers login notes').waitFor();
    await detail.getByRole('button', { name: 'Sign in' }).click();
    const link = detail.getByRole('link', { name: 'Open the sign-in page' });
    await link.waitFor();
    const href = (await link.getAttribute('href'))!;
    expect(href.startsWith(`${as.issuer}/auth?`)).toBe(true);
    // The person opens it (the console's link opens a new tab of their browser).
    expect(await signInWithBrowser(context, href, 'alice')).toContain('Signed in to notes for Gatehouse');
    await detail.getByText('you, in your browser').waitFor({ timeout: 20_000 });
    await detail.getByText('alice', { exact: true }).waitFor();
    await eventually(() => daemon.status().servers.find((s) => s.name === 'notes')?.state === 'ready', 20_000, 'notes ready');
  });

  it('signs out: the tokens are revoked at the authorization server and the server waits for a sign-in again', async () => {
    const detail = page.getByRole('region', { name: 'Server notes' });
    await detail.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Sign out' }).click();
    await detail.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 20_000 });
    expect(as.requests).toContain('/token/revocation');
    await eventually(() => daemon.status().servers.find((s) => s.name === 'notes')?.state === 'needs-sign-in', 20_000, 'needs-sign-in');
    expect(pageErrors).toEqual([]);
  });
});
