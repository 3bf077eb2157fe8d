/**
 * Tampering with the local audit database behind Gatehouse's back, as an attacker with the file
 * would: drop the append-only triggers, then edit, delete, reorder or truncate events. Each time,
 * `gatehouse audit verify` names what happened and where, and the hub flags it when the device
 * syncs. Real parts throughout: the daemon (composition root), the OS keychain (GNOME Keyring on a
 * private D-Bus), PostgreSQL and the hub.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { Logger } from '../../src/core/ports.js';
import { sha256Hex, startHub, type RunningHub } from '../../src/hub/server.js';
import { auditDatabaseFile, readHubLink, writeHubLink } from '../../src/node/audit/local.js';
import { startDaemon, type Daemon } from '../../src/node/daemon.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { closeAll, connectHttp } from './support/clients.js';
import { makeHome, REPO } from './support/gatehouse.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const ENROL = 'tamper-test-enrolment-secret';
const ECHO = join(REPO, 'bench', 'fixtures', 'echo-server.mjs');
const quiet: Logger = { log: () => undefined };

let keyring: TestKeyring;
let postgres: TestPostgres;
let hub: RunningHub;
const homes: string[] = [];

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('these tests need gnome-keyring and dbus (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  postgres = await startPostgres();
  hub = await startHub(
    { databaseUrl: await postgres.createDatabase('tamper'), host: '127.0.0.1', port: 0, adminTokenHashes: [], enrolmentSecretHashes: [sha256Hex(ENROL)] },
    quiet,
  );
});

afterAll(async () => {
  await closeAll();
  await hub?.close();
  await postgres?.stop();
  await keyring?.stop();
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

interface Device {
  env: NodeJS.ProcessEnv;
  stateDir: string;
  db: string;
  token: string;
  start(): Promise<Daemon>;
}

function newDevice(): Device {
  const { home, paths, env } = makeHome('gh-tamper-');
  homes.push(home);
  writeFileSync(
    paths.configFile,
    JSON.stringify({ servers: { echo: { type: 'stdio', command: process.execPath, args: [ECHO] } }, listen: { http: { enabled: true, port: 0 } } }),
    { mode: 0o600 },
  );
  const token = new ClientRegistry(join(paths.stateDir, 'clients.json')).add('tamper-test');
  return { env, stateDir: paths.stateDir, db: auditDatabaseFile(paths.stateDir), token, start: () => startDaemon({ paths, env, logger: quiet }) };
}

/** Starts the daemon, makes `calls` echo calls over HTTP, stops it (which signs a last checkpoint). */
async function run(device: Device, calls: number, afterCalls?: (daemon: Daemon) => Promise<void>): Promise<void> {
  const daemon = await device.start();
  try {
    const deadline = Date.now() + 20_000;
    while (!daemon.status().servers.every((s) => s.state === 'ready')) {
      if (Date.now() > deadline) throw new Error('echo server did not start');
      await new Promise((r) => setTimeout(r, 25));
    }
    const { client } = await connectHttp(daemon.httpUrl!, { era: 'legacy', token: device.token });
    for (let i = 0; i < calls; i++) await client.callTool({ name: 'echo__echo', arguments: { text: `call ${i}` } });
    await closeAll();
    await afterCalls?.(daemon);
  } finally {
    await daemon.stop();
  }
}

async function cli(device: Device, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t), env: device.env });
  return { code, out, err };
}

async function enrol(device: Device): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-secret-'));
  homes.push(dir);
  writeFileSync(join(dir, 'secret'), ENROL, { mode: 0o600 });
  const result = await cli(device, 'audit', 'enrol', '--hub', hub.url, '--token-file', join(dir, 'secret'));
  expect(result.err).toBe('');
  expect(result.code).toBe(0);
  const link = readHubLink(device.stateDir)!;
  writeHubLink(device.stateDir, { ...link, sync: { idleMs: 50, initialDelayMs: 50, maxDelayMs: 300 } });
  return link.device;
}

/** Opens the database as an attacker: the append-only triggers are dropped first. */
function tamper(file: string, sql: string[]): void {
  const db = new Database(file);
  for (const trigger of ['events_no_update', 'events_no_delete', 'checkpoints_no_update', 'checkpoints_no_delete'])
    db.exec(`DROP TRIGGER IF EXISTS ${trigger}`);
  for (const statement of sql) db.exec(statement);
  db.close();
}

function outcomeSeqs(file: string): number[] {
  const db = new Database(file, { readonly: true });
  const rows = db.prepare("SELECT seq FROM events WHERE type = 'call.outcome' ORDER BY seq").all() as { seq: number }[];
  db.close();
  return rows.map((r) => r.seq);
}

