/**
 * The catalogue on the command line (docs/catalog.md). For people: `gatehouse catalog list|show`,
 * `gatehouse servers install|pin`. For admins: `gatehouse policy catalog import|lint|promote`
 * (editing a bundle directory before it is signed) and `gatehouse hub baselines|shadow` (what the
 * fleet reports).
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CATALOG_META_KEY,
  CatalogExtensionSchema,
  ServerJsonSchema,
  type CatalogEntryInfo,
  type CatalogListing,
  type InstallResult,
} from '../common/catalog.js';
import { formatPath } from '../common/config.js';
import { GatehouseError, errorMessage } from '../common/errors.js';
import { isServerName, SERVER_NAME_RULE } from '../common/names.js';
import { baselines as foldBaselines, promotion, type Baseline } from '../core/catalog/baselines.js';
import { lintEntry } from '../core/catalog/lint.js';
import { callControl } from '../node/control/control-client.js';
import { NpmInstaller } from '../node/catalog/npm.js';
import { MAX_FILE_BYTES } from '../node/policy/content.js';
import type { GatehousePaths } from '../node/paths.js';
import { parseOptions } from './args.js';

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export const CATALOG_HELP = `Usage:
  gatehouse catalog list [--search WORDS] [--json]   the signed catalogue's entries
  gatehouse catalog show NAME [--json]                one entry: package, tools, secrets
  gatehouse servers install NAME [--as ALIAS]         install an entry, verified (docs/catalog.md)
  gatehouse servers pin NAME                          resolve an \`npx -y PACKAGE\` server once and pin it

Installing fetches the entry's package with npm into Gatehouse's own directory, checks it against
the integrity the catalogue signed, and runs it from there: nothing is fetched at start. A mismatch
refuses the install and says why. Secrets the entry needs: gatehouse secrets set NAME.`;

export const POLICY_CATALOG_HELP = `Usage:
  gatehouse policy catalog import SERVER_JSON --dir DIR [--name NAME] [--registry URL]
  gatehouse policy catalog lint DIR [--offline]
  gatehouse policy catalog promote DIR --hub URL --server NAME --version VERSION [--tool TOOL=SHA256]...

import   adds an MCP Registry server.json to DIR/catalog.json as entry NAME, with the exact version
         and the integrity the package registry serves today (npm's dist.integrity), and the secrets
         its environment variables mark as secret. Review it, pin its tools, then sign.
lint     checks every entry: exact versions, integrity present (and, unless --offline, the same as
         the registry serves), secrets declared and used, no secret in arguments.
promote  writes the tool definitions the fleet agrees on for SERVER at VERSION into its pins
         (admin token: GATEHOUSE_HUB_ADMIN_TOKEN or --token-file FILE).`;

export async function catalogCommand(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(CATALOG_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  const { values, positionals } = parseOptions(rest, { search: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    io.out(CATALOG_HELP + '\n');
    return 0;
  }
  if (sub === 'list') {
    const listing = (await callControl(paths.controlSocketPath, 'catalog.list', { query: values.search ?? '' })) as CatalogListing;
    if (values.json) return (void io.out(JSON.stringify(listing, null, 2) + '\n'), 0);
    if (listing.mode !== 'managed') {
      io.out(`no signed catalogue is in force (${listing.mode}); an admin publishes one in the policy bundle\n`);
      return 0;
    }
    io.out(`catalogue of policy v${listing.version}${listing.catalogOnly ? '' : ' (your own servers may run too)'}\n`);
    for (const e of listing.entries)
      io.out(
        `${e.name.padEnd(20)} ${describeSource(e).padEnd(36)} ${e.installedAs.length ? `installed as ${e.installedAs.join(', ')}` : e.installable ? '' : `(${e.notInstallable})`}\n  ${e.title}${e.publisher ? `, by ${e.publisher}` : ''}: ${e.description}\n`,
      );
    return 0;
  }
  if (sub === 'show') {
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one entry NAME');
    const e = (await callControl(paths.controlSocketPath, 'catalog.show', { name })) as CatalogEntryInfo;
    if (values.json) return (void io.out(JSON.stringify(e, null, 2) + '\n'), 0);
    io.out(
      [
        `${e.title} (${e.name}, ${e.registryName})${e.publisher ? ` by ${e.publisher}` : ''}`,
        e.description,
        `package: ${describeSource(e)}${e.source.kind === 'package' && e.source.integrity ? `  ${e.source.integrity}` : ''}`,
        `tools: ${e.tools.map((t) => `${t.name}${t.readOnly ? ' (read-only)' : t.destructive ? ' (destructive)' : ''}`).join(', ') || '(none pinned)'}`,
        `secrets: ${e.secrets.map((s) => `${s.name}${s.stored ? ' (stored)' : ' (not set: gatehouse secrets set ' + s.name + ')'}${s.description ? `: ${s.description}` : ''}`).join('; ') || 'none'}`,
        e.installable ? `install: gatehouse servers install ${e.name}` : `cannot be installed here: ${e.notInstallable}`,
      ].join('\n') + '\n',
    );
    return 0;
  }
  throw new GatehouseError('usage', `unknown catalog subcommand "${sub}"; run \`gatehouse catalog --help\``);
}

function describeSource(e: CatalogEntryInfo): string {
  return e.source.kind === 'package'
    ? `${e.source.registryType} ${e.source.identifier}@${e.source.version}`
    : e.source.kind === 'remote'
      ? e.source.url
      : 'started by the policy';
}

/** `gatehouse servers install|pin`: the daemon installs (it owns the directory), this says what happened. */
export async function installCommand(sub: 'install' | 'pin', args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const { values, positionals } = parseOptions(args, { as: { type: 'string' } });
  if (values.help) {
    io.out(CATALOG_HELP + '\n');
    return 0;
  }
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new GatehouseError('usage', 'give exactly one NAME');
  for (const n of [name, values.as]) if (n !== undefined && !isServerName(n)) throw new GatehouseError('usage', `"${n}": ${SERVER_NAME_RULE}`);
  if (sub === 'pin' && values.as) throw new GatehouseError('usage', '--as goes with install');
  const result = (await callControl(
    paths.controlSocketPath,
    sub === 'install' ? 'servers.install' : 'servers.pin',
    sub === 'install' ? { name, ...(values.as ? { as: values.as } : {}) } : { name },
    600_000,
  )) as InstallResult;
  io.out(
    `${sub === 'install' ? 'installed' : 'pinned'} ${result.server}: ${result.package}@${result.version}, verified (${result.integrity.slice(0, 20)}…), in ${result.dir}\n`,
  );
  for (const secret of result.missingSecrets) io.out(`it needs the secret "${secret}": gatehouse secrets set ${secret}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Admins

interface CatalogFile {
  servers?: Record<string, { server?: Record<string, unknown>; launch?: unknown; tools?: Record<string, Record<string, unknown>> }>;
  [key: string]: unknown;
}

/** A server.json is a few kilobytes; anything near this is not one. */
const MAX_SERVER_JSON_BYTES = 1024 * 1024;

/**
 * Reads a JSON file an admin was handed: bounded in size, and refused if any object in it has a
 * `"__proto__"` member (a plain object built from it would turn that member into its prototype,
 * so what is written could differ from what was read).
 */
function readJsonFile(file: string, maxBytes: number): unknown {
  let text: Buffer;
  try {
    if (statSync(file).size > maxBytes) throw new GatehouseError('invalid', `${file}: larger than ${maxBytes} bytes`);
    text = readFileSync(file);
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('invalid', `${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? errorMessage(error)})`);
  }
  if (text.byteLength > maxBytes) throw new GatehouseError('invalid', `${file}: larger than ${maxBytes} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text.toString('utf8'));
  } catch (error) {
    throw new GatehouseError('invalid', `${file}: not JSON (${errorMessage(error)})`);
  }
  const proto = protoMemberPath(value, []);
  if (proto !== undefined) throw new GatehouseError('invalid', `${file}: ${formatPath(proto)} is a "__proto__" member, which no server.json or catalogue has`);
  return value;
}

