/**
 * Issue 15's proof: a hostile server, confined by `gatehouse daemon` with its profile, tries in one
 * run to read an SSH key, another server's files, Gatehouse's audit database and config; to reach
 * Gatehouse's MCP and control sockets, the real session bus (with a real Secret Service on it) and
 * an SSH agent; to write outside its grants; to reach a loopback HTTP server its profile does not
 * list and one it does; to look up a name; to fork past its process limit and allocate past its
 * memory limit. Every forbidden attempt fails, every allowed one works, and the audit log shows
 * what the sandbox and its proxy refused. Each socket and server is first shown to answer from
 * outside, so a refusal inside means the sandbox, not a dead listener.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createUnixServer, connect, type Server as UnixServer } from 'node:net';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerStatus } from '../../src/common/status.js';
import type { AuditEvent } from '../../src/core/audit/event.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { auditEvents } from './support/approvals.js';
import { closeAll, connectHttp, textOf } from './support/clients.js';
import { eventually, spawnGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/hostile-server.mjs', import.meta.url));
/** Host paths outside every grant that an unconfined server could write (removed after the tests, whatever happens). */
const OUTSIDE = [`/gatehouse-hostile-${process.pid}.txt`, `/usr/gatehouse-hostile-${process.pid}.txt`];
/** Inside the sandbox: its private /tmp, which is not the host's. */
const PRIVATE_TMP = `/tmp/gatehouse-hostile-${process.pid}-private.txt`;
const KEY_CANARY = 'OPENSSH PRIVATE KEY canary 7f3a';
const OTHER_CANARY = 'another server keeps this to itself';
const GATEHOUSE_HELLO = JSON.stringify({ gatehouse: 'hello', version: 1, client: 'hostile' }) + '\n';
const CONTROL_REQUEST = JSON.stringify({ id: 1, method: 'status', params: {} }) + '\n';
const DBUS_AUTH = '\0AUTH\r\n';

interface SocketReport {
  path: string;
  connected: boolean;
  received: string;
  ok: boolean;
  code?: string | null;
}
interface Report {
  uid: number;
  reads: { path: string; ok: boolean; code?: string | null; head?: string }[];
  writes: { path: string; ok: boolean; code?: string | null }[];
  sockets: SocketReport[];
  http: { url: string; ok: boolean; status?: number; body?: string; code?: string | null }[];
  lookups: { name: string; ok: boolean; code?: string | null }[];
  fork?: { requested: number; started: number; ok: boolean; failure: { code: string | null } | null };
  allocate?: { mb: number; ok: boolean; code: number | null; signal: string | null; stdout: string; stderr: string };
}

/** What a listener answers from outside the sandbox, within a second: the positive control. */
function answerFromOutside(path: string, send: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let received = '';
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    const timer = setTimeout(done, 1_000);
    socket.on('connect', () => socket.write(send));
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.length > 0) done();
    });
    socket.on('error', done);
    socket.on('end', done);
  });
}

function httpServer(body: string): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer((_req, res) => res.end(body));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

const describeLinux = process.platform === 'linux' && keyringAvailable() ? describe : describe.skip;

