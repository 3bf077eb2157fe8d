/**
 * Confinement on Linux with bubblewrap: what this machine supports (probed once, by running
 * bubblewrap for real), and the launch of one confined server. The decisions are pure functions
 * in src/core/sandbox; this file collects the facts they need and carries out what they return:
 * the files and sockets of the sandbox, its cgroups, and the command line.
 */
import { execFile } from 'node:child_process';
import { Socket } from 'node:net';
import { closeSync, constants as fsConstants, existsSync, lstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import path from 'node:path';
import { errorMessage } from '../../common/errors.js';
import type { FileDenialStatus, LimitStatus } from '../../common/sandbox.js';
import {
  bwrapArgs,
  innerCommand,
  joinCgroupsCommand,
  PLUMBING_DIR,
  traceOptions,
  tracedCommand,
  type RlimitSettings,
  type SystemEntry,
} from '../../core/sandbox/bwrap.js';
import { hostsFile, planEgress } from '../../core/sandbox/egress.js';
import type { SandboxPlan } from '../../core/sandbox/profile.js';
import { SandboxCgroup, detectCgroups, removeStaleGroups, type CgroupSupport } from './cgroup.js';
import { EgressProxy, type Decoy } from './egress-proxy.js';
import type { SandboxEvents } from '../../core/sandbox/events.js';
import { FifoMaker } from './fifos.js';
import { readFileTrace } from './file-trace.js';

/** The top-level entries that hold the system; each is bound read-only, or recreated as the symlink it is. */
const SYSTEM_ENTRIES = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * What of /etc a confined server sees: the dynamic linker's cache, certificates (not private
 * keys), time zone, alternatives. Passwords, hosts and name service come from the sandbox's own files.
 */
const ETC_ENTRIES = [
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/ssl/certs',
  '/etc/ssl/openssl.cnf',
  '/etc/ca-certificates',
  '/etc/ca-certificates.conf',
  '/etc/pki/tls/certs',
  '/etc/pki/ca-trust',
  '/etc/crypto-policies',
  '/etc/alternatives',
  '/etc/localtime',
  '/etc/timezone',
  '/etc/os-release',
  '/etc/mime.types',
];
/** With the host's network, its name service too. */
const ETC_NETWORK = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/host.conf', '/etc/gai.conf'];

export interface LinuxHost {
  /** Why servers cannot be confined here, when they cannot. */
  problem?: string;
  bwrap: string;
  prlimit: string;
  /** setpriv, which allow-listed sandboxes need; absent: allow-listed profiles cannot be confined here. */
  setpriv?: string;
  shell: string;
  disableUserns: boolean;
  uid: number;
  gid: number;
  /** The kernel counts RLIMIT_NPROC per user namespace (5.14 and later), so an rlimit can be a per-sandbox process limit. */
  nprocPerNamespace: boolean;
  cgroups: CgroupSupport;
  system: SystemEntry[];
  etc: string[];
  etcNetwork: string[];
  /** strace, which watches each sandbox's file calls so that refused ones are audited; absent with `tracerProblem` saying why. */
  strace?: string;
  /** Makes the tracers' named pipes (one `mkfifo` run for the pipes asked for together). */
  mkfifo?: FifoMaker;
  tracerProblem?: string;
}

