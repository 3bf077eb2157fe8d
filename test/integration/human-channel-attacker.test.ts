/**
 * The human channel tried as an attacker on the same machine would (issue 10, SECURITY.md Q1 and
 * "The human channel"). Three questions wait at once: an approval of a 260 EUR refund (the
 * person's own rule holds it), a pairing request from an unknown bridge, and a fresh console
 * sign-in code an agent asked for with `gatehouse console`. The daemon runs in a terminal (a
 * pseudo-terminal) with the real `notify-send` (libnotify-bin) talking to a real notification
 * server (dunst, on Xvfb) over a private session bus.
 *
 * While they wait, a process of the same user watches every process's command line and
 * environment (polling /proc; and, so that no short-lived process escapes, every program Gatehouse
 * could hand a link to, notify-send, xdg-open and the browsers, is run through a shim that records
 * its arguments first), the session bus (dbus-monitor), every file under
 * the home and state directories (logs and the audit log included) and every answer the control
 * socket, the CLI and MCP give it. It finds none of the codes the terminal shows and no keyed link.
 * Another OS user (nobody) watching the same way finds nothing either. The watchers are told
 * nothing: what they saw is matched afterwards against what the person's screen (the terminal)
 * showed, and each watcher's reach is proven by what it did see (the daemon's own command line and
 * environment, notify-send's arguments, the Notify call on the bus). Then the agent tries every route it has to answer: nothing answers,
 * and the deadline refuses the refund.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlRequests } from '../../src/common/control-api.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { ClientRegistry } from '../../src/node/client-registry.js';
import { callControl } from '../../src/node/control/control-client.js';
import { startXvfb } from '../e2e/support.js';
import { auditEvents, errorOf, executed } from './support/approvals.js';
import { closeAll, connectBridge, connectHttp, runGatehouse, type Connected } from './support/clients.js';
import { REPO, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

const CRM = join(REPO, 'test', 'fixtures', 'crm-server.mjs');
const WATCHER = join(REPO, 'test', 'fixtures', 'proc-watch.mjs');
/** Long enough for the watch and every attempt to end first, even on a loaded machine. */
const TIMEOUT_SECONDS = 30;
const AS_ROOT = process.getuid?.() === 0;
const HAVE_PARTS = ['dbus-daemon', 'dbus-monitor', 'dbus-send', 'dunst', 'notify-send', 'Xvfb', 'script'].every(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0,
);

interface Watch {
  child: ChildProcess;
  /** Stops watching; resolves with what it saw. */
  stop(): Promise<{ cmdlines: string[]; environs: string[]; readable: { cmdline: number; environ: number }; passes: number }>;
}

/** Starts the /proc watcher (as `user`, when given); it learns nothing of what the test looks for. */
async function watchProcesses(script: string, user?: string): Promise<Watch> {
  const child = user
    ? spawn('runuser', ['-u', user, '--', process.execPath, script], { stdio: ['pipe', 'pipe', 'pipe'], cwd: '/' })
    : spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  await eventually(() => out.startsWith('ready\n') || (child.exitCode !== null && Promise.reject(new Error(`watcher died: ${err}`))), 10_000, 'the watcher');
  return {
    child,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end('stop\n');
      await exited;
      return JSON.parse(out.slice('ready\n'.length)) as Awaited<ReturnType<Watch['stop']>>;
    },
  };
}

/** Every file under a directory, with its bytes. */
function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile()) continue;
    try {
      out.push({ path, bytes: readFileSync(path) });
    } catch {
      // Gone meanwhile (a rotated log, a SQLite companion file).
    }
  }
  return out;
}

let home: ReturnType<typeof makeHome>;
let scratch: string;
let callLog: string;
let daemon: TerminalDaemon;
let bus: ChildProcess;
let busAddress: string;
let monitor: ChildProcess;
let monitored = '';
let dunst: ChildProcess;
let x: Awaited<ReturnType<typeof startXvfb>>;
let env: Record<string, string>;
let agent: Connected;
let httpToken: string;
let refund: Promise<{ message: string; data?: Record<string, unknown> }>;
let intruder: Promise<unknown>;
/** What the watchers saw, and what the agent was told through every channel it has. */
const seen: { where: string; text: string }[] = [];
let rootWatch: Awaited<ReturnType<Watch['stop']>>;
let nobodyWatch: Awaited<ReturnType<Watch['stop']>> | undefined;
/** The secrets the person's screen (the daemon's terminal) showed, read as the person reads them. */
let secrets: string[] = [];
/** The ports of this daemon's question page and console, read off the terminal. */
let ports: string[] = [];

const status = () => callControl(home.paths.controlSocketPath, 'status', {}) as Promise<DaemonStatus>;

