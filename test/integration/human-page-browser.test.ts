/**
 * The question page in a real browser (issue 10, "one look for the human page"): `gatehouse daemon`
 * on a pseudo-terminal with the person's own rule "ask me before any refund", an agent's refund
 * through `gatehouse connect`, and the person answering in Chromium: they open the address the
 * terminal shows, type the code shown beside it, read the question and press Approve. Along the way
 * the page must raise no script error and no Content-Security-Policy violation, wear the console's
 * palette (resources/theme.css) in light and, following the system, in dark, and show the time left
 * as a bar that empties towards the deadline.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DaemonStatus } from '../../src/common/status.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { launchChromium } from '../e2e/support.js';
import { executed } from './support/approvals.js';
import { closeAll, connectBridge, textOf } from './support/clients.js';
import { REPO, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

const CRM = join(REPO, 'test', 'fixtures', 'crm-server.mjs');
const TIMEOUT_SECONDS = 120;
let home: ReturnType<typeof makeHome>;
let scratch: string;
let callLog: string;
let daemon: TerminalDaemon;
let token: string;
let browser: Browser;

/** The palette as resources/theme.css declares it: `--name: light-dark(light, dark)`, as rgb() strings a browser computes. */
function palette(): Record<string, { light: string; dark: string }> {
  const css = readFileSync(join(REPO, 'resources', 'theme.css'), 'utf8');
  const rgb = (hex: string) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;
  return Object.fromEntries(
    [...css.matchAll(/--([\w-]+):\s*light-dark\((#[0-9a-f]{6}),\s*(#[0-9a-f]{6})\)/g)].map((m) => [m[1]!, { light: rgb(m[2]!), dark: rgb(m[3]!) }]),
  );
}

/** Everything that went wrong in a page: script errors, console errors (where Chromium reports CSP violations), failed loads. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('requestfailed', (request) => problems.push(`failed to load ${request.url()}`));
  return problems;
}

/** The page's own CSP violation reports, collected from the start by a listener Playwright installs outside the page's CSP. */
async function violations(page: Page): Promise<string[]> {
  return (await page.evaluate('globalThis.violations ?? []')) as string[];
}

async function colours(page: Page): Promise<{ scheme: string; bg: string; text: string; panel: string; button: string; bar: string }> {
  return (await page.evaluate(`(() => {
    const style = (selector) => getComputedStyle(document.querySelector(selector));
    return {
      scheme: style('html').colorScheme,
      bg: style('html').backgroundColor,
      text: style('body').color,
      panel: style('main').backgroundColor,
      button: style('button.primary').backgroundColor,
      bar: style('.left').backgroundColor,
    };
  })()`)) as { scheme: string; bg: string; text: string; panel: string; button: string; bar: string };
}

/** An agent's refund, waiting for the person; answers with the address and code the terminal shows. */
async function askForRefund(amount: number): Promise<{ call: Promise<{ text: string } | { error: string }>; url: string; code: string }> {
  const { client } = await connectBridge(home.env, { era: 'modern', client: 'ide', token });
  const before = daemon.screen().length;
  const call = client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount, currency: 'EUR' } }, { timeout: 120_000 }).then(
    (result) => ({ text: textOf(result) }),
    (error: unknown) => ({ error: (error as Error).message }),
  );
  const shown = await eventually(
    () => /open (http:\/\/127\.0\.0\.1:\d+\/q\/[\w-]{16}) and type the code ([0-9A-Z]{4}-[0-9A-Z]{4})/.exec(daemon.screen().slice(before)),
    15_000,
    'the question on the terminal',
  );
  return { call, url: shown[1]!, code: shown[2]! };
}

async function newPerson(colorScheme: 'light' | 'dark'): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ colorScheme });
  await context.addInitScript(`globalThis.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => globalThis.violations.push(e.violatedDirective + ': ' + e.blockedURI));`);
  const page = await context.newPage();
  return { context, page, problems: watch(page) };
}