/** Finds bubblewrap and its helpers, and runs it once with the options every sandbox uses. */
export async function probeLinux(env: NodeJS.ProcessEnv = process.env): Promise<LinuxHost> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const system = systemEntries();
  const host: LinuxHost = {
    bwrap: findTool('bwrap', env) ?? '',
    prlimit: findTool('prlimit', env) ?? '',
    ...(findTool('setpriv', env) ? { setpriv: findTool('setpriv', env)! } : {}),
    shell: existsSync('/bin/sh') ? '/bin/sh' : '/usr/bin/sh',
    disableUserns: false,
    uid,
    gid,
    nprocPerNamespace: kernelAtLeast(release(), 5, 14),
    cgroups: { problems: {} },
    system,
    etc: ETC_ENTRIES.filter((p) => existsSync(p)),
    etcNetwork: ETC_NETWORK.filter((p) => existsSync(p)),
  };
  if (host.bwrap === '') return { ...host, problem: 'bubblewrap (bwrap) is not installed; on Debian and Ubuntu: apt install bubblewrap' };
  if (host.prlimit === '') return { ...host, problem: 'prlimit (util-linux) is not installed' };
  const base = ['--unshare-all', '--unshare-user', '--die-with-parent', '--cap-drop', 'ALL'];
  const layout = system.flatMap((e) => (e.kind === 'symlink' ? ['--symlink', e.target, e.path] : ['--ro-bind', e.path, e.path]));
  const trial = [...layout, '--proc', '/proc', '--dev', '/dev', '--', host.prlimit, '--nofile=64:64', '--', host.shell, '-c', 'exit 0'];
  const withUserns = await run(host.bwrap, [...base, '--disable-userns', ...trial]);
  if (withUserns.ok) host.disableUserns = true;
  else {
    const plain = await run(host.bwrap, [...base, ...trial]);
    if (!plain.ok) return { ...host, problem: `bubblewrap cannot create a sandbox here: ${plain.error}` };
  }
  host.cgroups = await detectCgroups();
  await removeStaleGroups(host.cgroups);
  await probeTracer(host, env, [...base, ...(host.disableUserns ? ['--disable-userns'] : []), ...trial]);
  return host;
}

/** Whether strace can watch a sandbox here: installed, allowed to trace (Yama, seccomp of a container), and with setpriv to tie it to the daemon. */
async function probeTracer(host: LinuxHost, env: NodeJS.ProcessEnv, bwrapTrial: string[]): Promise<void> {
  const strace = findTool('strace', env);
  const mkfifo = findTool('mkfifo', env);
  if (!mkfifo) {
    host.tracerProblem = 'mkfifo (coreutils) is not installed, so refused file reads and writes are not audited';
    return;
  }
  host.mkfifo = new FifoMaker(mkfifo);
  if (!strace) {
    host.tracerProblem = 'strace is not installed, so refused file reads and writes are not audited (on Debian and Ubuntu: apt install strace)';
    return;
  }
  if (!host.setpriv) {
    host.tracerProblem = 'setpriv (util-linux) is not installed, so refused file reads and writes are not audited';
    return;
  }
  const trial = await run(strace, [...traceOptions('/dev/null'), '--', host.bwrap, ...bwrapTrial]);
  if (trial.ok) host.strace = strace;
  else host.tracerProblem = `strace cannot trace a sandbox here (${trial.error}), so refused file reads and writes are not audited`;
}

function systemEntries(): SystemEntry[] {
  const entries: SystemEntry[] = [];
  for (const entry of SYSTEM_ENTRIES) {
    try {
      const info = lstatSync(entry);
      if (info.isSymbolicLink()) entries.push({ path: entry, kind: 'symlink', target: readlinkSync(entry) });
      else if (info.isDirectory()) entries.push({ path: entry, kind: 'dir' });
    } catch {
      // Not on this machine.
    }
  }
  return entries;
}

function findTool(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const dirs = [...(env['PATH'] ?? '').split(':'), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Next.
    }
  }
  return undefined;
}

function kernelAtLeast(version: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match) return false;
  const [a, b] = [Number(match[1]), Number(match[2])];
  return a > major || (a === major && b >= minor);
}

function run(command: string, args: string[]): Promise<{ ok: true } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 10_000, encoding: 'utf8', env: {} }, (error, _stdout, stderr) => {
      if (!error) resolve({ ok: true });
      else resolve({ ok: false, error: (stderr.trim().split('\n')[0] ?? '') || errorMessage(error) });
    });
  });
}

/** Ports that listen on the host's loopback (127.x, ::1, or every address), from /proc/net/tcp and tcp6. */
export function loopbackListeningPorts(tcp: string, tcp6: string): number[] {
  const ports = new Set<number>();
  for (const line of [...tcp.split('\n').slice(1), ...tcp6.split('\n').slice(1)]) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== '0A') continue;
    const [addressHex, portHex] = (fields[1] ?? '').split(':');
    if (addressHex === undefined || portHex === undefined) continue;
    if (reachableFromLoopback(addressHex)) ports.add(parseInt(portHex, 16));
  }
  return [...ports].sort((a, b) => a - b);
}

