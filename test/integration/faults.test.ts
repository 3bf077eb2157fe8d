/**
 * Servers that fail: crash at start or mid-call, hang, stop answering pings, flood stderr, print
 * garbage, send oversized messages, or (remote) go away and come back. Each test runs a real
 * daemon (in this process) with small restart and health timings, and a client on the local socket
 * speaking raw JSON-RPC lines, so that the exact error codes and messages a client sees are checked.
 */
import { execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/common/config.js';
import type { ServerStatus } from '../../src/common/status.js';
import { callControl } from '../../src/node/control/control-client.js';
import { BIN, eventually, startGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { startRemoteFixture } from './support/remote-server.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/misbehaving-server.mjs', import.meta.url));

type ServerInput = NonNullable<ConfigInput['servers']>[string];

/** Restarts in tens of milliseconds, so that a test sees several in a second or two. */
const FAST_RESTART = { initialDelayMs: 50, maxDelayMs: 2000, multiplier: 2, jitter: 0, crashLoopRestarts: 3, crashLoopWindowMs: 60_000 };
/** Health checks far apart: only the ping test wants them. */
const QUIET_HEALTH = { intervalMs: 600_000, timeoutMs: 5_000, failuresBeforeRestart: 2 };

function misbehaving(args: string[] = [], extra: Partial<Record<string, unknown>> = {}): ServerInput {
  return {
    type: 'stdio',
    command: process.execPath,
    args: [FIXTURE, ...args],
    restart: FAST_RESTART,
    health: QUIET_HEALTH,
    stopGraceMs: 1000,
    ...extra,
  } as ServerInput;
}

// ---- a raw JSON-RPC client on the local socket ------------------------------------------------

interface RpcResponse {
  jsonrpc: '2.0';
  id: number | string | null;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
}

class RawClient {
  private nextId = 1;
  private pending = new Map<number | string, (response: RpcResponse) => void>();
  private buffer = '';

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const message = JSON.parse(line) as RpcResponse & { method?: string };
        if (message.method !== undefined || message.id === null) continue;
        this.pending.get(message.id)?.(message);
        this.pending.delete(message.id);
      }
    });
  }

  /** Connects, says hello, and initializes an MCP session. */
  static async open(gh: RunningGatehouse): Promise<RawClient> {
    const socket = createConnection(gh.socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(JSON.stringify({ gatehouse: 'hello', version: 1, client: 'test-client', token: gh.token }) + '\n');
    const welcome = await new Promise<string>((resolve) => {
      let text = '';
      const onData = (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.includes('\n')) {
          socket.off('data', onData);
          resolve(text);
        }
      };
      socket.on('data', onData);
    });
    expect(JSON.parse(welcome.split('\n')[0]!)).toMatchObject({ gatehouse: 'welcome' });
    const client = new RawClient(socket);
    const init = await client.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'faults-test', version: '1.0.0' },
    });
    expect(init.result).toBeDefined();
    client.notify('notifications/initialized');
    return client;
  }

  request(method: string, params: Record<string, unknown> = {}): Promise<RpcResponse> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.socket.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  notify(method: string, params: Record<string, unknown> = {}): void {
    this.socket.write(JSON.stringify({ jsonrpc: '2.0', method, params }) + '\n');
  }

  call(tool: string, args: Record<string, unknown> = {}): Promise<RpcResponse> {
    return this.request('tools/call', { name: tool, arguments: args });
  }

  /** The text of a successful call; fails the test with the error otherwise. */
  async text(tool: string, args: Record<string, unknown> = {}): Promise<string> {
    const response = await this.call(tool, args);
    expect(response.error, `calling ${tool}`).toBeUndefined();
    return (response.result!.content as { text: string }[])[0]!.text;
  }

  async toolNames(): Promise<string[]> {
    const response = await this.request('tools/list');
    return (response.result!.tools as { name: string }[]).map((t) => t.name);
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---- helpers -----------------------------------------------------------------------------------

let gh: RunningGatehouse | undefined;
let clients: RawClient[] = [];
let children: ChildProcessWithoutNullStreams[] = [];

afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  await gh?.stop();
  gh = undefined;
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
  children = [];
});

async function start(servers: Record<string, ServerInput>, config: Omit<ConfigInput, 'servers'> = {}): Promise<RunningGatehouse> {
  gh = await startGatehouse({ servers, config });
  return gh;
}

async function client(): Promise<RawClient> {
  const c = await RawClient.open(gh!);
  clients.push(c);
  return c;
}

async function serverStatus(name: string): Promise<ServerStatus> {
  const s = (await gh!.status()).servers.find((v) => v.name === name);
  if (!s) throw new Error(`no server ${name} in status`);
  return s;
}