beforeAll(async () => {
  home = makeHome('gh-human-page-');
  scratch = mkdtempSync(join(tmpdir(), 'gh-human-page-'));
  callLog = join(scratch, 'calls.jsonl');
  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      servers: { crm: { type: 'stdio', command: process.execPath, args: [CRM, '--log', callLog], sandbox: { write: [dirname(callLog)] } } },
      listen: { http: { enabled: false, port: 0 } },
      approvals: { ask: ['crm__refund'], timeoutSeconds: TIMEOUT_SECONDS },
    }),
    { mode: 0o600 },
  );
  token = new ClientRegistry(join(home.paths.stateDir, 'clients.json')).add('ide', { scope: { kind: 'all' }, via: 'socket' });
  browser = await launchChromium();
  daemon = spawnOnTerminal(['daemon'], home.env, home.paths);
  const status = () => callControl(home.paths.controlSocketPath, 'status', {}) as Promise<DaemonStatus>;
  await eventually(async () => (await status().catch(() => undefined))?.servers.find((s) => s.name === 'crm' && s.state === 'ready'), 30_000, 'the CRM');
});
afterAll(async () => {
  await closeAll();
  await browser?.close();
  await daemon?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the question page in Chromium', () => {
  it('takes the code the terminal shows, shows every fact, and records the answer the person clicks', async () => {
    const { call, url, code } = await askForRefund(260);
    const { context, page, problems } = await newPerson('light');
    try {
      await page.goto(url);
      // The address alone shows nothing of the question.
      expect(await page.locator('h1').textContent()).toBe('Gatehouse asks you something');
      expect(await page.locator('main').innerText()).not.toContain('refund');
      await page.getByLabel('Code').fill(code.toLowerCase());
      await page.getByRole('button', { name: 'Show the question' }).click();
      await page.waitForSelector('dl');
      expect(await page.locator('h1').textContent()).toBe('Allow ide to call crm__refund?');
      const facts = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
      expect(facts).toContain('"amount": 260');
      expect(facts).toContain('approvals.ask: crm__refund');
      expect(executed(callLog)).toEqual([]);
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.waitForSelector('h1:text("Approved")');
      expect(await page.locator('main').innerText()).toContain('Your answer was recorded.');
      expect(await call).toEqual({ text: 'refunded 260.00 EUR to Ada Lovelace' });
      expect(problems).toEqual([]);
      expect(await violations(page)).toEqual([]);
      // The watch sees a violation when there is one: the page's policy refuses an image from elsewhere.
      await page.evaluate(`document.body.append(Object.assign(document.createElement('img'), { src: 'http://192.0.2.1/tracker.png' }))`);
      await eventually(async () => ((await violations(page)).length > 0 ? true : undefined), 5000, 'the violation to be reported');
      expect(await violations(page)).toEqual(['img-src: http://192.0.2.1/tracker.png']);
    } finally {
      await context.close();
    }
  });

  it("wears the console's palette, light or dark as the system is, and shows the time left as a bar that empties", async () => {
    const theme = palette();
    expect(Object.keys(theme)).toEqual(expect.arrayContaining(['bg', 'panel', 'text', 'accent']));
    const { call, url, code } = await askForRefund(75);
    for (const scheme of ['light', 'dark'] as const) {
      const { context, page, problems } = await newPerson(scheme);
      try {
        await page.goto(url);
        expect(await colours(page)).toEqual({
          scheme,
          bg: theme.bg![scheme],
          text: theme.text![scheme],
          panel: theme.panel![scheme],
          button: theme.accent![scheme],
          bar: theme.accent![scheme],
        });
        // The countdown: the deadline in words, and a bar set to empty over the time left, already emptying.
        expect(await page.locator('main').innerText()).toMatch(/Unanswered, this is refused at \d\d:\d\d:\d\d\./);
        const bar = () =>
          page.evaluate(`(() => {
            const style = getComputedStyle(document.querySelector('.left'));
            return { name: style.animationName, seconds: parseFloat(style.animationDuration), scale: new DOMMatrix(style.transform).a };
          })()`) as Promise<{ name: string; seconds: number; scale: number }>;
        const first = await bar();
        expect(first.name).toBe('left');
        expect(first.seconds).toBeGreaterThan(TIMEOUT_SECONDS - 30);
        expect(first.seconds).toBeLessThanOrEqual(TIMEOUT_SECONDS);
        await eventually(async () => ((await bar()).scale < first.scale ? true : undefined), 10_000, 'the bar to shrink');
        if (scheme === 'dark') {
          // Answered from the dark page: the code form and the question keep the palette too.
          await page.getByLabel('Code').fill(code);
          await page.getByRole('button', { name: 'Show the question' }).click();
          await page.waitForSelector('dl');
          expect((await colours(page)).panel).toBe(theme.panel!.dark);
          expect(await page.evaluate(`getComputedStyle(document.querySelector('dd')).backgroundColor`)).toBe(theme['code-bg']!.dark);
          await page.getByRole('button', { name: 'Decline' }).click();
          await page.waitForSelector('h1:text("Declined")');
        }
        expect(problems).toEqual([]);
        expect(await violations(page)).toEqual([]);
      } finally {
        await context.close();
      }
    }
    expect(await call).toEqual({ error: expect.stringMatching(/the person at this computer declined/) });
    expect(executed(callLog).filter((c) => c.args.amount === 75)).toEqual([]);
  });
});
