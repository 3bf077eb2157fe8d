/**
 * What the launchers run (issue 15): the bubblewrap command line, the commands inside it, the
 * macOS Seatbelt profile, the relay's listeners, and the folding of what sandboxes saw into audit
 * records. Pure functions, checked argument by argument; test/integration/sandbox-*.test.ts runs
 * them for real.
 */
import { describe, expect, it } from 'vitest';
import { SandboxProfileSchema } from '../../src/common/sandbox.js';
import type { AuditRecord, Clock } from '../../src/core/ports.js';
import { bwrapArgs, innerCommand, joinCgroupsCommand, tracedCommand, type BwrapHost } from '../../src/core/sandbox/bwrap.js';
import { hostsFile, isAllowed, planEgress } from '../../src/core/sandbox/egress.js';
import { SandboxEvents } from '../../src/core/sandbox/events.js';
import { planSandbox, type SandboxPlan } from '../../src/core/sandbox/profile.js';
import { sbplString, seatbeltProfile } from '../../src/core/sandbox/seatbelt.js';
import { loopbackListeningPorts } from '../../src/node/sandbox/linux.js';
import { sessionBusPaths } from '../../src/node/sandbox/launcher.js';
import { isLocalAddress } from '../../src/node/sandbox/egress-proxy.js';

function plan(input: Record<string, unknown>, extra: { cwd?: string } = {}): SandboxPlan {
  const result = planSandbox({
    profile: SandboxProfileSchema.parse(input),
    codeRoots: ['/opt/mcp/notes'],
    home: '/home/sam',
    protectedPaths: [{ path: '/home/sam/.local/state/gatehouse', what: 'state' }],
    sensitivePaths: [{ path: '/home/sam/.ssh', what: '~/.ssh' }],
    ...extra,
  });
  if (!result.ok) throw new Error(result.reason);
  return result.plan;
}

const HOST: BwrapHost = {
  system: [
    { path: '/usr', kind: 'dir' },
    { path: '/bin', kind: 'symlink', target: 'usr/bin' },
  ],
  etc: ['/etc/ssl/certs', '/etc/ld.so.cache'],
  files: [{ host: '/run/gh/sb/0/passwd', inside: '/etc/passwd' }],
  decoys: [{ host: '/run/gh/sb/0/d0.sock', inside: '/run/user/1000/bus' }],
  hidden: [],
  unreadable: '/run/gh/sb/0/unreadable',
  disableUserns: true,
};

/** The value after each occurrence of a flag that takes one (or two) arguments. */
function pairs(args: string[], flag: string, width = 2): string[][] {
  const out: string[][] = [];
  args.forEach((a, i) => {
    if (a === flag) out.push(args.slice(i + 1, i + width + 1));
  });
  return out;
}