async function logsOf(name: string): Promise<string[]> {
  return (await callControl(gh!.paths.controlSocketPath, 'logs', { name, lines: 100_000 })) as string[];
}

/** The states a server went through, in order, from the daemon's own log. */
function stateHistory(name: string): string[] {
  return gh!.logs
    .map((line) => JSON.parse(line) as { event: string; server?: string; state?: string })
    .filter((e) => e.event === 'server.state' && e.server === name)
    .map((e) => e.state!);
}

// ---- the tests ---------------------------------------------------------------------------------

describe('faults in stdio servers', () => {
  it('a server that crashes at start backs off, then is marked crash-looping, while the daemon and every other server keep serving', async () => {
    await start({ broken: misbehaving(['--crash-at-start']), healthy: misbehaving() });

    await eventually(async () => (await serverStatus('broken')).state === 'crash-looping', 15_000, 'broken to be crash-looping');
    const history = stateHistory('broken');
    expect(history).toContain('backing-off');
    expect(history.indexOf('backing-off')).toBeLessThan(history.indexOf('crash-looping'));

    const broken = await serverStatus('broken');
    expect(broken.lastError).toMatch(/failed to start: the server exited with code 1 before completing the MCP handshake/);
    expect(broken.restarts).toBeGreaterThanOrEqual(FAST_RESTART.crashLoopRestarts);
    // Crash-looping waits the longest delay between tries.
    expect(Date.parse(broken.nextAttemptAt!) - Date.now()).toBeGreaterThan(FAST_RESTART.maxDelayMs / 2);
    const logs = await logsOf('broken');
    expect(logs.some((l) => l.includes('crashing at start, as asked'))).toBe(true);
    expect(logs.some((l) => l.includes('crash-looping'))).toBe(true);

    // The daemon and the healthy server are unaffected.
    expect((await serverStatus('healthy')).state).toBe('ready');
    expect((await serverStatus('healthy')).restarts).toBe(0);
    const c = await client();
    const tools = await c.toolNames();
    expect(tools).toContain('healthy__echo');
    expect(tools.some((t) => t.startsWith('broken__'))).toBe(false);
    expect(await c.text('healthy__echo', { text: 'still here' })).toBe('still here');
    // A tool of the broken server is simply unknown while it is down.
    const refused = await c.call('broken__echo', { text: 'x' });
    expect(refused.error?.message).toMatch(/Unknown tool: broken__echo/);
  });

  it('a server that crashes during a call fails that call promptly with a clear error, restarts, and is callable again', async () => {
    await start({ flaky: misbehaving([], { requestTimeoutMs: 30_000 }) });
    const c = await client();
    // The host's pid of the server: a confined server has pids of its own namespace (it calls itself 2, whatever process it is).
    const pidBefore = (await serverStatus('flaky')).pid;
    expect(Number(await c.text('flaky__pid'))).toBeGreaterThan(0);

    const started = Date.now();
    const response = await c.call('flaky__crash');
    const elapsed = Date.now() - started;
    expect(response.error, 'the crashed call must fail').toBeDefined();
    expect(response.error!.message).toBe('the server went away during the request: the server exited with code 3');
    expect(elapsed, 'the caller must not wait for the request timeout').toBeLessThan(5_000);

    await eventually(
      async () => {
        const s = await serverStatus('flaky');
        return s.state === 'ready' && s.restarts === 1 && s.pid !== pidBefore;
      },
      15_000,
      'flaky to restart',
    );
    expect((await serverStatus('flaky')).lastError).toMatch(/exited: the server exited with code 3/);
    const pidAfter = (await serverStatus('flaky')).pid;
    expect(pidAfter).not.toBe(pidBefore);
    expect(Number(await c.text('flaky__pid'))).toBeGreaterThan(0);
    expect(await c.text('flaky__echo', { text: 'back' })).toBe('back');
  });

  it("a hung call is cancelled at the server's requestTimeoutMs with a clear error, and other calls go on meanwhile", async () => {
    const timeoutMs = 800;
    await start({ stuck: misbehaving([], { requestTimeoutMs: timeoutMs }) });
    const c = await client();

    const started = Date.now();
    const hung = c.call('stuck__hang');
    // While one call hangs, others to the same server are answered.
    expect(await c.text('stuck__echo', { text: 'meanwhile' })).toBe('meanwhile');
    expect(await c.text('stuck__slow', { ms: 50 })).toBe('answered after 50 ms');
    const response = await hung;
    const elapsed = Date.now() - started;
    expect(response.error).toBeDefined();
    expect(response.error!.message).toBe(`the server did not answer within its request timeout (${timeoutMs} ms); Gatehouse cancelled the request`);
    expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(elapsed).toBeLessThan(timeoutMs + 5_000);

    // The server was told to give up on it, and is still the same healthy process.
    await eventually(async () => (await logsOf('stuck')).some((l) => /^cancelled request \d+/.test(l)), 5_000, 'the cancellation to reach the server');
    const s = await serverStatus('stuck');
    expect(s.state).toBe('ready');
    expect(s.restarts).toBe(0);
  });

  it('a server that stops answering pings is restarted after failuresBeforeRestart failed pings', async () => {
    const health = { intervalMs: 500, timeoutMs: 200, failuresBeforeRestart: 2 };
    await start({ deaf: misbehaving(['--no-ping'], { health }) });
    const first = await serverStatus('deaf');
    expect(first.state).toBe('ready');
    const readyAt = Date.now();

    await eventually(async () => (await serverStatus('deaf')).restarts >= 1, 15_000, 'deaf to be restarted');
    // Not before two whole intervals: one failed ping is not enough.
    expect(Date.now() - readyAt).toBeGreaterThanOrEqual(2 * health.intervalMs - 100);
    const logs = await logsOf('deaf');
    expect(logs.some((l) => l.includes('ignoring a ping'))).toBe(true);
    expect(logs.some((l) => l.includes(`stopped answering pings (${health.failuresBeforeRestart} failed in a row`))).toBe(true);
    await eventually(
      async () => {
        const s = await serverStatus('deaf');
        return s.state === 'ready' && s.pid !== first.pid;
      },
      10_000,
      'deaf to be ready again as a new process',
    );
  });

  it('a server flooding stderr is kept in a bounded ring buffer (gatehouse logs) and bounded rotating log files', async () => {
    const limits = { logRingLines: 100, logFileBytes: 16_384, logFilesKept: 2 };
    const lines = 20_000;
    await start({ noisy: misbehaving(['--flood-stderr', String(lines)]) }, { limits });
    const last = `flood line ${String(lines - 1).padStart(7, '0')}`;
    await eventually(async () => (await logsOf('noisy')).some((l) => l.startsWith(last)), 15_000, 'the whole flood to arrive');

    // `gatehouse logs` answers from the ring: at most logRingLines lines, the newest ones.
    // (Run asynchronously: the daemon answering it lives in this process.)
    const cli = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'logs', 'noisy', '--lines', '100000'], { env: gh!.env, encoding: 'utf8', timeout: 20_000 }, (error, stdout, stderr) =>
        resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
      );
    });
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);
    const shown = cli.stdout.trimEnd().split('\n');
    expect(shown.length).toBeLessThanOrEqual(limits.logRingLines);
    expect(shown.some((l) => l.startsWith(last))).toBe(true);
    expect(shown.some((l) => l.startsWith('flood line 0000000 '))).toBe(false);

    // On disk: noisy.log plus at most logFilesKept rotated files, within logFileBytes × (logFilesKept + 1).
    const files = readdirSync(gh!.paths.logDir).filter((f) => f.startsWith('noisy.log'));
    expect(files.sort()).toEqual(['noisy.log', 'noisy.log.1', 'noisy.log.2']);
    const total = files.reduce((sum, f) => sum + statSync(join(gh!.paths.logDir, f)).size, 0);
    expect(total).toBeLessThanOrEqual(limits.logFileBytes * (limits.logFilesKept + 1));
    for (const f of files) expect(statSync(join(gh!.paths.logDir, f)).size).toBeLessThanOrEqual(limits.logFileBytes);

    // And the noisy server still works.
    const c = await client();
    expect(await c.text('noisy__echo', { text: 'quiet please' })).toBe('quiet please');
  });

  it('garbage a server prints on stdout is ignored and logged, and the server keeps working', async () => {
    await start({ messy: misbehaving(['--garbage-stdout']) });
    expect((await serverStatus('messy')).state).toBe('ready');
    const c = await client();
    expect(await c.text('messy__echo', { text: 'fine' })).toBe('fine');
    expect(await c.text('messy__echo', { text: 'still fine' })).toBe('still fine');
    const logs = await logsOf('messy');
    expect(logs.some((l) => l.includes('[gatehouse] ignored stdout line (not JSON): this is not JSON at all'))).toBe(true);
    expect(logs.some((l) => l.includes('[gatehouse] ignored stdout line (not a JSON-RPC 2.0 message)'))).toBe(true);
    expect((await serverStatus('messy')).restarts).toBe(0);
  });

  it('an oversized message from a server is dropped and the call fails promptly with a clear error', async () => {
    const maxMessageBytes = 64 * 1024;
    await start({ big: misbehaving([], { requestTimeoutMs: 30_000 }) }, { limits: { maxMessageBytes } });
    const c = await client();

    const started = Date.now();
    const response = await c.call('big__huge', { bytes: maxMessageBytes * 2 });
    expect(response.error, 'an oversized answer must not reach the client').toBeDefined();
    expect(response.error!.message).toMatch(new RegExp(`over the ${maxMessageBytes}-byte limit`));
    expect(Date.now() - started, 'the caller must not wait for the request timeout').toBeLessThan(5_000);

    const logs = await logsOf('big');
    expect(logs.some((l) => /ignored a \d+-byte message from the server: over the 65536-byte limit/.test(l))).toBe(true);
    // A message under the limit still gets through, from the same process.
    expect(await c.text('big__huge', { bytes: 1000 })).toHaveLength(1000);
    expect(await c.text('big__echo', { text: 'small' })).toBe('small');
    expect((await serverStatus('big')).restarts).toBe(0);
  });

  it('a result that is not a tools/call result is refused with the validation error, audited as failed, and the server keeps serving', async () => {
    const gh = await start({ bad: misbehaving(['--malformed-tool']) });
    const c = await client();
    const response = await c.call('bad__malformed', {});
    expect(response.result, 'a malformed result must not reach the client').toBeUndefined();
    expect(response.error!.message).toMatch(/^Invalid result for tools\/call: /);
    expect(await c.text('bad__echo', { text: 'still fine' })).toBe('still fine');
    const outcome = await eventually(async () => {
      const found = (await callControl(gh.paths.controlSocketPath, 'audit.query', { tool: 'malformed', type: 'call.outcome' })) as {
        events: { decision?: string; reason?: string }[];
      };
      return found.events[0];
    });
    expect(outcome).toMatchObject({ decision: 'failed', reason: expect.stringMatching(/^Invalid result for tools\/call/) });
  });

  it('a server that exits cleanly is left stopped under restart mode on-failure, and restarted under mode always', async () => {
    await start({
      polite: misbehaving(['--exit-after', '300'], { restart: { ...FAST_RESTART, mode: 'on-failure' } }),
      eager: misbehaving(['--exit-after', '300'], { restart: { ...FAST_RESTART, mode: 'always' } }),
    });
    await eventually(async () => (await serverStatus('polite')).state === 'stopped', 10_000, 'polite to stop');
    expect((await serverStatus('polite')).lastError).toMatch(/exited with code 0/);
    await eventually(async () => (await serverStatus('eager')).restarts >= 1, 10_000, 'eager to restart');
    expect((await serverStatus('polite')).restarts).toBe(0);
  });
});

