/** The SANDBOX section of `gatehouse status` (src/cli/sandbox.ts). */
import { describe, expect, it } from 'vitest';
import { describeConfinement, type ConfinementStatus } from '../../src/common/sandbox.js';
import type { DaemonStatus } from '../../src/common/status.js';
import { sandboxLines } from '../../src/cli/sandbox.js';

const limits: ConfinementStatus['limits'] = {
  processes: { max: 256, enforcedBy: 'cgroup' },
  memoryMb: { max: 2048, enforcedBy: 'none' },
  openFiles: { max: 1024, enforcedBy: 'rlimit' },
};
const rows = (confinement: ConfinementStatus): string[][] => {
  const collected: string[][] = [];
  sandboxLines({ servers: [{ name: 'notes', confinement }] } as unknown as DaemonStatus, (_header, r) => {
    collected.push(...r);
    return [];
  });
  return collected;
};

describe('gatehouse status: SANDBOX', () => {
  it('says when refused file calls are audited, and names a limit that is not enforced', () => {
    const [row] = rows({ state: 'confined', mechanism: 'bubblewrap', limits, fileDenials: { audited: true, note: 'strace' } });
    expect(row?.[4]).toBe('processes 256 (cgroup), memory 2048 MiB NOT ENFORCED, files 1024 (rlimit); refused file calls audited');
  });

  it('says plainly when refused file calls are not audited, and why', () => {
    const note = 'strace is not installed, so refused file reads and writes are not audited (on Debian and Ubuntu: apt install strace)';
    const [row] = rows({ state: 'confined', mechanism: 'bubblewrap', limits, fileDenials: { audited: false, note } });
    expect(row?.[4]).toContain(`refused file calls NOT AUDITED: ${note}`);
  });
});

describe('describeConfinement, the console line', () => {
  it('names the mechanism, the network, the writes, an unenforced limit and the audit of file calls', () => {
    const line = describeConfinement({
      state: 'confined',
      mechanism: 'bubblewrap',
      source: 'catalog',
      network: { mode: 'allow', allow: ['api.github.com:443'] },
      write: ['/home/ana/notes'],
      limits,
      fileDenials: { audited: true, note: 'strace' },
    });
    expect(line).toBe(
      'bubblewrap (catalog profile); network only api.github.com:443; writes /home/ana/notes; NOT ENFORCED: memory limit; refused file calls audited',
    );
  });

  it('says a server runs with full rights, or was not started, and why', () => {
    expect(describeConfinement({ state: 'unconfined', reason: 'Windows has no sandbox Gatehouse uses yet' })).toBe(
      'UNCONFINED, with your full rights: Windows has no sandbox Gatehouse uses yet',
    );
    expect(describeConfinement({ state: 'refused', required: true, reason: 'bubblewrap is not installed' })).toBe(
      'not started (required by policy): bubblewrap is not installed',
    );
  });
});
