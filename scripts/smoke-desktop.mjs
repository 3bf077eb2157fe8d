#!/usr/bin/env node
/**
 * `npm run smoke:desktop`: the built desktop app, end to end, on a machine that can run Electron.
 * It starts the app (with a throwaway GATEHOUSE_HOME), sees the tray made and the console window
 * open, connects a bridge that asks to be paired, answers the pairing in the app's own question
 * window, checks the bridge then speaks MCP, and quits the app, which must exit cleanly (0) within
 * 15 s. Driven by playwright-core's Electron support.
 *
 * Where the Electron binary is not installed (the CI machines cannot download it) it says exactly
 * that and exits with status 2: nothing was tested. `npm run desktop:install` fetches the binary.
 * What it drives is tested on every machine without Electron: the core, the question windows' logic
 * and IPC in plain Node (test/integration/human-app.test.ts), the pages in Chromium
 * (test/integration/console-e2e.test.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;

function electronBinary() {
  try {
    const path = createRequire(import.meta.url)('electron');
    return typeof path === 'string' && existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

const binary = electronBinary();
if (!binary) {
  process.stderr.write(
    'smoke:desktop: Electron cannot run on this machine: the Electron binary is not installed ' +
      '(npm ci skips its download; run `npm run desktop:install` on a machine that can reach GitHub releases). Nothing was tested.\n',
  );
  process.exit(2);
}
if (!existsSync(join(ROOT, 'dist', 'main', 'main.js'))) {
  process.stderr.write('smoke:desktop: the app is not built: run `npm run build` first.\n');
  process.exit(1);
}

const { _electron } = await import('playwright-core');
const home = mkdtempSync(join(tmpdir(), 'gh-smoke-'));
const env = { ...process.env, GATEHOUSE_HOME: home };
const step = (text) => process.stdout.write(`smoke:desktop: ${text}\n`);
let app;
let bridge;
try {
  app = await _electron.launch({ executablePath: binary, args: [ROOT], env, timeout: 60_000 });
  let output = '';
  app.process().stdout?.on('data', (c) => (output += c));
  app.process().stderr?.on('data', (c) => (output += c));
  const consoleWindow = await app.firstWindow();
  await consoleWindow.getByRole('heading', { level: 1, name: 'Overview' }).waitFor({ timeout: 60_000 });
  step('the console window opened');
  const deadline = Date.now() + 10_000;
  while (!output.includes('gatehouse: tray shown') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!output.includes('gatehouse: tray shown')) throw new Error('the tray was not shown');
  step('the tray is shown');

  // A bridge without a credential asks to be paired; the question opens in its own window.
  bridge = spawn(process.execPath, [join(ROOT, 'bin', 'gatehouse.js'), 'connect', '--client', 'smoke-test'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const questionWindow = await app.waitForEvent('window', { predicate: (w) => w.url().includes('#/question'), timeout: 30_000 });
  await questionWindow.getByRole('heading', { level: 1, name: 'Pair the client "smoke-test"?' }).waitFor();
  await questionWindow.getByRole('button', { name: 'Approve' }).click();
  step('the pairing question was answered in its window');

  bridge.stdin.write(
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'smoke', version: '1' } },
    }) + '\n',
  );
  const answered = await new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve(false), 30_000);
    bridge.stdout.on('data', (c) => {
      text += c;
      if (/"id":1,"result"|"result":.*"id":1/.test(text)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
  });
  if (!answered) throw new Error('the paired bridge did not answer initialize');
  step('the paired bridge speaks MCP');
  bridge.kill('SIGTERM');

  const exited = new Promise((resolve) => app.process().once('exit', (code) => resolve(code)));
  await app.evaluate(({ app: electronApp }) => electronApp.quit());
  const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 15_000))]);
  if (code !== 0) throw new Error(`the app did not quit cleanly (${code})`);
  step('the app quit cleanly: passed');
  app = undefined;
} catch (error) {
  process.stderr.write(`smoke:desktop: FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  bridge?.kill('SIGKILL');
  await app?.close().catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
}
