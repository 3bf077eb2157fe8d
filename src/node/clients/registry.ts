/**
 * The MCP clients Gatehouse can set up: where each keeps its user-level config on Linux, macOS and
 * Windows, its format, where the servers live in it, the entry it expects for a stdio server, how
 * it launches one (above all, the environment it passes), and how to read the entries a user
 * already has. Checked against each client's own documentation (docs/clients.md lists the sources).
 *
 * Pure: every function takes the platform, the home directory and the environment as arguments.
 */
import path from 'node:path';
import type { ConfigFormat } from './format.js';
import { jsonFormat } from './json-format.js';
import { tomlFormat } from './toml-format.js';

export const CLIENT_IDS = ['claude-desktop', 'claude-code', 'cursor', 'vscode', 'windsurf', 'zed', 'codex', 'gemini-cli'] as const;
export type ClientId = (typeof CLIENT_IDS)[number];

export function isClientId(value: string): value is ClientId {
  return (CLIENT_IDS as readonly string[]).includes(value);
}

/** Where a client is: the platform, the user's home and environment. */
export interface Place {
  platform: NodeJS.Platform;
  home: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** How the bridge is launched: an absolute command, its arguments, and the environment the entry sets. */
export interface BridgeLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** A server as a client's config names it, normalized (values of env and headers included: callers decide what to show). */
export interface ClientServerEntry {
  name: string;
  type: 'stdio' | 'http';
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  url?: string;
  headers?: Record<string, string>;
  disabled: boolean;
}

/**
 * What a client passes to a stdio server it starts: `sdk-default` is the MCP SDK's allow-list
 * (HOME, LOGNAME, PATH, SHELL, TERM, USER on POSIX), `inherit` is the client's whole environment,
 * a list is that allow-list. The entry's own `env` is added in every case.
 */
export type LaunchEnvironment = 'sdk-default' | 'inherit' | readonly string[];

export interface ClientDefinition {
  id: ClientId;
  title: string;
  format: ConfigFormat;
  /** The user-level config file. */
  configFile(place: Place): string;
  /** Directories or files whose presence means the client is installed for this user. */
  installedWhen(place: Place): string[];
  /** Where the servers are in the document. */
  serversPath: string[];
  /** The client's own entry for the bridge. */
  entry(launch: BridgeLaunch): Record<string, unknown>;
  /** A value found under `serversPath`, normalized; undefined for what is not a server entry. */
  readEntry(name: string, value: unknown): ClientServerEntry | undefined;
  launchEnvironment: LaunchEnvironment;
}

/** The MCP SDK's `getDefaultEnvironment()` allow-list, per platform. */
export const SDK_DEFAULT_ENV: Record<'posix' | 'win32', readonly string[]> = {
  posix: ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER'],
  win32: [
    'APPDATA',
    'HOMEDRIVE',
    'HOMEPATH',
    'LOCALAPPDATA',
    'PATH',
    'PROCESSOR_ARCHITECTURE',
    'SYSTEMDRIVE',
    'SYSTEMROOT',
    'TEMP',
    'USERNAME',
    'USERPROFILE',
    'PROGRAMFILES',
  ],
};

/** Codex CLI's allow-list of variables passed to MCP servers (its rmcp client, on POSIX). */
const CODEX_ENV = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'USER', '__CF_USER_TEXT_ENCODING', 'LANG', 'LC_ALL', 'TERM', 'TMPDIR', 'TZ'] as const;

function p(place: Place): path.PlatformPath {
  return place.platform === 'win32' ? path.win32 : path.posix;
}

/** An absolute environment variable, or the fallback (XDG says to ignore relative values). */
function dirFrom(place: Place, name: string, fallback: string): string {
  const value = place.env[name];
  return value && p(place).isAbsolute(value) ? value : fallback;
}

function appData(place: Place): string {
  return dirFrom(place, 'APPDATA', p(place).join(place.home, 'AppData', 'Roaming'));
}

function xdgConfig(place: Place): string {
  return dirFrom(place, 'XDG_CONFIG_HOME', p(place).join(place.home, '.config'));
}