describe('bwrapArgs', () => {
  it('unshares every namespace, drops every capability, and forbids new user namespaces for a server without network', () => {
    const args = bwrapArgs(plan({}), HOST, ['/usr/bin/prlimit', '--', 'node', 'server.js']);
    expect(args.slice(0, 7)).toEqual(['--unshare-all', '--unshare-user', '--die-with-parent', '--cap-drop', 'ALL', '--disable-userns', '--ro-bind']);
    expect(args).not.toContain('--share-net');
    expect(args).not.toContain('--cap-add');
    expect(args.slice(args.indexOf('--'))).toEqual(['--', '/usr/bin/prlimit', '--', 'node', 'server.js']);
  });

  it('keeps the host network only for network "host"', () => {
    expect(bwrapArgs(plan({ network: 'host' }), HOST, ['x'])).toContain('--share-net');
  });

  it("gives an allow-listed sandbox's relay uid 0 and the one capability to listen on privileged ports, without disabling user namespaces", () => {
    const args = bwrapArgs(plan({ network: { allow: ['api.github.com:443'] } }), { ...HOST, plumbing: '/run/gh/sb/0/run' }, ['x']);
    expect(args.slice(0, 12)).toEqual([
      '--unshare-all',
      '--unshare-user',
      '--die-with-parent',
      '--uid',
      '0',
      '--gid',
      '0',
      '--cap-drop',
      'ALL',
      '--cap-add',
      'CAP_NET_BIND_SERVICE',
      '--ro-bind',
    ]);
    expect(args).not.toContain('--disable-userns');
    expect(pairs(args, '--ro-bind')).toContainEqual(['/run/gh/sb/0/run', '/run/gatehouse']);
  });

  it('lays out the system read-only, its own /proc, /dev and /tmp, an empty home, then the grants, parents first', () => {
    const args = bwrapArgs(plan({ read: ['~/notes'], write: ['/srv/out', '~/notes/drafts'] }), HOST, ['x']);
    expect(pairs(args, '--symlink')).toEqual([['usr/bin', '/bin']]);
    expect(pairs(args, '--ro-bind-try')).toEqual([
      ['/etc/ld.so.cache', '/etc/ld.so.cache'],
      ['/etc/ssl/certs', '/etc/ssl/certs'],
      ['/home/sam/notes', '/home/sam/notes'],
      ['/opt/mcp/notes', '/opt/mcp/notes'],
    ]);
    expect(pairs(args, '--bind-try')).toEqual([
      ['/srv/out', '/srv/out'],
      ['/home/sam/notes/drafts', '/home/sam/notes/drafts'],
    ]);
    const order = (needle: string[]) => args.findIndex((_, i) => needle.every((n, j) => args[i + j] === n));
    expect(order(['--proc', '/proc'])).toBeGreaterThan(0);
    expect(order(['--dev', '/dev'])).toBeGreaterThan(0);
    expect(order(['--tmpfs', '/home/sam'])).toBeLessThan(order(['--ro-bind-try', '/home/sam/notes']));
    expect(order(['--ro-bind-try', '/home/sam/notes'])).toBeLessThan(order(['--bind-try', '/home/sam/notes/drafts']));
  });

  it('mounts the empty home after a grant of a parent of it, so that the grant does not show the home', () => {
    const args = bwrapArgs(plan({ read: ['/home'] }), HOST, ['x']);
    const at = (a: string, b: string) => args.findIndex((_, i) => args[i] === a && args[i + 1] === b);
    expect(at('--ro-bind-try', '/home')).toBeLessThan(at('--tmpfs', '/home/sam'));
  });

  it('covers hidden paths last, binds the decoy sockets over them, and leaves only grants and /tmp writable', () => {
    const p = plan({ read: ['~'] });
    const args = bwrapArgs(
      p,
      {
        ...HOST,
        hidden: [
          { path: '/home/sam/.ssh', kind: 'dir' },
          { path: '/home/sam/.netrc', kind: 'file' },
        ],
      },
      ['x'],
    );
    const tail = args.slice(args.indexOf('--ro-bind-try', args.indexOf('/opt/mcp/notes') - 2));
    expect(tail).toEqual(expect.arrayContaining(['--tmpfs', '/home/sam/.ssh', '--ro-bind', '/run/gh/sb/0/unreadable', '/home/sam/.netrc']));
    expect(pairs(args, '--ro-bind')).toContainEqual(['/run/gh/sb/0/d0.sock', '/run/user/1000/bus']);
    expect(pairs(args, '--remount-ro', 1)).toEqual([['/']]);
    const plain = bwrapArgs(plan({}), HOST, ['x']);
    expect(pairs(plain, '--remount-ro', 1)).toEqual([['/home/sam'], ['/']]);
  });

  it('leaves a write grant of the home itself writable', () => {
    const args = bwrapArgs(plan({ write: ['~'] }), HOST, ['x']);
    expect(pairs(args, '--bind-try')).toEqual([['/home/sam', '/home/sam']]);
    expect(pairs(args, '--remount-ro', 1)).toEqual([['/']]);
  });

  it('changes into the configured working directory, or the private /tmp', () => {
    expect(pairs(bwrapArgs(plan({}), HOST, ['x']), '--chdir', 1)).toEqual([['/tmp']]);
    expect(pairs(bwrapArgs(plan({}, { cwd: '/srv/app' }), HOST, ['x']), '--chdir', 1)).toEqual([['/srv/app']]);
  });
});

