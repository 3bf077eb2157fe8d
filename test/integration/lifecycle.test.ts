/**
 * The daemon's life: stopping on signals (every child gone, sockets removed), refusing a second
 * daemon on the same home, applying config changes by difference, refusing invalid config while
 * the running servers keep serving, the children's environment, and parallel start.
 */
import { join } from 'node:path';
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/common/config.js';
import type { ReloadReport } from '../../src/common/control-api.js';
import type { ServerStatus } from '../../src/common/status.js';
import { callControl } from '../../src/node/control/control-client.js';
import { runtimeInfoFile } from '../../src/node/daemon.js';
import { INHERITED_ENV } from '../../src/node/upstream/child-process.js';
import { BIN, eventually, spawnGatehouse, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/misbehaving-server.mjs', import.meta.url));

type Servers = NonNullable<ConfigInput['servers']>;
type ServerInput = Servers[string];

function fixture(args: string[] = [], extra: Record<string, unknown> = {}): ServerInput {
  return {
    type: 'stdio',
    command: process.execPath,
    args: [FIXTURE, ...args],
    health: { intervalMs: 600_000, timeoutMs: 5_000, failuresBeforeRestart: 2 },
    stopGraceMs: 2_000,
    ...extra,
  } as ServerInput;
}

let running: RunningGatehouse[] = [];
afterEach(async () => {
  await Promise.allSettled(running.map((g) => g.stop()));
  running = [];
});

async function track<T extends RunningGatehouse>(gh: Promise<T>): Promise<T> {
  const started = await gh;
  running.push(started);
  return started;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function statusOf(servers: ServerStatus[], name: string): ServerStatus | undefined {
  return servers.find((s) => s.name === name);
}

async function readyPids(gh: RunningGatehouse, names: string[]): Promise<Record<string, number>> {
  const servers = (await gh.status()).servers;
  const pids: Record<string, number> = {};
  for (const name of names) {
    const s = statusOf(servers, name);
    expect(s?.state, name).toBe('ready');
    expect(s?.pid, name).toBeGreaterThan(0);
    pids[name] = s!.pid!;
  }
  return pids;
}

/** One tools/call over the local socket, raw; resolves with the text or the error message. */
async function callOnce(gh: RunningGatehouse, tool: string, args: Record<string, unknown> = {}): Promise<string> {
  const socket = createConnection(gh.socketPath);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    let buffer = '';
    const waiters: ((line: string) => void)[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        waiters.shift()?.(line);
      }
    });
    const next = () => new Promise<string>((resolve) => waiters.push(resolve));
    const send = (message: object) => socket.write(JSON.stringify(message) + '\n');
    socket.write(JSON.stringify({ gatehouse: 'hello', version: 1, client: 'test-client', token: gh.token }) + '\n');
    expect(JSON.parse(await next())).toMatchObject({ gatehouse: 'welcome' });
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'lifecycle', version: '1' } },
    });
    await next();
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: args } });
    const response = JSON.parse(await next()) as { result?: { content: { text: string }[] }; error?: { message: string } };
    return response.result ? response.result.content[0]!.text : `error: ${response.error!.message}`;
  } finally {
    socket.destroy();
  }
}

function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the process did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

