/**
 * A catalogue entry as the core reads it: the signed `server.json` and Gatehouse's extension, and
 * the decisions made from them: which package to install and how to check it, how the installed
 * server starts, and what people are shown about it. No file, network or process work here; the
 * installer (src/node/catalog) fetches and checks bytes and reports where the program is.
 */
import type { CatalogEntryInfo, CatalogExtension, RegistryType, ServerJson, ServerJsonPackage } from '../../common/catalog.js';
import { REGISTRY_TYPES } from '../../common/catalog.js';
import type { StdioServerConfig } from '../../common/config.js';

export interface CatalogEntry {
  /** The entry's name in `catalog.json` (a server name). */
  name: string;
  server: ServerJson;
  ext: CatalogExtension;
}

/** What to install for an entry: the one package this desktop can run, at its exact version and integrity. */
export type InstallSource =
  { ok: true; registryType: RegistryType; identifier: string; version: string; integrity: string; registry?: string } | { ok: false; reason: string };

/** npm versions Gatehouse accepts in a catalogue: exact ones only (a range would fetch whatever is newest that day). */
export const EXACT_VERSION = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/;

export function isRegistryType(value: string): value is RegistryType {
  return (REGISTRY_TYPES as readonly string[]).includes(value);
}

/** The packages an entry names that Gatehouse knows, in the entry's order. */
export function knownPackages(entry: CatalogEntry): (ServerJsonPackage & { registryType: RegistryType })[] {
  return entry.server.packages.filter((p): p is ServerJsonPackage & { registryType: RegistryType } => isRegistryType(p.registryType));
}

/**
 * The package this desktop installs: npm (Gatehouse runs it with Node). PyPI and OCI entries are
 * parsed and linted, but installing them needs `uv`/`pip` or a container runtime and their
 * registries, which Gatehouse does not drive yet; such an entry says so.
 */
export function installSource(entry: CatalogEntry): InstallSource {
  const npm = entry.server.packages.find((p) => p.registryType === 'npm');
  if (!npm) {
    const other = knownPackages(entry)[0];
    if (other)
      return {
        ok: false,
        reason: `${other.registryType} packages cannot be installed by this Gatehouse yet (only npm packages); its integrity is checked by \`gatehouse policy catalog lint\``,
      };
    if (entry.server.remotes.length > 0) return { ok: false, reason: 'a remote server: add it with gatehouse servers add NAME --url URL' };
    return { ok: false, reason: 'the entry names no package this Gatehouse can install' };
  }
  if (!npm.version || !EXACT_VERSION.test(npm.version))
    return { ok: false, reason: `the catalogue names no exact version of ${npm.identifier} (got "${npm.version ?? ''}")` };
  const integrity = entry.ext.integrity.npm;
  if (!integrity) return { ok: false, reason: `the catalogue has no integrity for ${npm.identifier}@${npm.version}, so its bytes cannot be checked` };
  return {
    ok: true,
    registryType: 'npm',
    identifier: npm.identifier,
    version: npm.version,
    integrity,
    ...(npm.registryBaseUrl ? { registry: npm.registryBaseUrl } : {}),
  };
}

/** Expands `${dataDir}` in a template; `${secret:NAME}` stays for the secret resolver. */
export function expandTemplate(value: string, dataDir: string): string {
  return value.replaceAll('${dataDir}', dataDir);
}

/**
 * How an installed entry starts: Node runs the package's program from Gatehouse's own directory,
 * with the entry's arguments, environment and sandbox profile (and the person's additions to the
 * environment, which cannot replace what the entry sets).
 */
export function launchOfInstall(
  entry: CatalogEntry,
  program: string,
  dataDir: string,
  own: Pick<StdioServerConfig, 'env' | 'enabled' | 'restart' | 'health' | 'startupTimeoutMs' | 'requestTimeoutMs' | 'description'>,
): StdioServerConfig {
  const env: Record<string, string> = { ...own.env };
  for (const [key, value] of Object.entries(entry.ext.env)) env[key] = expandTemplate(value, dataDir);
  const sandbox = entry.ext.sandbox;
  const profile =
    sandbox === undefined || sandbox === 'off'
      ? sandbox
      : { ...sandbox, read: sandbox.read.map((p) => expandTemplate(p, dataDir)), write: sandbox.write.map((p) => expandTemplate(p, dataDir)) };
  return {
    type: 'stdio',
    command: 'node',
    args: [program, ...entry.ext.args.map((a) => expandTemplate(a, dataDir))],
    env,
    stopGraceMs: 3000,
    ...(profile !== undefined ? { sandbox: profile } : {}),
    enabled: own.enabled,
    restart: own.restart,
    health: own.health,
    startupTimeoutMs: own.startupTimeoutMs,
    requestTimeoutMs: own.requestTimeoutMs,
    description: own.description ?? entry.server.description,
  };
}

/** `${secret:NAME}` names an entry's environment refers to. */
export function secretRefs(env: Record<string, string>): string[] {
  const names = new Set<string>();
  for (const value of Object.values(env)) for (const m of value.matchAll(/\$\{secret:([^}]*)\}/g)) names.add(m[1]!);
  return [...names].sort();
}

/** What a person is shown about an entry (the CLI's `catalog show`, the Catalog screen). */
export function entryInfo(
  entry: CatalogEntry,
  tools: ReadonlyMap<string, { readOnly: boolean; destructive: boolean }>,
  facts: { storedSecrets: ReadonlySet<string>; installedAs: string[] },
): CatalogEntryInfo {
  const source = installSource(entry);
  const npm = entry.server.packages.find((p) => p.registryType === 'npm') ?? knownPackages(entry)[0];
  const remote = entry.server.remotes[0];
  const info: CatalogEntryInfo = {
    name: entry.name,
    title: entry.server.title ?? entry.name,
    description: entry.server.description,
    ...(entry.ext.publisher !== undefined ? { publisher: entry.ext.publisher } : {}),
    registryName: entry.server.name,
    ...(entry.server.version !== undefined ? { version: entry.server.version } : {}),
    source: npm
      ? {
          kind: 'package',
          registryType: npm.registryType,
          identifier: npm.identifier,
          version: npm.version ?? '',
          ...(entry.ext.integrity[npm.registryType as RegistryType] ? { integrity: entry.ext.integrity[npm.registryType as RegistryType]! } : {}),
        }
      : remote
        ? { kind: 'remote', url: remote.url }
        : { kind: 'launch' },
    tools: [...tools].map(([name, t]) => ({ name, readOnly: t.readOnly, destructive: t.destructive })).sort((a, b) => a.name.localeCompare(b.name)),
    secrets: entry.ext.secrets.map((s) => ({ name: s.name, description: s.description, stored: facts.storedSecrets.has(s.name) })),
    installedAs: facts.installedAs,
    installable: source.ok,
    ...(source.ok ? {} : { notInstallable: source.reason }),
  };
  return info;
}

/** Does an entry match a search (name, title, description, publisher, registry name, package, tool names)? */
export function matchesSearch(info: CatalogEntryInfo, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const text = [
    info.name,
    info.title,
    info.description,
    info.publisher ?? '',
    info.registryName,
    info.source.kind === 'package' ? info.source.identifier : '',
    ...info.tools.map((t) => t.name),
  ]
    .join(' ')
    .toLowerCase();
  return words.every((w) => text.includes(w));
}
