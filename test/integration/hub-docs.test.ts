/**
 * docs/hub.md, run (issue 16): every `# step:` block of the page, in the page's order, against a
 * throwaway PostgreSQL: the roles, the tokens and configuration, a self-signed certificate, two
 * hub instances from the page's own command (HTTPS, a read-only role for admin queries) with
 * devices sending to both at once, the health and metrics checks, enrolment with the real
 * `gatehouse audit enrol`, a backup and its restore, and retiring a month. The systemd unit is
 * checked by `systemd-analyze verify` and `security`; it cannot be started here (no systemd runs
 * in a container). `useradd` runs as written, into a copy of /etc (`--prefix`), not the machine's.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPostgres, type TestPostgres } from '../support/postgres.js';
import { callRecord, testDevice, type TestDevice } from '../support/hub-device.js';
import { fetchTrusting } from '../support/https-fetch.js';
import { HubClient } from '../../src/node/audit/hub-client.js';
import { BIN, REPO } from './support/gatehouse.js';

const page = readFileSync(join(REPO, 'docs', 'hub.md'), 'utf8');
const fenced = [...page.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
const steps = new Map(fenced.filter((b) => /^# step: /.test(b.body)).map((b) => [/^# step: (\S+)/.exec(b.body)![1]!, b.body]));
const step = (name: string): string => {
  const body = steps.get(name);
  if (!body) throw new Error(`docs/hub.md has no "# step: ${name}" block`);
  return body;
};

let postgres: TestPostgres;
let work: string;
let bin: string;
let etc: string;
let env: NodeJS.ProcessEnv;
const hubs: { child: ChildProcess; url: string; stderr: () => string }[] = [];
const devices: TestDevice[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  work = mkdtempSync(join(tmpdir(), 'gh-hub-docs-'));
  bin = join(work, 'bin');
  etc = join(work, 'etc-gatehouse-hub');
  mkdirSync(bin);
  writeFileSync(join(bin, 'gatehouse'), `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`, { mode: 0o755 });
  // useradd as the page writes it, into a copy of the accounts files: never the machine's own.
  const root = join(work, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  for (const f of ['passwd', 'group', 'shadow', 'gshadow', 'login.defs']) if (existsSync(`/etc/${f}`)) copyFileSync(`/etc/${f}`, join(root, 'etc', f));
  writeFileSync(join(bin, 'useradd'), `#!/bin/sh\nexec /usr/sbin/useradd --prefix ${root} "$@"\n`, { mode: 0o755 });
  env = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: work,
    USER: 'admin',
    PGHOST: '127.0.0.1',
    PGPORT: String(postgres.port),
    PGUSER: 'postgres',
    HUB_ETC: etc,
    HUB_NAME: 'localhost',
    DB: `127.0.0.1:${postgres.port}`,
    // The replica: the same server here, reached as the read-only role.
    REPLICA: `127.0.0.1:${postgres.port}`,
  };
}, 60_000);

afterAll(async () => {
  for (const hub of hubs) await stop(hub.child);
  for (const d of devices) d.close();
  await postgres?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function sh(name: string, extra: NodeJS.ProcessEnv = {}, cwd = work): string {
  const result = spawnSync('sh', ['-e', '-c', step(name)], { env: { ...env, ...extra }, cwd, encoding: 'utf8', timeout: 60_000 });
  expect(result.status, `step ${name} failed:\n${result.stderr}\n${result.stdout}`).toBe(0);
  return result.stdout;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function startInstance(): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const port = await freePort();
  const url = `https://localhost:${port}`;
  const child = spawn('sh', ['-e', '-c', step('run')], { env: { ...env, HUB_LISTEN: `127.0.0.1:${port}` }, cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const hub = { child, url, stderr: () => stderr };
  hubs.push(hub);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the hub exited:\n${stderr}`);
    const check = spawnSync('sh', ['-e', '-c', step('check')], { env: { ...env, HUB_URL: url }, encoding: 'utf8' });
    if (check.status === 0) break;
    if (Date.now() > deadline) throw new Error(`the hub did not answer its check within 30 s:\n${stderr}\n${check.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return hub;
}

async function sql<T = Record<string, unknown>>(database: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${postgres.port}/${database}` });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('docs/hub.md', () => {
  it('names every block it runs, in order, and has nothing else to paste but the unit and the scrape config', () => {
    expect([...steps.keys()]).toEqual([
      'database',
      'tokens',
      'certificate',
      'run',
      'check',
      'user',
      'prometheus',
      'scrape',
      'enrol',
      'backup',
      'restore',
      'retention',
    ]);
    expect(fenced.filter((b) => !/^# step: /.test(b.body)).map((b) => b.lang)).toEqual(['ini']);
  });

  it("gives a systemd unit that systemd-analyze verifies and rates OK, hardened, running the page's own command", () => {
    const unit = fenced.find((b) => b.lang === 'ini')!.body;
    const dir = join(work, 'unit');
    mkdirSync(dir, { recursive: true });
    // verify checks that ExecStart's program exists: point it at this checkout's command.
    writeFileSync(join(dir, 'gatehouse-hub.service'), unit.replace('ExecStart=/usr/bin/gatehouse ', `ExecStart=${join(bin, 'gatehouse')} `));
    const verify = spawnSync('systemd-analyze', ['verify', join(dir, 'gatehouse-hub.service')], { encoding: 'utf8' });
    expect(verify.error, 'systemd-analyze is missing (apt-get install systemd)').toBeUndefined();
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stderr.trim()).toBe('');
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', join(dir, 'gatehouse-hub.service')], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for gatehouse-hub\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
    expect(score, security.stdout + security.stderr).toBeLessThanOrEqual(2);
    const keys = (name: string) => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
    expect(keys('User')).toEqual(['gatehouse-hub']);
    expect(keys('NoNewPrivileges')).toEqual(['yes']);
    expect(keys('ProtectSystem')).toEqual(['strict']);
    expect(keys('CapabilityBoundingSet')).toEqual(['']);
    // The flags of the unit are the flags of the command the test runs below.
    const unitFlags = keys('ExecStart')[0]!
      .split(' ')
      .filter((w) => w.startsWith('--'));
    const runFlags = step('run').match(/--[a-z-]+/g);
    expect(unitFlags).toEqual(runFlags);
  });

  it('makes the roles, the tokens (hashes only in the configuration), the certificate and the service user', async () => {
    sh('database');
    sh('tokens');
    const config = JSON.parse(readFileSync(join(etc, 'hub.json'), 'utf8')) as Record<string, string[]>;
    expect(Object.keys(config)).toEqual(['adminTokenSha256', 'enrolmentSecretSha256', 'metricsTokenSha256']);
    for (const hashes of Object.values(config)) expect(hashes).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(readdirSync(etc).sort()).toEqual(['admin.token', 'enrolment.token', 'hub.json', 'metrics.token']);
    for (const f of readdirSync(etc)) expect(statSync(join(etc, f)).mode & 0o077, f).toBe(0);
    const raw = readFileSync(join(etc, 'hub.json'), 'utf8');
    for (const f of ['admin.token', 'enrolment.token', 'metrics.token']) expect(raw).not.toContain(readFileSync(join(etc, f), 'utf8').trim());
    sh('certificate');
    expect(statSync(join(etc, 'hub.key')).mode & 0o077).toBe(0);
    sh('user');
    expect(readFileSync(join(work, 'root', 'etc', 'passwd'), 'utf8')).toMatch(/^gatehouse-hub:x:\d+:\d+::\/nonexistent:\/usr\/sbin\/nologin$/m);
    const roles = await sql<{ rolname: string; rolsuper: boolean }>(
      'postgres',
      `SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'gatehouse_%' ORDER BY 1`,
    );
    expect(roles).toEqual([
      { rolname: 'gatehouse_hub', rolsuper: false },
      { rolname: 'gatehouse_reader', rolsuper: false },
    ]);
  });

  it('runs two instances over one database, over HTTPS, that take devices sending to both at once, storing every event once', async () => {
    const [one, two] = [await startInstance(), await startInstance()];
    const ca = readFileSync(join(etc, 'hub.crt'));
    const enrolment = readFileSync(join(etc, 'enrolment.token'), 'utf8').trim();
    const senders = [];
    for (let i = 0; i < 3; i++) {
      const d = await testDevice(one.url, 200, (n) => callRecord(n), fetchTrusting(ca));
      devices.push(d);
      await d.client.enrol(enrolment);
      const client2 = new HubClient({ url: two.url, key: d.key, fetch: fetchTrusting(ca) });
      for (let after = 0; after < 201; after += 40) {
        senders.push(d.client.sendBatch(d.batch(after, 40)).catch(() => undefined));
        senders.push(client2.sendBatch(d.batch(after, 40)).catch(() => undefined));
      }
    }
    await Promise.all(senders);
    for (const d of devices) {
      const [row] = await sql<{ n: number; distinct: number; acked: string }>(
        'gatehouse_hub',
        'SELECT (SELECT count(*)::int FROM events WHERE device = $1) AS n, (SELECT count(DISTINCT seq)::int FROM chain WHERE device = $1) AS distinct, (SELECT acked_seq FROM devices WHERE id = $1) AS acked',
        [d.store.device],
      );
      expect(row).toEqual({ n: 201, distinct: 201, acked: '201' });
    }
    // Plain HTTP to an HTTPS instance gets nowhere.
    await expect(fetch(one.url.replace('https:', 'http:') + '/healthz')).rejects.toThrow();
  });

  it('answers admin queries through the read-only role, which cannot write', async () => {
    const out = sh('check', { HUB_URL: hubs[0]!.url });
    const devicesListed = JSON.parse(out.slice(out.indexOf('{"devices"'))) as { devices: { id: string }[] };
    expect(devicesListed.devices.map((d) => d.id)).toEqual(expect.arrayContaining(devices.map((d) => d.store.device)));
    const readers = await sql<{ n: number }>(
      'postgres',
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'gatehouse_reader' AND datname = 'gatehouse_hub'`,
    );
    expect(readers[0]!.n).toBeGreaterThanOrEqual(1);
    // Take the reader's grant away and the admin query fails: it went through that role, not the primary's.
    await sql('gatehouse_hub', 'REVOKE SELECT ON devices FROM gatehouse_reader');
    try {
      const refused = spawnSync('sh', ['-e', '-c', step('check')], { env: { ...env, HUB_URL: hubs[0]!.url }, encoding: 'utf8' });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toMatch(/returned error: 503/);
    } finally {
      await sql('gatehouse_hub', 'GRANT SELECT ON devices TO gatehouse_reader');
    }
    const write = spawnSync('psql', ['-v', 'ON_ERROR_STOP=1', '-U', 'gatehouse_reader', '-d', 'gatehouse_hub', '-c', 'DELETE FROM events'], {
      env,
      encoding: 'utf8',
    });
    expect(write.status).not.toBe(0);
    expect(write.stderr).toMatch(/read-only transaction/);
  });

  it('gives a Prometheus scrape config with the metrics token, and a scrape that shows the fleet and both pools', () => {
    const [config] = [load(step('prometheus')) as { scrape_configs: { scheme: string; authorization: { type: string; credentials_file: string } }[] }];
    expect(config.scrape_configs[0]).toMatchObject({
      scheme: 'https',
      authorization: { type: 'Bearer', credentials_file: expect.stringMatching(/metrics\.token$/) },
    });
    const out = sh('scrape', { HUB_URL: hubs[1]!.url });
    expect(out).toMatch(/^gatehouse_hub_devices\{status="active"\} 3$/m);
    expect(out).toMatch(/^gatehouse_hub_db_pool_connections\{pool="read",state="total"\} [1-9]/m);
    expect(out).toMatch(/^gatehouse_hub_events_ingested_total\{result="stored"\} \d+$/m);
    for (const d of devices) expect(out).toContain(`gatehouse_hub_device_unacked_events{device="${d.store.device}"} 0`);
  });

  it("enrols a device with the page's command, trusting the hub's certificate", async () => {
    const home = join(work, 'device-home');
    mkdirSync(home);
    const result = spawnSync('sh', ['-e', '-c', step('enrol')], {
      env: {
        PATH: env.PATH,
        HOME: home,
        USER: 'alice',
        GATEHOUSE_HOME: home,
        HUB_URL: hubs[0]!.url,
        ENROLMENT_TOKEN_FILE: join(etc, 'enrolment.token'),
        NODE_EXTRA_CA_CERTS: join(etc, 'hub.crt'),
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const device = /device (dev_[a-z0-9]+) \(key/.exec(result.stdout)![1]!;
    expect(await sql('gatehouse_hub', 'SELECT status FROM devices WHERE id = $1', [device])).toEqual([{ status: 'active' }]);
  });

  it('backs up with pg_dump and restores into a fresh database with everything in it', async () => {
    sh('backup');
    expect(readdirSync(work).filter((f) => /^gatehouse_hub-\d{4}-\d{2}-\d{2}\.dump$/.test(f))).toHaveLength(1);
    sh('restore');
    const counts = async (db: string) =>
      (
        await sql(
          db,
          "SELECT (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM chain) AS chain, (SELECT string_agg(id || acked_seq, ',' ORDER BY id) FROM devices) AS acks",
        )
      )[0];
    const original = await counts('gatehouse_hub');
    expect(original!.events).toBeGreaterThanOrEqual(603);
    expect(await counts('gatehouse_hub_restored')).toEqual(original);
    // The reader keeps its grant in the restored database too.
    const readable = await sql<{ ok: boolean }>('gatehouse_hub_restored', `SELECT has_table_privilege('gatehouse_reader', 'events', 'SELECT') AS ok`);
    expect(readable).toEqual([{ ok: true }]);
  });

  it('retires a month: detached, archived, dropped; its events still recognised when a device sends them again', async () => {
    const old = await testDevice(hubs[0]!.url, 5, (i) => callRecord(i, Date.UTC(2024, 1, 10, 12, 0, i)), fetchTrusting(readFileSync(join(etc, 'hub.crt'))));
    devices.push(old);
    await old.client.enrol(readFileSync(join(etc, 'enrolment.token'), 'utf8').trim());
    // The five calls of February 2024; the device key event after them is dated now.
    await old.client.sendBatch(old.batch(0, 5));
    expect(await sql('gatehouse_hub', `SELECT count(*)::int AS n FROM events_2024_02`)).toEqual([{ n: 5 }]);
    sh('retention', { MONTH: '2024_02' });
    expect(existsSync(join(work, 'events_2024_02.dump'))).toBe(true);
    expect(await sql('gatehouse_hub', `SELECT to_regclass('events_2024_02') AS t`)).toEqual([{ t: null }]);
    expect(await sql('gatehouse_hub', 'SELECT count(*)::int AS n FROM events WHERE device = $1', [old.store.device])).toEqual([{ n: 0 }]);
    const again = await old.client.sendBatch(old.batch(0, 5));
    expect(again).toMatchObject({ accepted: 0, duplicates: 5, flags: [] });
    const restored = spawnSync('pg_restore', ['--exit-on-error', '--list', join(work, 'events_2024_02.dump')], { env, encoding: 'utf8' });
    expect(restored.status, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/TABLE DATA public events_2024_02/);
  });

  it('refuses to start on a certificate without its key, a mismatched pair, or a password on the command line', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, [BIN, 'hub', ...args], {
        env: { ...env, GATEHOUSE_HUB_DATABASE_URL: `postgres://gatehouse_hub@${env.DB}/gatehouse_hub` },
        encoding: 'utf8',
        timeout: 30_000,
      });
    const noKey = run(['--listen', '127.0.0.1:0', '--tls-cert', join(etc, 'hub.crt')]);
    expect(noKey.status).not.toBe(0);
    expect(noKey.stderr).toMatch(/--tls-cert and --tls-key go together/);
    const other = join(work, 'other.key');
    spawnSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', other]);
    chmodSync(other, 0o600);
    const mismatched = run(['--listen', '127.0.0.1:0', '--tls-cert', join(etc, 'hub.crt'), '--tls-key', other]);
    expect(mismatched.status).not.toBe(0);
    expect(mismatched.stderr).toMatch(/are not a PEM certificate chain and its private key/);
    const missing = run(['--listen', '127.0.0.1:0', '--tls-cert', join(work, 'nope.crt'), '--tls-key', other]);
    expect(missing.stderr).toMatch(/cannot read the TLS certificate or key/);
    const password = run(['--read-database', `postgres://gatehouse_reader:hunter2@${env.REPLICA}/gatehouse_hub`]);
    expect(password.status).not.toBe(0);
    expect(password.stderr).toMatch(/--read-database must not contain a password/);
  });
});
