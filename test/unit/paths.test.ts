import { chmod, chown, lchown, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureUserOnlyDir, maxSocketPathBytes, resolvePaths } from '../../src/node/paths.js';

const isRoot = process.getuid?.() === 0;
const onUnix = process.platform !== 'win32';

describe('resolvePaths on Linux', () => {
  it('follows the XDG variables when they are set', () => {
    const p = resolvePaths({
      platform: 'linux',
      homedir: '/home/ana',
      uid: 1000,
      env: {
        XDG_CONFIG_HOME: '/home/ana/cfg',
        XDG_STATE_HOME: '/home/ana/st',
        XDG_DATA_HOME: '/home/ana/dat',
        XDG_RUNTIME_DIR: '/run/user/1000',
      },
    });
    expect(p).toEqual({
      configDir: '/home/ana/cfg/gatehouse',
      configFile: '/home/ana/cfg/gatehouse/config.json',
      stateDir: '/home/ana/st/gatehouse',
      dataDir: '/home/ana/dat/gatehouse',
      logDir: '/home/ana/st/gatehouse/logs',
      runtimeDir: '/run/user/1000/gatehouse',
      socketPath: '/run/user/1000/gatehouse/mcp.sock',
      controlSocketPath: '/run/user/1000/gatehouse/control.sock',
    });
  });

  it('uses the XDG defaults under the home directory when the variables are unset', () => {
    const p = resolvePaths({ platform: 'linux', homedir: '/home/ana', uid: 1000, env: {} });
    expect(p.configFile).toBe('/home/ana/.config/gatehouse/config.json');
    expect(p.stateDir).toBe('/home/ana/.local/state/gatehouse');
    expect(p.dataDir).toBe('/home/ana/.local/share/gatehouse');
  });

  it('ignores relative XDG values, as the XDG spec requires', () => {
    const p = resolvePaths({ platform: 'linux', homedir: '/home/ana', uid: 1000, env: { XDG_CONFIG_HOME: 'cfg', XDG_RUNTIME_DIR: 'run' } });
    expect(p.configDir).toBe('/home/ana/.config/gatehouse');
    expect(p.runtimeDir).toBe('/home/ana/.local/state/gatehouse/run');
  });

  it('puts the runtime dir inside the per-user state dir when XDG_RUNTIME_DIR is unset, never in a shared dir', () => {
    const p = resolvePaths({ platform: 'linux', homedir: '/home/ana', uid: 1000, env: {} });
    expect(p.runtimeDir).toBe('/home/ana/.local/state/gatehouse/run');
    expect(p.socketPath).toBe('/home/ana/.local/state/gatehouse/run/mcp.sock');
  });
});

describe('resolvePaths on macOS', () => {
  it('keeps config, data and state in Application Support and logs in Library/Logs', () => {
    const p = resolvePaths({ platform: 'darwin', homedir: '/Users/ana', uid: 501, env: { XDG_CONFIG_HOME: '/ignored' } });
    const support = '/Users/ana/Library/Application Support/Gatehouse';
    expect(p).toEqual({
      configDir: support,
      configFile: `${support}/config.json`,
      stateDir: `${support}/state`,
      dataDir: `${support}/data`,
      logDir: '/Users/ana/Library/Logs/Gatehouse',
      runtimeDir: `${support}/run`,
      socketPath: `${support}/run/mcp.sock`,
      controlSocketPath: `${support}/run/control.sock`,
    });
  });
});