/** Per platform: Linux (XDG config), macOS (Application Support), Windows (APPDATA). */
function appConfigDir(place: Place, linuxName: string, macName: string, winName: string): string {
  if (place.platform === 'win32') return p(place).join(appData(place), winName);
  if (place.platform === 'darwin') return p(place).join(place.home, 'Library', 'Application Support', macName);
  return p(place).join(xdgConfig(place), linuxName);
}

const strings = (value: unknown): string[] | undefined => (Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined);
const record = (value: unknown): Record<string, string> | undefined => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
};
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * The common reading: `command` + `args` + `env` (+ `cwd`) for stdio, a URL field for HTTP. Each
 * client names its URL and header fields and its "off" switch its own way.
 */
function readCommon(
  name: string,
  value: unknown,
  fields: { url: string[]; headers: string[]; disabled: (v: Record<string, unknown>) => boolean },
): ClientServerEntry | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const disabled = fields.disabled(v);
  const command = text(v.command);
  if (command !== undefined) {
    const args = strings(v.args);
    const env = record(v.env);
    const cwd = text(v.cwd);
    return { name, type: 'stdio', command, ...(args ? { args } : {}), ...(env ? { env } : {}), ...(cwd ? { cwd } : {}), disabled };
  }
  for (const key of fields.url) {
    const url = text(v[key]);
    if (url === undefined) continue;
    const headers = fields.headers.map((h) => record(v[h])).find((h) => h !== undefined);
    return { name, type: 'http', url, ...(headers ? { headers } : {}), disabled };
  }
  return undefined;
}

const withEnv = (launch: BridgeLaunch): Record<string, unknown> => (Object.keys(launch.env).length > 0 ? { env: launch.env } : {});

