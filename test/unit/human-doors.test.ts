/**
 * What `gatehouse status` says a process of the user's could still do to the person's answers on
 * this machine (src/node/human/doors.ts), from the kernel's settings and the session. Issue 10.
 */
import { describe, expect, it } from 'vitest';
import { openDoors } from '../../src/node/human/doors.js';

const files = (values: Record<string, string>) => (path: string) => values[path];
const PTRACE = '/proc/sys/kernel/yama/ptrace_scope';
const TIOCSTI = '/proc/sys/dev/tty/legacy_tiocsti';

describe('the doors status reports', () => {
  it('reports none where ptrace is restricted, TIOCSTI is off, and the session is Wayland outside a multiplexer', () => {
    const read = files({ [PTRACE]: '1\n', [TIOCSTI]: '0\n' });
    expect(openDoors({ platform: 'linux', read, env: { WAYLAND_DISPLAY: 'wayland-0', DISPLAY: ':0' }, terminal: true })).toEqual([]);
  });

  it('names ptrace_scope 0, and a kernel without Yama, with the sysctl to set', () => {
    const open = openDoors({ platform: 'linux', read: files({ [PTRACE]: '0', [TIOCSTI]: '0' }), env: {}, terminal: false });
    expect(open).toEqual([expect.objectContaining({ id: 'ptrace', fix: expect.stringContaining('kernel.yama.ptrace_scope=1') })]);
    expect(openDoors({ platform: 'linux', read: files({}), env: {}, terminal: false })[0]!.risk).toMatch(/no Yama module/);
  });

  it('names TIOCSTI, a kernel before 6.2, and tmux or screen only when questions are answered in a terminal', () => {
    const read = files({ [PTRACE]: '1', [TIOCSTI]: '1' });
    expect(openDoors({ platform: 'linux', read, env: { TMUX: '/tmp/tmux-0/default,1,0' }, terminal: true }).map((d) => d.id)).toEqual([
      'tiocsti',
      'multiplexer',
    ]);
    expect(openDoors({ platform: 'linux', read, env: { TMUX: 'x' }, terminal: false })).toEqual([]);
    const old = openDoors({ platform: 'linux', read: files({ [PTRACE]: '1' }), env: { STY: '1.pts-0' }, terminal: true });
    expect(old.map((d) => d.id)).toEqual(['tiocsti', 'multiplexer']);
    expect(old[0]!.risk).toMatch(/before 6\.2/);
    expect(old[1]!.risk).toMatch(/screen/);
  });

  it("names an X11 session, whose clients can read and drive each other's windows", () => {
    const read = files({ [PTRACE]: '1', [TIOCSTI]: '0' });
    expect(openDoors({ platform: 'linux', read, env: { DISPLAY: ':0' }, terminal: false }).map((d) => d.id)).toEqual(['x11']);
  });

  it('reports nothing it cannot read off the platform (macOS, Windows)', () => {
    expect(openDoors({ platform: 'darwin', read: files({}), env: {}, terminal: true })).toEqual([]);
  });
});
