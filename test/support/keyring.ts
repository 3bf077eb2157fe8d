/**
 * A real Secret Service for tests: a private session `dbus-daemon` and an unlocked
 * `gnome-keyring-daemon --components=secrets` with a throwaway XDG_DATA_HOME, both children of the
 * test process and stopped by their pids. `start()` sets DBUS_SESSION_BUS_ADDRESS in this process
 * (so `@napi-rs/keyring` here reaches it) and returns the variables to hand to child processes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestKeyring {
  env: { DBUS_SESSION_BUS_ADDRESS: string };
  stop(): Promise<void>;
}

export function keyringAvailable(): boolean {
  return ['dbus-daemon', 'gnome-keyring-daemon', 'dbus-send'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 5000);
  return exited.finally(() => clearTimeout(timer));
}

export async function startKeyring(): Promise<TestKeyring> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-keyring-'));
  const data = join(dir, 'data');
  const runtime = join(dir, 'run');
  mkdirSync(data, { recursive: true });
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const address = `unix:path=${join(dir, 'bus')}`;
  const bus = spawn('dbus-daemon', ['--session', '--nofork', '--nopidfile', `--address=${address}`, '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let busOut = '';
  bus.stdout!.on('data', (c: Buffer) => (busOut += c.toString()));
  bus.stderr!.on('data', () => undefined);
  await waitFor(() => busOut.includes('unix:') || bus.exitCode !== null, 'dbus-daemon');
  if (bus.exitCode !== null) throw new Error('dbus-daemon exited at start');
  const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address, XDG_DATA_HOME: data, XDG_RUNTIME_DIR: runtime, HOME: dir };
  const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  keyring.stderr!.on('data', () => undefined);
  keyring.stdin!.end('test-keyring-password');
  const owned = () =>
    spawnSync(
      'dbus-send',
      [
        '--session',
        '--print-reply',
        '--dest=org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus.NameHasOwner',
        'string:org.freedesktop.secrets',
      ],
      {
        env,
        encoding: 'utf8',
      },
    ).stdout.includes('boolean true');
  try {
    await waitFor(() => keyring.exitCode !== null || owned(), 'gnome-keyring-daemon to own org.freedesktop.secrets');
    if (keyring.exitCode !== null) throw new Error('gnome-keyring-daemon exited at start');
  } catch (error) {
    await stopChild(keyring);
    await stopChild(bus);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const previous = process.env.DBUS_SESSION_BUS_ADDRESS;
  process.env.DBUS_SESSION_BUS_ADDRESS = address;
  return {
    env: { DBUS_SESSION_BUS_ADDRESS: address },
    async stop() {
      if (previous === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
      else process.env.DBUS_SESSION_BUS_ADDRESS = previous;
      await stopChild(keyring);
      await stopChild(bus);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
