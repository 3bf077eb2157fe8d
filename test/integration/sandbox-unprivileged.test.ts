/**
 * Issue 15, for an ordinary user: the kernel counts RLIMIT_NPROC per user namespace (5.14 and
 * later), so set inside the sandbox it limits that sandbox's processes, not every process of the
 * user. (Root is exempt from RLIMIT_NPROC; a root daemon uses a pids cgroup, proven in
 * sandbox-hostile.test.ts.) The sandbox is built from the same pure functions the launcher uses and
 * run by real bubblewrap as a user other than root (`nobody`, when the tests run as root).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxProfileSchema } from '../../src/common/sandbox.js';
import { bwrapArgs, innerCommand, tracedCommand } from '../../src/core/sandbox/bwrap.js';
import { SandboxEvents } from '../../src/core/sandbox/events.js';
import { systemClock, type AuditRecord } from '../../src/core/ports.js';
import { readFileTrace } from '../../src/node/sandbox/file-trace.js';
import { planSandbox } from '../../src/core/sandbox/profile.js';
import { openTracePipe, probeLinux, type LinuxHost, type TracePipe } from '../../src/node/sandbox/linux.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/hostile-server.mjs', import.meta.url));
const asRoot = process.getuid?.() === 0;
const kernelOk = (() => {
  const [major, minor] = release().split('.').map(Number);
  return major! > 5 || (major === 5 && minor! >= 14);
})();
const runnable = process.platform === 'linux' && kernelOk && (!asRoot || spawnSync('sh', ['-c', 'command -v setpriv']).status === 0);

/** A confined fixture speaking MCP over stdio, started as a user other than root. */
class Confined {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting = new Map<number, (message: { result?: { content: { text: string }[] }; error?: unknown }) => void>();
  #id = 0;

  /** `trace`: run it under the file-call tracer the launcher uses, which reports into this pipe. */
  constructor(host: LinuxHost, dir: string, limited: boolean, trace?: TracePipe) {
    const planned = planSandbox({
      profile: SandboxProfileSchema.parse({ limits: { processes: 32 } }),
      codeRoots: [dir],
      protectedPaths: [],
      sensitivePaths: [],
    });
    if (!planned.ok) throw new Error(planned.reason);
    const inner = innerCommand({ openFiles: 256, ...(limited ? { processes: planned.plan.limits.processes } : {}) }, { prlimit: host.prlimit }, [
      process.execPath,
      join(dir, 'hostile-server.mjs'),
    ]);
    const args = bwrapArgs(
      planned.plan,
      { system: host.system, etc: host.etc, files: [], decoys: [], hidden: [], unreadable: '/dev/null', disableUserns: host.disableUserns },
      inner,
    );
    const sandbox = trace ? tracedCommand({ strace: host.strace!, setpriv: host.setpriv!, shell: host.shell }, [host.bwrap, ...args]) : [host.bwrap, ...args];
    const argv = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', ...sandbox] : sandbox;
    this.#child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe', trace?.writer ?? 'ignore'],
    }) as ChildProcessWithoutNullStreams;
    trace?.closeWriter();
    this.#child.stderr.on('data', () => undefined);
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const message = JSON.parse(line) as { id: number; result?: { content: { text: string }[] }; error?: unknown };
      this.#waiting.get(message.id)?.(message);
    });
  }

  request(method: string, params: Record<string, unknown>): Promise<{ result?: { content: { text: string }[] }; error?: unknown }> {
    const id = ++this.#id;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  async fork(count: number): Promise<{ started: number; failure: { code: string } | null; uid: number }> {
    await this.request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '1' } });
    const answer = await this.request('tools/call', { name: 'attack', arguments: { fork: count } });
    const report = JSON.parse(answer.result!.content[0]!.text) as { uid: number; fork: { started: number; failure: { code: string } | null } };
    return { ...report.fork, uid: report.uid };
  }

  stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end();
    return exited;
  }
}

describe.runIf(runnable)("the process limit of an ordinary user's sandbox (issue 15)", () => {
  let host: LinuxHost;
  let dir: string;
  beforeAll(async () => {
    host = await probeLinux();
    dir = mkdtempSync(join(tmpdir(), 'gh-unprivileged-'));
    chmodSync(dir, 0o755);
    copyFileSync(FIXTURE, join(dir, 'hostile-server.mjs'));
    chmodSync(join(dir, 'hostile-server.mjs'), 0o644);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("stops forks at the RLIMIT_NPROC set inside the sandbox, counting only the sandbox's own tasks", async () => {
    if (host.problem) throw new Error(host.problem);
    const confined = new Confined(host, dir, true);
    try {
      const fork = await confined.fork(100);
      expect(fork.uid).not.toBe(0);
      expect(fork.failure?.code).toBe('EAGAIN');
      expect(fork.started).toBeGreaterThanOrEqual(10);
      expect(fork.started).toBeLessThan(32);
    } finally {
      await confined.stop();
    }
  });

  it('has each fork the limit refused in the audit, as the tracer outside the sandbox saw it (no cgroup counts them here)', async () => {
    if (!host.strace || !host.mkfifo) throw new Error(host.tracerProblem ?? 'no tracer');
    const pipeDir = mkdtempSync(join(tmpdir(), 'gh-trace-'));
    const trace = await openTracePipe(host.mkfifo, pipeDir);
    // The tracer runs as the sandbox's user, as it would run as the daemon's; it reopens the pipe by its /proc path.
    chmodSync(join(pipeDir, 'trace'), 0o666);
    const records: AuditRecord[] = [];
    const events = new SandboxEvents({ clock: systemClock, append: (r) => records.push(r) });
    const read = readFileTrace(trace.reader, { server: 'forky', events, visible: [], hidden: [], forks: { limit: 32 } });
    const confined = new Confined(host, dir, true, trace);
    try {
      const fork = await confined.fork(100);
      expect(fork.failure?.code).toBe('EAGAIN');
    } finally {
      await confined.stop();
      await read;
      events.flush();
      rmSync(pipeDir, { recursive: true, force: true });
    }
    const refused = records.filter((r) => r.type === 'sandbox.denied' && (r.detail as { kind: string }).kind === 'processes');
    expect(refused[0]).toMatchObject({ server: 'forky', reason: 'a fork was refused at the process limit', detail: { target: '32 processes' } });
    expect(refused.reduce((sum, r) => sum + ((r.detail as { count: number }).count ?? 0), 0)).toBeGreaterThanOrEqual(1);
  });

  it('forks freely without it (so the limit, not the user, is what stopped the forks)', async () => {
    const confined = new Confined(host, dir, false);
    try {
      const fork = await confined.fork(100);
      expect(fork).toMatchObject({ started: 100, failure: null });
    } finally {
      await confined.stop();
    }
  });
});
