/**
 * The catalogue on a desktop: which entries the signed bundle in force offers, installing them
 * (`gatehouse servers install`, the Catalog screen), the servers installed from verified packages
 * (`installed` in the config: catalogue entries and `npx` servers pinned locally), their upgrades
 * when a new bundle names another version, and the servers the person's clients run outside
 * Gatehouse. The daemon asks `servers()` for what to run: only installs that were verified.
 */
import type { CatalogEntryInfo, CatalogListing, InstallResult, InstallStatus, ShadowServer } from '../../common/catalog.js';
import type { InstalledServerConfig, StdioServerConfig } from '../../common/config.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import { entryInfo, installSource, launchOfInstall, matchesSearch, secretRefs, type CatalogEntry } from '../../core/catalog/entry.js';
import { parseNpx } from '../../core/catalog/npx.js';
import { shadowKey, shadowServers } from '../../core/catalog/shadow.js';
import type { PolicyState } from '../../core/policy/bundle-policy.js';
import type { AuditRecord, Logger } from '../../core/ports.js';
import { editConfigFile } from '../config-file.js';
import { listConfiguredServers } from '../clients/clients.js';
import type { Place } from '../clients/registry.js';
import type { NpmInstaller, NpmPackageSpec } from './npm.js';

export interface CatalogServiceDeps {
  installer: NpmInstaller;
  dataDir: string;
  configFile: string;
  logger: Logger;
  record(entry: AuditRecord): void;
  policy(): PolicyState;
  installed(): Record<string, InstalledServerConfig>;
  /** The user's own servers (for `servers pin`). */
  userServers(): Record<string, import('../../common/config.js').ServerConfig>;
  /** Names of secrets stored for the user. */
  storedSecrets(): Promise<string[]>;
  /** Applies the config file now (the daemon's reload). */
  reload(): Promise<unknown>;
  /** What servers run changed (an install verified, an upgrade ready). */
  changed(): void;
  /** Where the person's MCP clients keep their configs. */
  place: Place;
}

interface Running {
  spec: NpmPackageSpec;
  program: string;
  dir: string;
}

interface InstallState {
  /** The verified install the server runs from. */
  running?: Running;
  /** What the catalogue (or the pin) wants now, and how far it is. */
  wanted?: NpmPackageSpec;
  state: InstallStatus['state'];
  reason?: string;
  upgrade?: InstallStatus['upgrade'];
  busy?: Promise<void>;
}

export class CatalogService {
  private readonly states = new Map<string, InstallState>();
  private shadows: ShadowServer[] = [];
  private readonly reported = new Set<string>();
  private syncing: Promise<void> = Promise.resolve();

  constructor(private readonly deps: CatalogServiceDeps) {}

  /** Entries of the catalogue in force (none when unmanaged or failing closed). */
  entries(): CatalogEntry[] {
    const state = this.deps.policy();
    if (state.kind !== 'enforcing') return [];
    return [...state.evaluator.bundle.content.catalog.servers.values()].flatMap((s) => (s.entry ? [s.entry] : []));
  }

  private entry(name: string): CatalogEntry | undefined {
    return this.entries().find((e) => e.name === name);
  }

  /** The catalogue entry a server was installed from (policies and pins name the entry, whatever the server is called). */
  catalogNameOf(server: string): string | undefined {
    return this.deps.installed()[server]?.catalog;
  }

  private catalogOnly(): boolean {
    const state = this.deps.policy();
    return state.kind !== 'enforcing' || state.evaluator.bundle.content.catalog.catalogOnly;
  }

  async listing(query = ''): Promise<CatalogListing> {
    const state = this.deps.policy();
    const mode = state.kind === 'enforcing' ? 'managed' : state.kind === 'fail-closed' ? 'fail-closed' : 'unmanaged';
    const stored = new Set(await this.deps.storedSecrets());
    const entries = this.entries()
      .map((e) => this.info(e, stored))
      .filter((i) => matchesSearch(i, query))
      .sort((a, b) => a.title.localeCompare(b.title));
    return {
      mode,
      ...(state.kind === 'enforcing' ? { version: String(state.evaluator.version) } : {}),
      catalogOnly: state.kind !== 'enforcing' || this.catalogOnly(),
      entries,
    };
  }