describeLinux('a hostile server in its sandbox (issue 15)', () => {
  let gh: RunningGatehouse;
  let keyring: TestKeyring;
  let scratch: string;
  let fakeHome: string;
  let agent: UnixServer;
  let listed: { server: HttpServer; port: number };
  let unlisted: { server: HttpServer; port: number };
  let grants: { input: string; output: string; other: string };
  let busPath: string;
  let agentPath: string;
  /** The fixture runs from a copy in the scratch directory, so its code directory is the scratch's, not the repository's. */
  let hostile: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'gh-hostile-'));
    fakeHome = join(scratch, 'home');
    mkdirSync(join(fakeHome, '.ssh'), { recursive: true, mode: 0o700 });
    writeFileSync(join(fakeHome, '.ssh', 'id_ed25519'), `-----BEGIN ${KEY_CANARY}-----\n`, { mode: 0o600 });
    writeFileSync(join(fakeHome, '.netrc'), `machine example.com password ${KEY_CANARY}\n`, { mode: 0o600 });
    writeFileSync(join(fakeHome, 'notes.txt'), 'a note the broad grant covers\n');
    grants = { input: join(scratch, 'input'), output: join(scratch, 'output'), other: join(scratch, 'other-server') };
    for (const dir of Object.values(grants)) mkdirSync(dir);
    writeFileSync(join(grants.input, 'input.txt'), 'given to the hostile server\n');
    writeFileSync(join(grants.other, 'secret.txt'), OTHER_CANARY);
    mkdirSync(join(scratch, 'code'));
    hostile = join(scratch, 'code', 'hostile-server.mjs');
    copyFileSync(FIXTURE, hostile);

    keyring = await startKeyring();
    busPath = keyring.env.DBUS_SESSION_BUS_ADDRESS.replace(/^unix:path=/, '');
    agentPath = join(scratch, 'agent.sock');
    agent = createUnixServer((socket) => socket.end('agent: here are your keys\n'));
    await new Promise<void>((resolve) => agent.listen(agentPath, resolve));
    listed = await httpServer('listed: allowed');
    unlisted = await httpServer('unlisted: should be out of reach');

    gh = await spawnGatehouse({
      env: { HOME: fakeHome, DBUS_SESSION_BUS_ADDRESS: keyring.env.DBUS_SESSION_BUS_ADDRESS, SSH_AUTH_SOCK: agentPath },
      servers: {
        hostile: {
          type: 'stdio',
          command: process.execPath,
          args: [hostile],
          sandbox: {
            read: [grants.input],
            write: [grants.output],
            network: { allow: [`127.0.0.1:${listed.port}`] },
            limits: { processes: 64, memoryMb: 256 },
          },
        },
        other: { type: 'stdio', command: process.execPath, args: [hostile], sandbox: { write: [grants.other] } },
        // Granted the whole home: its credentials stay hidden all the same.
        broad: { type: 'stdio', command: process.execPath, args: [hostile], sandbox: { read: [fakeHome] } },
      },
    });
    await eventually(async () => (await gh.status()).servers.every((s) => s.state === 'ready'), 20_000, 'the servers to be ready');
  }, 60_000);

  afterAll(async () => {
    await closeAll();
    await gh?.stop();
    await keyring?.stop();
    agent?.close();
    listed?.server.close();
    unlisted?.server.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    for (const path of [...OUTSIDE, PRIVATE_TMP]) rmSync(path, { force: true });
  });

  async function attack(plan: Record<string, unknown>, server = 'hostile'): Promise<Report> {
    const { client } = await connectHttp(gh.httpUrl, { era: 'legacy', token: gh.token });
    const result = await client.callTool({ name: `${server}__attack`, arguments: plan }, { timeout: 60_000 } as never);
    return JSON.parse(textOf(result)) as Report;
  }

  const denied = (kind: string, server = 'hostile'): AuditEvent[] =>
    auditEvents(gh.paths, 'sandbox.denied').filter((e) => e.server === server && (e.detail as { kind?: string })?.kind === kind);
  const targetsOf = (kind: string, server = 'hostile'): string[] => denied(kind, server).map((e) => (e.detail as { target: string }).target);

  it('the listeners it will try answer from outside the sandbox (the positive control)', async () => {
    expect(await answerFromOutside(gh.paths.socketPath, GATEHOUSE_HELLO)).not.toBe('');
    expect(await answerFromOutside(gh.paths.controlSocketPath, CONTROL_REQUEST)).toContain('"result"');
    expect(await answerFromOutside(busPath, DBUS_AUTH)).toMatch(/^REJECTED|^OK/);
    expect(await answerFromOutside(agentPath, 'hello\n')).toContain('agent');
    expect(await (await fetch(`http://127.0.0.1:${unlisted.port}/`)).text()).toContain('unlisted');
  });

  it("reads nothing but its grants: no SSH key, no other server's files, no audit database, no config", async () => {
    const report = await attack({
      reads: [
        join(fakeHome, '.ssh', 'id_ed25519'),
        join(grants.other, 'secret.txt'),
        join(gh.paths.stateDir, 'audit.db'),
        gh.paths.configFile,
        join(grants.input, 'input.txt'),
      ],
    });
    const [key, other, auditDb, config, input] = report.reads;
    for (const attempt of [key, other, auditDb, config]) expect(attempt, attempt!.path).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(input).toMatchObject({ ok: true, head: 'given to the hostile server\n' });
    expect(JSON.stringify(report)).not.toContain(KEY_CANARY);
    expect(JSON.stringify(report)).not.toContain(OTHER_CANARY);
  });

  it('has each refused read in the audit log, named by path, and not the read it was granted', async () => {
    const refused = [join(fakeHome, '.ssh', 'id_ed25519'), join(grants.other, 'secret.txt'), join(gh.paths.stateDir, 'audit.db'), gh.paths.configFile];
    await attack({ reads: [...refused, join(grants.input, 'input.txt')] });
    await eventually(() => refused.every((path) => targetsOf('file-read').includes(path)), 10_000, 'the refused reads in the audit log');
    expect(targetsOf('file-read')).not.toContain(join(grants.input, 'input.txt'));
    const key = denied('file-read').find((e) => (e.detail as { target: string }).target === refused[0]);
    expect(key?.reason).toBe('read a path its profile does not grant');
    const status = await gh.status();
    expect(status.servers.find((v) => v.name === 'hostile')?.confinement?.fileDenials).toMatchObject({ audited: true });
  });

  it('under a grant of the whole home, still cannot read the SSH key or ~/.netrc, and both attempts are audited', async () => {
    const key = join(fakeHome, '.ssh', 'id_ed25519');
    const netrc = join(fakeHome, '.netrc');
    const report = await attack({ reads: [key, netrc, join(fakeHome, 'notes.txt')] }, 'broad');
    const [keyRead, netrcRead, note] = report.reads;
    expect(keyRead).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(netrcRead).toMatchObject({ ok: false, code: 'EACCES' });
    expect(note).toMatchObject({ ok: true, head: 'a note the broad grant covers\n' });
    expect(JSON.stringify(report)).not.toContain(KEY_CANARY);
    await eventually(() => [key, netrc].every((path) => targetsOf('file-read', 'broad').includes(path)), 10_000, 'both refused reads in the audit log');
    expect(denied('file-read', 'broad').find((e) => (e.detail as { target: string }).target === netrc)?.reason).toBe(
      'read a path the sandbox hides from every server',
    );
  });

  it('writes only where it may: its grant and its private /tmp; nothing reaches the host anywhere else', async () => {
    const forbidden = [join(grants.other, 'pwned.txt'), join(fakeHome, 'pwned.txt'), join(scratch, 'code', 'pwned.txt'), ...OUTSIDE];
    // Under /tmp but not granted: it lands in the private /tmp, which dies with the sandbox.
    const underTmp = join(scratch, 'pwned.txt');
    const report = await attack({ writes: [...forbidden, join(grants.output, 'allowed.txt'), PRIVATE_TMP, underTmp] });
    const byPath = Object.fromEntries(report.writes.map((w) => [w.path, w]));
    for (const path of forbidden) {
      expect(byPath[path]?.ok, path).toBe(false);
      expect(['EROFS', 'ENOENT', 'EACCES'], path).toContain(byPath[path]?.code);
      expect(existsSync(path), `${path} on the host`).toBe(false);
    }
    expect(byPath[join(grants.output, 'allowed.txt')]).toMatchObject({ ok: true });
    expect(existsSync(join(grants.output, 'allowed.txt'))).toBe(true);
    expect(existsSync(underTmp), `${underTmp} on the host`).toBe(false);
    expect(byPath[PRIVATE_TMP]).toMatchObject({ ok: true });
    expect(existsSync(PRIVATE_TMP), "the private /tmp is not the host's").toBe(false);
  });

  it('has each refused write in the audit log, and not the writes it was granted', async () => {
    const forbidden = [join(grants.other, 'refused.txt'), join(fakeHome, 'refused.txt'), join(scratch, 'code', 'refused.txt'), ...OUTSIDE];
    const allowed = join(grants.output, 'granted.txt');
    await attack({ writes: [...forbidden, allowed] });
    await eventually(() => forbidden.every((path) => targetsOf('file-write').includes(path)), 10_000, 'the refused writes in the audit log');
    expect(targetsOf('file-write')).not.toContain(allowed);
  });

  it("reaches none of Gatehouse's sockets, the session bus or the SSH agent, and each attempt is audited", async () => {
    const report = await attack({
      sockets: [
        { path: gh.paths.socketPath, send: GATEHOUSE_HELLO },
        { path: gh.paths.controlSocketPath, send: CONTROL_REQUEST },
        { path: busPath, send: DBUS_AUTH },
        { path: agentPath, send: 'hello\n' },
      ],
    });
    for (const attempt of report.sockets) {
      expect(attempt.ok, attempt.path).toBe(false);
      expect(attempt.received, attempt.path).toBe('');
    }
    const targets = denied('socket').map((e) => (e.detail as { target: string }).target);
    expect(targets).toEqual(expect.arrayContaining([gh.paths.socketPath, gh.paths.controlSocketPath, busPath, agentPath]));
    expect(denied('socket').find((e) => (e.detail as { target: string }).target === busPath)?.reason).toContain('the D-Bus session bus');
  });

  it('reaches the listed loopback server, not the unlisted one, and cannot resolve other names; the proxy audits all three', async () => {
    const report = await attack({
      http: [`http://127.0.0.1:${listed.port}/`, `http://127.0.0.1:${unlisted.port}/`],
      lookups: ['exfil.example.com'],
    });
    const [allowed, refused] = report.http;
    expect(allowed).toMatchObject({ ok: true, status: 200, body: 'listed: allowed' });
    expect(refused!.ok).toBe(false);
    expect(refused!.body).toBeUndefined();
    expect(report.lookups[0]).toMatchObject({ ok: false, code: 'ENOTFOUND' });

    const network = await eventually(
      () => {
        const found = denied('network').find((e) => (e.detail as { target: string }).target === `127.0.0.1:${unlisted.port}`);
        return found;
      },
      5_000,
      'the refused connection in the audit log',
    );
    expect(network.reason).toBe('not on the allow-list');
    // Each denial is recorded as the proxy sees it, not in the order the attack made them.
    await eventually(
      () => denied('dns').some((e) => (e.detail as { target: string }).target === 'exfil.example.com'),
      5_000,
      'the refused lookup in the audit log',
    );
    const egress = await eventually(
      () => {
        const events = auditEvents(gh.paths, 'sandbox.egress').filter((e) => e.server === 'hostile');
        return events.some((e) => (e.detail as { destination: string }).destination === `127.0.0.1:${listed.port}`) ? events : undefined;
      },
      5_000,
      'the allowed connection in the audit log',
    );
    expect(egress.map((e) => (e.detail as { destination: string }).destination)).toContain(`127.0.0.1:${listed.port}`);
  });

  it('forks within its process limit, not past it, and the refused forks are audited', async () => {
    const status = (await gh.status()).servers.find((s) => s.name === 'hostile') as ServerStatus;
    const limit = status.confinement!.limits!.processes;
    expect(limit.max).toBe(64);
    expect(limit.enforcedBy).not.toBe('none');
    const report = await attack({ fork: 200 });
    expect(report.fork!.started).toBeGreaterThanOrEqual(10);
    expect(report.fork!.started).toBeLessThan(64);
    expect(report.fork!.failure?.code).toBe('EAGAIN');
    if (limit.enforcedBy === 'cgroup') {
      const events = await eventually(() => (denied('processes').length > 0 ? denied('processes') : undefined), 8_000, 'the refused forks in the audit log');
      expect((events[0]!.detail as { count: number }).count).toBeGreaterThan(0);
    }
  });

  it('allocates within its memory limit, not past it, and a kill at the limit is audited', async () => {
    const status = (await gh.status()).servers.find((s) => s.name === 'hostile') as ServerStatus;
    const limit = status.confinement!.limits!.memoryMb;
    expect(limit).toMatchObject({ max: 256 });
    expect(limit.enforcedBy).not.toBe('none');
    const small = await attack({ allocateMb: 32 });
    expect(small.allocate).toMatchObject({ ok: true, stdout: 'allocated 32 MiB' });
    const big = await attack({ allocateMb: 1024 });
    expect(big.allocate!.ok).toBe(false);
    expect(big.allocate!.stdout).toBe('');
    if (limit.enforcedBy === 'cgroup') {
      expect(big.allocate!.signal).toBe('SIGKILL');
      await eventually(() => denied('memory').length > 0, 8_000, 'the kill at the memory limit in the audit log');
    }
  });

  it('shows its confinement in status: bubblewrap, its grants, its allow-list, its limits and how each is held', async () => {
    const status = (await gh.status()).servers.find((s) => s.name === 'hostile') as ServerStatus;
    expect(status.confinement).toMatchObject({
      state: 'confined',
      mechanism: 'bubblewrap',
      source: 'config',
      write: [grants.output],
      network: { mode: 'allow', allow: [`127.0.0.1:${listed.port}`] },
    });
    expect(status.confinement!.read).toContain(grants.input);
    expect(status.confinement!.limits!.openFiles).toMatchObject({ max: 1024, enforcedBy: 'rlimit' });
  });

  it('holds no end of the pipe its tracer reports into: nothing in the sandbox can write its own trace', async () => {
    const tracer = (await gh.status()).servers.find((s) => s.name === 'hostile')!.pid!;
    // The positive control: the tracer holds the pipe (the named pipe in the sandbox's directory), so the check can find it.
    const pipes = new Set(
      fdObjects(tracer)
        .filter((o) => o.fifo && o.target.endsWith('/trace'))
        .map((o) => o.key),
    );
    expect(pipes.size).toBe(1);
    const inside = descendantsOf(tracer);
    expect(inside.length).toBeGreaterThan(2);
    for (const pid of inside) {
      const held = fdObjects(pid).filter((o) => pipes.has(o.key));
      expect(held, `process ${pid} (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()})`).toEqual([]);
    }
  });

  it('cannot run unwatched: killing its tracer ends the sandbox with it, and the server comes back under a new tracer', async () => {
    const server = async (): Promise<ServerStatus> => (await gh.status()).servers.find((s) => s.name === 'other')!;
    const before = await server();
    const tracer = before.pid!;
    expect(readFileSync(`/proc/${tracer}/comm`, 'utf8').trim()).toBe('strace');
    const sandboxed = childrenOf(tracer);
    expect(sandboxed.length).toBeGreaterThan(0);
    process.kill(tracer, 'SIGKILL');
    await eventually(() => sandboxed.every((pid) => !existsSync(`/proc/${pid}`)), 10_000, 'the sandbox to end with its tracer');
    await eventually(
      async () => {
        const now = await server();
        return now.state === 'ready' && now.pid !== tracer && now.restarts > before.restarts ? now : undefined;
      },
      20_000,
      'the server to come back',
    );
    const after = await server();
    expect(readFileSync(`/proc/${after.pid!}/comm`, 'utf8').trim()).toBe('strace');
    expect(after.confinement?.fileDenials).toMatchObject({ audited: true });
  });
});

/** Every process below `pid`, from /proc. */
function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  for (let queue = [pid]; queue.length > 0;) {
    const children = childrenOf(queue.shift()!);
    found.push(...children);
    queue.push(...children);
  }
  return found;
}

/** What each open descriptor of `pid` refers to (device and inode), and whether it is a named or anonymous pipe. */
function fdObjects(pid: number): { fd: number; key: string; fifo: boolean; target: string }[] {
  const objects: { fd: number; key: string; fifo: boolean; target: string }[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const info = statSync(`/proc/${pid}/fd/${fd}`);
      objects.push({ fd: Number(fd), key: `${info.dev}:${info.ino}`, fifo: info.isFIFO(), target: readlinkSync(`/proc/${pid}/fd/${fd}`) });
    } catch {
      // Closed meanwhile.
    }
  }
  return objects;
}

/** The processes whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command's closing parenthesis: state, then the parent's pid.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}
