/**
 * The audit fault test: 1,000 governed calls while `gatehouse daemon` is killed with SIGKILL four
 * times (mid-write: calls are always in flight; mid-sync: once while it sends the backlog an outage
 * left) and the hub is cut off for a long stretch and restored. Afterwards every call that got a response has its attempt and
 * its outcome in the local log and in the hub, the local chain verifies, and nothing is duplicated.
 * Real parts throughout: the daemon as a child process, GNOME Keyring, PostgreSQL, the hub.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { digest } from '../../src/core/digest.js';
import type { Logger } from '../../src/core/ports.js';
import { sha256Hex, startHub, type RunningHub } from '../../src/hub/server.js';
import { auditDatabaseFile, readHubLink, writeHubLink } from '../../src/node/audit/local.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { connectHttp, type Connected } from './support/clients.js';
import { BIN, makeHome, REPO } from './support/gatehouse.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { freePort, startPostgres, type TestPostgres } from '../support/postgres.js';

const ENROL = 'fault-test-enrolment-secret';
const ECHO = join(REPO, 'bench', 'fixtures', 'echo-server.mjs');
const CALLS = 1000;
const WORKERS = 4;
const quiet: Logger = { log: () => undefined };

let keyring: TestKeyring;
let postgres: TestPostgres;
let databaseUrl: string;
let hubPort: number;
let hub: RunningHub | undefined;
const cleanup: string[] = [];

const startTheHub = () => startHub({ databaseUrl, host: '127.0.0.1', port: hubPort, adminTokenHashes: [], enrolmentSecretHashes: [sha256Hex(ENROL)] }, quiet);

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('this test needs gnome-keyring and dbus (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase('faults');
  hubPort = await freePort();
  hub = await startTheHub();
});

afterAll(async () => {
  await hub?.close();
  await postgres?.stop();
  await keyring?.stop();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

class DaemonProcess {
  child: ChildProcess | undefined;
  generation = 0;
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly controlSocket: string,
  ) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'daemon', '--log-level', 'warn'], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    this.child = child;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the daemon exited at start:\n${stderr}`);
      try {
        const s = await this.status();
        if (s.servers.every((srv) => srv.state === 'ready') && s.pid === child.pid) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`the daemon did not become ready:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    this.generation++;
  }

  status(): Promise<DaemonStatus> {
    return callControl(this.controlSocket, 'status', {}, 5000) as Promise<DaemonStatus>;
  }

  /** SIGKILL, as a crash or the OOM killer would; the echo server it had started is stopped by its pid. */
  async kill(): Promise<void> {
    const child = this.child!;
    const upstream = (await this.status().catch(() => undefined))?.servers.map((s) => s.pid).filter((p): p is number => p !== undefined) ?? [];
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
    for (const pid of upstream) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone with its parent's pipes.
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

describe('1,000 calls through four SIGKILLs and a hub outage', () => {
  it('keeps a record of every answered call, locally and at the hub, with an intact chain and no duplicates', { timeout: 150_000 }, async () => {
    const { home, paths, env: baseEnv } = makeHome('gh-faults-');
    cleanup.push(home);
    const env: NodeJS.ProcessEnv = { ...baseEnv, ...keyring.env };
    const httpPort = await freePort();
    writeFileSync(
      paths.configFile,
      JSON.stringify({
        servers: { echo: { type: 'stdio', command: process.execPath, args: [ECHO], health: { intervalMs: 3_600_000 } } },
        listen: { http: { enabled: true, port: httpPort } },
      }),
      { mode: 0o600 },
    );
    const token = new ClientRegistry(join(paths.stateDir, 'clients.json')).add('fault-test');
    const secretDir = mkdtempSync(join(tmpdir(), 'gh-secret-'));
    cleanup.push(secretDir);
    writeFileSync(join(secretDir, 'secret'), ENROL, { mode: 0o600 });
    let cliOut = '';
    const enrolled = await main(['audit', 'enrol', '--hub', `http://127.0.0.1:${hubPort}`, '--token-file', join(secretDir, 'secret')], {
      out: (t) => (cliOut += t),
      err: (t) => (cliOut += t),
      env,
    });
    expect(enrolled, cliOut).toBe(0);
    const link = readHubLink(paths.stateDir)!;
    writeHubLink(paths.stateDir, { ...link, sync: { batchSize: 200, idleMs: 50, initialDelayMs: 50, maxDelayMs: 400 } });

    const daemon = new DaemonProcess(env, paths.controlSocketPath);
    await daemon.start();

    const t0 = Date.now();
    const answered = new Set<number>();
    let next = 0;
    let restarting: Promise<void> | undefined;
    const events: string[] = [];
    const milestones = [
      { at: 200, act: () => daemon.kill().then(() => daemon.start()), what: 'SIGKILL' },
      { at: 300, act: async () => void (await hub!.close(), (hub = undefined)), what: 'hub cut off' },
      { at: 450, act: () => daemon.kill().then(() => daemon.start()), what: 'SIGKILL' },
      { at: 700, act: () => daemon.kill().then(() => daemon.start()), what: 'SIGKILL' },
      { at: 800, act: async () => void (hub = await startTheHub()), what: 'hub restored' },
      // While the sender works through the backlog the outage left: mid-sync for certain.
      { at: 830, act: () => daemon.kill().then(() => daemon.start()), what: 'SIGKILL' },
    ];
    const maybeAct = () => {
      const due = milestones[0];
      if (!due || answered.size < due.at || restarting) return;
      milestones.shift();
      events.push(`${due.what} after ${answered.size} answered at ${Date.now() - t0} ms`);
      restarting = due.act().finally(() => (restarting = undefined));
    };

    const worker = async (): Promise<void> => {
      let connected: Connected | undefined;
      let generation = -1;
      while (next < CALLS) {
        if (restarting) await restarting.catch(() => undefined);
        if (!connected || generation !== daemon.generation) {
          await connected?.close().catch(() => undefined);
          generation = daemon.generation;
          try {
            connected = await connectHttp(`http://127.0.0.1:${httpPort}`, { era: 'legacy', token });
          } catch {
            connected = undefined;
            await new Promise((r) => setTimeout(r, 50));
            continue;
          }
        }
        const i = next++;
        try {
          const result = (await connected.client.callTool({ name: 'echo__echo', arguments: { text: `call-${i}` } }, { timeout: 10_000 })) as {
            content?: { text?: string }[];
          };
          if (result.content?.[0]?.text === `call-${i}`) answered.add(i);
        } catch {
          connected = undefined; // the daemon went away mid-call: this call has no response
        }
        maybeAct();
      }
      await connected?.close().catch(() => undefined);
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    if (restarting) await restarting;
    while (milestones.length > 0) {
      const m = milestones.shift()!;
      events.push(`${m.what} at the end`);
      await m.act();
    }
    expect(events.filter((e) => e.startsWith('SIGKILL'))).toHaveLength(4);
    expect(answered.size).toBeGreaterThan(CALLS * 0.9);

    // The sender catches up once the hub is back.
    const deadline = Date.now() + 30_000;
    let status: DaemonStatus;
    for (;;) {
      status = await daemon.status();
      if (status.audit.sync && status.audit.sync.lagRecords === 0 && status.audit.sync.acked > 0) break;
      if (Date.now() > deadline) throw new Error(`sync did not catch up: ${JSON.stringify(status.audit)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const device = status.audit.device!;
    await daemon.stop();

    // Locally: every answered call has its attempt and its outcome; the chain verifies.
    const db = new Database(auditDatabaseFile(paths.stateDir), { readonly: true });
    const local = (db.prepare('SELECT seq, body FROM events ORDER BY seq').all() as { seq: number; body: string }[]).map(
      (r) => JSON.parse(r.body) as Record<string, string>,
    );
    db.close();
    expect(local.map((e) => Number(e.seq))).toEqual(local.map((_, i) => i + 1));
    const verify = { out: '', code: 0 };
    verify.code = await main(['audit', 'verify'], { out: (t) => (verify.out += t), err: (t) => (verify.out += t), env });
    expect(verify.out).toMatch(/OK: the audit log is intact/);
    expect(verify.code).toBe(0);

    // At the hub: the same events, each once.
    const { rows } = await hub!.store.pool.query('SELECT seq, body FROM events WHERE device = $1 ORDER BY seq', [device]);
    const central = rows.map((r) => JSON.parse(r.body as string) as Record<string, string>);
    // The hub holds everything up to the last sync; only what the shutdown itself recorded may follow.
    expect(new Set(central.map((e) => e.id)).size).toBe(central.length);
    expect(central.map((e) => e.id)).toEqual(local.slice(0, central.length).map((e) => e.id));
    expect(local.slice(central.length).every((e) => e.type !== 'call.attempt' && e.type !== 'call.outcome')).toBe(true);

    for (const [where, log] of [
      ['local', local],
      ['hub', central],
    ] as const) {
      const attempts = new Map<string, Record<string, string>[]>();
      const outcomes = new Map<string, Record<string, string>>();
      for (const e of log) {
        if (e.type === 'call.attempt') attempts.set(e.argsDigest!, [...(attempts.get(e.argsDigest!) ?? []), e]);
        if (e.type === 'call.outcome') outcomes.set(e.callId!, e);
      }
      const missing: string[] = [];
      for (const i of answered) {
        const found = attempts.get(digest({ text: `call-${i}` })) ?? [];
        if (found.length !== 1) missing.push(`call-${i}: ${found.length} attempts`);
        else if (outcomes.get(found[0]!.callId!)?.decision !== 'ok') missing.push(`call-${i}: no ok outcome`);
      }
      expect(missing, `${where}: ${events.join(', ')}`).toEqual([]);
    }
    // Every attempt ends somewhere: calls in flight at a SIGKILL got an `interrupted` outcome at the next start (issue 10).
    const ended = new Map(local.filter((e) => e.type === 'call.outcome').map((e) => [e.callId!, e.decision]));
    const unended = local.filter((e) => e.type === 'call.attempt' && !ended.has(e.callId!));
    expect(unended.map((e) => e.seq)).toEqual([]);
    expect([...ended.values()].every((d) => d === 'ok' || d === 'interrupted')).toBe(true);
    expect(await hub!.store.flags(device)).toEqual([]);
  });
});