async function hubFlags(device: string, kind: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const flags = (await hub.store.flags(device)).filter((f) => f.kind === kind);
    if (flags.length > 0) return flags;
    if (Date.now() > deadline) throw new Error(`the hub raised no ${kind} flag for ${device}: ${JSON.stringify(await hub.store.flags(device))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('an untouched log', () => {
  it('verifies, with its checkpoints signed by the key in the keychain', async () => {
    const device = newDevice();
    await run(device, 3);
    const result = await cli(device, 'audit', 'verify');
    expect(result.out).toMatch(/OK: the audit log is intact/);
    expect(result.out).not.toMatch(/keychain could not be read/);
    expect(result.code).toBe(0);
  });
});

describe('tampering before the events reach the hub', () => {
  it('an edited event: verify names it, and the hub refuses it as forged', async () => {
    const device = newDevice();
    await run(device, 4);
    const target = outcomeSeqs(device.db)[1]!;
    tamper(device.db, [`UPDATE events SET body = replace(body, '"decision":"ok"', '"decision":"denied"') WHERE seq = ${target}`]);
    const result = await cli(device, 'audit', 'verify');
    expect(result.code).toBe(1);
    expect(result.out).toContain(`edited at event ${target}: event ${target}: its content does not match its hash`);
    expect(result.err).toMatch(/tampered with or damaged \(edited at event/);

    const id = await enrol(device);
    await run(device, 1);
    const [flag] = await hubFlags(id, 'bad_hash');
    expect(flag).toMatchObject({ seq: target });
    expect((await hub.store.device(id))!.acked).toBe(target - 1);
  });

  it('a deleted event: verify names the gap, and the hub never acknowledges past it', async () => {
    const device = newDevice();
    await run(device, 4);
    const target = outcomeSeqs(device.db)[1]!;
    tamper(device.db, [`DELETE FROM events WHERE seq = ${target}`]);
    const result = await cli(device, 'audit', 'verify');
    expect(result.code).toBe(1);
    expect(result.out).toContain(`missing at event ${target}: event ${target} is missing: event ${target - 1} is followed by event ${target + 1} (deleted)`);

    const id = await enrol(device);
    await run(device, 1);
    const [flag] = await hubFlags(id, 'gap');
    expect(flag).toMatchObject({ seq: target, resolvedAt: null });
    expect((await hub.store.device(id))!.acked).toBe(target - 1);
  });

  it('reordered events: verify names the position, and the hub refuses the batch', async () => {
    const device = newDevice();
    await run(device, 4);
    const k = outcomeSeqs(device.db)[1]!;
    tamper(device.db, [
      `UPDATE events SET seq = -1 WHERE seq = ${k}`,
      `UPDATE events SET seq = ${k} WHERE seq = ${k + 1}`,
      `UPDATE events SET seq = ${k + 1} WHERE seq = -1`,
    ]);
    const result = await cli(device, 'audit', 'verify');
    expect(result.code).toBe(1);
    expect(result.out).toContain(`reordered at event ${k}: position ${k} holds event ${k + 1}`);

    const id = await enrol(device);
    await run(device, 1);
    const [flag] = await hubFlags(id, 'malformed');
    expect(flag).toMatchObject({ seq: k, message: expect.stringMatching(new RegExp(`the body says seq ${k + 1}, not ${k}`)) });
  });
});

describe('tampering after the events reached the hub', () => {
  it('a truncated log: verify finds the missing tail, and the hub sees the rewritten events as a fork', async () => {
    const device = newDevice();
    await run(device, 1);
    const id = await enrol(device);
    await run(device, 4, async (daemon) => {
      const deadline = Date.now() + 15_000;
      while ((daemon.status().audit.sync?.lagRecords ?? 1) > 0 || daemon.status().audit.sync?.acked === 0) {
        if (Date.now() > deadline) throw new Error(`sync did not catch up: ${JSON.stringify(daemon.status().audit)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    });
    const cut = outcomeSeqs(device.db)[2]!;
    tamper(device.db, [`DELETE FROM events WHERE seq > ${cut}`]);
    const result = await cli(device, 'audit', 'verify');
    expect(result.code).toBe(1);
    expect(result.out).toMatch(new RegExp(`truncated at event ${cut + 1}: the log ends at event ${cut}, but a signed checkpoint vouches for event \\d+`));

    await run(device, 1);
    const [fork] = await hubFlags(id, 'fork');
    expect(fork).toMatchObject({ seq: cut + 1, message: expect.stringMatching(/differs from the one the hub already holds/) });
  });
});
