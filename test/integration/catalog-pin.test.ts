/**
 * Issue 14: a server a person added as `npx -y PACKAGE@VERSION` is pinned with `gatehouse servers pin`
 * by a real `gatehouse daemon` (from dist/), with the real `npm` asking a registry on loopback:
 * resolved once, installed into Gatehouse's directory, verified, and run from there; the config's
 * `npx` line becomes a local pin. A registry that serves other bytes is refused, at pin time and
 * when the pinned version is installed again later.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startRegistry, type TestRegistry } from '../support/npm-registry.js';
import { closeAll, connectBridge, runGatehouse } from './support/clients.js';
import { BIN, eventually, makeHome } from './support/gatehouse.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import type { GatehousePaths } from '../../src/node/paths.js';

let registry: TestRegistry;
const integrity: Record<string, string> = {};
beforeAll(async () => {
  registry = await startRegistry();
  integrity['weather-1.0.0'] = registry.publish({ name: '@acme/weather-mcp', version: '1.0.0' });
  registry.publish({ name: 'pinned-mcp', version: '1.0.0' });
  integrity['mirror-1.0.0'] = registry.publish({ name: 'mirrored-mcp', version: '1.0.0' });
  registry.serveOther({ name: 'mirrored-mcp', version: '1.0.0', marker: 'changed on the way' });
});
afterAll(async () => {
  await registry.close();
});

interface Desktop {
  home: string;
  paths: GatehousePaths;
  env: Record<string, string>;
  token: string;
}

/** A home whose config runs `npx -y` servers, as a person writes them; npm's registry is the loopback one (their .npmrc would say so). */
function desktop(servers: Record<string, string>): Desktop {
  const { home, paths } = makeHome('gh-pin-');
  // npm retries a corrupted download twice, 10 s and 60 s later; the person's npm settings pass through to Gatehouse's npm.
  const env = { PATH: process.env.PATH!, HOME: home, USER: 'tester', GATEHOUSE_HOME: home, npm_config_registry: registry.url, npm_config_fetch_retries: '0' };
  // npx cannot fetch inside the default sandbox (no network): a short start-up timeout keeps the daemon's first start quick.
  const config = {
    servers: Object.fromEntries(
      Object.entries(servers).map(([name, pkg]) => [name, { type: 'stdio', command: 'npx', args: ['-y', pkg], startupTimeoutMs: 3000 }]),
    ),
  };
  writeFileSync(paths.configFile, JSON.stringify({ ...config, listen: { http: { enabled: false, port: 0 } } }, null, 2), { mode: 0o600 });
  const token = new ClientRegistry(join(paths.stateDir, 'clients.json')).add('ide');
  return { home, paths, env, token };
}

/** `gatehouse daemon` as a child in a desktop's home; stopped by its pid. */
async function daemonIn(d: Desktop): Promise<{ status(): Promise<DaemonStatus>; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'daemon'], { env: d.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  await eventually(() => stderr.includes('"daemon.ready"') || child.exitCode !== null, 30_000, 'the daemon to be ready');
  if (child.exitCode !== null) throw new Error(`gatehouse daemon exited:\n${stderr}`);
  return {
    status: async () => (await callControl(d.paths.controlSocketPath, 'status', {})) as DaemonStatus,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const configOf = (d: Desktop) =>
  JSON.parse(readFileSync(d.paths.configFile, 'utf8')) as { servers: Record<string, unknown>; installed?: Record<string, unknown> };

describe('pinning an `npx -y` server (issue 14)', () => {
  const homes: string[] = [];
  const daemons: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    await closeAll();
    for (const d of daemons.splice(0)) await d.stop();
    for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
  });

  it("resolves the package once, installs and verifies it, replaces the npx line with a pin, and runs it from Gatehouse's directory", async () => {
    const d = desktop({ weather: '@acme/weather-mcp@1.0.0' });
    homes.push(d.home);
    const gh = await daemonIn(d);
    daemons.push(gh);
    const run = await runGatehouse(['servers', 'pin', 'weather'], d.env, 120_000);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^pinned weather: @acme\/weather-mcp@1\.0\.0, verified \(sha512-.{13}…\), in .*packages/m);

    const config = configOf(d);
    expect(config.servers).toEqual({});
    expect(config.installed).toEqual({
      weather: { npm: { package: '@acme/weather-mcp', version: '1.0.0', integrity: integrity['weather-1.0.0'] }, args: [], startupTimeoutMs: 3000 },
    });
    const s = await eventually(
      async () => {
        const now = await gh.status();
        return now.servers.find((v) => v.name === 'weather')?.state === 'ready' ? now : undefined;
      },
      30_000,
      'the pinned server to be ready',
    );
    expect(s.installs).toEqual([
      expect.objectContaining({ server: 'weather', package: '@acme/weather-mcp', version: '1.0.0', state: 'ready', dir: expect.stringContaining(d.home) }),
    ]);

    const { client } = await connectBridge(d.env, { era: 'legacy', client: 'ide', token: d.token });
    const result = await client.callTool({ name: 'weather__forecast', arguments: { city: 'Oslo' } });
    expect(result.content).toEqual([{ type: 'text', text: '1.0.0: sunny in Oslo (without a key)' }]);
  });

  it('refuses a registry whose tarball is not the bytes its own metadata names, and keeps the npx line', async () => {
    const d = desktop({ mirrored: 'mirrored-mcp@1.0.0' });
    homes.push(d.home);
    daemons.push(await daemonIn(d));
    const before = readFileSync(d.paths.configFile, 'utf8');
    const run = await runGatehouse(['servers', 'pin', 'mirrored'], d.env, 120_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^gatehouse servers: refused/m);
    expect(run.stderr).toMatch(/mirrored-mcp/);
    expect(readFileSync(d.paths.configFile, 'utf8')).toBe(before);
  });

  it('holds the pin: when the registry later serves other bytes for the pinned version, installing it again is refused and nothing runs', async () => {
    const d = desktop({ pinned: 'pinned-mcp@1.0.0' });
    homes.push(d.home);
    let gh = await daemonIn(d);
    expect((await runGatehouse(['servers', 'pin', 'pinned'], d.env, 120_000)).code).toBe(0);
    await gh.stop();

    // The installed copy is gone (a cleaned disk, a new laptop with the same config), and the registry was compromised since.
    rmSync(join(d.paths.dataDir, 'packages'), { recursive: true, force: true });
    registry.tamper({ name: 'pinned-mcp', version: '1.0.0', marker: 'republished by an attacker' });
    gh = await daemonIn(d);
    daemons.push(gh);
    const s = await eventually(
      async () => {
        const now = await gh.status();
        return now.installs?.find((i) => i.server === 'pinned')?.state === 'refused' ? now : undefined;
      },
      60_000,
      'the reinstall to be refused',
    );
    expect(s.installs![0]!.reason).toMatch(/^refused pinned-mcp@1\.0\.0: the registry served other bytes than the catalogue approved/);
    expect(s.servers.map((v) => v.name)).not.toContain('pinned');
  });
});