function reachableFromLoopback(hex: string): boolean {
  if (hex.length === 8) return /^0+$/.test(hex) || hex.endsWith('7F');
  if (hex.length === 32) {
    if (/^0+$/.test(hex) || hex === '00000000000000000000000001000000') return true;
    // ::ffff:127.x.x.x, as the kernel prints it (each 32-bit word in host byte order).
    return hex.startsWith('0000000000000000FFFF0000') && hex.endsWith('7F');
  }
  return false;
}

function hostLoopbackPorts(): number[] {
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  return loopbackListeningPorts(read('/proc/net/tcp'), read('/proc/net/tcp6'));
}

export interface LinuxLaunchInput {
  host: LinuxHost;
  server: string;
  plan: SandboxPlan;
  argv: string[];
  /** A fresh, user-only directory for this sandbox's files and sockets. */
  dir: string;
  decoys: { path: string; what: string }[];
  /** The relay script and the Node that runs it, for allow-listed sandboxes. */
  relay?: { node: string; script: string };
  events: SandboxEvents;
  /** `/etc/passwd` inside names the user so; their home is the plan's (empty) home. */
  userName: string;
  /** How often a running sandbox's cgroup counters are read (for the audit log). */
  pollMs: number;
  /** The cgroup group name's unique part. */
  groupName: string;
}

export interface LinuxLaunch {
  argv: string[];
  limits: { processes: LimitStatus; memoryMb: LimitStatus; openFiles: LimitStatus };
  fileDenials: FileDenialStatus;
  /** Set when the process must be spawned with this descriptor as its descriptor 3: the trace pipe's writing end. */
  traceFd?: number;
  started(pid: number | undefined): void;
  release(): Promise<void>;
}