describe('stopping', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`gatehouse daemon stops every child server on ${signal}, removes its sockets, and exits 0`, async () => {
      const gh = await track(spawnGatehouse({ servers: { one: fixture(), two: fixture(), three: fixture() } }));
      const pids = Object.values(await readyPids(gh, ['one', 'two', 'three']));
      expect(pids.every(isAlive)).toBe(true);
      expect(existsSync(gh.paths.socketPath)).toBe(true);
      expect(existsSync(gh.paths.controlSocketPath)).toBe(true);

      gh.child.kill(signal);
      const exit = await waitForExit(gh.child, 20_000);
      expect(exit).toEqual({ code: 0, signal: null });
      for (const pid of pids) expect(isAlive(pid), `server pid ${pid}`).toBe(false);
      expect(existsSync(gh.paths.socketPath)).toBe(false);
      expect(existsSync(gh.paths.controlSocketPath)).toBe(false);
      expect(existsSync(runtimeInfoFile(gh.paths))).toBe(false);
      expect(gh.stderr()).toContain('"daemon.stopped"');
      // And the CLI now says the daemon is not running.
      const status = await runCli(['status'], gh.env);
      expect(status.code).toBe(1);
      expect(status.stderr).toMatch(/not running/);
    });
  }

  it('a second daemon on the same home refuses to start with a clear error, and the first keeps serving', async () => {
    const gh = await track(spawnGatehouse({ servers: { one: fixture() } }));
    const before = await readyPids(gh, ['one']);
    const info = readFileSync(runtimeInfoFile(gh.paths), 'utf8');

    const second = await runCli(['daemon'], gh.env);
    expect(second.code).toBe(1);
    const reason = second.stderr
      .trimEnd()
      .split('\n')
      .filter((l) => !l.startsWith('{'));
    expect(reason).toEqual([
      `gatehouse daemon: another Gatehouse daemon (pid ${gh.child.pid}) is already running for this home (${join(gh.paths.runtimeDir, 'daemon.lock')})`,
    ]);

    // The first daemon's sockets, runtime file and servers are untouched.
    expect(readFileSync(runtimeInfoFile(gh.paths), 'utf8')).toBe(info);
    expect(existsSync(gh.paths.controlSocketPath)).toBe(true);
    expect(await readyPids(gh, ['one'])).toEqual(before);
    expect(await callOnce(gh, 'one__echo', { text: 'still the first' })).toBe('still the first');
  });
});