/** The path of the first `"__proto__"` member in a parsed JSON value, if any. */
function protoMemberPath(value: unknown, at: PropertyKey[]): PropertyKey[] | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = protoMemberPath(value[i], [...at, i]);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return [...at, key];
    const found = protoMemberPath((value as Record<string, unknown>)[key], [...at, key]);
    if (found) return found;
  }
  return undefined;
}

function readCatalogFile(dir: string): { file: string; raw: CatalogFile } {
  const file = join(dir, 'catalog.json');
  if (!existsSync(file)) return { file, raw: { servers: {} } };
  const raw = readJsonFile(file, MAX_FILE_BYTES);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new GatehouseError('invalid', `${file}: not a catalogue (a JSON object with "servers")`);
  const servers = (raw as CatalogFile).servers;
  if (servers !== undefined && (servers === null || typeof servers !== 'object' || Array.isArray(servers)))
    throw new GatehouseError('invalid', `${file}: "servers" is not an object`);
  return { file, raw: raw as CatalogFile };
}

function writeCatalogFile(file: string, raw: CatalogFile): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(raw, null, 2) + '\n', { mode: 0o644 });
  renameSync(temp, file);
}

export async function policyCatalogCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(POLICY_CATALOG_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  const installer = new NpmInstaller({ root: join(io.env.TMPDIR ?? '/tmp', 'gatehouse-catalog-npm'), env: io.env });
  if (sub === 'import') {
    const { values, positionals } = parseOptions(rest, { dir: { type: 'string' }, name: { type: 'string' }, registry: { type: 'string' } });
    if (values.help) return (void io.out(POLICY_CATALOG_HELP + '\n'), 0);
    const source = positionals[0];
    if (!source || positionals.length > 1 || !values.dir) throw new GatehouseError('usage', 'give one SERVER_JSON file and --dir DIR (the bundle directory)');
    const parsed = ServerJsonSchema.safeParse(readJsonFile(source, MAX_SERVER_JSON_BYTES));
    if (!parsed.success) throw new GatehouseError('invalid', `${source}: ${formatPath(parsed.error.issues[0]!.path)}: ${parsed.error.issues[0]!.message}`);
    const server = parsed.data;
    const name =
      values.name ??
      server.name
        .split('/')
        .pop()!
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 32);
    if (!isServerName(name)) throw new GatehouseError('usage', `"${name}": ${SERVER_NAME_RULE}; give one with --name`);
    // Read the bundle's catalogue before asking the registry: a catalogue that cannot take the entry is refused first.
    const { file, raw } = readCatalogFile(values.dir);
    if (raw.servers?.[name] && !raw.servers[name].server)
      throw new GatehouseError('exists', `"${name}" is already a server the bundle starts itself (launch) in ${file}; give the entry another name with --name`);
    const npm = server.packages.find((p) => p.registryType === 'npm');
    const given = server._meta?.[CATALOG_META_KEY];
    if (given !== undefined && (given === null || typeof given !== 'object' || Array.isArray(given)))
      throw new GatehouseError('invalid', `${source}: _meta["${CATALOG_META_KEY}"] must be an object`);
    const ext: Record<string, unknown> = { ...((given as Record<string, unknown> | undefined) ?? {}) };
    const integrity: Record<string, string> = { ...((ext['integrity'] as Record<string, string> | undefined) ?? {}) };
    if (npm) {
      const registry = values.registry ?? npm.registryBaseUrl;
      const resolved = await installer.resolve(npm.identifier, npm.version ?? 'latest', registry);
      npm.version = resolved.version;
      integrity['npm'] = resolved.integrity;
      if (values.registry) npm.registryBaseUrl = values.registry;
      io.out(`${npm.identifier}@${resolved.version}: ${resolved.integrity}\n`);
    }
    ext['integrity'] = integrity;
    // Environment variables the package marks secret become declared secrets, passed as ${secret:…}.
    const secrets = [...((ext['secrets'] as { name: string; description: string }[] | undefined) ?? [])];
    const env: Record<string, string> = { ...((ext['env'] as Record<string, string> | undefined) ?? {}) };
    for (const v of npm?.environmentVariables ?? []) {
      if (!v.name || env[v.name] !== undefined) continue;
      if (v.isSecret) {
        const secret = `${name}_${v.name.toLowerCase()}`.replace(/[^A-Za-z0-9_.-]/g, '_');
        if (!secrets.some((s) => s.name === secret)) secrets.push({ name: secret, description: v.description ?? '' });
        env[v.name] = `\${secret:${secret}}`;
      } else if (v.default !== undefined) env[v.name] = v.default;
    }
    Object.assign(ext, { secrets, env });
    // What is written must be what a bundle accepts: the extension is checked as signing and loading would.
    const checked = CatalogExtensionSchema.safeParse(ext);
    if (!checked.success)
      throw new GatehouseError(
        'invalid',
        `${source}: _meta["${CATALOG_META_KEY}"].${formatPath(checked.error.issues[0]!.path)}: ${checked.error.issues[0]!.message}`,
      );
    server._meta = { ...(server._meta ?? {}), [CATALOG_META_KEY]: ext };
    const servers = (raw.servers ??= {});
    servers[name] = { server: server as unknown as Record<string, unknown>, tools: servers[name]?.tools ?? {} };
    writeCatalogFile(file, raw);
    io.out(`wrote entry "${name}" to ${file}; pin its tools (gatehouse policy catalog promote), lint, then sign\n`);
    return 0;
  }
  if (sub === 'lint') {
    const { values, positionals } = parseOptions(rest, { offline: { type: 'boolean' } });
    if (values.help) return (void io.out(POLICY_CATALOG_HELP + '\n'), 0);
    const dir = positionals[0];
    if (!dir || positionals.length > 1) throw new GatehouseError('usage', 'give the bundle directory DIR');
    const { parseBundleFiles, readBundleDir } = await import('../node/policy/content.js');
    const content = parseBundleFiles(readBundleDir(dir), { dataDir: '/gatehouse-data' });
    if (!content.ok) throw new GatehouseError('invalid', content.errors.join('; '));
    let errors = 0;
    let entries = 0;
    for (const [, server] of content.content.catalog.servers) {
      if (!server.entry) continue;
      entries++;
      const findings = lintEntry(server.entry, server.tools.size);
      const npm = server.entry.server.packages.find((p) => p.registryType === 'npm');
      const signed = server.entry.ext.integrity.npm;
      if (!values.offline && npm?.version && signed) {
        try {
          const live = await installer.resolve(npm.identifier, npm.version, npm.registryBaseUrl);
          if (live.version !== npm.version)
            findings.push({
              entry: server.entry.name,
              level: 'error',
              message: `${npm.identifier}@${npm.version} does not resolve at its registry (got ${live.version})`,
            });
          else if (live.integrity !== signed)
            findings.push({
              entry: server.entry.name,
              level: 'error',
              message: `${npm.identifier}@${npm.version}: the registry serves ${live.integrity.slice(0, 20)}…, not the signed ${signed.slice(0, 20)}…`,
            });
        } catch (error) {
          findings.push({ entry: server.entry.name, level: 'error', message: `${npm.identifier}@${npm.version} cannot be resolved: ${errorMessage(error)}` });
        }
      }
      for (const f of findings) {
        if (f.level === 'error') errors++;
        io.out(`${f.entry}: ${f.level}: ${f.message}\n`);
      }
    }
    io.out(`${entries} entries, ${errors} errors\n`);
    return errors > 0 ? 1 : 0;
  }
  if (sub === 'promote') {
    const { values, positionals } = parseOptions(rest, {
      hub: { type: 'string' },
      server: { type: 'string' },
      version: { type: 'string' },
      tool: { type: 'string', multiple: true },
      'token-file': { type: 'string' },
    });
    if (values.help) return (void io.out(POLICY_CATALOG_HELP + '\n'), 0);
    const dir = positionals[0];
    if (!dir || positionals.length > 1 || !values.hub || !values.server || !values.version)
      throw new GatehouseError('usage', 'give DIR, --hub URL, --server NAME and --version VERSION');
    const chosen = new Map<string, string>();
    for (const t of values.tool ?? []) {
      const m = /^([A-Za-z0-9_.-]{1,128})=([0-9a-f]{64})$/.exec(t);
      if (!m) throw new GatehouseError('usage', `--tool takes TOOL=SHA256, got "${t}"`);
      chosen.set(m[1]!, m[2]!);
    }
    const all = await fetchBaselines(values.hub, adminToken(values['token-file'], io.env), values.server);
    const { pins, refused } = promotion(all, values.server, values.version, chosen);
    for (const r of refused) io.err(`not promoted: ${r}\n`);
    if (pins.size === 0) throw new GatehouseError('nothing_to_promote', `the hub has no agreed definitions of ${values.server} at ${values.version}`);
    const { file, raw } = readCatalogFile(dir);
    const entry = raw.servers?.[values.server];
    if (!entry) throw new GatehouseError('unknown_server', `${file} has no server "${values.server}"`);
    const tools = (entry.tools ??= {});
    for (const [tool, sha256] of pins) {
      // A tool new to the catalogue is written as not read-only and destructive: review it before signing.
      tools[tool] = { ...(tools[tool] ?? { readOnly: false, destructive: true, tags: [] }), sha256 };
      io.out(`${values.server}__${tool}  ${sha256}\n`);
    }
    writeCatalogFile(file, raw);
    io.out(`promoted ${pins.size} pin(s) into ${file}; sign a new bundle to publish them\n`);
    return refused.length > 0 ? 1 : 0;
  }
  throw new GatehouseError('usage', `unknown policy catalog subcommand "${sub}"; run \`gatehouse policy catalog --help\``);
}