/** Writes the sandbox's files, opens its proxy and decoys, makes its cgroups, and returns the command that starts it. */
export async function prepareLinuxLaunch(input: LinuxLaunchInput): Promise<LinuxLaunch> {
  const { host, plan, dir } = input;
  const allow = plan.network.mode === 'allow' ? plan.network.destinations : undefined;
  const insideUid = allow ? 0 : host.uid;
  const insideGid = allow ? 0 : host.gid;
  const files: { host: string; inside: string }[] = [];
  const write = async (name: string, inside: string, text: string): Promise<void> => {
    const file = path.join(dir, name);
    await writeFile(file, text, { mode: 0o644 });
    files.push({ host: file, inside });
  };
  const home = plan.home ?? '/';
  await write(
    'passwd',
    '/etc/passwd',
    `${input.userName}:x:${insideUid}:${insideGid}::${home}:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n`,
  );
  await write('group', '/etc/group', `${input.userName}:x:${insideGid}:\nnogroup:x:65534:\n`);

  let etc = host.etc;
  let plumbing: string | undefined;
  let relayConfig: string | undefined;
  const proxyDecoys: Decoy[] = input.decoys.map((d, i) => ({ socketPath: path.join(dir, `d${i}.sock`), inside: d.path, what: d.what }));
  let egressSocket: string | undefined;
  if (plan.network.mode === 'host') etc = [...etc, ...host.etcNetwork];
  else {
    const egress = planEgress(allow ?? [], allow ? hostLoopbackPorts() : []);
    await write('hosts', '/etc/hosts', hostsFile(egress));
    await write('nsswitch.conf', '/etc/nsswitch.conf', `passwd: files\ngroup: files\nhosts: files${allow ? ' dns' : ''}\n`);
    if (allow) {
      await write('resolv.conf', '/etc/resolv.conf', 'nameserver 127.0.0.1\noptions attempts:1 timeout:2\n');
      const plumbingDir = path.join(dir, 'run');
      await mkdir(plumbingDir, { mode: 0o755 });
      egressSocket = path.join(plumbingDir, 'e.sock');
      const config = {
        egress: `${PLUMBING_DIR}/e.sock`,
        listeners: egress.listeners,
        dns: { address: '127.0.0.1', port: 53, names: Object.fromEntries(egress.hosts.map((h) => [h.name, h.address])) },
      };
      await writeFile(path.join(plumbingDir, 'relay.json'), JSON.stringify(config), { mode: 0o644 });
      // The relay alone, as an ES module whatever directory it lands in.
      if (input.relay) await copyFile(input.relay.script, path.join(plumbingDir, 'relay.mjs'));
      relayConfig = `${PLUMBING_DIR}/relay.json`;
      plumbing = plumbingDir;
    }
  }

  const proxy = new EgressProxy({
    server: input.server,
    ...(egressSocket !== undefined ? { socketPath: egressSocket } : {}),
    destinations: allow ?? [],
    decoys: proxyDecoys,
    events: input.events,
  });
  let cgroup: SandboxCgroup | undefined;
  try {
    await proxy.listen();
    cgroup = await SandboxCgroup.create(host.cgroups, input.groupName, { processes: plan.limits.processes, memoryBytes: plan.limits.memoryBytes });
  } catch (error) {
    await proxy.close();
    throw error;
  }
  const viaCgroup = new Set(cgroup.controllers);
  const rlimits: RlimitSettings = { openFiles: plan.limits.openFiles };
  const limits = describeLimits(plan, host, viaCgroup);
  if (!viaCgroup.has('pids') && limits.processes.enforcedBy === 'rlimit') rlimits.processes = plan.limits.processes;
  if (!viaCgroup.has('memory')) rlimits.dataBytes = plan.limits.memoryBytes;

  const relay =
    allow && input.relay && host.setpriv && relayConfig
      ? { node: input.relay.node, script: `${PLUMBING_DIR}/relay.mjs`, config: relayConfig, setpriv: host.setpriv }
      : undefined;
  if (allow && !relay) throw new Error('an allow-listed sandbox needs the relay and setpriv');
  const inner = innerCommand(rlimits, { prlimit: host.prlimit, ...(relay ? { relay } : {}) }, input.argv);
  const unreadable = path.join(dir, 'unreadable');
  await writeFile(unreadable, '', { mode: 0o000 });
  const hidden = plan.hidden.flatMap((p) => {
    try {
      return [{ path: p, kind: statSync(p).isDirectory() ? ('dir' as const) : ('file' as const) }];
    } catch {
      return [];
    }
  });
  const args = bwrapArgs(
    plan,
    {
      system: host.system,
      etc,
      files,
      ...(plumbing !== undefined ? { plumbing } : {}),
      decoys: proxyDecoys.map((d) => ({ host: d.socketPath, inside: d.inside })),
      hidden,
      unreadable,
      disableUserns: host.disableUserns,
    },
    inner,
  );
  const sandboxed = cgroup.procsFiles.length > 0 ? joinCgroupsCommand(host.shell, cgroup.procsFiles, [host.bwrap, ...args]) : [host.bwrap, ...args];
  const tracer = host.strace !== undefined && host.setpriv !== undefined ? { strace: host.strace, setpriv: host.setpriv, shell: host.shell } : undefined;
  const argv = tracer ? tracedCommand(tracer, sandboxed) : sandboxed;
  // What the sandbox shows: a missing path there is simply missing (src/core/sandbox/file-denials.ts).
  const visible = [...host.system.map((e) => e.path), ...plan.read, ...plan.write, PLUMBING_DIR];
  const trace = tracer && host.mkfifo ? await openTracePipe(host.mkfifo, dir) : undefined;
  const forks = limits.processes.enforcedBy === 'rlimit' ? { forks: { limit: plan.limits.processes } } : {};
  const traced = trace ? readFileTrace(trace.reader, { server: input.server, events: input.events, visible, hidden: plan.hidden, ...forks }) : undefined;

  let poll: ReturnType<typeof setInterval> | undefined;
  const report = async (): Promise<void> => {
    if (!cgroup) return;
    const { forks, oomKills } = await cgroup.newEvents();
    if (forks > 0) input.events.denied(input.server, 'processes', `${plan.limits.processes} processes`, 'a fork was refused at the process limit', forks);
    if (oomKills > 0)
      input.events.denied(input.server, 'memory', `${plan.limits.memoryBytes / 1024 / 1024} MiB`, 'a process was killed at the memory limit', oomKills);
  };
  let released: Promise<void> | undefined;
  return {
    argv,
    limits,
    fileDenials: trace
      ? { audited: true, note: 'strace watches the sandbox from outside; each refused read or write is audited' }
      : { audited: false, note: host.tracerProblem ?? 'no tracer' },
    ...(trace ? { traceFd: trace.writer } : {}),
    started() {
      // The process has its own copy of the writing end now; once it and the tracer are gone, the reader sees the end.
      trace?.closeWriter();
      if (cgroup.procsFiles.length === 0) return;
      poll = setInterval(() => void report(), input.pollMs);
      poll.unref();
    },
    release() {
      released ??= (async () => {
        if (poll) clearInterval(poll);
        // The tracer has exited with the sandbox: its last lines are in the pipe, and the pipe ends.
        trace?.closeWriter();
        if (traced) await Promise.race([traced, new Promise((done) => setTimeout(done, 2_000).unref())]);
        trace?.reader.destroy();
        await report();
        input.events.flush(input.server);
        await proxy.close();
        await cgroup.remove();
        await rm(dir, { recursive: true, force: true });
      })();
      return released;
    },
  };
}

