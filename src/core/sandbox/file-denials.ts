/**
 * Which file operations a confined server tried and the sandbox refused, read from the system-call
 * tracer that watches every sandbox from outside (src/node/sandbox/file-trace.ts); and the forks
 * refused at an rlimit process limit, which no cgroup counter sees. The tracer reports only calls
 * that failed; this module turns each line into a path and an operation, and
 * decides whether the sandbox is why it failed. Pure: the one host fact it needs (does this path
 * exist on the host?) comes in as a function.
 *
 * A confined server cannot tell "not granted" from "not there": a path outside its grants simply
 * does not exist in its root. So a failure is the sandbox's doing when
 *   - the write hit a read-only mount (EROFS): the sandbox's root, the home, a read-only grant;
 *   - the path is missing inside (ENOENT, ENOTDIR), lies outside every grant or under a hidden
 *     path, and exists on the host; or, for a call that creates, its parent directory does;
 *   - the path is a hidden file (EACCES, EPERM): the sandbox covers those with an unreadable one.
 * Everything else (a module resolver probing names that exist nowhere, a failure the host's own
 * permissions cause) is not a denial and is not recorded.
 *
 * The tracer runs with `-xx -y`: every string and every descriptor's path is printed as `\xHH`
 * escapes, so nothing a hostile server names can break a line's structure.
 */
import { dirname, isWithin, normalize } from './posix-path.js';

export interface TracedFailure {
  syscall: string;
  /** The paths the call named, made absolute against their directory descriptor (relative paths without one are left out). */
  paths: string[];
  /** The call would write: create, change, remove, or open for writing. */
  write: boolean;
  /** The call would create its (last) path: the parent directory's existence is what counts. */
  creates: boolean;
  errno: string;
}

export interface FileDenial {
  op: 'read' | 'write';
  path: string;
  reason: string;
}

export interface DenialFacts {
  /** Whether the path exists on the host (as an entry: a dangling symlink exists). */
  exists(path: string): boolean;
  /** What the sandbox shows: its grants and the system directories. A missing path under one of these is simply missing. */
  visible: readonly string[];
  /** What the sandbox covers with something empty, even under a visible grant. */
  hidden: readonly string[];
}

/** Calls whose first string is a path and that only read. */
const READS = new Set([
  'stat',
  'lstat',
  'newfstatat',
  'fstatat64',
  'statx',
  'access',
  'faccessat',
  'faccessat2',
  'readlink',
  'readlinkat',
  'execve',
  'execveat',
  'chdir',
  'getxattr',
  'lgetxattr',
  'listxattr',
  'llistxattr',
  'statfs',
  'inotify_add_watch',
  'fanotify_mark',
]);
/** Calls that change the file system at their path(s). */
const WRITES = new Set([
  'creat',
  'truncate',
  'mkdir',
  'mkdirat',
  'rmdir',
  'unlink',
  'unlinkat',
  'rename',
  'renameat',
  'renameat2',
  'link',
  'linkat',
  'symlink',
  'symlinkat',
  'chmod',
  'fchmodat',
  'fchmodat2',
  'chown',
  'lchown',
  'fchownat',
  'utime',
  'utimes',
  'utimensat',
  'futimesat',
  'mknod',
  'mknodat',
  'setxattr',
  'lsetxattr',
  'removexattr',
  'lremovexattr',
]);
const OPENS = new Set(['open', 'openat', 'openat2']);
/** Calls that start a process or thread: refused with EAGAIN at the process limit. */
const FORKS = new Set(['clone', 'clone3', 'fork', 'vfork']);
const CREATES = new Set(['creat', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'symlink', 'symlinkat', 'link', 'linkat', 'rename', 'renameat', 'renameat2']);
/**
 * The calls the tracer stops at: those that open, create, change or remove a file, run a program,
 * or start a process. Not the stat family, access or readlink (READS): a Node server makes hundreds
 * of those at start-up resolving modules, each stop costs two context switches, and they only probe.
 */
export const TRACED_CALLS: readonly string[] = [...OPENS, ...WRITES, 'execve', 'execveat', ...FORKS];
/** Which string arguments are paths, where it is not only the first. `symlink`'s first string is the link's text, not a path. */
const PATH_ARGS: Record<string, number[]> = {
  rename: [0, 1],
  renameat: [0, 1],
  renameat2: [0, 1],
  link: [0, 1],
  linkat: [0, 1],
  symlink: [1],
  symlinkat: [1],
};
/** The sandbox's own trees, and bubblewrap's while it sets up (it works under /newroot and /oldroot before the server runs). */
const NEVER = ['/proc', '/sys', '/dev', '/newroot', '/oldroot'];
/** The sandbox's /etc is a fixed minimal one for every server: what it leaves out is by design, not an attempt worth recording. */
const MINIMAL_ETC = '/etc';