beforeAll(async () => {
  home = makeHome('gh-attack-');
  scratch = mkdtempSync(join(tmpdir(), 'gh-attack-'));
  chmodSync(scratch, 0o755);
  callLog = join(scratch, 'calls.jsonl');
  // The watcher where another user can run it.
  const watcher = join(scratch, 'proc-watch.mjs');
  copyFileSync(WATCHER, watcher);
  chmodSync(watcher, 0o755);

  // Shims ahead of the real programs on PATH: each records its arguments, then runs the real one.
  const shims = join(scratch, 'shims');
  mkdirSync(shims, { mode: 0o755 });
  for (const program of ['notify-send', 'xdg-open', 'gio', 'sensible-browser', 'x-www-browser', 'chromium', 'firefox']) {
    const real = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).stdout.trim();
    const run = real ? `exec ${JSON.stringify(real)} "$@"` : 'exit 0';
    writeFileSync(join(shims, program), `#!/bin/sh\nprintf '%s\\n' "${program} $*" >> ${JSON.stringify(join(scratch, 'exec.log'))}\n${run}\n`, { mode: 0o755 });
  }
  writeFileSync(join(scratch, 'exec.log'), '', { mode: 0o644 });

  // A private session bus, a display, and a real notification server on both.
  bus = spawn('dbus-daemon', ['--session', '--nofork', '--print-address=1', `--address=unix:path=${join(scratch, 'bus')}`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let printed = '';
  bus.stdout!.setEncoding('utf8').on('data', (c: string) => (printed += c));
  busAddress = await eventually(() => /^(unix:\S+)\n/.exec(printed)?.[1], 10_000, 'the session bus');
  x = await startXvfb();
  const desktop = { HOME: home.home, PATH: `${shims}:${process.env.PATH!}`, DISPLAY: x.display, DBUS_SESSION_BUS_ADDRESS: busAddress };
  dunst = spawn('dunst', [], { env: desktop, stdio: 'ignore' });
  await eventually(
    () => {
      const owner = spawnSync(
        'dbus-send',
        [
          '--bus=' + busAddress,
          '--print-reply',
          '--dest=org.freedesktop.DBus',
          '/org/freedesktop/DBus',
          'org.freedesktop.DBus.NameHasOwner',
          'string:org.freedesktop.Notifications',
        ],
        { encoding: 'utf8' },
      );
      return owner.stdout.includes('boolean true') || undefined;
    },
    15_000,
    'dunst on the bus',
  );
  monitor = spawn('dbus-monitor', ['--address', busAddress], { stdio: ['ignore', 'pipe', 'pipe'] });
  monitor.stdout!.setEncoding('utf8').on('data', (c: string) => (monitored += c));
  await eventually(() => monitored.includes('NameAcquired') || monitored.length > 0 || undefined, 10_000, 'dbus-monitor');

  writeFileSync(
    home.paths.configFile,
    JSON.stringify({
      servers: { crm: { type: 'stdio', command: process.execPath, args: [CRM, '--log', callLog], sandbox: { write: [dirname(callLog)] } } },
      listen: { http: { enabled: true, port: 0 } },
      approvals: { ask: ['crm__refund'], timeoutSeconds: TIMEOUT_SECONDS },
    }),
    { mode: 0o600 },
  );
  const registry = new ClientRegistry(join(home.paths.stateDir, 'clients.json'));
  const token = registry.add('ide', { scope: { kind: 'all' }, via: 'socket' });
  httpToken = registry.add('ide-http', { scope: { kind: 'all' }, via: 'http' });
  env = { ...home.env, ...desktop } as Record<string, string>;
  delete env.XDG_RUNTIME_DIR;

  // Watching starts before any question exists, so nothing transient escapes it.
  const root = watchProcesses(watcher);
  const nobody = AS_ROOT ? watchProcesses(watcher, 'nobody') : undefined;
  const [rootW, nobodyW] = await Promise.all([root, nobody]);

  daemon = spawnOnTerminal(['daemon', '--ui'], env, home.paths);
  await eventually(async () => (await status().catch(() => undefined))?.servers.find((s) => s.name === 'crm' && s.state === 'ready'), 30_000, 'the CRM');

  // 1. The agent's refund, held by the person's rule.
  agent = await connectBridge(env, { era: 'legacy', client: 'ide', token, shared: true });
  refund = errorOf(agent.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 260, currency: 'EUR' } }, { timeout: 120_000 }));
  // 2. A bridge nobody paired asks to be.
  intruder = connectBridge(env, { era: 'legacy', client: 'intruder', shared: true }).then(
    (c) => c,
    (e: Error) => e,
  );
  // 3. The agent asks for a console sign-in code, hoping to read it somewhere.
  const asked = await runGatehouse(['console'], env);
  seen.push({ where: 'gatehouse console', text: asked.stdout + asked.stderr });
  expect(asked.code).toBe(0);

  await eventually(
    () => /Pair the client "intruder"/.test(daemon.screen()) && /Allow ide to call crm__refund/.test(daemon.screen()),
    20_000,
    'both questions on the terminal',
  );
  await eventually(() => (daemon.screen().match(/sign-in code [0-9A-Z]{4}-[0-9A-Z]{4}/g) ?? []).length >= 2, 10_000, 'the second console code');
  // Let notify-send run and the notification server show both.
  await eventually(() => (monitored.match(/member=Notify\b/g) ?? []).length >= 2 || undefined, 10_000, 'two notifications on the bus');

  // What the agent can ask of every channel it can reach, while the questions wait.
  for (const method of ['status', 'questions.list', 'identity.status', 'policy.status', 'clients.list', 'audit.query'] as const) {
    seen.push({
      where: `control ${method}`,
      text: JSON.stringify(await callControl(home.paths.controlSocketPath, method, (method === 'audit.query' ? { limit: 1000 } : {}) as never)),
    });
  }
  for (const args of [
    ['status', '--json'],
    ['clients', 'list', '--json'],
    ['audit', 'query', '--limit', '1000'],
  ]) {
    const run = await runGatehouse(args, env);
    seen.push({ where: `gatehouse ${args.join(' ')}`, text: run.stdout + run.stderr });
  }
  seen.push({ where: 'MCP tools/list', text: JSON.stringify(await agent.client.listTools()) });

  rootWatch = await rootW.stop();
  nobodyWatch = await nobodyW?.stop();
  seen.push(...rootWatch.cmdlines.map((text) => ({ where: "a process's command line", text })));
  seen.push(...rootWatch.environs.map((text) => ({ where: "a process's environment", text })));
  seen.push({ where: 'the session bus (dbus-monitor)', text: monitored });
  seen.push({ where: 'the arguments of notify-send, xdg-open and the browsers', text: readFileSync(join(scratch, 'exec.log'), 'utf8') });
  for (const file of filesUnder(home.home)) seen.push({ where: file.path, text: file.bytes.toString('latin1') });

  // The person's screen: what they read off their terminal.
  const screen = daemon.screen();
  secrets = [...new Set([...screen.matchAll(/(?:type the code|sign-in code) ([0-9A-Z]{4})-([0-9A-Z]{4})/g)].map((m) => `${m[1]}${m[2]}`))];
  ports = [...new Set([...screen.matchAll(/open http:\/\/127\.0\.0\.1:(\d+)\//g)].map((m) => m[1]!))];
}, 120_000);

afterAll(async () => {
  await closeAll();
  await agent?.close().catch(() => undefined);
  await daemon?.stop();
  for (const child of [monitor, dunst, bus]) {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
  await x?.stop();
  if (home) rmSync(home.home, { recursive: true, force: true });
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Where a secret shows in a text: as shown (K7QF-2M9X), without the dash, in any case. */
function hits(texts: { where: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const { where, text } of texts) {
    const flat = text.toUpperCase().replace(/[-\s]/g, '');
    for (const secret of secrets) if (flat.includes(secret)) found.push(`${secret} in ${where}`);
    // Keyed links to this daemon's own pages (other tests on the machine may run daemons of their own).
    if (ports.some((port) => new RegExp(`127\\.0\\.0\\.1:${port}/(?:q/[\\w-]+|login)\\?`).test(text))) found.push(`a keyed link in ${where}`);
  }
  return found;
}

describe.skipIf(!HAVE_PARTS)("a same-user agent hunting for the human channel's secrets", () => {
  it("sees the questions' codes nowhere but on the person's terminal", () => {
    // Two page codes (refund, pairing) and two console codes (at start, and the one the agent asked for).
    expect(secrets).toHaveLength(4);
    expect(ports).toHaveLength(2);
    // The positive control: the screen holds every one of them, as the person sees it.
    expect(hits([{ where: 'the terminal', text: daemon.screen() }])).toHaveLength(4);
    expect(hits(seen)).toEqual([]);
  });

  it("was watching where it mattered: notify-send's arguments, the Notify calls on the bus, the daemon's command line and environment", () => {
    const exec = readFileSync(join(scratch, 'exec.log'), 'utf8');
    expect(exec).toMatch(/^notify-send .*Gatehouse: Allow ide to call crm__refund\?/m);
    expect(exec).toMatch(/^notify-send .*Gatehouse: Pair the client "intruder"\?/m);
    expect(monitored).toMatch(/member=Notify/);
    expect(monitored).toContain('Answer in the terminal where Gatehouse runs');
    expect(rootWatch.passes).toBeGreaterThan(100);
    expect(rootWatch.cmdlines.some((c) => c.includes('gatehouse.js daemon --ui'))).toBe(true);
    expect(rootWatch.environs.some((e) => e.includes(`GATEHOUSE_HOME=${home.env.GATEHOUSE_HOME}`))).toBe(true);
  });

  it.skipIf(!AS_ROOT)('finds nothing as another OS user either, though it reads every command line', () => {
    expect(nobodyWatch!.cmdlines.some((c) => c.includes('gatehouse.js daemon --ui'))).toBe(true);
    const asNobody = [
      ...nobodyWatch!.cmdlines.map((text) => ({ where: 'a command line (as nobody)', text })),
      ...nobodyWatch!.environs.map((text) => ({ where: 'an environment (as nobody)', text })),
    ];
    expect(hits(asNobody)).toEqual([]);
    // Another user cannot read the user's environments or files at all.
    expect(nobodyWatch!.environs.some((e) => e.includes('GATEHOUSE_HOME'))).toBe(false);
    const reads = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', join(home.paths.stateDir, 'audit.db')], { encoding: 'utf8' });
    expect(reads.status).not.toBe(0);
  });

  it('cannot answer through anything it can reach, and the deadline refuses the refund', async () => {
    const pending = () => status().then((s) => s.pendingQuestions);
    expect(await pending()).toBe(2);
    const report = (await callControl(home.paths.controlSocketPath, 'questions.list', {})) as {
      questions: { id: string; title: string }[];
      pageOrigin: string;
    };
    const refundQuestion = report.questions.find((q) => q.title.includes('crm__refund'))!;
    // MCP on the socket and over HTTP: no tool, no method.
    for (const name of ['gatehouse__approve', 'approve', 'questions__answer']) {
      expect((await errorOf(agent.client.callTool({ name, arguments: { id: refundQuestion.id, answer: 'once' } }))).message).toMatch(/Unknown tool/);
    }
    const http = await connectHttp((await status()).httpUrl!, { era: 'legacy', token: httpToken });
    expect((await errorOf(http.client.callTool({ name: 'gatehouse__approve', arguments: {} }))).message).toMatch(/Unknown tool/);
    // Every control method, with the question's id: none answers it.
    for (const method of Object.keys(ControlRequests)) {
      if (['servers.stop', 'servers.restart', 'servers.remove', 'clients.revoke', 'identity.logout', 'secrets.delete'].includes(method)) continue;
      await callControl(home.paths.controlSocketPath, method as never, { id: refundQuestion.id, answer: { decision: 'approve' } } as never).catch(
        () => undefined,
      );
    }
    // The CLI has no command for it.
    expect((await runGatehouse(['approve', refundQuestion.id], env)).code).toBe(2);
    // The console without a sign-in: the WebSocket is refused, guessed codes are refused.
    const consoleOrigin = /open (http:\/\/127\.0\.0\.1:\d+)\/login/.exec(daemon.screen())![1]!;
    const guessed = await fetch(`${consoleOrigin}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: consoleOrigin },
      body: 'code=0000-0000',
    });
    expect(guessed.status).toBe(403);
    // The question page without its code: a code form, and wrong codes refused.
    const page = `${report.pageOrigin}/q/${refundQuestion.id}`;
    expect(await (await fetch(page)).text()).toContain('name="code"');
    for (const code of ['0000-0000', '1111-1111']) {
      expect((await fetch(page, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `code=${code}` })).status).toBe(403);
    }
    expect(await pending()).toBe(2);
    expect(executed(callLog)).toEqual([]);

    // Nobody answered: the deadline refuses the refund, and the log says so.
    const refused = await refund;
    expect(refused.data).toMatchObject({ reason: 'approval_required', approval: 'timeout' });
    expect(executed(callLog)).toEqual([]);
    expect(auditEvents(home.paths, 'approval.decided').filter((e) => e.name === 'refund')).toEqual([
      expect.objectContaining({ decision: 'denied', approval: expect.objectContaining({ decision: 'timeout' }) }),
    ]);
    expect(auditEvents(home.paths, 'approval.decided').some((e) => e.decision === 'allowed')).toBe(false);
    await http.close();
  }, 60_000);

  it('leaves the pairing unanswered too: the bridge sees nothing and gets no credential', async () => {
    // The bridge connected at once (issue 11) and waits in the pending state: no tools, every call refused.
    const bridge = await intruder;
    expect(bridge).not.toBeInstanceOf(Error);
    const { client } = bridge as Connected;
    expect((await client.listTools()).tools).toEqual([]);
    expect((await errorOf(client.callTool({ name: 'crm__refund', arguments: {} }))).message).toMatch(/waiting for you to pair "intruder"/);
    expect(new ClientRegistry(join(home.paths.stateDir, 'clients.json')).list().map((c) => c.name)).not.toContain('intruder');
    expect(statSync(join(home.paths.stateDir, 'clients.json')).mode & 0o077).toBe(0);
  });
});
