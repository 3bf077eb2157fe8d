/**
 * Support for the console's browser tests (test/integration/console-*.test.ts): the built
 * console, Debian's Chromium driven by playwright-core, a real X display, and where screenshots go.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO } from '../integration/support/gatehouse.js';

export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots kept as test artifacts (gitignored). */
export const ARTIFACTS = join(REPO, 'test-results', 'console');

const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

function newest(dir: string): number {
  let latest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path);
    latest = Math.max(latest, info.isDirectory() ? newest(path) : info.mtimeMs);
  }
  return latest;
}

/** Builds the console (vite) when dist/renderer is missing or older than its sources. */
export function ensureConsoleBuilt(): string {
  const out = join(REPO, 'dist', 'renderer');
  const index = join(out, 'index.html');
  const sources = Math.max(newest(join(REPO, 'renderer')), newest(join(REPO, 'src', 'common')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return out;
  // Test files run two at a time: one builds while the other waits for it (a directory as the lock).
  const lock = join(REPO, 'dist', '.console-build.lock');
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  try {
    mkdirSync(lock);
  } catch {
    const deadline = Date.now() + 120_000;
    while (existsSync(lock) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    return out;
  }
  try {
    const built = spawnSync(process.execPath, [join(REPO, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'error'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (built.status !== 0) throw new Error(`building the console failed:\n${built.stdout}\n${built.stderr}`);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return out;
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export async function launchChromium(options: { headless?: boolean; display?: string; args?: string[] } = {}): Promise<Browser> {
  if (!chromiumAvailable()) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: options.headless ?? true,
    args: [...CHROMIUM_ARGS, ...(root ? ['--no-sandbox'] : []), ...(options.args ?? [])],
    ...(options.display ? { env: { ...process.env, DISPLAY: options.display } } : {}),
  });
}

export function artifact(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/** A real X display (Xvfb) on a free display number; stopped by its pid. */
export async function startXvfb(): Promise<{ display: string; stop(): Promise<void> }> {
  if (spawnSync('sh', ['-c', 'command -v Xvfb']).status !== 0) throw new Error('Xvfb is missing: apt-get install xvfb (.ci/run installs it)');
  // -displayfd: Xvfb picks a free display and writes its number on that descriptor once it listens.
  const child: ChildProcess = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x860x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  let number = '';
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (number += c.toString()));
  const deadline = Date.now() + 15_000;
  while (!/\d+\n/.test(number)) {
    if (child.exitCode !== null) throw new Error('Xvfb exited at start');
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('Xvfb did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const display = `:${number.trim()}`;
  return {
    display,
    stop: async () => {
      if (child.exitCode !== null || !child.pid) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
}

/** `import -window root` on a display: the whole screen as a PNG. */
export function screenshotDisplay(display: string, file: string): void {
  const shot = spawnSync('import', ['-window', 'root', file], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8', timeout: 30_000 });
  if (shot.status !== 0) throw new Error(`import -window root failed: ${shot.stderr}`);
}

/** The console as an app window (Chromium's --app mode: no tabs, no address bar) on a display. */
export async function openAppWindow(display: string, url: string): Promise<{ page: import('playwright-core').Page; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'gh-chromium-'));
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: false,
    viewport: null,
    args: [
      ...CHROMIUM_ARGS,
      ...(root ? ['--no-sandbox'] : []),
      `--app=${url}`,
      '--test-type',
      '--window-position=0,0',
      '--window-size=1280,860',
      '--force-device-scale-factor=1',
    ],
    env: { ...process.env, DISPLAY: display },
  });
  const deadline = Date.now() + 15_000;
  while (context.pages().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const page = context.pages()[0] ?? (await context.waitForEvent('page'));
  return {
    page,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Signs in to the console as the person does: opens the login link the daemon announced on its terminal,
 * types the code shown beside it, and waits for the Overview.
 */
export async function signInToConsole(page: Page, login: { url: string; code: string }): Promise<void> {
  await page.goto(login.url);
  await page.getByLabel('Code').fill(login.code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
}

/** A 1280×900 page of the console, signed in with the daemon's login, whose script errors go into `pageErrors`. */
export async function openSignedInConsole(browser: Browser, login: { url: string; code: string }, pageErrors: string[]): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await signInToConsole(page, login);
  return page;
}