describe('configuration changes', () => {
  it('a reload applies only the difference: unchanged keeps its pid, changed restarts, removed stops, added starts', async () => {
    const servers: Servers = { keep: fixture(), change: fixture(), drop: fixture() };
    const gh = await track(startGatehouse({ servers }));
    const before = await readyPids(gh, ['keep', 'change', 'drop']);

    gh.writeConfig({ keep: fixture(), change: fixture(['--name', 'changed']), fresh: fixture() });
    // The daemon watches its config file; nobody has to ask it to reload.
    await eventually(
      async () => {
        const s = (await gh.status()).servers;
        return (
          !statusOf(s, 'drop') &&
          statusOf(s, 'fresh')?.state === 'ready' &&
          statusOf(s, 'change')?.state === 'ready' &&
          statusOf(s, 'change')?.pid !== before['change']
        );
      },
      15_000,
      'the new configuration to be applied',
    );

    const after = await readyPids(gh, ['keep', 'change', 'fresh']);
    expect(after['keep']).toBe(before['keep']);
    expect(after['change']).not.toBe(before['change']);
    expect(isAlive(before['change']!)).toBe(false);
    expect((await gh.status()).servers.map((s) => s.name).sort()).toEqual(['change', 'fresh', 'keep']);
    await eventually(() => !isAlive(before['drop']!), 5_000, 'the removed server to exit');
    const applied = gh.logs
      .map((l) => JSON.parse(l) as { event: string; added?: string[]; removed?: string[]; restarted?: string[]; unchanged?: string[] })
      .find((e) => e.event === 'config.applied');
    expect(applied).toMatchObject({ added: ['fresh'], removed: ['drop'], restarted: ['change'], unchanged: ['keep'] });
    expect((await gh.status()).servers.find((s) => s.name === 'change')?.serverInfo?.name).toBe('changed');
    expect(await callOnce(gh, 'fresh__echo', { text: 'new' })).toBe('new');
  });

  it('an invalid config file is refused with an error naming the file, the field and the problem, and the running servers keep serving', async () => {
    const gh = await track(startGatehouse({ servers: { keep: fixture() } }));
    const before = await readyPids(gh, ['keep']);
    const file = gh.paths.configFile;

    // A schema problem: through the control API (what `gatehouse servers add` uses) ...
    writeFileSync(file, JSON.stringify({ servers: { keep: { ...(fixture() as object), requestTimeoutMs: 'soon' }, extra: fixture() } }));
    const report = (await callControl(gh.paths.controlSocketPath, 'config.reload', {})) as ReloadReport;
    expect(report.ok).toBe(false);
    expect(report.error).toBe(`${file}: servers.keep.requestTimeoutMs: expected number, received string`);
    // ... and through the file watcher, which logs it.
    await eventually(
      () => gh.logs.some((l) => l.includes('"config.rejected"') && l.includes('servers.keep.requestTimeoutMs')),
      5_000,
      'the watcher to reject the file',
    );

    // A syntax problem is located by line and column.
    writeFileSync(file, '{\n  "servers": {\n    "keep": { "type": "stdio", }\n  }\n}\n');
    const syntax = (await callControl(gh.paths.controlSocketPath, 'config.reload', {})) as ReloadReport;
    expect(syntax.ok).toBe(false);
    expect(syntax.error).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: `));

    // The running configuration stays: same process, still callable, nothing added.
    expect(await readyPids(gh, ['keep'])).toEqual(before);
    expect((await gh.status()).servers.map((s) => s.name)).toEqual(['keep']);
    expect(await callOnce(gh, 'keep__echo', { text: 'unmoved' })).toBe('unmoved');

    // A valid file again is applied as usual.
    gh.writeConfig({ keep: fixture(), extra: fixture() });
    await eventually(async () => statusOf((await gh.status()).servers, 'extra')?.state === 'ready', 15_000, 'the valid file to be applied');
    expect((await readyPids(gh, ['keep']))['keep']).toBe(before['keep']);
  });
});

describe('the servers the daemon starts', () => {
  it.runIf(process.platform === 'linux')('a child gets only the allow-listed environment plus what its config declares', async () => {
    process.env['GATEHOUSE_TEST_CANARY'] = 'must-not-leak';
    process.env['AWS_SECRET_ACCESS_KEY'] = 'must-not-leak-either';
    let gh;
    try {
      gh = await track(spawnGatehouse({ servers: { envy: fixture([], { env: { DECLARED_ONE: 'declared value', PATH: '/declared/bin' } }) } }));
    } finally {
      delete process.env['GATEHOUSE_TEST_CANARY'];
      delete process.env['AWS_SECRET_ACCESS_KEY'];
    }
    const { envy } = await readyPids(gh, ['envy']);
    const environ = readFileSync(`/proc/${envy}/environ`, 'utf8')
      .split('\0')
      .filter((entry) => entry !== '');
    const env = Object.fromEntries(environ.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));

    expect(env['DECLARED_ONE']).toBe('declared value');
    // What the config declares wins over what would be inherited.
    expect(env['PATH']).toBe('/declared/bin');
    for (const [name, value] of Object.entries(env)) {
      const allowed = INHERITED_ENV.includes(name) || name.startsWith('LC_') || name === 'DECLARED_ONE';
      expect(allowed, `${name} must not reach the child`).toBe(true);
      if (name !== 'PATH' && name !== 'DECLARED_ONE') expect(value, name).toBe(gh.env[name]);
    }
    expect(env['GATEHOUSE_TEST_CANARY']).toBeUndefined();
    expect(env['AWS_SECRET_ACCESS_KEY']).toBeUndefined();
    expect(env['GATEHOUSE_HOME']).toBeUndefined();
    expect(env['HOME']).toBe(gh.env['HOME']);
  });

  it('servers start in parallel: ten slow starters are all ready in less than the sum of their start times', async () => {
    const count = 10;
    const slowMs = 1_000;
    const servers: Servers = {};
    for (let i = 0; i < count; i++) servers[`slow${i}`] = fixture(['--slow-start', String(slowMs)]);
    const started = Date.now();
    const gh = await track(startGatehouse({ servers }));
    const elapsed = Date.now() - started;
    const statuses = (await gh.status()).servers;
    expect(statuses).toHaveLength(count);
    expect(statuses.every((s) => s.state === 'ready')).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(slowMs);
    expect(elapsed).toBeLessThan(count * slowMs);
  });
});
