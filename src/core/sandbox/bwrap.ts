/**
 * The bubblewrap command line for a sandbox plan, and the commands that run inside it. Pure: the
 * adapter (src/node/sandbox/linux.ts) collects the host facts and runs what this returns.
 *
 * The sandbox is a fresh root of its own: the system directories read-only, a few files of /etc,
 * a private /proc, /dev and /tmp, an empty home, the plan's grants, and nothing else. Every
 * namespace is new (user, mount, pid, network, ipc, uts, cgroup) unless the plan keeps the host's
 * network. The server gets no capabilities; it cannot create user namespaces of its own, except in
 * allow-listed mode (see `bwrapArgs`). It shares no session with the daemon's terminal: the daemon
 * starts every child in a new session (`detached`), so there is no terminal to inject input into.
 */
import type { SandboxPlan } from './profile.js';
import { SANDBOX_TMP } from './profile.js';
import { byDepth, depth } from './posix-path.js';
import { TRACED_CALLS } from './file-denials.js';

/** A top-level entry of the host's root that holds the system: a directory, or a symlink such as `/bin -> usr/bin`. */
export type SystemEntry = { path: string; kind: 'dir' } | { path: string; kind: 'symlink'; target: string };

/** Where the sandbox's plumbing (the relay, its configuration, the egress socket) appears inside. */
export const PLUMBING_DIR = '/run/gatehouse';

export interface BwrapHost {
  /** `/usr`, and `/bin`, `/lib`, ... as they are on the host (directories or symlinks). */
  system: SystemEntry[];
  /** Files and directories of the host's /etc that the sandbox sees read-only (those that exist). */
  etc: string[];
  /** Files Gatehouse wrote for this sandbox (`/etc/hosts`, `/etc/passwd`, ...), bound read-only at `inside`. */
  files: { host: string; inside: string }[];
  /** A host directory bound read-only at /run/gatehouse. */
  plumbing?: string;
  /** Unix sockets of Gatehouse's egress proxy, bound where Gatehouse's own, the session bus's and the agents' sockets are. */
  decoys: { host: string; inside: string }[];
  /** The plan's hidden paths that exist on the host, and what they are. */
  hidden: { path: string; kind: 'dir' | 'file' }[];
  /**
   * An empty file with no permissions at all, bound over each hidden file: reading one fails
   * (EACCES) instead of quietly giving nothing, so the attempt shows in the trace and is audited.
   */
  unreadable: string;
  /** bubblewrap can stop the server from creating user namespaces (0.8 and later). */
  disableUserns: boolean;
}

export function bwrapArgs(plan: SandboxPlan, host: BwrapHost, inner: readonly string[]): string[] {
  const args = ['--unshare-all', '--unshare-user'];
  if (plan.network.mode === 'host') args.push('--share-net');
  args.push('--die-with-parent');
  if (plan.network.mode === 'allow') {
    // The relay listens on the ports the server will dial (443 among them) in the sandbox's own
    // network: it needs that one capability, as uid 0 of the sandbox (mapped to the user), and
    // drops it for the server (`innerCommand`). bubblewrap 0.8 cannot also disable user
    // namespaces here: its --disable-userns nests one more namespace, which the capability does not reach.
    args.push('--uid', '0', '--gid', '0', '--cap-drop', 'ALL', '--cap-add', 'CAP_NET_BIND_SERVICE');
  } else {
    args.push('--cap-drop', 'ALL');
    if (host.disableUserns) args.push('--disable-userns');
  }

  for (const entry of host.system) {
    if (entry.kind === 'symlink') args.push('--symlink', entry.target, entry.path);
    else args.push('--ro-bind', entry.path, entry.path);
  }
  for (const path of [...host.etc].sort(byDepth)) args.push('--ro-bind-try', path, path);
  for (const file of host.files) args.push('--ro-bind', file.host, file.inside);
  args.push('--proc', '/proc', '--dev', '/dev');
  if (host.plumbing !== undefined) args.push('--ro-bind', host.plumbing, PLUMBING_DIR);

  // Private directories and grants in one list, parents first, so that a grant of /home does not
  // cover the empty home mounted below it, and a grant inside the home shows through it.
  type Mount = { path: string; order: number; args: string[] };
  const mounts: Mount[] = [
    { path: SANDBOX_TMP, order: 0, args: ['--tmpfs', SANDBOX_TMP] },
    { path: '/var/tmp', order: 0, args: ['--tmpfs', '/var/tmp'] },
  ];
  if (plan.home !== undefined) mounts.push({ path: plan.home, order: 0, args: ['--tmpfs', plan.home] });
  for (const path of plan.read) mounts.push({ path, order: 1, args: ['--ro-bind-try', path, path] });
  for (const path of plan.write) mounts.push({ path, order: 1, args: ['--bind-try', path, path] });
  mounts.sort((a, b) => depth(a.path) - depth(b.path) || a.order - b.order || byDepth(a.path, b.path));
  for (const m of mounts) args.push(...m.args);

  for (const h of [...host.hidden].sort((a, b) => byDepth(a.path, b.path))) {
    if (h.kind === 'dir') args.push('--tmpfs', h.path);
    else args.push('--ro-bind', host.unreadable, h.path);
  }
  for (const d of host.decoys) args.push('--ro-bind', d.host, d.inside);
  // Nothing but the grants and the private temporary directories is writable: not the empty home,
  // not the sandbox's own root. A grant of the home itself is its own mount, and stays as granted.
  if (plan.home !== undefined && ![...plan.read, ...plan.write].includes(plan.home)) args.push('--remount-ro', plan.home);
  args.push('--remount-ro', '/');
  args.push('--chdir', plan.cwd, '--', ...inner);
  return args;
}

