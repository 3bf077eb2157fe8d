/**
 * Installs npm packages the way a catalogue entry approved them: the real `npm` client fetches the
 * tarball (`npm pack`, from the entry's registry or npm's own configuration), Gatehouse hashes
 * the bytes and compares them with the signed integrity before anything is unpacked to run, then
 * `npm install` unpacks that verified file (scripts off) into a directory of Gatehouse's own. The
 * package's files are recorded as a digest, checked again before every start: code edited after
 * it was verified does not run. Nothing is fetched when a server starts.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import { npmIntegrityOf, sameIntegrity, treeDigest } from '../../core/catalog/integrity.js';

export interface NpmPackageSpec {
  identifier: string;
  version: string;
  /** The signed `sha512-…` of the tarball. */
  integrity: string;
  /** The registry to fetch from; npm's own configuration when absent. */
  registry?: string;
  /** Which `bin` to run when the package has several. */
  bin?: string;
}

/** What an install directory records (`install.json`), and what is checked before each start. */
export interface InstallRecord {
  registryType: 'npm';
  identifier: string;
  version: string;
  integrity: string;
  /** The program to run, relative to the install directory. */
  program: string;
  /** Digest of the package's own files (treeDigest). */
  tree: string;
  installedAt: string;
}

export class IntegrityError extends GatehouseError {
  constructor(message: string) {
    super('integrity_mismatch', message);
  }
}

const RECORD = 'install.json';
const TARBALL = 'package.tgz';
const MAX_TREE_FILES = 20_000;

export interface NpmInstallerOptions {
  /** Gatehouse's own package directory (`<dataDir>/packages`). */
  root: string;
  /** The environment npm runs with (PATH, HOME and npm's own `npm_config_*` settings are passed on). */
  env: NodeJS.ProcessEnv;
  /** The npm program (default: `npm` on PATH). */
  npm?: string;
  timeoutMs?: number;
}

export class NpmInstaller {
  constructor(private readonly options: NpmInstallerOptions) {}

  /** Where a package version lives once installed. */
  dirOf(identifier: string, version: string): string {
    return path.join(this.options.root, 'npm', encodeURIComponent(identifier), version);
  }

  /** The exact version and integrity a spec (`1.2.3`, `latest`, `^2`) resolves to at the registry today. */
  async resolve(identifier: string, spec: string, registry?: string): Promise<{ version: string; integrity: string; tarball: string }> {
    const out = await this.npm(['view', `${identifier}@${spec}`, 'version', 'dist', '--json'], registry);
    let parsed: unknown;
    try {
      parsed = JSON.parse(out || 'null');
    } catch {
      throw new GatehouseError('registry', `npm view ${identifier}@${spec} did not answer JSON`);
    }
    const last = Array.isArray(parsed) ? parsed[parsed.length - 1] : parsed;
    const v = last as { version?: unknown; dist?: { integrity?: unknown; tarball?: unknown } } | null;
    if (!v || typeof v.version !== 'string' || typeof v.dist?.integrity !== 'string')
      throw new GatehouseError('registry', `${identifier}@${spec}: the registry names no version with an integrity`);
    return { version: v.version, integrity: v.dist.integrity, tarball: typeof v.dist.tarball === 'string' ? v.dist.tarball : '' };
  }

