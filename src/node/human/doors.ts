/**
 * What a process of the same user can still do to the person's answers, on this machine, beyond
 * what Gatehouse closes: read the daemon's memory (ptrace), type into the daemon's terminal
 * (TIOCSTI, or a multiplexer's send-keys), and read or drive the screen (a multiplexer, X11).
 * `gatehouse status` reports each with what to set. Pure apart from the reader it is given.
 */

export interface Door {
  /** A stable name: `ptrace`, `tiocsti`, `multiplexer`, `x11`. */
  id: string;
  /** What a same-user process can do through it, here and now. */
  risk: string;
  /** What closes it. */
  fix: string;
}

export interface DoorFacts {
  platform: NodeJS.Platform;
  /** Reads a sysctl file; undefined when it does not exist. */
  read(path: string): string | undefined;
  env: NodeJS.ProcessEnv;
  /** Whether questions are answered in the daemon's terminal (headless). */
  terminal: boolean;
}

export function openDoors(facts: DoorFacts): Door[] {
  if (facts.platform !== 'linux') return [];
  const doors: Door[] = [];
  const ptrace = facts.read('/proc/sys/kernel/yama/ptrace_scope')?.trim();
  if (ptrace === undefined || ptrace === '0') {
    doors.push({
      id: 'ptrace',
      risk:
        ptrace === undefined
          ? "the kernel has no Yama module, so any process of yours may read Gatehouse's memory (ptrace), question codes included"
          : "kernel.yama.ptrace_scope is 0, so any process of yours may read Gatehouse's memory (ptrace), question codes included",
      fix: 'set kernel.yama.ptrace_scope=1 (or higher): sysctl -w kernel.yama.ptrace_scope=1, and in /etc/sysctl.d/ to keep it',
    });
  }
  if (facts.terminal) {
    const tiocsti = facts.read('/proc/sys/dev/tty/legacy_tiocsti')?.trim();
    if (tiocsti !== '0') {
      doors.push({
        id: 'tiocsti',
        risk:
          tiocsti === undefined
            ? "this kernel (before 6.2) lets a process that shares the daemon's terminal type into it (TIOCSTI) and so answer its questions"
            : "dev.tty.legacy_tiocsti is 1, so a process that shares the daemon's terminal can type into it (TIOCSTI) and answer its questions",
        fix:
          tiocsti === undefined
            ? "run nothing else in the daemon's terminal, or answer in the desktop app"
            : 'set dev.tty.legacy_tiocsti=0 (sysctl), or answer in the desktop app',
      });
    }
    const multiplexer = facts.env['TMUX'] ? 'tmux' : facts.env['STY'] ? 'screen' : facts.env['ZELLIJ'] ? 'zellij' : undefined;
    if (multiplexer) {
      doors.push({
        id: 'multiplexer',
        risk: `the daemon's terminal is inside ${multiplexer}, whose server lets any process of yours read the screen and type keys (questions' codes and answers)`,
        fix: `run the daemon in a terminal outside ${multiplexer}, or answer in the desktop app`,
      });
    }
  }
  if (facts.env['DISPLAY'] && !facts.env['WAYLAND_DISPLAY']) {
    doors.push({
      id: 'x11',
      risk: 'an X11 session lets any process of yours read other windows and send them synthetic input',
      fix: "use a Wayland session, where clients cannot read or drive each other's windows",
    });
  }
  return doors;
}