function adminToken(file: string | undefined, env: NodeJS.ProcessEnv): string {
  const token = file ? readFileSync(file, 'utf8').trim() : env.GATEHOUSE_HUB_ADMIN_TOKEN;
  if (!token) throw new GatehouseError('usage', 'give the admin token in a file (--token-file FILE) or in GATEHOUSE_HUB_ADMIN_TOKEN');
  return token;
}

async function adminGet(hub: string, token: string, path: string): Promise<unknown> {
  const response = await fetch(`${hub.replace(/\/+$/, '')}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
  if (!response.ok) throw new GatehouseError('hub_refused', `the hub refused: ${body.error?.message ?? response.status}`);
  return body;
}

async function fetchBaselines(hub: string, token: string, server?: string): Promise<Baseline[]> {
  const body = (await adminGet(hub, token, `/v1/admin/baselines${server ? `?server=${encodeURIComponent(server)}` : ''}`)) as { baselines: Baseline[] };
  return foldBaselines(
    body.baselines.flatMap((b) =>
      b.hashes.map((h) => ({ server: b.server, version: b.version, tool: b.tool, sha256: h.sha256, devices: h.devices, lastSeen: h.lastSeen })),
    ),
  );
}

/** `gatehouse hub baselines|shadow --url HUB`: where the fleet's devices disagree, and what their clients run outside Gatehouse. */
export async function hubCatalogCommand(sub: 'baselines' | 'shadow', args: string[], io: Io): Promise<number> {
  const { values } = parseOptions(args, { url: { type: 'string' }, server: { type: 'string' }, json: { type: 'boolean' }, 'token-file': { type: 'string' } });
  if (values.help) return (void io.out('Usage: gatehouse hub baselines|shadow --url HUB [--server NAME] [--json] [--token-file FILE]\n'), 0);
  if (!values.url) throw new GatehouseError('usage', 'give the hub with --url URL');
  const token = adminToken(values['token-file'], io.env);
  if (sub === 'shadow') {
    const body = (await adminGet(values.url, token, '/v1/admin/shadow-servers')) as {
      shadowServers: { host: string; device: string; client: string; name: string; target: string; at: string; inCatalog?: string }[];
    };
    if (values.json) return (void io.out(JSON.stringify(body.shadowServers, null, 2) + '\n'), 0);
    for (const s of body.shadowServers)
      io.out(`${s.host || s.device}  ${s.client}  ${s.name}  ${s.target}${s.inCatalog ? `  (in the catalogue as ${s.inCatalog})` : ''}  ${s.at}\n`);
    if (body.shadowServers.length === 0) io.out('no device reports a server outside Gatehouse\n');
    return 0;
  }
  const all = await fetchBaselines(values.url, token, values.server);
  if (values.json) return (void io.out(JSON.stringify(all, null, 2) + '\n'), 0);
  const disagreeing = all.filter((b) => b.disagree);
  for (const b of disagreeing) {
    io.out(
      `WARNING ${b.server}@${b.version} ${b.tool}: devices see ${b.hashes.length} definitions: ${b.hashes.map((h) => `${h.sha256.slice(0, 12)}… (${h.devices})`).join(', ')}\n`,
    );
  }
  for (const b of all.filter((x) => !x.disagree)) io.out(`${b.server}@${b.version} ${b.tool}: ${b.hashes[0]!.sha256} (${b.hashes[0]!.devices} devices)\n`);
  if (all.length === 0) io.out('no device has reported tool definitions yet\n');
  return 0;
}