  /** Fetches, verifies and installs; an install already there is checked and kept. */
  async install(spec: NpmPackageSpec): Promise<{ dir: string; record: InstallRecord; program: string }> {
    const dir = this.dirOf(spec.identifier, spec.version);
    if (existsSync(path.join(dir, RECORD))) {
      try {
        return { dir, ...(await this.verify(dir, spec)) };
      } catch {
        // A damaged or different install: put a verified one in its place.
      }
    }
    await mkdir(this.options.root, { recursive: true, mode: 0o700 });
    const work = path.join(this.options.root, `.install-${randomBytes(6).toString('hex')}`);
    await mkdir(work, { recursive: true, mode: 0o700 });
    try {
      const packed = await this.npm(['pack', `${spec.identifier}@${spec.version}`, '--pack-destination', work, '--json'], spec.registry);
      const file = tarballName(packed, work);
      const bytes = await readFile(file);
      const got = npmIntegrityOf(bytes);
      if (!sameIntegrity(got, spec.integrity)) {
        throw new IntegrityError(
          `refused ${spec.identifier}@${spec.version}: the registry served other bytes than the catalogue approved (expected ${short(spec.integrity)}, got ${short(got)}); nothing was installed`,
        );
      }
      const staged = path.join(work, 'root');
      await mkdir(staged, { recursive: true });
      await writeFile(path.join(staged, TARBALL), bytes, { mode: 0o600 });
      await this.npm(
        [
          'install',
          '--prefix',
          staged,
          '--no-save',
          '--no-package-lock',
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--omit=dev',
          path.join(staged, TARBALL),
        ],
        spec.registry,
      );
      const pkgDir = path.join(staged, 'node_modules', ...spec.identifier.split('/'));
      const manifest = JSON.parse(await readFile(path.join(pkgDir, 'package.json'), 'utf8')) as { name?: string; version?: string; bin?: unknown };
      if (manifest.name !== spec.identifier || manifest.version !== spec.version) {
        throw new IntegrityError(`refused ${spec.identifier}@${spec.version}: the tarball holds ${String(manifest.name)}@${String(manifest.version)}`);
      }
      const program = path.relative(staged, path.join(pkgDir, programOf(manifest.bin, spec)));
      const record: InstallRecord = {
        registryType: 'npm',
        identifier: spec.identifier,
        version: spec.version,
        integrity: spec.integrity,
        program,
        tree: await digestTree(pkgDir),
        installedAt: new Date().toISOString(),
      };
      await writeFile(path.join(staged, RECORD), JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
      await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
      await rm(dir, { recursive: true, force: true });
      await rename(staged, dir);
      return { dir, record, program: path.join(dir, program) };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Checks an install before a start: its record names the signed version and integrity, the kept
   * tarball still hashes to it, and the package's files are those installed. Throws `IntegrityError`
   * with the reason otherwise.
   */
  async verify(dir: string, spec: Pick<NpmPackageSpec, 'identifier' | 'version' | 'integrity'>): Promise<{ record: InstallRecord; program: string }> {
    let record: InstallRecord;
    try {
      record = JSON.parse(await readFile(path.join(dir, RECORD), 'utf8')) as InstallRecord;
    } catch (error) {
      throw new IntegrityError(`${spec.identifier}@${spec.version} is not installed (${errorMessage(error)})`);
    }
    if (record.identifier !== spec.identifier || record.version !== spec.version || !sameIntegrity(record.integrity, spec.integrity)) {
      throw new IntegrityError(
        `the install in ${dir} is ${record.identifier}@${record.version} (${short(record.integrity)}), not the approved ${spec.identifier}@${spec.version} (${short(spec.integrity)})`,
      );
    }
    const tarball = npmIntegrityOf(await readFile(path.join(dir, TARBALL)));
    if (!sameIntegrity(tarball, spec.integrity))
      throw new IntegrityError(`the kept tarball of ${spec.identifier}@${spec.version} no longer matches its integrity (${short(tarball)})`);
    const pkgDir = path.join(dir, 'node_modules', ...spec.identifier.split('/'));
    if ((await digestTree(pkgDir)) !== record.tree) {
      throw new IntegrityError(
        `the installed files of ${spec.identifier}@${spec.version} changed after they were verified (${pkgDir}); reinstall it with gatehouse servers install`,
      );
    }
    return { record, program: path.join(dir, record.program) };
  }

  private npm(args: string[], registry?: string): Promise<string> {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(this.options.env)) {
      if (['PATH', 'HOME', 'USER', 'LANG', 'TMPDIR', 'SystemRoot', 'APPDATA', 'USERPROFILE'].includes(key) || /^npm_config_/i.test(key)) env[key] = value;
    }
    // Gatehouse's own cache: what npm fetched for it is not mixed with (or served from) the person's.
    env.npm_config_cache = path.join(this.options.root, '.npm-cache');
    env.npm_config_update_notifier = 'false';
    if (registry) env.npm_config_registry = registry;
    return new Promise((resolve, reject) => {
      execFile(
        this.options.npm ?? 'npm',
        args,
        { env, timeout: this.options.timeoutMs ?? 300_000, maxBuffer: 16 * 1024 * 1024, windowsHide: true },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          const lines = String(stderr)
            .split('\n')
            .filter((l) => /ERR!|error/i.test(l))
            .slice(0, 4)
            .join(' ')
            .replace(/\s+/g, ' ');
          const integrity = /EINTEGRITY/.test(String(stderr));
          const message = `npm ${args[0]} ${args[1] ?? ''} failed: ${lines || errorMessage(error)}`;
          reject(integrity ? new IntegrityError(`refused: ${message}`) : new GatehouseError('install_failed', message));
        },
      );
    });
  }
}

function tarballName(packed: string, dir: string): string {
  try {
    const parsed = JSON.parse(packed) as { filename?: unknown }[];
    const name = parsed[0]?.filename;
    if (typeof name === 'string' && !name.includes('/') && !name.includes('\\')) return path.join(dir, name);
  } catch {
    // Fall through.
  }
  throw new GatehouseError('install_failed', 'npm pack did not say which file it wrote');
}

/** The program of a package: the entry's choice, its only `bin`, or the `bin` named like the package. */
function programOf(bin: unknown, spec: NpmPackageSpec): string {
  const base = spec.identifier.split('/').pop()!;
  const bins: Record<string, string> = typeof bin === 'string' ? { [base]: bin } : bin && typeof bin === 'object' ? (bin as Record<string, string>) : {};
  const names = Object.keys(bins);
  const chosen = spec.bin ?? (names.length === 1 ? names[0] : names.find((n) => n === base));
  if (chosen === undefined || typeof bins[chosen] !== 'string') {
    throw new GatehouseError(
      'install_failed',
      `${spec.identifier} has ${names.length === 0 ? 'no program (bin)' : `several programs (${names.join(', ')}); the entry must name one (bin)`}`,
    );
  }
  const relative = path.normalize(bins[chosen]);
  if (relative.startsWith('..') || path.isAbsolute(relative))
    throw new GatehouseError('install_failed', `${spec.identifier}: its bin ${chosen} points outside the package`);
  return relative;
}

/** The digest of a package's own files (its nested node_modules excluded: dependencies are npm's to check). */
async function digestTree(root: string): Promise<string> {
  const files: { path: string; sha256: string }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') await walk(full);
      } else if (entry.isFile()) {
        if (files.length >= MAX_TREE_FILES) throw new GatehouseError('install_failed', `${root} holds more than ${MAX_TREE_FILES} files`);
        files.push({
          path: path.relative(root, full),
          sha256: createHash('sha256')
            .update(await readFile(full))
            .digest('hex'),
        });
      } else if (entry.isSymbolicLink()) {
        files.push({ path: path.relative(root, full), sha256: 'link' });
      }
    }
  };
  await stat(root);
  await walk(root);
  return treeDigest(files);
}

function short(integrity: string): string {
  return integrity.length > 24 ? `${integrity.slice(0, 20)}…` : integrity;
}
