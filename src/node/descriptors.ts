/**
 * Descriptors the headless daemon inherited from whatever started it (a shell's redirections, a
 * test harness's pipes) and that are not close-on-exec would pass on to every server it spawns,
 * confined ones included: bubblewrap does not close them, so a confined server could write to a
 * pipe or file of the daemon's parent. `gatehouse daemon` closes them before it starts anything.
 *
 * Linux only (it reads /proc/self/fdinfo). Everything Node and libuv open themselves is
 * close-on-exec, so what is not is what came in. The desktop app's core runs in Electron's main
 * process, whose descriptors are Electron's to manage; it does not call this.
 */
import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** Closes every inherited descriptor above stderr that is not close-on-exec; returns their numbers. */
export function closeInheritedDescriptors(platform: NodeJS.Platform = process.platform): number[] {
  if (platform !== 'linux') return [];
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const closed: number[] = [];
  for (const entry of entries) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    let flags: number;
    try {
      const match = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!match) continue;
      flags = parseInt(match[1]!, 8);
    } catch {
      // The directory listing's own descriptor, closed meanwhile.
      continue;
    }
    if (flags & O_CLOEXEC) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // Gone already.
    }
  }
  return closed;
}