export const CLIENTS: Record<ClientId, ClientDefinition> = {
  'claude-desktop': {
    id: 'claude-desktop',
    title: 'Claude Desktop',
    format: jsonFormat('json'),
    configFile: (place) => p(place).join(appConfigDir(place, 'Claude', 'Claude', 'Claude'), 'claude_desktop_config.json'),
    installedWhen: (place) => [appConfigDir(place, 'Claude', 'Claude', 'Claude')],
    serversPath: ['mcpServers'],
    entry: (launch) => ({ command: launch.command, args: launch.args, ...withEnv(launch) }),
    readEntry: (name, value) => readCommon(name, value, { url: ['url'], headers: ['headers'], disabled: (v) => v.disabled === true }),
    launchEnvironment: 'sdk-default',
  },
  'claude-code': {
    id: 'claude-code',
    title: 'Claude Code',
    format: jsonFormat('json'),
    // The user scope of `claude mcp add --scope user`: top-level mcpServers in ~/.claude.json.
    configFile: (place) =>
      p(place).join(place.env.CLAUDE_CONFIG_DIR && p(place).isAbsolute(place.env.CLAUDE_CONFIG_DIR) ? place.env.CLAUDE_CONFIG_DIR : place.home, '.claude.json'),
    installedWhen: (place) => [p(place).join(place.home, '.claude.json'), p(place).join(place.home, '.claude')],
    serversPath: ['mcpServers'],
    entry: (launch) => ({ type: 'stdio', command: launch.command, args: launch.args, env: launch.env }),
    readEntry: (name, value) => readCommon(name, value, { url: ['url'], headers: ['headers'], disabled: () => false }),
    launchEnvironment: 'inherit',
  },
  cursor: {
    id: 'cursor',
    title: 'Cursor',
    format: jsonFormat('jsonc'),
    configFile: (place) => p(place).join(place.home, '.cursor', 'mcp.json'),
    installedWhen: (place) => [p(place).join(place.home, '.cursor')],
    serversPath: ['mcpServers'],
    entry: (launch) => ({ command: launch.command, args: launch.args, ...withEnv(launch) }),
    readEntry: (name, value) => readCommon(name, value, { url: ['url'], headers: ['headers'], disabled: (v) => v.disabled === true }),
    launchEnvironment: 'sdk-default',
  },
  vscode: {
    id: 'vscode',
    title: 'VS Code',
    format: jsonFormat('jsonc'),
    configFile: (place) => p(place).join(appConfigDir(place, 'Code', 'Code', 'Code'), 'User', 'mcp.json'),
    installedWhen: (place) => [p(place).join(appConfigDir(place, 'Code', 'Code', 'Code'), 'User')],
    serversPath: ['servers'],
    entry: (launch) => ({ type: 'stdio', command: launch.command, args: launch.args, ...withEnv(launch) }),
    readEntry: (name, value) => readCommon(name, value, { url: ['url'], headers: ['headers'], disabled: () => false }),
    launchEnvironment: 'inherit',
  },
  windsurf: {
    id: 'windsurf',
    title: 'Windsurf',
    format: jsonFormat('jsonc'),
    configFile: (place) => p(place).join(place.home, '.codeium', 'windsurf', 'mcp_config.json'),
    installedWhen: (place) => [p(place).join(place.home, '.codeium', 'windsurf')],
    serversPath: ['mcpServers'],
    entry: (launch) => ({ command: launch.command, args: launch.args, ...withEnv(launch) }),
    readEntry: (name, value) => readCommon(name, value, { url: ['serverUrl', 'url'], headers: ['headers'], disabled: (v) => v.disabled === true }),
    launchEnvironment: 'sdk-default',
  },
  zed: {
    id: 'zed',
    title: 'Zed',
    format: jsonFormat('jsonc'),
    configFile: (place) =>
      place.platform === 'win32'
        ? p(place).join(appData(place), 'Zed', 'settings.json')
        : p(place).join(place.platform === 'darwin' ? p(place).join(place.home, '.config') : xdgConfig(place), 'zed', 'settings.json'),
    installedWhen: (place) => [p(place).dirname(CLIENTS.zed.configFile(place))],
    serversPath: ['context_servers'],
    entry: (launch) => ({ source: 'custom', command: launch.command, args: launch.args, env: launch.env }),
    readEntry: (name, value) => {
      // Older Zed settings nest the command: { "command": { "path", "args", "env" } }.
      if (typeof value === 'object' && value !== null && typeof (value as { command?: unknown }).command === 'object') {
        const c = (value as { command: Record<string, unknown> }).command;
        return readCommon(name, { command: c.path, args: c.args, env: c.env }, { url: [], headers: [], disabled: () => false });
      }
      return readCommon(name, value, { url: ['url'], headers: ['headers'], disabled: (v) => v.enabled === false });
    },
    launchEnvironment: 'inherit',
  },
  codex: {
    id: 'codex',
    title: 'Codex CLI',
    format: tomlFormat,
    configFile: (place) => p(place).join(dirFrom(place, 'CODEX_HOME', p(place).join(place.home, '.codex')), 'config.toml'),
    installedWhen: (place) => [dirFrom(place, 'CODEX_HOME', p(place).join(place.home, '.codex'))],
    serversPath: ['mcp_servers'],
    entry: (launch) => ({ command: launch.command, args: launch.args, ...withEnv(launch) }),
    readEntry: (name, value) => readCommon(name, value, { url: ['url'], headers: ['http_headers'], disabled: (v) => v.enabled === false }),
    launchEnvironment: CODEX_ENV,
  },
  'gemini-cli': {
    id: 'gemini-cli',
    title: 'Gemini CLI',
    format: jsonFormat('jsonc'),
    configFile: (place) => p(place).join(place.home, '.gemini', 'settings.json'),
    installedWhen: (place) => [p(place).join(place.home, '.gemini')],
    serversPath: ['mcpServers'],
    entry: (launch) => ({ command: launch.command, args: launch.args, ...withEnv(launch) }),
    readEntry: (name, value) => readCommon(name, value, { url: ['httpUrl', 'url'], headers: ['headers'], disabled: () => false }),
    launchEnvironment: 'inherit',
  },
};

/**
 * The environment a client gives the bridge it starts from this entry: what it passes of its own
 * environment (`parent`), plus the entry's `env`.
 */
export function launchEnvironmentOf(
  client: ClientDefinition,
  place: Place,
  parent: Readonly<Record<string, string | undefined>>,
  entryEnv: Record<string, string>,
): Record<string, string> {
  const spec = client.launchEnvironment;
  const names = spec === 'inherit' ? Object.keys(parent) : spec === 'sdk-default' ? SDK_DEFAULT_ENV[place.platform === 'win32' ? 'win32' : 'posix'] : spec;
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = parent[name];
    // The SDK drops values that look like exported shell functions; so does this.
    if (value !== undefined && !value.startsWith('()')) out[name] = value;
  }
  return { ...out, ...entryEnv };
}