describe('innerCommand', () => {
  it('sets the limits with prlimit, soft and hard alike, then runs the server', () => {
    expect(innerCommand({ openFiles: 1024, processes: 64, dataBytes: 1 << 28 }, { prlimit: '/usr/bin/prlimit' }, ['node', 's.js'])).toEqual([
      '/usr/bin/prlimit',
      '--nofile=1024:1024',
      '--nproc=64:64',
      `--data=${1 << 28}:${1 << 28}`,
      '--',
      'node',
      's.js',
    ]);
  });

  it('leaves out the limits a cgroup holds', () => {
    expect(innerCommand({ openFiles: 256 }, { prlimit: 'prlimit' }, ['s'])).toEqual(['prlimit', '--nofile=256:256', '--', 's']);
  });

  it('starts the relay first in an allow-listed sandbox, which runs the server through setpriv with every capability dropped', () => {
    const relay = { node: '/usr/bin/node', script: '/run/gatehouse/relay.mjs', config: '/run/gatehouse/relay.json', setpriv: '/usr/bin/setpriv' };
    expect(innerCommand({ openFiles: 64 }, { prlimit: 'prlimit', relay }, ['s'])).toEqual([
      '/usr/bin/node',
      '/run/gatehouse/relay.mjs',
      '/run/gatehouse/relay.json',
      '--',
      '/usr/bin/setpriv',
      '--inh-caps=-all',
      '--ambient-caps=-all',
      '--bounding-set=-all',
      '--',
      'prlimit',
      '--nofile=64:64',
      '--',
      's',
    ]);
  });
});

