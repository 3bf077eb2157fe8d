/**
 * What the clients capability does with a client's config: detect installed clients, list the
 * MCP servers each has configured (without secret values: issue 14's shadow-server check reuses
 * this), plan the Gatehouse entry (setup), and plan moving a client's own servers behind Gatehouse
 * (import). Planning reads only; `files.ts` writes, with backups and a journal for `--undo`.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { GatehouseError } from '../../common/errors.js';
import type { ClientServer } from '../../core/catalog/shadow.js';
import { SERVER_NAME_PATTERN } from '../../common/names.js';
import { editConfigFile } from '../config-file.js';
import { USER_SECRET_NAME } from '../secrets/resolver.js';
import { readText, type FileChange } from './files.js';
import { CLIENT_IDS, CLIENTS, type BridgeLaunch, type ClientDefinition, type ClientId, type ClientServerEntry, type Place } from './registry.js';

/** The name Gatehouse's own entry has in every client. */
export const GATEHOUSE_ENTRY = 'gatehouse';

/** Reads a client's document (an absent file is empty). */
export async function readClientConfig(
  client: ClientDefinition,
  place: Place,
): Promise<{ file: string; text: string | undefined; doc: Record<string, unknown> }> {
  const file = client.configFile(place);
  const text = await readText(file);
  return { file, text, doc: text === undefined ? {} : client.format.read(text, file) };
}

function at(doc: Record<string, unknown>, keys: string[]): unknown {
  let value: unknown = doc;
  for (const key of keys) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** True for an entry that runs the Gatehouse bridge (ours, or one a person wrote by hand). */
export function isGatehouseEntry(name: string, entry: ClientServerEntry): boolean {
  if (name === GATEHOUSE_ENTRY) return true;
  const args = entry.args ?? [];
  return entry.type === 'stdio' && args.includes('connect') && /gatehouse/i.test([entry.command ?? '', ...args].join(' '));
}

/** Every server entry in a client's document, normalized; entries it cannot read are skipped. */
export function serverEntries(client: ClientDefinition, doc: Record<string, unknown>): ClientServerEntry[] {
  const servers = at(doc, client.serversPath);
  if (typeof servers !== 'object' || servers === null || Array.isArray(servers)) return [];
  return Object.entries(servers as Record<string, unknown>)
    .map(([name, value]) => client.readEntry(name, value))
    .filter((e): e is ClientServerEntry => e !== undefined);
}

export interface InstalledClient {
  id: ClientId;
  title: string;
  file: string;
  installed: boolean;
  /** The Gatehouse entry is there. */
  configured: boolean;
  /** Set when the file cannot be read or parsed. */
  problem?: string;
}

/** Which supported clients are installed for this user, and which already use Gatehouse. */
export async function detectClients(place: Place): Promise<InstalledClient[]> {
  const out: InstalledClient[] = [];
  for (const id of CLIENT_IDS) {
    const client = CLIENTS[id];
    const file = client.configFile(place);
    const installed = existsSync(file) || client.installedWhen(place).some((p) => existsSync(p));
    let configured = false;
    let problem: string | undefined;
    try {
      const { doc } = await readClientConfig(client, place);
      configured = serverEntries(client, doc).some((e) => isGatehouseEntry(e.name, e));
    } catch (error) {
      problem = (error as Error).message;
    }
    out.push({ id, title: client.title, file, installed, configured, ...(problem ? { problem } : {}) });
  }
  return out;
}

/** A server as a client has it, without secret values: for listings and the shadow-server check (src/core/catalog/shadow.ts). */
export interface ConfiguredServer extends ClientServer {
  client: ClientId;
  /** Names only. */
  headerNames: string[];
}

/**
 * The MCP servers configured in every installed client, without the values of their environment
 * or headers (which often hold credentials). Clients whose file cannot be read are reported with
 * the problem and no servers.
 */
export async function listConfiguredServers(place: Place): Promise<{ client: ClientId; file: string; servers: ConfiguredServer[]; problem?: string }[]> {
  const out: { client: ClientId; file: string; servers: ConfiguredServer[]; problem?: string }[] = [];
  for (const found of await detectClients(place)) {
    if (!found.installed) continue;
    const client = CLIENTS[found.id];
    try {
      const { file, doc } = await readClientConfig(client, place);
      const servers = serverEntries(client, doc).map((e): ConfiguredServer => ({
        client: found.id,
        file,
        name: e.name,
        type: e.type,
        ...(e.command !== undefined ? { command: e.command } : {}),
        ...(e.args ? { args: e.args } : {}),
        envKeys: Object.keys(e.env ?? {}).sort(),
        ...(e.url !== undefined ? { url: redactUrl(e.url) } : {}),
        headerNames: Object.keys(e.headers ?? {}).sort(),
        disabled: e.disabled,
        gatehouse: isGatehouseEntry(e.name, e),
      }));
      out.push({ client: found.id, file, servers });
    } catch (error) {
      out.push({ client: found.id, file: found.file, servers: [], problem: (error as Error).message });
    }
  }
  return out;
}

/** A URL without its user information and query values (both sometimes carry keys). */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const key of [...u.searchParams.keys()]) u.searchParams.set(key, '…');
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