  async show(name: string): Promise<CatalogEntryInfo> {
    const entry = this.entry(name);
    if (!entry)
      throw new GatehouseError(
        'unknown_entry',
        this.deps.policy().kind === 'enforcing' ? `the signed catalogue has no entry "${name}"` : 'no signed catalogue is in force (unmanaged mode)',
      );
    return this.info(entry, new Set(await this.deps.storedSecrets()));
  }

  private info(entry: CatalogEntry, stored: ReadonlySet<string>): CatalogEntryInfo {
    const state = this.deps.policy();
    const tools = state.kind === 'enforcing' ? (state.evaluator.bundle.content.catalog.servers.get(entry.name)?.tools ?? new Map()) : new Map();
    const installedAs = Object.entries(this.deps.installed())
      .filter(([, c]) => c.catalog === entry.name)
      .map(([n]) => n);
    return entryInfo(entry, tools, { storedSecrets: stored, installedAs });
  }

  /**
   * Installs a catalogue entry as server `as` (default: the entry's name): fetches and verifies it,
   * then writes `installed.<as>` into the config, so the daemon starts it from the verified copy.
   */
  async install(name: string, as = name): Promise<InstallResult> {
    const entry = this.entry(name);
    if (!entry)
      throw new GatehouseError(
        'unknown_entry',
        this.deps.policy().kind === 'enforcing'
          ? `the signed catalogue has no entry "${name}"`
          : 'no signed catalogue is in force (unmanaged mode): only servers an admin signed can be installed',
      );
    const source = installSource(entry);
    if (!source.ok) throw new GatehouseError('not_installable', `${name}: ${source.reason}`);
    const existing = this.deps.installed()[as];
    if (this.deps.userServers()[as] || (existing && existing.catalog !== name))
      throw new GatehouseError('exists', `a server named "${as}" is already configured; choose another name with --as`);
    const spec: NpmPackageSpec = {
      identifier: source.identifier,
      version: source.version,
      integrity: source.integrity,
      ...(source.registry ? { registry: source.registry } : {}),
      ...(entry.ext.bin ? { bin: entry.ext.bin } : {}),
    };
    const installed = await this.fetch(as, spec, name);
    const result = await editConfigFile(this.deps.configFile, (config) => {
      const all = (config.installed ??= {}) as Record<string, unknown>;
      all[as] = { ...((all[as] as Record<string, unknown> | undefined) ?? {}), catalog: name };
    });
    if (!result.ok) throw new GatehouseError('invalid', result.error);
    this.states.set(as, { running: installed, wanted: spec, state: 'ready' });
    await this.deps.reload();
    const stored = new Set(await this.deps.storedSecrets());
    return {
      server: as,
      package: spec.identifier,
      version: spec.version,
      integrity: spec.integrity,
      dir: installed.dir,
      missingSecrets: secretRefs(entry.ext.env).filter((s) => !stored.has(s)),
    };
  }

  /**
   * Pins a server the person added as `npx -y PACKAGE`: resolves the package once (exact version and
   * integrity), installs it, and replaces the `npx` line with `installed.<name>.npm`.
   */
  async pin(name: string): Promise<InstallResult> {
    const config = this.deps.userServers()[name];
    if (!config) throw new GatehouseError('unknown_server', `no server named "${name}" is in the config file's servers`);
    const npx = parseNpx(config);
    if (!npx || config.type !== 'stdio') throw new GatehouseError('not_npx', `"${name}" does not run \`npx PACKAGE\`; only such servers can be pinned`);
    const resolved = await this.deps.installer.resolve(npx.package, npx.spec);
    const spec: NpmPackageSpec = { identifier: npx.package, version: resolved.version, integrity: resolved.integrity };
    const installed = await this.fetch(name, spec, undefined);
    const result = await editConfigFile(this.deps.configFile, (raw) => {
      const servers = (raw.servers ?? {}) as Record<string, Record<string, unknown>>;
      const old = servers[name] ?? {};
      delete servers[name];
      const keep = Object.fromEntries(Object.entries(old).filter(([k]) => !['type', 'command', 'args', 'cwd', 'roots', 'stopGraceMs'].includes(k)));
      ((raw.installed ??= {}) as Record<string, unknown>)[name] = {
        ...keep,
        npm: { package: spec.identifier, version: spec.version, integrity: spec.integrity },
        args: npx.args,
      };
    });
    if (!result.ok) throw new GatehouseError('invalid', result.error);
    this.states.set(name, { running: installed, wanted: spec, state: 'ready' });
    await this.deps.reload();
    return { server: name, package: spec.identifier, version: spec.version, integrity: spec.integrity, dir: installed.dir, missingSecrets: [] };
  }