export interface TracePipe {
  reader: Socket;
  /** The descriptor the spawned process gets as its descriptor 3. */
  writer: number;
  /** Closes Gatehouse's copy of the writing end (once the process has its own). */
  closeWriter(): void;
}

/**
 * A named pipe in the sandbox's user-only directory: the reading end, opened first so that the
 * writing end opens without waiting, and the writing end the spawned process gets as descriptor 3.
 * (Node's own `'pipe'` stdio is a socket pair, which strace cannot reopen by its /proc path.)
 */
export async function openTracePipe(fifos: FifoMaker, dir: string): Promise<TracePipe> {
  const fifo = path.join(dir, 'trace');
  await fifos.make(fifo);
  const readFd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  const writer = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  const reader = new Socket({ fd: readFd, readable: true, writable: false });
  let open = true;
  return {
    reader,
    writer,
    closeWriter() {
      if (!open) return;
      open = false;
      closeSync(writer);
    },
  };
}

function describeLimits(plan: SandboxPlan, host: LinuxHost, viaCgroup: Set<string>): LinuxLaunch['limits'] {
  const memoryMb = plan.limits.memoryBytes / 1024 / 1024;
  let processes: LimitStatus;
  if (viaCgroup.has('pids')) processes = { max: plan.limits.processes, enforcedBy: 'cgroup', note: 'for the whole sandbox' };
  else if (host.uid !== 0 && host.nprocPerNamespace)
    processes = { max: plan.limits.processes, enforcedBy: 'rlimit', note: 'for the whole sandbox (RLIMIT_NPROC in its user namespace)' };
  else {
    const why = host.uid === 0 ? 'the kernel exempts root from RLIMIT_NPROC' : 'this kernel (before 5.14) counts RLIMIT_NPROC across all your processes';
    processes = {
      max: plan.limits.processes,
      enforcedBy: 'none',
      note: `not enforced: no pids cgroup (${host.cgroups.problems.pids ?? 'unavailable'}), and ${why}`,
    };
  }
  const memory: LimitStatus = viaCgroup.has('memory')
    ? { max: memoryMb, enforcedBy: 'cgroup', note: 'for the whole sandbox; a process past it is killed' }
    : { max: memoryMb, enforcedBy: 'rlimit', note: 'per process (RLIMIT_DATA); an allocation past it fails' };
  return { processes, memoryMb: memory, openFiles: { max: plan.limits.openFiles, enforcedBy: 'rlimit', note: 'per process' } };
}