/** The change that puts Gatehouse's entry in the client's config (nothing to change when it is already there as wanted). */
export async function planSetup(client: ClientDefinition, place: Place, launch: BridgeLaunch): Promise<{ change: FileChange; entry: Record<string, unknown> }> {
  const { file, text, doc } = await readClientConfig(client, place);
  const entry = client.entry(launch);
  const current = at(doc, [...client.serversPath, GATEHOUSE_ENTRY]);
  if (isDeepStrictEqual(current, entry)) return { change: { file, before: text, after: text ?? '' }, entry };
  const after = client.format.set(text ?? '', [...client.serversPath, GATEHOUSE_ENTRY], entry);
  // The edit must read back as exactly the entry wanted, in a document that still parses.
  if (!isDeepStrictEqual(at(client.format.read(after, file), [...client.serversPath, GATEHOUSE_ENTRY]), entry)) {
    throw new GatehouseError('client_config_edit_failed', `${file}: the edit did not produce the expected entry; nothing was changed`);
  }
  return { change: { file, before: text, after }, entry };
}

// --- Import ------------------------------------------------------------------------------------

/** A value that is a credential: by the variable's or header's name, or by a well-known token shape. */
export function looksLikeCredential(key: string, value: string): boolean {
  if (value.length < 8 || /^\s*$/.test(value)) return false;
  if (/(key|token|secret|passw(or)?d|pwd|auth|credential|bearer|cookie|session|private)/i.test(key)) return true;
  return /^(gh[pousr]_|github_pat_|sk-|sk_live_|sk_test_|xox[abpr]-|AKIA[0-9A-Z]{12}|glpat-|Bearer\s)/.test(value);
}

/** A client's server name as a Gatehouse server name (lower-case letters, digits, hyphens). */
export function gatehouseServerName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32)
    .replace(/-+$/g, '');
  return SERVER_NAME_PATTERN.test(cleaned) ? cleaned : 'server';
}

