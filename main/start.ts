/**
 * `npm start`: the desktop app where it can run, headless with the console where it cannot.
 *
 * The Electron binary is absent when the install skipped its download (ELECTRON_SKIP_BINARY_DOWNLOAD,
 * or no internet, as on the CI machines), and a Linux session without DISPLAY or WAYLAND_DISPLAY
 * cannot show a window. In either case this says why and runs `gatehouse daemon --ui` (bin/gatehouse.js)
 * as a child on this terminal, so the one-time console link is printed here, and exits with its code.
 * A child rather than the CLI in this process: the bin script sets the daemon's heap policy and holds
 * V8's optimizing compiler before anything loads (src/node/heap.ts, src/node/optimizing-compiler.ts),
 * and running that same script, with the Node options its first line gives, is what keeps the two
 * ways of starting the daemon alike.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEAP_NODE_FLAGS } from '../src/node/heap.js';

export type Launch = { kind: 'electron'; binary: string } | { kind: 'headless'; reason: string };

/** Where to run, from what this machine has. Pure. */
export function chooseLaunch(input: { electronBinary: string | undefined; platform: NodeJS.Platform; env: NodeJS.ProcessEnv }): Launch {
  if (input.env.GATEHOUSE_HEADLESS === '1') return { kind: 'headless', reason: 'GATEHOUSE_HEADLESS=1 asks for it' };
  if (!input.electronBinary) {
    return {
      kind: 'headless',
      reason:
        "the Electron binary is not installed (`npm ci` never downloads it: package.json keeps electron's install script from running, since the CI machines cannot reach GitHub); run `npm run desktop:install` once on a machine that can, then `npm start` opens the desktop app",
    };
  }
  if (input.platform === 'linux' && !input.env.DISPLAY && !input.env.WAYLAND_DISPLAY)
    return { kind: 'headless', reason: 'there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)' };
  return { kind: 'electron', binary: input.electronBinary };
}

/** The Electron binary the `electron` package installed, or undefined (the package throws when it has none). */
export function findElectron(): string | undefined {
  try {
    const path = createRequire(import.meta.url)('electron') as unknown;
    return typeof path === 'string' && existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

async function run(): Promise<number> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const launch = chooseLaunch({ electronBinary: findElectron(), platform: process.platform, env: process.env });
  if (launch.kind === 'electron') return waitFor(spawn(launch.binary, [root, ...process.argv.slice(2)], { stdio: 'inherit' }), 'the desktop app');
  process.stderr.write(`Starting Gatehouse headless with its console: ${launch.reason}.\n`);
  // The Node options the bin script's `#!/usr/bin/env -S node ...` line gives (NODE_OPTIONS reaches both alike).
  const daemon = spawn(process.execPath, [...HEAP_NODE_FLAGS, join(root, 'bin', 'gatehouse.js'), 'daemon', '--ui', ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  return waitFor(daemon, 'the daemon');
}

/**
 * Waits for the child this process started on its terminal, and exits with its code. The terminal
 * sends Ctrl-C (SIGINT) to its whole foreground group, the child included: forwarding it too would
 * be a second SIGINT, which ends the daemon in the middle of its stop, as a second Ctrl-C does. So
 * this process passes on only SIGTERM, which is sent to one pid.
 */
function waitFor(child: ChildProcess, what: string): Promise<number> {
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`Could not start ${what}: ${error.message}\n`);
      resolve(1);
    });
    // A child ended by a signal exits as a shell reports it: 128 + the signal's number.
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await run();
}
