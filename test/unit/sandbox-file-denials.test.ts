/**
 * Reading the sandbox tracer's lines (strace -f -Z -xx -y) and deciding which failed file calls
 * the sandbox caused (src/core/sandbox/file-denials.ts).
 */
import { describe, expect, it } from 'vitest';
import { classifyFailure, isRefusedFork, TraceParser, type DenialFacts, type TracedFailure } from '../../src/core/sandbox/file-denials.js';

/** A string as strace prints it with -xx: every byte as \xHH. */
const hex = (text: string): string => [...new TextEncoder().encode(text)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
const q = (text: string): string => `"${hex(text)}"`;
const cwd = (dir: string): string => `AT_FDCWD<${hex(dir)}>`;
const ENOENT = '-1 ENOENT (No such file or directory)';

function parse(...lines: string[]): (TracedFailure | undefined)[] {
  const parser = new TraceParser();
  return lines.map((line) => parser.line(line));
}

describe('reading the trace', () => {
  it('reads the path, the errno and that an open for reading does not write', () => {
    const [f] = parse(`812  openat(${cwd('/srv')}, ${q('/home/sam/.ssh/id_ed25519')}, O_RDONLY|O_CLOEXEC) = ${ENOENT}`);
    expect(f).toEqual({ syscall: 'openat', paths: ['/home/sam/.ssh/id_ed25519'], write: false, creates: false, errno: 'ENOENT' });
  });

  it('makes a relative path absolute against the directory descriptor strace decoded', () => {
    const [f] = parse(`9 newfstatat(${cwd('/work/app')}, ${q('../secrets/./db.json')}, 0x7ffd, 0) = ${ENOENT}`);
    expect(f?.paths).toEqual(['/work/secrets/db.json']);
  });

  it('leaves out a relative path with no directory to resolve it against', () => {
    expect(parse(`9 access(${q('notes.txt')}, R_OK) = ${ENOENT}`)).toEqual([undefined]);
  });

  it('tells writes and creations from the flags and the call', () => {
    const [open, mkdir, unlink, rename] = parse(
      `1 openat(${cwd('/')}, ${q('/etc/x')}, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = -1 EROFS (Read-only file system)`,
      `1 mkdir(${q('/opt/new')}, 0777) = ${ENOENT}`,
      `1 unlinkat(${cwd('/')}, ${q('/opt/old')}, 0) = ${ENOENT}`,
      `1 renameat2(${cwd('/')}, ${q('/a/from')}, ${cwd('/')}, ${q('/b/to')}, 0) = -1 EROFS (Read-only file system)`,
    );
    expect(open).toMatchObject({ write: true, creates: true, errno: 'EROFS' });
    expect(mkdir).toMatchObject({ write: true, creates: true });
    expect(unlink).toMatchObject({ write: true, creates: false });
    expect(rename?.paths).toEqual(['/a/from', '/b/to']);
  });

  it("takes a symlink's second string as its path, not the link's text", () => {
    const [f] = parse(`1 symlinkat(${q('/home/sam/.ssh')}, ${cwd('/')}, ${q('/opt/link')}) = -1 EROFS (Read-only file system)`);
    expect(f?.paths).toEqual(['/opt/link']);
  });

  it('joins a call another process interrupted, and ignores a resumption it never saw begin', () => {
    const [first, other, resumed, orphan] = parse(
      `7 openat(${cwd('/')}, ${q('/home/sam/.netrc')}, O_RDONLY <unfinished ...>`,
      `8 access(${q('/srv/x')}, R_OK) = ${ENOENT}`,
      `7 <... openat resumed>) = -1 EACCES (Permission denied)`,
      `9 <... openat resumed>) = ${ENOENT}`,
    );
    expect(first).toBeUndefined();
    expect(other?.paths).toEqual(['/srv/x']);
    expect(resumed).toMatchObject({ syscall: 'openat', paths: ['/home/sam/.netrc'], errno: 'EACCES' });
    expect(orphan).toBeUndefined();
  });

  it('cannot be misled by a hostile name: quotes, newlines and fake results stay inside the string', () => {
    const name = '/tmp/a", O_RDONLY) = -1 EROFS (x)\n9 openat("/etc/shadow';
    const [f] = parse(`5 openat(${cwd('/')}, ${q(name)}, O_RDONLY) = ${ENOENT}`);
    expect(f).toMatchObject({ paths: [name], errno: 'ENOENT', write: false });
  });

  it('reads a fork the kernel refused at the process limit, and tells it from other failed forks', () => {
    const [refused, other] = parse(
      '44 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = -1 EAGAIN (Resource temporarily unavailable)',
      '44 clone3({flags=CLONE_VM, exit_signal=0, stack=0x7f, stack_size=0x7ff}, 88) = -1 ENOMEM (Cannot allocate memory)',
    );
    expect(refused).toMatchObject({ syscall: 'clone', paths: [], errno: 'EAGAIN' });
    expect(isRefusedFork(refused!)).toBe(true);
    expect(isRefusedFork(other!)).toBe(false);
    expect(isRefusedFork(parse(`1 openat(${cwd('/')}, ${q('/x')}, O_RDONLY) = -1 EAGAIN (Resource temporarily unavailable)`)[0]!)).toBe(false);
  });

  it('ignores what is not a failed file call: signals, exits, successes, other calls, noise', () => {
    expect(
      parse(
        '5 --- SIGCHLD {si_signo=SIGCHLD} ---',
        '5 +++ exited with 0 +++',
        `5 openat(${cwd('/')}, ${q('/usr/lib/x')}, O_RDONLY) = 3`,
        `5 mount(${q('none')}, ${q('/newroot')}, NULL, MS_SILENT, NULL) = -1 EPERM (Operation not permitted)`,
        'not a trace line',
        '',
      ),
    ).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('deciding whether the sandbox refused it', () => {
  const onHost = new Set(['/home/sam/.ssh/id_ed25519', '/home/sam/.ssh', '/home/sam', '/srv/other', '/srv/other/secret', '/work/proj/.env', '/etc/shadow']);
  const facts: DenialFacts = {
    exists: (path) => onHost.has(path),
    visible: ['/usr', '/work/proj', '/opt/mcp/notes'],
    hidden: ['/work/proj/.env'],
  };
  const failure = (path: string, errno: string, more: Partial<TracedFailure> = {}): TracedFailure => ({
    syscall: 'openat',
    paths: [path],
    write: false,
    creates: false,
    errno,
    ...more,
  });

  it('records a read of a host file outside every grant', () => {
    expect(classifyFailure(failure('/home/sam/.ssh/id_ed25519', 'ENOENT'), facts)).toEqual({
      op: 'read',
      path: '/home/sam/.ssh/id_ed25519',
      reason: 'read a path its profile does not grant',
    });
  });

  it('does not record a path that exists nowhere (a module resolver probing, a typo)', () => {
    expect(classifyFailure(failure('/home/sam/.node_modules', 'ENOENT'), facts)).toBeUndefined();
  });

  it('does not record a missing path under a visible grant: it is missing on the host too', () => {
    expect(classifyFailure(failure('/work/proj/missing.txt', 'ENOENT'), facts)).toBeUndefined();
    expect(classifyFailure(failure('/usr/lib/node/x.node', 'ENOENT'), facts)).toBeUndefined();
  });

  it('records a read of a hidden file under a grant, which the sandbox makes unreadable', () => {
    expect(classifyFailure(failure('/work/proj/.env', 'EACCES'), facts)).toMatchObject({ op: 'read', path: '/work/proj/.env' });
    expect(classifyFailure(failure('/work/proj/other', 'EACCES'), facts)).toBeUndefined();
  });

  it('records a write to a read-only place, and a creation where only the parent exists on the host', () => {
    expect(classifyFailure(failure('/usr/evil', 'EROFS', { write: true, creates: true }), facts)).toMatchObject({ op: 'write', path: '/usr/evil' });
    expect(classifyFailure(failure('/srv/other/pwned', 'ENOENT', { write: true, creates: true }), facts)).toEqual({
      op: 'write',
      path: '/srv/other/pwned',
      reason: 'created a file where its profile does not grant writing',
    });
    expect(classifyFailure(failure('/nowhere/at/all', 'ENOENT', { write: true, creates: true }), facts)).toBeUndefined();
  });

  it("leaves out the sandbox's own trees and bubblewrap's set-up, and the fixed minimal /etc", () => {
    expect(classifyFailure(failure('/proc/1/environ', 'EACCES'), facts)).toBeUndefined();
    expect(classifyFailure(failure('/newroot/usr', 'ENOENT'), facts)).toBeUndefined();
    expect(classifyFailure(failure('/etc/shadow', 'ENOENT'), facts)).toBeUndefined();
  });

  it('does not count a read-only answer to a call that only asks (access with W_OK)', () => {
    expect(classifyFailure(failure('/usr/bin', 'EROFS', { syscall: 'faccessat2' }), facts)).toBeUndefined();
  });
});
