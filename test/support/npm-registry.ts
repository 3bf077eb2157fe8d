/**
 * An npm registry on 127.0.0.1 that the real `npm` client installs from: packuments at `/<name>`,
 * tarballs at `/<name>/-/<file>.tgz`. Tarballs are made by the real `npm pack` from
 * test/fixtures/catalog (a dependency-free MCP server). A test can republish a version with other
 * bytes (`tamper`), as a compromised registry or mirror would, with a packument that agrees with
 * the new bytes, so only the signed catalogue can tell.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/catalog/server.js');

export interface PublishOptions {
  name: string;
  version: string;
  /** The description of its `forecast` tool (a different one is a changed definition). */
  toolDescription?: string;
  /** Extra text in the package, to make other bytes for the same version. */
  marker?: string;
}

interface Published {
  bytes: Buffer;
  integrity: string;
  shasum: string;
  manifest: Record<string, unknown>;
}

export interface TestRegistry {
  url: string;
  /** Packs and publishes a version; returns its integrity. */
  publish(options: PublishOptions): string;
  /** Replaces a published version's bytes (and its packument's integrity): same version, other bytes. */
  tamper(options: PublishOptions): string;
  /**
   * Serves other bytes for a published version while its packument still names the old integrity,
   * as a mirror or a proxy in the path would: the client's own integrity check can tell.
   */
  serveOther(options: PublishOptions): void;
  /** Requests for tarballs so far, by file name. */
  downloads: string[];
  close(): Promise<void>;
}

export async function startRegistry(): Promise<TestRegistry> {
  const work = mkdtempSync(join(tmpdir(), 'gh-registry-'));
  const packages = new Map<string, Map<string, Published>>();
  const downloads: string[] = [];
  let url = '';

  const pack = (o: PublishOptions): Published => {
    const dir = mkdtempSync(join(work, 'pkg-'));
    const manifest = {
      name: o.name,
      version: o.version,
      type: 'module',
      bin: { [o.name.split('/').pop()!]: 'server.js' },
      description: 'A weather MCP server for Gatehouse tests',
      ...(o.toolDescription ? { toolDescription: o.toolDescription } : {}),
      ...(o.marker ? { marker: o.marker } : {}),
    };
    writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
    copyFileSync(FIXTURE, join(dir, 'server.js'));
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: work, npm_config_cache: join(work, 'cache') },
    });
    const file = (JSON.parse(out) as { filename: string }[])[0]!.filename;
    const bytes = readFileSync(join(dir, file));
    return {
      bytes,
      integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
      shasum: createHash('sha1').update(bytes).digest('hex'),
      manifest,
    };
  };
  const put = (o: PublishOptions): string => {
    const p = pack(o);
    let versions = packages.get(o.name);
    if (!versions) packages.set(o.name, (versions = new Map()));
    versions.set(o.version, p);
    return p.integrity;
  };
  const serveOther = (o: PublishOptions): void => {
    const old = packages.get(o.name)?.get(o.version);
    if (!old) throw new Error(`${o.name}@${o.version} is not published`);
    packages.get(o.name)!.set(o.version, { ...pack(o), integrity: old.integrity, shasum: old.shasum });
  };
  const tarballName = (name: string, version: string) => `${name.split('/').pop()}-${version}.tgz`;

  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const tarball = /^\/(.+)\/-\/([^/]+\.tgz)$/.exec(path);
    if (tarball) {
      const versions = packages.get(tarball[1]!);
      const found = [...(versions?.entries() ?? [])].find(([v]) => tarballName(tarball[1]!, v) === tarball[2]);
      if (!found) return void res.writeHead(404).end();
      downloads.push(tarball[2]!);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': found[1].bytes.length });
      return void res.end(found[1].bytes);
    }
    const name = path.slice(1);
    const versions = packages.get(name);
    if (!versions) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: 'not found' }));
    }
    const all = [...versions.keys()];
    const body = {
      name,
      'dist-tags': { latest: all[all.length - 1] },
      versions: Object.fromEntries(
        [...versions].map(([v, p]) => [
          v,
          { ...p.manifest, dist: { tarball: `${url}/${name}/-/${tarballName(name, v)}`, integrity: p.integrity, shasum: p.shasum } },
        ]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    publish: put,
    tamper: put,
    serveOther,
    downloads,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(work, { recursive: true, force: true });
    },
  };
}