  /** Fetches and verifies one package for a server; records the outcome in the audit log. */
  private async fetch(server: string, spec: NpmPackageSpec, catalog: string | undefined): Promise<Running> {
    const at = () => new Date().toISOString();
    const detail = { package: spec.identifier, version: spec.version, integrity: spec.integrity, ...(catalog ? { catalog } : {}) };
    try {
      const done = await this.deps.installer.install(spec);
      this.deps.record({ type: 'catalog.installed', at: at(), server, detail: { ...detail, dir: done.dir } });
      this.deps.logger.log('info', 'catalog.installed', { server, ...detail });
      return { spec, program: done.program, dir: done.dir };
    } catch (error) {
      this.deps.record({ type: 'catalog.refused', at: at(), server, reason: errorMessage(error), detail });
      this.deps.logger.log('error', 'catalog.refused', { server, ...detail, error: errorMessage(error) });
      throw error;
    }
  }

  /** What each installed server wants now: the catalogue entry's package, or the local pin. */
  private wantedOf(config: InstalledServerConfig): { spec: NpmPackageSpec; entry?: CatalogEntry } | { reason: string; state: InstallStatus['state'] } {
    if (config.npm)
      return {
        spec: {
          identifier: config.npm.package,
          version: config.npm.version,
          integrity: config.npm.integrity,
          ...(config.npm.bin ? { bin: config.npm.bin } : {}),
        },
      };
    const entry = this.entry(config.catalog!);
    if (!entry)
      return {
        state: 'not-in-catalogue',
        reason:
          this.deps.policy().kind === 'enforcing'
            ? `the signed catalogue no longer has the entry "${config.catalog}"`
            : 'no signed catalogue is in force, so its entry cannot be checked',
      };
    const source = installSource(entry);
    if (!source.ok) return { state: 'refused', reason: source.reason };
    return {
      spec: {
        identifier: source.identifier,
        version: source.version,
        integrity: source.integrity,
        ...(source.registry ? { registry: source.registry } : {}),
        ...(entry.ext.bin ? { bin: entry.ext.bin } : {}),
      },
      entry,
    };
  }

  /**
   * Brings every installed server to what is wanted: verifies existing installs before their first
   * start, installs what is missing, and installs a new version beside the running one, switching
   * only once it is verified. Runs at start, after a config change and after a bundle change.
   */
  sync(): Promise<void> {
    this.syncing = this.syncing
      .then(() => this.syncNow())
      .catch((error) => this.deps.logger.log('error', 'catalog.sync_failed', { error: errorMessage(error) }));
    return this.syncing;
  }

  private async syncNow(): Promise<void> {
    const installed = this.deps.installed();
    for (const name of [...this.states.keys()]) if (!installed[name]) this.states.delete(name);
    let changed = false;
    for (const [name, config] of Object.entries(installed)) {
      const state = this.states.get(name) ?? { state: 'installing' as const };
      this.states.set(name, state);
      const wanted = this.wantedOf(config);
      if ('reason' in wanted) {
        if (state.state !== wanted.state || state.reason !== wanted.reason) changed = true;
        state.state = wanted.state;
        state.reason = wanted.reason;
        continue;
      }
      const same = (a: NpmPackageSpec | undefined) =>
        a !== undefined && a.identifier === wanted.spec.identifier && a.version === wanted.spec.version && a.integrity === wanted.spec.integrity;
      if (same(state.running?.spec)) {
        if (state.state !== 'ready') changed = true;
        state.state = 'ready';
        delete state.reason;
        delete state.upgrade;
        continue;
      }
      if (state.upgrade?.state === 'refused' && state.upgrade.version === wanted.spec.version && same(state.wanted)) continue;
      state.wanted = wanted.spec;
      const upgrading = state.running !== undefined;
      if (upgrading) state.upgrade = { version: wanted.spec.version, state: 'installing' };
      else state.state = 'installing';
      try {
        const dir = this.deps.installer.dirOf(wanted.spec.identifier, wanted.spec.version);
        let next: Running;
        try {
          // An install already on disk is checked, never trusted: its record, tarball and files.
          const verified = await this.deps.installer.verify(dir, wanted.spec);
          next = { spec: wanted.spec, program: verified.program, dir };
        } catch (error) {
          if (/changed after they were verified/.test(errorMessage(error))) throw error;
          next = await this.fetch(name, wanted.spec, config.catalog);
        }
        if (upgrading) {
          this.deps.record({
            type: 'catalog.upgraded',
            at: new Date().toISOString(),
            server: name,
            detail: { from: state.running!.spec.version, to: next.spec.version, package: next.spec.identifier },
          });
          this.deps.logger.log('info', 'catalog.upgraded', { server: name, from: state.running!.spec.version, to: next.spec.version });
        }
        state.running = next;
        state.state = 'ready';
        delete state.reason;
        delete state.upgrade;
        changed = true;
      } catch (error) {
        const reason = errorMessage(error);
        if (upgrading) state.upgrade = { version: wanted.spec.version, state: 'refused', reason: `${reason}; ${state.running!.spec.version} keeps running` };
        else {
          state.state = 'refused';
          state.reason = reason;
        }
        changed = true;
      }
    }
    if (changed) this.deps.changed();
  }

