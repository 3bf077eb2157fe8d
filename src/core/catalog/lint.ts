/**
 * `gatehouse policy catalog lint`: what must hold of every entry before it is signed. An entry
 * that fails a check marked `error` would fetch unpinned code, could not be verified, or would
 * start without a secret it needs. Whether each package version resolves to the same bytes at its
 * registry is the CLI's part (it needs the network); these checks are on the text alone.
 */
import { NPM_INTEGRITY, SHA256_DIGEST } from '../../common/catalog.js';
import { EXACT_VERSION, knownPackages, secretRefs, type CatalogEntry } from './entry.js';

export interface LintFinding {
  entry: string;
  level: 'error' | 'warning';
  message: string;
}

const PYPI_EXACT = /^\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$/;

export function lintEntry(entry: CatalogEntry, pinnedTools: number): LintFinding[] {
  const out: LintFinding[] = [];
  const error = (message: string) => out.push({ entry: entry.name, level: 'error', message });
  const warning = (message: string) => out.push({ entry: entry.name, level: 'warning', message });
  const packages = knownPackages(entry);
  for (const p of entry.server.packages)
    if (!packages.includes(p as never))
      warning(`package ${p.identifier}: registry type "${p.registryType}" is not one Gatehouse installs (npm, pypi, oci); it is ignored`);
  if (packages.length === 0 && entry.server.remotes.length === 0) error('names neither a package (npm, pypi, oci) nor a remote');
  const seen = new Set<string>();
  for (const p of packages) {
    const where = `${p.registryType} package ${p.identifier}`;
    if (seen.has(p.registryType))
      error(`${where}: a second ${p.registryType} package; an entry has at most one per registry type (its integrity is one value)`);
    seen.add(p.registryType);
    const integrity = entry.ext.integrity[p.registryType];
    if (p.registryType === 'npm') {
      if (!p.version || !EXACT_VERSION.test(p.version))
        error(`${where}: version "${p.version ?? ''}" is not exact (1.2.3); a range fetches whatever is newest that day`);
      if (!integrity)
        error(`${where}: no integrity (_meta["com.gatehouse/catalog"].integrity.npm); \`gatehouse policy catalog import\` fills it from the registry`);
      else if (!NPM_INTEGRITY.test(integrity)) error(`${where}: integrity is not sha512-<base64>`);
    } else if (p.registryType === 'pypi') {
      if (!p.version || !PYPI_EXACT.test(p.version)) error(`${where}: version "${p.version ?? ''}" is not exact`);
      if (!integrity) error(`${where}: no sha256 of the distribution file (_meta["com.gatehouse/catalog"].integrity.pypi)`);
      else if (!SHA256_DIGEST.test(integrity)) error(`${where}: integrity is not sha256:<64 hex digits>`);
    } else {
      const digest = /@(sha256:[0-9a-f]{64})$/.exec(p.identifier)?.[1];
      if (!digest && !integrity) error(`${where}: neither the image reference (@sha256:…) nor integrity.oci names a digest; a tag can move`);
      if (digest && integrity && digest !== integrity) error(`${where}: the image digest ${digest} differs from integrity.oci ${integrity}`);
    }
  }
  const declared = new Set(entry.ext.secrets.map((s) => s.name));
  const used = new Set(secretRefs(entry.ext.env));
  for (const name of used) if (!declared.has(name)) error(`env refers to \${secret:${name}}, which the entry does not declare in secrets`);
  for (const name of declared) if (!used.has(name)) warning(`secret "${name}" is declared but no env value refers to it`);
  for (const arg of entry.ext.args)
    if (arg.includes('${secret:')) error(`args contain a secret reference; every local user can read a command line: pass it in env`);
  for (const p of packages) {
    for (const v of p.environmentVariables ?? []) {
      if (!v.name) continue;
      const value = entry.ext.env[v.name];
      if (v.isSecret && (value === undefined || !value.includes('${secret:')))
        error(`${v.name} is a secret of ${p.identifier}; set env.${v.name} to \${secret:NAME} and declare NAME in secrets`);
      else if (v.isRequired && value === undefined && v.default === undefined) error(`${v.name} is required by ${p.identifier} and env gives it no value`);
    }
  }
  if (pinnedTools === 0)
    warning('no tool is pinned: every tool of this server stays hidden until a bundle pins it (pin after a test install, or promote a fleet baseline)');
  return out;
}