describe('faults in remote (Streamable HTTP) servers', () => {
  /** The fixture in HTTP mode, stopped after the test; resolves with its URL once it listens. */
  async function startRemote(port: number): Promise<{ child: ChildProcessWithoutNullStreams; url: string }> {
    const remote = await startRemoteFixture(port);
    children.push(remote.child);
    return remote;
  }

  it('a remote server that goes away is retried with growing delays, and reconnected when it comes back', async () => {
    const first = await startRemote(0);
    const port = Number(new URL(first.url).port);
    await start({
      remote: {
        type: 'http',
        url: first.url,
        restart: { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0, crashLoopRestarts: 20, crashLoopWindowMs: 60_000 },
        health: { intervalMs: 500, timeoutMs: 400, failuresBeforeRestart: 1 },
      },
    });
    const c = await client();
    const pidBefore = Number(await c.text('remote__pid'));
    expect(pidBefore).toBe(first.child.pid);

    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await exited;

    // Noticed through the health check, then retried with growing delays.
    await eventually(
      async () => {
        const delays = [...(await logsOf('remote')).join('\n').matchAll(/restarting in (\d+) ms/g)].map((m) => Number(m[1]));
        return delays.length >= 3 && delays[2]! > delays[0]!;
      },
      15_000,
      'several growing retry delays',
    );
    expect((await serverStatus('remote')).lastError).toMatch(/fetch failed|ECONNREFUSED/);
    const down = await serverStatus('remote');
    expect(down.state).not.toBe('ready');
    const history = stateHistory('remote');
    expect(history).toContain('backing-off');
    const refused = await c.call('remote__pid');
    expect(refused.error).toBeDefined();

    // Back on the same port: reconnected without anyone asking.
    const second = await startRemote(port);
    expect(second.url).toBe(first.url);
    await eventually(async () => (await serverStatus('remote')).state === 'ready', 15_000, 'remote to be ready again');
    expect(Number(await c.text('remote__pid'))).toBe(second.child.pid);
  });
});