/** Limits set with rlimits inside the sandbox (those a cgroup does not hold). */
export interface RlimitSettings {
  openFiles: number;
  /** RLIMIT_NPROC: counted per user namespace, so per sandbox, except for root, whom the kernel exempts. */
  processes?: number;
  /** RLIMIT_DATA: each process's private writable memory. */
  dataBytes?: number;
}

export interface InnerTools {
  prlimit: string;
  /** In allow-listed mode: the relay that starts first and launches the server through setpriv. */
  relay?: { node: string; script: string; config: string; setpriv: string };
}

/**
 * What runs inside: `prlimit` sets the limits and executes the server. Set inside, after the user
 * namespace exists, RLIMIT_NPROC counts the sandbox's own tasks; set before, it would count every
 * process of the user. In allow-listed mode the relay runs first and starts that chain through
 * `setpriv`, which drops every capability for good (inheritable, ambient and bounding sets).
 */
export function innerCommand(limits: RlimitSettings, tools: InnerTools, argv: readonly string[]): string[] {
  const limited = [tools.prlimit, `--nofile=${limits.openFiles}:${limits.openFiles}`];
  if (limits.processes !== undefined) limited.push(`--nproc=${limits.processes}:${limits.processes}`);
  if (limits.dataBytes !== undefined) limited.push(`--data=${limits.dataBytes}:${limits.dataBytes}`);
  limited.push('--', ...argv);
  if (!tools.relay) return limited;
  const { node, script, config, setpriv } = tools.relay;
  return [node, script, config, '--', setpriv, '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--', ...limited];
}

/**
 * Runs `argv` as a member of the given cgroups from its first instruction: a shell writes its own
 * pid into each `cgroup.procs` file, then becomes `argv`, so no task of the sandbox is ever outside.
 * The paths travel as arguments, never inside the script.
 */
export function joinCgroupsCommand(shell: string, procsFiles: readonly string[], argv: readonly string[]): string[] {
  // The shell exports PWD; the server must get only the environment Gatehouse gives it.
  const script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; unset PWD; exec "$@"';
  return [shell, '-c', script, 'gatehouse-sandbox', String(procsFiles.length), ...procsFiles, ...argv];
}

/** The system-call tracer that watches a sandbox from outside it (src/node/sandbox/file-trace.ts). */
export interface TracerTools {
  strace: string;
  setpriv: string;
  shell: string;
}

/**
 * Runs `argv` (bubblewrap, or the cgroup shell that becomes it) under strace, which reports every
 * file call that fails, on descriptor 3 of the process Gatehouse spawns. From the outside in:
 * - `setpriv --pdeathsig KILL`: the tracer dies with the daemon, and bubblewrap (`--die-with-parent`)
 *   with the tracer, so nothing outlives Gatehouse;
 * - strace follows every process (`-f`), stops only at `TRACED_CALLS` (`--seccomp-bpf`; each named
 *   with `?`, so a call this architecture or this strace does not know is skipped, not an error), prints
 *   only failed ones (`-Z`), every string and descriptor path as hex escapes (`-xx -y`), into the
 *   pipe at descriptor 3, which it reopens close-on-exec;
 * - a shell closes descriptor 3 before the sandbox starts, so no server can write into the trace.
 * The tracer is outside the sandbox's pid namespace: a server can neither see nor signal it. It is
 * bubblewrap's parent, so a tracer killed from outside takes the sandbox with it (`--die-with-parent`),
 * and the supervisor starts the server again under a new one: no sandbox runs unwatched.
 */
export function tracedCommand(tools: TracerTools, argv: readonly string[]): string[] {
  const trace = [tools.strace, ...traceOptions('/proc/self/fd/3')];
  return [tools.setpriv, '--pdeathsig', 'KILL', '--', ...trace, '--', tools.shell, '-c', 'exec 3>&-; exec "$@"', 'gatehouse-trace', ...argv];
}

/** strace's options, writing to `output`: the same for every sandbox and for the probe that checks strace can trace here. */
export function traceOptions(output: string): string[] {
  const calls = TRACED_CALLS.map((call) => `?${call}`).join(',');
  return ['-f', '-qq', '--seccomp-bpf', '-e', `trace=${calls}`, '-e', 'signal=none', '-Z', '-xx', '-y', '-s', '4096', '-o', output];
}