  /**
   * The servers to run from verified installs. Catalogue installs run while their entry is in the
   * catalogue in force; local pins run when unmanaged, or when the catalogue lets the user's own
   * servers run (`catalogOnly: false`).
   */
  servers(): Record<string, StdioServerConfig> {
    const out: Record<string, StdioServerConfig> = {};
    const managed = this.deps.policy().kind === 'enforcing';
    for (const [name, config] of Object.entries(this.deps.installed())) {
      const state = this.states.get(name);
      if (!state?.running) continue;
      if (config.catalog) {
        const entry = this.entry(config.catalog);
        if (!entry) continue;
        out[name] = launchOfInstall(entry, state.running.program, this.deps.dataDir, config);
      } else if (!managed || !this.catalogOnly()) {
        const local: CatalogEntry = {
          name,
          server: { name, description: config.description ?? '', packages: [], remotes: [] },
          ext: { integrity: {}, secrets: [], args: config.args, env: {}, ...(config.sandbox !== undefined ? { sandbox: config.sandbox } : {}) },
        };
        out[name] = launchOfInstall(local, state.running.program, this.deps.dataDir, config);
      }
    }
    return out;
  }

  /** The package version a running server was installed at (for fleet baselines). */
  packageOf(server: string): { package: string; version: string; catalog?: string } | undefined {
    const running = this.states.get(server)?.running;
    if (!running) return undefined;
    const catalog = this.catalogNameOf(server);
    return { package: running.spec.identifier, version: running.spec.version, ...(catalog ? { catalog } : {}) };
  }

  status(): InstallStatus[] {
    return Object.entries(this.deps.installed()).map(([server, config]) => {
      const state = this.states.get(server);
      const spec = state?.running?.spec ?? state?.wanted;
      return {
        server,
        ...(config.catalog ? { catalog: config.catalog } : {}),
        package: spec?.identifier ?? config.npm?.package ?? config.catalog ?? '',
        ...(spec ? { version: spec.version } : {}),
        state: state?.state ?? 'installing',
        ...(state?.reason ? { reason: state.reason } : {}),
        ...(state?.upgrade ? { upgrade: state.upgrade } : {}),
        ...(state?.running ? { dir: state.running.dir } : {}),
      };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Shadow servers

  /** Reads the clients' configs again; a server seen for the first time is recorded (and so reaches the hub). */
  async scanShadows(): Promise<ShadowServer[]> {
    const found = (await listConfiguredServers(this.deps.place)).flatMap((c) => c.servers);
    this.shadows = shadowServers(found, this.entries());
    for (const shadow of this.shadows) {
      const key = shadowKey(shadow);
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      this.deps.record({
        type: 'catalog.shadow_server',
        at: new Date().toISOString(),
        server: shadow.name,
        client: shadow.client,
        reason: `${shadow.client} runs "${shadow.name}" outside Gatehouse`,
        detail: {
          type: shadow.type,
          target: shadow.target,
          file: shadow.file,
          envKeys: shadow.envKeys,
          ...(shadow.inCatalog ? { inCatalog: shadow.inCatalog } : {}),
        },
      });
    }
    return this.shadows;
  }

  shadowServers(): ShadowServer[] {
    return this.shadows;
  }
}
