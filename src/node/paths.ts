/**
 * Where Gatehouse keeps its files on each platform, and the one check every private directory passes.
 *
 * `resolvePaths` is pure: it takes the platform, the environment, the home directory and the uid
 * as arguments, so one test run can check Linux, macOS and Windows layouts. `ensureUserOnlyDir`
 * touches the disk. docs/configuration.md lists the resulting paths for users.
 */
import { homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { chmod, lstat, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { GatehouseError } from '../common/errors.js';

export interface PathsInput {
  platform: NodeJS.Platform;
  env: Readonly<Record<string, string | undefined>>;
  homedir: string;
  /** The OS user id; `undefined` on Windows. Names the short socket directory used when a socket path is too long. */
  uid: number | undefined;
}

export interface GatehousePaths {
  /** Holds `config.json` (and the generated `config.schema.json` beside it). */
  configDir: string;
  configFile: string;
  /** Things the daemon keeps between runs that are not user data: audit database, quota counters, pins. */
  stateDir: string;
  /** User data the default servers write to (`${dataDir}` in the config file). */
  dataDir: string;
  logDir: string;
  /** Sockets, pid and lock files; user-only. */
  runtimeDir: string;
  /** Where MCP clients (`gatehouse connect`) reach the daemon: a unix socket, or a named pipe on Windows. */
  socketPath: string;
  /** Where the CLI and the app talk to the daemon's control API. */
  controlSocketPath: string;
}

/**
 * Longest unix socket path `listen()` accepts, in bytes: `sun_path` is 108 bytes on Linux and
 * 104 on macOS and the BSDs, and both count the terminating NUL.
 */
export function maxSocketPathBytes(platform: NodeJS.Platform): number {
  return platform === 'linux' || platform === 'android' ? 107 : 103;
}

const APP_DIR = 'gatehouse';
const APP_DIR_TITLE = 'Gatehouse';
const MCP_SOCKET = 'mcp.sock';
const CONTROL_SOCKET = 'control.sock';

export function resolvePaths(input: PathsInput): GatehousePaths {
  const win = input.platform === 'win32';
  const p = win ? path.win32 : path.posix;
  const home = nonEmpty(input.env['GATEHOUSE_HOME']);

  let dirs: Omit<GatehousePaths, 'configFile' | 'socketPath' | 'controlSocketPath'>;
  if (home !== undefined) {
    if (!p.isAbsolute(home)) {
      throw new GatehouseError('invalid_environment', `GATEHOUSE_HOME must be an absolute path, got "${home}"`);
    }
    const root = p.normalize(home);
    dirs = {
      configDir: root,
      stateDir: p.join(root, 'state'),
      dataDir: p.join(root, 'data'),
      logDir: p.join(root, 'logs'),
      runtimeDir: p.join(root, 'run'),
    };
  } else if (win) {
    const roaming = absoluteOr(p, input.env['APPDATA'], p.join(input.homedir, 'AppData', 'Roaming'));
    const local = absoluteOr(p, input.env['LOCALAPPDATA'], p.join(input.homedir, 'AppData', 'Local'));
    const localRoot = p.join(local, APP_DIR_TITLE);
    dirs = {
      configDir: p.join(roaming, APP_DIR_TITLE),
      stateDir: p.join(localRoot, 'state'),
      dataDir: p.join(localRoot, 'data'),
      logDir: p.join(localRoot, 'logs'),
      runtimeDir: p.join(localRoot, 'run'),
    };
  } else if (input.platform === 'darwin') {
    const support = p.join(input.homedir, 'Library', 'Application Support', APP_DIR_TITLE);
    dirs = {
      configDir: support,
      stateDir: p.join(support, 'state'),
      dataDir: p.join(support, 'data'),
      logDir: p.join(input.homedir, 'Library', 'Logs', APP_DIR_TITLE),
      runtimeDir: p.join(support, 'run'),
    };
  } else {
    // Linux and other unix-likes follow the XDG Base Directory spec, which says to ignore relative values.
    const xdg = (name: string, fallback: string[]) => absoluteOr(p, input.env[name], p.join(input.homedir, ...fallback));
    const stateDir = p.join(xdg('XDG_STATE_HOME', ['.local', 'state']), APP_DIR);
    const runtime = nonEmpty(input.env['XDG_RUNTIME_DIR']);
    dirs = {
      configDir: p.join(xdg('XDG_CONFIG_HOME', ['.config']), APP_DIR),
      stateDir,
      dataDir: p.join(xdg('XDG_DATA_HOME', ['.local', 'share']), APP_DIR),
      logDir: p.join(stateDir, 'logs'),
      // $XDG_RUNTIME_DIR is user-only by spec; without it, a directory inside the (per-user) state dir.
      runtimeDir: runtime !== undefined && p.isAbsolute(runtime) ? p.join(runtime, APP_DIR) : p.join(stateDir, 'run'),
    };
  }

  const configFile = p.join(dirs.configDir, 'config.json');

  if (win) {
    const user = pipeUserPart(input.env['USERNAME'] ?? p.basename(input.homedir));
    // Under GATEHOUSE_HOME, several daemons of one user may run at once (tests): tell their pipes apart.
    const prefix = home === undefined ? `gatehouse-${user}` : `gatehouse-${user}-${shortHash(dirs.configDir.toLowerCase())}`;
    return {
      ...dirs,
      configFile,
      socketPath: `\\\\.\\pipe\\${prefix}-mcp`,
      controlSocketPath: `\\\\.\\pipe\\${prefix}-control`,
    };
  }

  let runtimeDir = dirs.runtimeDir;
  const longest = p.join(runtimeDir, CONTROL_SOCKET);
  if (Buffer.byteLength(longest, 'utf8') > maxSocketPathBytes(input.platform)) {
    // Too long for sun_path: use a short directory that only this user may own (ensureUserOnlyDir refuses
    // one that someone else created first). Under GATEHOUSE_HOME the name also carries a hash of the home,
    // so that parallel test daemons do not share sockets.
    const owner = input.uid !== undefined ? String(input.uid) : pipeUserPart(input.env['USER'] ?? p.basename(input.homedir));
    const suffix = home === undefined ? '' : `-${shortHash(dirs.configDir)}`;
    runtimeDir = `/tmp/gatehouse-${owner}${suffix}`;
  }
  return {
    ...dirs,
    runtimeDir,
    configFile,
    socketPath: p.join(runtimeDir, MCP_SOCKET),
    controlSocketPath: p.join(runtimeDir, CONTROL_SOCKET),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function absoluteOr(p: path.PlatformPath, value: string | undefined, fallback: string): string {
  const v = nonEmpty(value);
  return v !== undefined && p.isAbsolute(v) ? v : fallback;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/**
 * A user name made safe for a pipe or directory name. When characters had to be replaced, a hash of
 * the original is appended so that two different names never map to the same pipe.
 */
function pipeUserPart(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'user';
  return safe === name ? safe : `${safe}-${shortHash(name)}`;
}

export interface EnsureDirOptions {
  /** Defaults to `process.platform`; on Windows the directory is created and its ACL (inherited from the profile) trusted. */
  platform?: NodeJS.Platform;
  /** Defaults to `process.getuid()`. */
  uid?: number;
}

/**
 * Creates `dir` (and missing parents) with mode 0700, or checks an existing one: it must be a
 * directory owned by this user; group and other permission bits are removed. Throws a
 * `GatehouseError` (code `unsafe_directory`) naming the directory and the problem otherwise.
 *
 * A symbolic link is followed only when this user owns the link itself (dotfile managers link
 * `~/.config/gatehouse`); a link planted by someone else is refused.
 */
export async function ensureUserOnlyDir(dir: string, options: EnsureDirOptions = {}): Promise<void> {
  const platform = options.platform ?? process.platform;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new GatehouseError('unsafe_directory', `${dir}: cannot create the directory: ${describeFsError(error)}`, { cause: error });
  }
  if (platform === 'win32') return;

  const uid = options.uid ?? process.getuid?.();
  if (uid === undefined) return;

  const link = await lstat(dir);
  if (link.isSymbolicLink() && link.uid !== uid) {
    throw new GatehouseError('unsafe_directory', `${dir}: is a symbolic link owned by uid ${link.uid}, not by you (uid ${uid}); remove it`);
  }
  const info = link.isSymbolicLink() ? await stat(dir) : link;
  if (!info.isDirectory()) {
    throw new GatehouseError('unsafe_directory', `${dir}: exists but is not a directory`);
  }
  if (info.uid !== uid) {
    throw new GatehouseError(
      'unsafe_directory',
      `${dir}: is owned by uid ${info.uid}, not by you (uid ${uid}); another user may have created it to intercept Gatehouse, so it is not used`,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    try {
      await chmod(dir, 0o700);
    } catch (error) {
      throw new GatehouseError(
        'unsafe_directory',
        `${dir}: is open to other users (mode ${octal(info.mode)}) and could not be made private: ${describeFsError(error)}`,
        { cause: error },
      );
    }
    const after = await stat(dir);
    if ((after.mode & 0o077) !== 0) {
      throw new GatehouseError('unsafe_directory', `${dir}: is open to other users (mode ${octal(after.mode)}) and could not be made private`);
    }
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

function describeFsError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code !== undefined ? code : error.message;
  }
  return String(error);
}

/** The paths for this process's user and environment (GATEHOUSE_HOME, XDG variables, platform). */
export function defaultPaths(env: NodeJS.ProcessEnv = process.env): GatehousePaths {
  return resolvePaths({ platform: process.platform, env, homedir: homedir(), uid: process.getuid?.() });
}

/** Whether something is at this path: a file, a directory, a socket, or a symlink even if dangling. */
export function entryExists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}