describe('joinCgroupsCommand', () => {
  it('passes the cgroup files as arguments, never inside the script', () => {
    const argv = joinCgroupsCommand('/bin/sh', ['/sys/fs/cgroup/pids/x/cgroup.procs', '/sys/fs/cgroup/memory/x/cgroup.procs'], ['bwrap', '--', 's']);
    expect(argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(argv[2]).not.toContain('/sys/fs/cgroup');
    expect(argv[2]).toContain('unset PWD');
    expect(argv.slice(3)).toEqual(['gatehouse-sandbox', '2', '/sys/fs/cgroup/pids/x/cgroup.procs', '/sys/fs/cgroup/memory/x/cgroup.procs', 'bwrap', '--', 's']);
  });
});

describe('tracedCommand', () => {
  const argv = tracedCommand({ strace: '/usr/bin/strace', setpriv: '/usr/bin/setpriv', shell: '/bin/sh' }, ['bwrap', '--', 's']);

  it('ties the tracer to the daemon, so nothing outlives Gatehouse', () => {
    expect(argv.slice(0, 4)).toEqual(['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--']);
  });

  it('follows every process, stops only at calls that open or change files and at forks, prints only failures with every string as hex, into descriptor 3', () => {
    const trace = argv.slice(4, argv.indexOf('--', 4));
    expect(trace[0]).toBe('/usr/bin/strace');
    expect(trace).toEqual(expect.arrayContaining(['-f', '--seccomp-bpf', '-Z', '-xx', '-y']));
    const [filter, signals] = pairs(trace, '-e', 1);
    // Each call is named with `?`: one this architecture or this strace does not know is skipped, not an error.
    expect(filter?.[0]).toMatch(/^trace=(\?[a-z0-9_]+,)*\?[a-z0-9_]+$/);
    const calls = [filter![0]!.slice('trace='.length).replaceAll('?', '')];
    expect(calls?.[0]?.split(',')).toEqual(expect.arrayContaining(['openat', 'creat', 'mkdirat', 'unlinkat', 'renameat2', 'execve', 'clone', 'clone3']));
    // Not the probes a module resolver makes by the hundred.
    expect(calls?.[0]?.split(',')).not.toEqual(expect.arrayContaining(['statx']));
    expect(calls?.[0]?.split(',').some((c) => /stat|access|readlink/.test(c))).toBe(false);
    expect(signals).toEqual(['signal=none']);
    expect(pairs(trace, '-o', 1)).toEqual([['/proc/self/fd/3']]);
  });

  it('closes descriptor 3 before the sandbox starts, so no server can write into its own trace', () => {
    const shell = argv.slice(argv.indexOf('/bin/sh'));
    expect(shell.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(shell[2]).toMatch(/^exec 3>&-; exec "\$@"$/);
    expect(shell.slice(4)).toEqual(['bwrap', '--', 's']);
  });
});

describe('seatbeltProfile (macOS)', () => {
  it('denies by default, then allows the system, the code, the grants and the private temporary directory', () => {
    const text = seatbeltProfile(plan({ read: ['~/notes'], write: ['/srv/out'] }), { tmp: '/private/var/folders/x/T/gatehouse-sb-1' });
    const lines = text.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['(version 1)', '(deny default)']);
    expect(text).toContain('(allow file-read* (subpath "/home/sam/notes") (subpath "/opt/mcp/notes"))');
    expect(text).toContain('(allow file-read* file-write* (subpath "/srv/out"))');
    expect(text).toContain('(allow file-read* file-write* (subpath "/private/var/folders/x/T/gatehouse-sb-1"))');
    expect(text).not.toContain('network');
  });

  it('puts hidden paths last, since the last matching rule wins', () => {
    const lines = seatbeltProfile(plan({ read: ['~'] }), { tmp: '/t' })
      .trim()
      .split('\n');
    expect(lines.at(-1)).toBe('(deny file-read* file-write* (subpath "/home/sam/.ssh") (subpath "/home/sam/.local/state/gatehouse"))');
  });

  it('allows the network for "host", listed loopback ports, and the proxy for listed names', () => {
    expect(seatbeltProfile(plan({ network: 'host' }), { tmp: '/t' })).toContain('(allow network*)');
    const allow = seatbeltProfile(plan({ network: { allow: ['127.0.0.1:5432', 'api.github.com:443'] } }), { tmp: '/t', proxyPort: 41000 });
    expect(allow).toContain('(allow network-outbound (remote ip "localhost:5432"))');
    expect(allow).toContain('(allow network-outbound (remote ip "localhost:41000"))');
    expect(allow).not.toContain('(allow network*)');
    expect(() => seatbeltProfile(plan({ network: { allow: ['api.github.com:443'] } }), { tmp: '/t' })).toThrow(/proxy port/);
  });

  it('quotes paths so that none can close the string and add a rule', () => {
    expect(sbplString('/a"b\\c')).toBe('"/a\\"b\\\\c"');
    const text = seatbeltProfile(plan({ write: ['/srv/x") (allow default) ("'] }), { tmp: '/t' });
    expect(text).not.toContain('(allow default)"');
    expect(text).toContain('(subpath "/srv/x\\") (allow default) (\\"")');
  });
});

describe('planEgress', () => {
  it('gives each listed name its own loopback address, listens there on each listed port, and names it in /etc/hosts', () => {
    const p = plan({ network: { allow: ['api.github.com:443', 'api.github.com:80', 'uploads.github.com:443', '127.0.0.1:5432'] } });
    const destinations = p.network.mode === 'allow' ? p.network.destinations : [];
    const egress = planEgress(destinations, []);
    expect(egress.hosts).toEqual([
      { address: '127.77.0.1', name: 'api.github.com' },
      { address: '127.77.0.2', name: 'uploads.github.com' },
    ]);
    expect(egress.listeners).toEqual([
      { address: '127.0.0.1', port: 5432, host: '127.0.0.1', destPort: 5432 },
      { address: '127.77.0.1', port: 443, host: 'api.github.com', destPort: 443 },
      { address: '127.77.0.1', port: 80, host: 'api.github.com', destPort: 80 },
      { address: '127.77.0.2', port: 443, host: 'uploads.github.com', destPort: 443 },
    ]);
    expect(hostsFile(egress)).toBe(
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.77.0.1\tapi.github.com\n127.77.0.2\tuploads.github.com\n',
    );
  });

  it("mirrors the host's other loopback ports, so that an attempt on one reaches the proxy and is refused there", () => {
    const egress = planEgress([{ host: '127.0.0.1', port: 5432, kind: 'loopback' }], [22, 5432, 631, 22]);
    expect(egress.listeners.map((l) => `${l.address}:${l.port}`)).toEqual(['127.0.0.1:5432', '127.0.0.1:22', '127.0.0.1:631']);
  });

  it('allows exactly the listed host and port', () => {
    const destinations = [{ host: 'api.github.com', port: 443, kind: 'name' as const }];
    expect(isAllowed(destinations, 'API.GITHUB.COM', 443)).toBe(true);
    expect(isAllowed(destinations, 'api.github.com', 80)).toBe(false);
    expect(isAllowed(destinations, 'evil.github.com', 443)).toBe(false);
  });
});

describe('SandboxEvents', () => {
  function fakeClock(): Clock & { advance(ms: number): void } {
    let now = 0;
    type Timer = { at: number; fn: () => void };
    let timers: Timer[] = [];
    return {
      now: () => now,
      setTimeout: (fn, ms) => {
        const timer: Timer = { at: now + ms, fn };
        timers.push(timer);
        return timer as never;
      },
      clearTimeout: (handle) => {
        timers = timers.filter((t) => (t as unknown) !== handle);
      },
      advance(ms) {
        now += ms;
        const due = timers.filter((t) => t.at <= now);
        timers = timers.filter((t) => t.at > now);
        for (const t of due) t.fn();
      },
    };
  }

  it('records the first attempt at once and folds repeats into one summary when the window ends', () => {
    const clock = fakeClock();
    const records: AuditRecord[] = [];
    const events = new SandboxEvents({ clock, append: (r) => records.push(r), windowMs: 1_000 });
    for (let i = 0; i < 5; i++) events.denied('notes', 'network', '127.0.0.1:22', 'not on the allow-list');
    events.egress('notes', 'api.github.com:443');
    expect(records.map((r) => [r.type, r.detail])).toEqual([
      ['sandbox.denied', { kind: 'network', target: '127.0.0.1:22', count: 1 }],
      ['sandbox.egress', { destination: 'api.github.com:443', count: 1 }],
    ]);
    clock.advance(1_000);
    expect(records[2]).toMatchObject({
      type: 'sandbox.denied',
      server: 'notes',
      reason: 'not on the allow-list',
      detail: { kind: 'network', target: '127.0.0.1:22', count: 4, repeated: true },
    });
    expect(records).toHaveLength(3);
  });

  it('counts a flood of different targets past the per-window cap in one record, dropping none', () => {
    const clock = fakeClock();
    const records: AuditRecord[] = [];
    const events = new SandboxEvents({ clock, append: (r) => records.push(r), maxKeysPerWindow: 3 });
    for (let i = 0; i < 100; i++) events.denied('notes', 'dns', `n${i}.example`, 'looked up a name that is not on the allow-list');
    expect(records).toHaveLength(3);
    events.flush('notes');
    expect(records.at(-1)).toMatchObject({ type: 'sandbox.denied', detail: { target: '(other targets)', count: 97 } });
  });

  it('keeps servers apart', () => {
    const clock = fakeClock();
    const records: AuditRecord[] = [];
    const events = new SandboxEvents({ clock, append: (r) => records.push(r) });
    events.denied('a', 'socket', '/run/x', 'r');
    events.denied('b', 'socket', '/run/x', 'r');
    expect(records.map((r) => r.server)).toEqual(['a', 'b']);
  });
});

describe('host facts', () => {
  it("reads the host's listening loopback ports from /proc/net/tcp and tcp6", () => {
    const tcp = [
      '  sl  local_address rem_address   st',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000',
      '   1: 00000000:0016 00000000:0000 0A 00000000',
      '   2: 0F02000A:01BB 00000000:0000 0A 00000000',
      '   3: 0100007F:9E6E 0100007F:8907 06 00000000',
    ].join('\n');
    const tcp6 = [
      '  sl  local_address                         remote_address                        st',
      '   0: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A',
      '   1: 0000000000000000FFFF00000100007F:2710 00000000000000000000000000000000:0000 0A',
      '   2: 20010DB8000000000000000000000001:0050 00000000000000000000000000000000:0000 0A',
    ].join('\n');
    expect(loopbackListeningPorts(tcp, tcp6)).toEqual([22, 5432, 8080, 10000]);
  });

  it('finds the session bus socket in DBUS_SESSION_BUS_ADDRESS, or in XDG_RUNTIME_DIR', () => {
    expect(sessionBusPaths({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus,guid=abc;unix:abstract=/tmp/x' })).toEqual(['/run/user/1000/bus']);
    expect(sessionBusPaths({ XDG_RUNTIME_DIR: '/run/user/1000' })).toEqual(['/run/user/1000/bus']);
    expect(sessionBusPaths({})).toEqual([]);
  });

  it('calls loopback and unspecified addresses local, whatever their form', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0.0.0.0', '::']) expect(isLocalAddress(a), a).toBe(true);
    for (const a of ['10.0.0.5', '140.82.112.3', '2606:50c0::1']) expect(isLocalAddress(a), a).toBe(false);
  });
});
