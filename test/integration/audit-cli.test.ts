/**
 * The audit and hub commands as users and their scripts run them: `gatehouse audit query|export|
 * verify`, `gatehouse status`'s audit lines, and `gatehouse hub` as its own process over a real
 * PostgreSQL, with its refusals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, truncateSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex as sha256OfText } from '../../src/core/audit/event.js';
import { canonicalJson } from '../../src/core/digest.js';
import type { Logger } from '../../src/core/ports.js';
import { MemorySecretStore } from '../../src/core/secrets.js';
import { auditDatabaseFile } from '../../src/node/audit/local.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { closeAll, connectHttp, runGatehouse } from './support/clients.js';
import { BIN, makeHome, REPO } from './support/gatehouse.js';
import { freePort, startPostgres, type TestPostgres } from '../support/postgres.js';

const ECHO = join(REPO, 'bench', 'fixtures', 'echo-server.mjs');
const quiet: Logger = { log: () => undefined };

let home: string;
let env: Record<string, string>;
let daemon: Daemon;
let stateDir: string;

beforeAll(async () => {
  const made = makeHome('gh-audit-cli-');
  home = made.home;
  stateDir = made.paths.stateDir;
  env = { PATH: process.env.PATH ?? '/usr/bin:/bin', GATEHOUSE_HOME: home, HOME: home };
  writeFileSync(
    made.paths.configFile,
    JSON.stringify({ servers: { echo: { type: 'stdio', command: process.execPath, args: [ECHO] } }, listen: { http: { enabled: true, port: 0 } } }),
    { mode: 0o600 },
  );
  const token = new ClientRegistry(join(stateDir, 'clients.json')).add('cli-test');
  daemon = await startDaemon({ paths: made.paths, env: made.env, logger: quiet, secrets: new MemorySecretStore(), audit: { checkpointEvery: 5 } });
  const deadline = Date.now() + 20_000;
  while (!daemon.status().servers.every((s) => s.state === 'ready')) {
    if (Date.now() > deadline) throw new Error('echo server did not start');
    await new Promise((r) => setTimeout(r, 25));
  }
  const { client } = await connectHttp(daemon.httpUrl!, { era: 'legacy', token });
  for (let i = 0; i < 6; i++) await client.callTool({ name: 'echo__echo', arguments: { text: `call ${i}` } });
  await client.callTool({ name: 'echo__no_such_tool', arguments: {} }).catch(() => undefined);
  await closeAll();
});

afterAll(async () => {
  await closeAll();
  await daemon?.stop();
  rmSync(home, { recursive: true, force: true });
});

describe('gatehouse audit query', () => {
  it('filters by server, tool and decision, while the daemon is writing', async () => {
    const ok = await runGatehouse(['audit', 'query', '--server', 'echo', '--tool', 'echo', '--decision', 'ok', '--json'], env);
    expect(ok.stderr).toBe('');
    const events = JSON.parse(ok.stdout) as { type: string; decision: string; hash: string }[];
    expect(events).toHaveLength(6);
    expect(events.every((e) => e.type === 'call.outcome' && e.decision === 'ok' && /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
    const denied = await runGatehouse(['audit', 'query', '--decision', 'denied'], env);
    expect(denied.stdout).toMatch(/^SEQ\s+TIME\s+TYPE\s+USER\s+CLIENT\s+SERVER\/ITEM\s+DECISION\s+DETAIL/);
    expect(denied.stdout).toMatch(/call\.outcome .* cli-test .* denied\s+unknown_tool/);
  });

  it('refuses a bad filter with a one-line reason and exit code 2', async () => {
    const bad = await runGatehouse(['audit', 'query', '--from', 'last tuesday'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--from takes an ISO time/);
  });
});

describe('gatehouse audit export', () => {
  it('writes JSON Lines whose every line re-hashes to its "hash" and links to the one before', async () => {
    const out = join(home, 'export.jsonl');
    const result = await runGatehouse(['audit', 'export', '--out', out], env);
    expect(result.code).toBe(0);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(12);
    let prev = '0'.repeat(64);
    for (const line of lines) {
      const { hash, ...event } = line;
      expect(sha256OfText(canonicalJson(event))).toBe(hash);
      expect(event.prev).toBe(prev);
      prev = hash as string;
    }
  });
});

describe('gatehouse audit verify', () => {
  it('passes the live log (against the key recorded in it when the keychain is not consulted)', async () => {
    const result = await runGatehouse(['audit', 'verify', '--no-keychain'], env);
    expect(result.stdout).toMatch(/OK: the audit log is intact/);
    expect(result.stdout).toMatch(/warning: the keychain was not consulted/);
    expect(result.code).toBe(0);
  });

  it('says the file is damaged when its bytes were cut off', async () => {
    const copy = join(home, 'cut.db');
    copyFileSync(auditDatabaseFile(stateDir), copy);
    truncateSync(copy, Math.floor(statSync(copy).size / 3));
    const result = await runGatehouse(['audit', 'verify', '--no-keychain', '--file', copy], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot read the audit database .*cut\.db: .*(malformed|not a database|no such table)/);
  });
});

describe('gatehouse status', () => {
  it('shows the audit log, its signing key state and that the device syncs to no hub', async () => {
    const result = await runGatehouse(['status'], env);
    expect(result.stdout).toMatch(/audit: \d+ records in .*audit\.db/);
    expect(result.stdout).toMatch(/audit sync: not enrolled with a hub \(gatehouse audit enrol\)/);
    const json = JSON.parse((await runGatehouse(['status', '--json'], env)).stdout);
    expect(json.audit).toMatchObject({ healthy: true, signing: { state: 'ok' }, device: expect.stringMatching(/^dev_/) });
  });
});

describe('gatehouse hub', () => {
  let postgres: TestPostgres;
  let hub: ChildProcess | undefined;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    if (hub && hub.exitCode === null) {
      const exited = new Promise((r) => hub!.once('exit', r));
      hub.kill('SIGTERM');
      await exited;
    }
    await postgres?.stop();
  });

  it('makes a token and prints only its hash for the config', async () => {
    const result = await runGatehouse(['hub', 'token'], env);
    const [, token, hash] = /token:\s+(\S+)\nsha256: ([0-9a-f]{64})/.exec(result.stdout)!;
    expect(sha256OfText(token!)).toBe(hash);
  });

  it('refuses a database URL with a password in it, which other users could read', async () => {
    const result = await runGatehouse(['hub', '--database', 'postgres://hub:s3cret@127.0.0.1/hub'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/must not contain a password .*PGPASSWORD/);
    expect(result.stderr).not.toContain('s3cret');
  });

  it('runs as its own process, answers admins who hold the token and refuses everyone else', async () => {
    const port = await freePort();
    const token = 'cli-admin-token';
    const database = await postgres.createDatabase('hub_cli');
    hub = spawn(process.execPath, [BIN, 'hub', '--database', database, '--listen', `127.0.0.1:${port}`], {
      env: { ...env, GATEHOUSE_HUB_ADMIN_TOKEN_SHA256: sha256OfText(token) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    hub.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`${url}/healthz`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      if (Date.now() > deadline || hub.exitCode !== null) throw new Error(`the hub did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stderr).toMatch(/"hub\.no_enrolment_secret"/);
    const denied = await fetch(`${url}/v1/admin/devices`);
    expect(denied.status).toBe(401);
    const allowed = await fetch(`${url}/v1/admin/devices`, { headers: { authorization: `Bearer ${token}` } });
    expect(await allowed.json()).toEqual({ devices: [] });
  });
});
