/**
 * Issue 14: a server a client runs itself (in Cursor's own config, outside Gatehouse) shows up as a
 * shadow server in `gatehouse status` and at the hub, without secret values; and devices' tool
 * definitions reach the hub as fleet baselines, where `gatehouse hub baselines` shows them and an
 * admin promotes them into a bundle's pins. The hub runs over a real PostgreSQL; the device is
 * enrolled with the real `gatehouse audit enrol` and syncs over the signed device protocol.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/ports.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { sha256Hex as tokenHash, startHub, type RunningHub } from '../../src/hub/server.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { runGatehouse } from './support/clients.js';
import { eventually, makeHome } from './support/gatehouse.js';

const ADMIN = 'admin-token-for-catalog-tests';
const ENROL = 'enrolment-secret-for-catalog-tests';
const CANARY = 'sk-canary-7f3a9e1c5b2d4f6a8c0e';
const quiet: Logger = { log: () => undefined };

let postgres: TestPostgres;
let hub: RunningHub;
let daemon: Daemon;
let home: string;
let env: Record<string, string>;
let work: string;

beforeAll(async () => {
  postgres = await startPostgres();
  hub = await startHub(
    {
      databaseUrl: await postgres.createDatabase('hub_catalog'),
      host: '127.0.0.1',
      port: 0,
      adminTokenHashes: [tokenHash(ADMIN)],
      enrolmentSecretHashes: [tokenHash(ENROL)],
    },
    quiet,
  );
  const made = makeHome('gh-shadow-');
  home = made.home;
  work = mkdtempSync(join(tmpdir(), 'gh-shadow-work-'));
  // The person's own Cursor runs a server itself, with a key in its environment and one in its arguments.
  mkdirSync(join(home, '.cursor'));
  writeFileSync(
    join(home, '.cursor', 'mcp.json'),
    JSON.stringify({ mcpServers: { weather: { command: 'npx', args: ['-y', '@acme/weather-mcp', '--api-key', CANARY], env: { WEATHER_API_KEY: CANARY } } } }),
  );
  env = { PATH: process.env.PATH!, HOME: home, USER: 'tester', GATEHOUSE_HOME: home };
  const memory = {
    type: 'stdio',
    command: 'node',
    args: ['${bundled:@modelcontextprotocol/server-memory}'],
    env: { MEMORY_FILE_PATH: '${dataDir}/memory/memory.jsonl' },
    sandbox: { write: ['${dataDir}/memory'] },
  };
  writeFileSync(made.paths.configFile, JSON.stringify({ servers: { memory }, listen: { http: { enabled: false, port: 0 } } }), { mode: 0o600 });
  writeFileSync(join(work, 'enrol'), ENROL);
  const enrolled = await runGatehouse(['audit', 'enrol', '--hub', hub.url, '--token-file', join(work, 'enrol')], env, 30_000);
  expect(enrolled.code, enrolled.stderr).toBe(0);
  // Sync promptly in a test.
  const link = join(made.paths.stateDir, 'hub.json');
  writeFileSync(link, JSON.stringify({ ...JSON.parse(readFileSync(link, 'utf8')), sync: { idleMs: 100, initialDelayMs: 50 } }));
  daemon = await startDaemon({ paths: made.paths, env, logger: quiet, human: { terminal: null, notifier: { notify: () => false } } });
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await hub?.close();
  await postgres?.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

async function admin(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

describe('shadow servers (issue 14)', () => {
  it('lists a server Cursor runs outside Gatehouse in status, naming the client, with no secret value', async () => {
    const s = await eventually(() => (daemon.status().shadowServers?.length ? daemon.status() : undefined), 10_000, 'the shadow server in status');
    expect(s.shadowServers).toEqual([
      {
        client: 'cursor',
        file: join(home, '.cursor', 'mcp.json'),
        name: 'weather',
        type: 'stdio',
        target: 'npx -y @acme/weather-mcp --api-key …',
        envKeys: ['WEATHER_API_KEY'],
      },
    ]);
    expect(JSON.stringify(s)).not.toContain(CANARY);
    const cli = await runGatehouse(['status', '--json'], env);
    expect(JSON.parse(cli.stdout).shadowServers[0]).toMatchObject({ client: 'cursor', name: 'weather' });
  });

  it('reports it to the hub over the signed device protocol, where an admin sees it without the secret', async () => {
    const body = await eventually(
      async () => {
        const b = await admin('/v1/admin/shadow-servers');
        return (b.shadowServers as unknown[]).length > 0 ? b : undefined;
      },
      20_000,
      'the shadow server at the hub',
    );
    expect(body.shadowServers).toEqual([
      expect.objectContaining({
        client: 'cursor',
        name: 'weather',
        type: 'stdio',
        target: 'npx -y @acme/weather-mcp --api-key …',
        envKeys: ['WEATHER_API_KEY'],
      }),
    ]);
    expect(JSON.stringify(await admin('/v1/admin/events?type=catalog.shadow_server'))).not.toContain(CANARY);
    writeFileSync(join(work, 'admin'), ADMIN);
    const cli = await runGatehouse(['hub', 'shadow', '--url', hub.url, '--token-file', join(work, 'admin')], env);
    expect(cli.stdout).toMatch(/cursor {2}weather {2}npx -y @acme\/weather-mcp --api-key …/);
  });
});

describe('fleet baselines (issue 14)', () => {
  it('sends the hash of each tool definition per server and version to the hub, and an admin promotes them into pins', async () => {
    const version = await eventually(
      () => daemon.status().servers.find((v) => v.name === 'memory' && v.state === 'ready')?.serverInfo?.version,
      20_000,
      'memory to be ready',
    );
    const body = await eventually(
      async () => {
        const b = await admin('/v1/admin/baselines?server=memory');
        return (b.baselines as unknown[]).length > 0 ? b : undefined;
      },
      20_000,
      'the baselines at the hub',
    );
    const readGraph = (
      body.baselines as { server: string; version: string; tool: string; hashes: { sha256: string; devices: number }[]; disagree: boolean }[]
    ).find((b) => b.tool === 'read_graph')!;
    expect(readGraph).toMatchObject({ server: 'memory', version, disagree: false, hashes: [{ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), devices: 1 }] });

    const dir = join(work, 'bundle');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'catalog.json'),
      JSON.stringify({ servers: { memory: { launch: { type: 'stdio', command: 'node', args: ['/opt/memory.js'] }, tools: {} } } }),
    );
    const cli = await runGatehouse(
      ['policy', 'catalog', 'promote', dir, '--hub', hub.url, '--server', 'memory', '--version', version, '--token-file', join(work, 'admin')],
      env,
    );
    expect(cli.code, cli.stderr).toBe(0);
    const pins = JSON.parse(readFileSync(join(dir, 'catalog.json'), 'utf8')).servers.memory.tools;
    expect(pins.read_graph).toEqual({ sha256: readGraph.hashes[0]!.sha256, readOnly: false, destructive: true, tags: [] });
  });
});