/** A secret's name for a value moved out of a client's config: `<server>_<VARIABLE>`. */
function secretNameFor(server: string, key: string): string {
  const name = `${server}_${key}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
  return USER_SECRET_NAME.test(name) ? name : `imported_${Math.abs(hashCode(name))}`;
}

function hashCode(text: string): number {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) | 0;
  return h;
}

export interface ImportPlan {
  /** Servers to add to Gatehouse's config, as written there (secret references, never values). */
  add: Record<string, Record<string, unknown>>;
  /** Values to store in the key store as the user's secrets, by secret name. */
  secrets: { name: string; value: string; from: string }[];
  /** Client entries replaced by the Gatehouse entry. */
  moved: { entry: string; server: string; note?: string }[];
  /** Client entries left where they are, and why. */
  leftAlone: { entry: string; reason: string }[];
}

export interface ImportOptions {
  /** The servers Gatehouse's config already has (as written). */
  existing: Record<string, unknown>;
  /** Move literal credentials into the key store (`store`) or keep them in Gatehouse's config (`keep`). */
  secrets: 'store' | 'keep';
  /** In managed mode, the catalog's server names: only those are moved; the policy runs them from the catalog. */
  managed?: { servers: string[] };
  client: ClientId;
}

/** What `clients import` would do with a client's servers. Reads only. */
export function planImport(entries: ClientServerEntry[], options: ImportOptions): ImportPlan {
  const plan: ImportPlan = { add: {}, secrets: [], moved: [], leftAlone: [] };
  const taken = new Set(Object.keys(options.existing));
  for (const entry of entries) {
    if (isGatehouseEntry(entry.name, entry)) continue;
    const values = [...Object.values(entry.env ?? {}), ...Object.values(entry.headers ?? {}), entry.url ?? '', entry.command ?? '', ...(entry.args ?? [])];
    if (values.some((v) => v.includes('${'))) {
      plan.leftAlone.push({ entry: entry.name, reason: 'it uses ${…} values only this client can fill in' });
      continue;
    }
    const base = gatehouseServerName(entry.name);
    if (options.managed) {
      if (options.managed.servers.includes(base)) plan.moved.push({ entry: entry.name, server: base, note: "provided by the organisation's catalog" });
      else plan.leftAlone.push({ entry: entry.name, reason: 'the managed policy does not allow it (not in the catalog)' });
      continue;
    }
    const secrets: ImportPlan['secrets'] = [];
    const move = (server: string, map: Record<string, string> | undefined): Record<string, string> | undefined => {
      if (!map) return undefined;
      const out: Record<string, string> = {};
      for (const [key, value] of Object.entries(map)) {
        if (options.secrets === 'store' && looksLikeCredential(key, value)) {
          const name = secretNameFor(server, key);
          secrets.push({ name, value, from: `${entry.name}: ${key}` });
          out[key] = `\${secret:${name}}`;
        } else out[key] = value.replace(/\$/g, '$$$$');
      }
      return out;
    };
    const build = (server: string): Record<string, unknown> => {
      secrets.length = 0;
      const common = entry.disabled ? { enabled: false } : {};
      if (entry.type === 'stdio') {
        const env = move(server, entry.env);
        return {
          type: 'stdio',
          command: entry.command!,
          ...(entry.args && entry.args.length > 0 ? { args: entry.args.map((a) => a.replace(/\$/g, '$$$$')) } : {}),
          ...(entry.cwd ? { cwd: entry.cwd } : {}),
          ...(env && Object.keys(env).length > 0 ? { env } : {}),
          ...common,
        };
      }
      const headers = move(server, entry.headers);
      return { type: 'http', url: entry.url!, ...(headers && Object.keys(headers).length > 0 ? { headers } : {}), ...common };
    };
    let server = base;
    let config = build(server);
    if (taken.has(server)) {
      if (sameServer(options.existing[server], config)) {
        plan.moved.push({ entry: entry.name, server, note: 'already in Gatehouse' });
        continue;
      }
      server = gatehouseServerName(`${base}-${options.client}`);
      config = build(server);
      if (taken.has(server) && !sameServer(options.existing[server], config)) {
        plan.leftAlone.push({ entry: entry.name, reason: `Gatehouse already has different servers named "${base}" and "${server}"` });
        continue;
      }
    }
    taken.add(server);
    plan.add[server] = config;
    plan.secrets.push(...secrets);
    plan.moved.push({ entry: entry.name, server });
  }
  return plan;
}

/** Same launch (secret references count as equal to anything: the values are not compared). */
function sameServer(a: unknown, b: Record<string, unknown>): boolean {
  const strip = (v: unknown): unknown => JSON.parse(JSON.stringify(v ?? null).replace(/\$\{secret:[^}]*\}/g, '${secret}'));
  const pick = (v: unknown) => {
    const o = (v ?? {}) as Record<string, unknown>;
    return strip({ type: o.type, command: o.command, args: o.args ?? [], url: o.url });
  };
  return isDeepStrictEqual(pick(a), pick(b));
}

/** The client's document without the moved entries and with the Gatehouse entry. */
export function planClientAfterImport(
  client: ClientDefinition,
  file: string,
  text: string | undefined,
  moved: string[],
  entry: Record<string, unknown>,
): FileChange {
  let after = text ?? '';
  for (const name of moved) after = client.format.remove(after, [...client.serversPath, name]);
  after = client.format.set(after, [...client.serversPath, GATEHOUSE_ENTRY], entry);
  const check = serverEntries(client, client.format.read(after, file)).map((e) => e.name);
  if (moved.some((m) => check.includes(m)) || !check.includes(GATEHOUSE_ENTRY)) {
    throw new GatehouseError('client_config_edit_failed', `${file}: the edit did not come out as planned; nothing was changed`);
  }
  return { file, before: text, after };
}

/**
 * Gatehouse's config.json with the imported servers, checked the way every edit is (schema,
 * variables) on a private copy, so that a plan never touches the real file.
 */
export async function planGatehouseConfig(configFile: string, add: Record<string, Record<string, unknown>>): Promise<FileChange> {
  const before = await readText(configFile);
  if (Object.keys(add).length === 0) return { file: configFile, before, after: before ?? '' };
  const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-import-'));
  try {
    const copy = path.join(dir, 'config.json');
    if (before !== undefined) await copyFile(configFile, copy);
    else await import('node:fs/promises').then((fs) => fs.writeFile(copy, '{ "servers": {} }\n'));
    const result = await editConfigFile(copy, (raw) => {
      const servers = (raw.servers ??= {}) as Record<string, unknown>;
      for (const [name, config] of Object.entries(add)) servers[name] = config;
    });
    if (!result.ok) throw new GatehouseError('invalid', result.error.replace(copy, configFile));
    return { file: configFile, before, after: (await readText(copy))! };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