describe('resolvePaths on Windows', () => {
  it('keeps the config in APPDATA, the rest in LOCALAPPDATA, and uses per-user named pipes', () => {
    const p = resolvePaths({
      platform: 'win32',
      homedir: 'C:\\Users\\ana',
      uid: undefined,
      env: { APPDATA: 'C:\\Users\\ana\\AppData\\Roaming', LOCALAPPDATA: 'C:\\Users\\ana\\AppData\\Local', USERNAME: 'ana' },
    });
    expect(p).toEqual({
      configDir: 'C:\\Users\\ana\\AppData\\Roaming\\Gatehouse',
      configFile: 'C:\\Users\\ana\\AppData\\Roaming\\Gatehouse\\config.json',
      stateDir: 'C:\\Users\\ana\\AppData\\Local\\Gatehouse\\state',
      dataDir: 'C:\\Users\\ana\\AppData\\Local\\Gatehouse\\data',
      logDir: 'C:\\Users\\ana\\AppData\\Local\\Gatehouse\\logs',
      runtimeDir: 'C:\\Users\\ana\\AppData\\Local\\Gatehouse\\run',
      socketPath: '\\\\.\\pipe\\gatehouse-ana-mcp',
      controlSocketPath: '\\\\.\\pipe\\gatehouse-ana-control',
    });
  });

  it('falls back to the profile folders when APPDATA and LOCALAPPDATA are unset', () => {
    const p = resolvePaths({ platform: 'win32', homedir: 'C:\\Users\\ana', uid: undefined, env: {} });
    expect(p.configDir).toBe('C:\\Users\\ana\\AppData\\Roaming\\Gatehouse');
    expect(p.dataDir).toBe('C:\\Users\\ana\\AppData\\Local\\Gatehouse\\data');
    expect(p.socketPath).toBe('\\\\.\\pipe\\gatehouse-ana-mcp');
  });

  it('gives two user names that differ only in unsafe characters different pipes', () => {
    const a = resolvePaths({ platform: 'win32', homedir: 'C:\\Users\\x', uid: undefined, env: { USERNAME: 'ana b' } });
    const b = resolvePaths({ platform: 'win32', homedir: 'C:\\Users\\x', uid: undefined, env: { USERNAME: 'ana_b' } });
    expect(a.socketPath).toMatch(/^\\\\\.\\pipe\\gatehouse-ana_b-[0-9a-f]{8}-mcp$/);
    expect(b.socketPath).toBe('\\\\.\\pipe\\gatehouse-ana_b-mcp');
  });
});

describe('GATEHOUSE_HOME', () => {
  it('puts every directory under the one given', () => {
    const p = resolvePaths({ platform: 'linux', homedir: '/home/ana', uid: 1000, env: { GATEHOUSE_HOME: '/srv/gh', XDG_RUNTIME_DIR: '/run/user/1000' } });
    expect(p).toEqual({
      configDir: '/srv/gh',
      configFile: '/srv/gh/config.json',
      stateDir: '/srv/gh/state',
      dataDir: '/srv/gh/data',
      logDir: '/srv/gh/logs',
      runtimeDir: '/srv/gh/run',
      socketPath: '/srv/gh/run/mcp.sock',
      controlSocketPath: '/srv/gh/run/control.sock',
    });
  });

  it('refuses a relative GATEHOUSE_HOME', () => {
    expect(() => resolvePaths({ platform: 'linux', homedir: '/home/ana', uid: 1000, env: { GATEHOUSE_HOME: 'gh' } })).toThrow(
      /GATEHOUSE_HOME must be an absolute path/,
    );
  });

  it('gives each GATEHOUSE_HOME its own named pipes on Windows', () => {
    const a = resolvePaths({ platform: 'win32', homedir: 'C:\\Users\\ana', uid: undefined, env: { USERNAME: 'ana', GATEHOUSE_HOME: 'C:\\t\\a' } });
    const b = resolvePaths({ platform: 'win32', homedir: 'C:\\Users\\ana', uid: undefined, env: { USERNAME: 'ana', GATEHOUSE_HOME: 'C:\\t\\b' } });
    expect(a.configFile).toBe('C:\\t\\a\\config.json');
    expect(a.socketPath).toMatch(/^\\\\\.\\pipe\\gatehouse-ana-[0-9a-f]{8}-mcp$/);
    expect(a.socketPath).not.toBe(b.socketPath);
    expect(a.controlSocketPath).toBe(a.socketPath.replace(/-mcp$/, '-control'));
  });
});