const LINE = /^(\d+) +(.*)$/;
const CALL = /^([a-z0-9_]+)\((.*)\) += -1 (E[A-Z0-9]+)(?: \(.*\))?$/s;
const UNFINISHED = ' <unfinished ...>';
const RESUMED = /^<\.\.\. ([a-z0-9_]+) resumed>(.*)$/s;
const STRING = /"((?:\\x[0-9a-f]{2})*)"/g;
const DESCRIPTOR = /(?:AT_FDCWD|-?\d+)<((?:\\x[0-9a-f]{2})*)>, $/;
const MAX_PENDING = 4_096;

/** Reads the tracer's lines one at a time; keeps the first half of a call another process's line interrupted. */
export class TraceParser {
  readonly #pending = new Map<number, string>();
  readonly #decoder = new TextDecoder('utf-8');

  /** The failed call on this line, or undefined (a half line, a signal, something that is not a call). */
  line(text: string): TracedFailure | undefined {
    const match = LINE.exec(text);
    if (!match) return undefined;
    const pid = Number(match[1]);
    let rest = match[2]!;
    if (rest.endsWith(UNFINISHED)) {
      if (this.#pending.size >= MAX_PENDING) this.#pending.clear();
      this.#pending.set(pid, rest.slice(0, -UNFINISHED.length));
      return undefined;
    }
    const resumed = RESUMED.exec(rest);
    if (resumed) {
      const head = this.#pending.get(pid);
      this.#pending.delete(pid);
      if (head === undefined || !head.startsWith(`${resumed[1]}(`)) return undefined;
      rest = head + resumed[2]!;
    }
    return this.#call(rest);
  }

  #call(text: string): TracedFailure | undefined {
    const call = CALL.exec(text);
    if (!call) return undefined;
    const [, syscall, args, errno] = call as unknown as [string, string, string, string];
    if (FORKS.has(syscall)) return { syscall, paths: [], write: false, creates: false, errno };
    const open = OPENS.has(syscall);
    if (!open && !READS.has(syscall) && !WRITES.has(syscall)) return undefined;
    const strings: { value: string; dir: string | undefined }[] = [];
    for (const found of args.matchAll(STRING)) {
      const before = args.slice(Math.max(0, found.index - 20_000), found.index);
      const dir = DESCRIPTOR.exec(before);
      strings.push({ value: this.#decode(found[1]!), dir: dir ? this.#decode(dir[1]!) : undefined });
    }
    const paths: string[] = [];
    for (const index of PATH_ARGS[syscall] ?? [0]) {
      const arg = strings[index];
      if (!arg || arg.value === '') continue;
      if (arg.value.startsWith('/')) paths.push(resolve(arg.value));
      else if (arg.dir?.startsWith('/')) paths.push(resolve(`${arg.dir}/${arg.value}`));
    }
    if (paths.length === 0) return undefined;
    const flags = open ? /O_(?:WRONLY|RDWR|CREAT|TRUNC|APPEND)\b/.test(args) : false;
    return {
      syscall,
      paths,
      write: WRITES.has(syscall) || flags,
      creates: CREATES.has(syscall) || (open && /\bO_CREAT\b/.test(args)),
      errno,
    };
  }

  #decode(hex: string): string {
    const bytes = new Uint8Array(hex.length / 4);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 4 + 2, i * 4 + 4), 16);
    return this.#decoder.decode(bytes);
  }
}

/** `/a/b/../c` → `/a/c`, lexically (as the kernel would, but for symlinks, which the host check follows anyway). */
function resolve(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return normalize('/' + out.join('/'));
}

/** A process or thread the kernel refused to start at the sandbox's process limit (RLIMIT_NPROC; a cgroup counts its own). */
export function isRefusedFork(failure: TracedFailure): boolean {
  return FORKS.has(failure.syscall) && failure.errno === 'EAGAIN';
}

/** Whether the sandbox is why this file call failed, and what to record if it is. */
export function classifyFailure(failure: TracedFailure, facts: DenialFacts): FileDenial | undefined {
  const { errno } = failure;
  const op = failure.write ? 'write' : 'read';
  for (const [index, path] of failure.paths.entries()) {
    if (NEVER.some((root) => isWithin(path, root))) continue;
    const last = index === failure.paths.length - 1;
    if (errno === 'EROFS') {
      if (!failure.write || (failure.paths.length > 1 && !last)) continue;
      return { op: 'write', path, reason: 'wrote where its profile grants no writing' };
    }
    const hidden = facts.hidden.some((h) => isWithin(path, h));
    if (errno === 'EACCES' || errno === 'EPERM') {
      if (hidden) return { op, path, reason: `${op === 'read' ? 'read' : 'wrote'} a path the sandbox hides from every server` };
      continue;
    }
    if (errno !== 'ENOENT' && errno !== 'ENOTDIR') continue;
    if (isWithin(path, MINIMAL_ETC)) continue;
    if (!hidden && facts.visible.some((v) => isWithin(path, v))) continue;
    if (facts.exists(path)) return { op, path, reason: `${op === 'read' ? 'read' : 'wrote'} a path its profile does not grant` };
    if (failure.creates && last && facts.exists(dirname(path))) return { op: 'write', path, reason: 'created a file where its profile does not grant writing' };
  }
  return undefined;
}