describe('socket path length', () => {
  const long = `/home/${'a'.repeat(90)}`;

  it('falls back to a short per-uid dir when the socket path would exceed sun_path', () => {
    const p = resolvePaths({ platform: 'linux', homedir: long, uid: 1234, env: {} });
    expect(p.runtimeDir).toBe('/tmp/gatehouse-1234');
    expect(p.socketPath).toBe('/tmp/gatehouse-1234/mcp.sock');
    expect(p.controlSocketPath).toBe('/tmp/gatehouse-1234/control.sock');
    expect(p.stateDir.startsWith(long)).toBe(true);
  });

  it('keeps a socket path that fits exactly', () => {
    // runtime dir + "/control.sock" (13 bytes) = 107 bytes, the Linux maximum.
    const runtime = `/r${'x'.repeat(107 - 13 - 2 - '/gatehouse'.length)}`;
    const p = resolvePaths({ platform: 'linux', homedir: '/home/ana', uid: 1, env: { XDG_RUNTIME_DIR: runtime } });
    expect(Buffer.byteLength(p.controlSocketPath)).toBe(107);
    expect(p.runtimeDir).toBe(`${runtime}/gatehouse`);
  });

  it('counts bytes, not characters, and uses the smaller macOS limit', () => {
    const home = `/Users/${'é'.repeat(22)}`; // 44 bytes of name
    const linux = resolvePaths({ platform: 'linux', homedir: home, uid: 501, env: {} });
    const mac = resolvePaths({ platform: 'darwin', homedir: home, uid: 501, env: {} });
    expect(Buffer.byteLength(linux.controlSocketPath)).toBeLessThanOrEqual(maxSocketPathBytes('linux'));
    expect(mac.runtimeDir).toBe('/tmp/gatehouse-501');
  });

  it('gives each long GATEHOUSE_HOME its own short dir, so parallel test daemons do not collide', () => {
    const a = resolvePaths({ platform: 'darwin', homedir: '/Users/a', uid: 501, env: { GATEHOUSE_HOME: `/var/folders/${'q'.repeat(90)}/a` } });
    const b = resolvePaths({ platform: 'darwin', homedir: '/Users/a', uid: 501, env: { GATEHOUSE_HOME: `/var/folders/${'q'.repeat(90)}/b` } });
    expect(a.runtimeDir).toMatch(/^\/tmp\/gatehouse-501-[0-9a-f]{8}$/);
    expect(a.runtimeDir).not.toBe(b.runtimeDir);
  });

  it.skipIf(!onUnix)('yields a socket path a server can actually listen on after the fallback', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'gh-paths-'));
    const home = path.join(base, 'h'.repeat(100));
    const p = resolvePaths({ platform: process.platform, homedir: '/nowhere', uid: process.getuid?.(), env: { GATEHOUSE_HOME: home } });
    expect(p.runtimeDir.startsWith('/tmp/gatehouse-')).toBe(true);
    try {
      await ensureUserOnlyDir(p.runtimeDir);
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p.controlSocketPath, resolve);
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    } finally {
      await rm(p.runtimeDir, { recursive: true, force: true });
      await rm(base, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!onUnix)('ensureUserOnlyDir', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'gh-dir-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('creates missing directories with mode 0700', async () => {
    const dir = path.join(base, 'a', 'b');
    await ensureUserOnlyDir(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('removes group and other permissions from an existing directory of this user', async () => {
    const dir = path.join(base, 'open');
    await mkdir(dir);
    await chmod(dir, 0o777);
    await ensureUserOnlyDir(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('refuses a directory owned by another user', async () => {
    const dir = path.join(base, 'theirs');
    await mkdir(dir, { mode: 0o700 });
    // Pretending to be uid 4242 needs no privileges: the directory is then "someone else's".
    await expect(ensureUserOnlyDir(dir, { uid: 4242 })).rejects.toThrow(/theirs: is owned by uid \d+, not by you \(uid 4242\)/);
  });

  it.skipIf(!isRoot)('refuses a directory that another user created first (real chown)', async () => {
    const dir = path.join(base, 'squatted');
    await mkdir(dir, { mode: 0o700 });
    await chown(dir, 4242, 4242);
    await expect(ensureUserOnlyDir(dir)).rejects.toThrow(/is owned by uid 4242, not by you/);
  });

  it('refuses a path that is a file', async () => {
    const file = path.join(base, 'file');
    await writeFile(file, 'x');
    await expect(ensureUserOnlyDir(file)).rejects.toThrow(/file: (cannot create the directory: EEXIST|exists but is not a directory)/);
  });

  it('follows a symbolic link this user made', async () => {
    const real = path.join(base, 'real');
    await mkdir(real, { mode: 0o755 });
    const link = path.join(base, 'link');
    await symlink(real, link);
    await ensureUserOnlyDir(link);
    expect((await stat(real)).mode & 0o777).toBe(0o700);
  });

  it.skipIf(!isRoot)('refuses a symbolic link planted by another user', async () => {
    const real = path.join(base, 'real');
    await mkdir(real, { mode: 0o700 });
    const link = path.join(base, 'planted');
    await symlink(real, link);
    await lchown(link, 4242, 4242);
    await expect(ensureUserOnlyDir(link)).rejects.toThrow(/planted: is a symbolic link owned by uid 4242/);
  });
});
