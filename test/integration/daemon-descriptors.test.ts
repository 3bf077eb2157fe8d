/**
 * A parent that leaves descriptors open (a shell's redirection, a harness's pipe) must not hand
 * them to the servers the daemon starts, confined or not: bubblewrap passes on whatever it gets.
 * `gatehouse daemon` closes what it inherited before it starts anything (src/node/descriptors.ts).
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, spawnGatehouse, type RunningGatehouse } from './support/gatehouse.js';

const CRM = fileURLToPath(new URL('../fixtures/crm-server.mjs', import.meta.url));

describe.runIf(process.platform === 'linux')('descriptors the daemon inherited', () => {
  let dir: string;
  let leaked: string;
  let gh: Awaited<ReturnType<typeof spawnGatehouse>> & RunningGatehouse;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-fds-'));
    leaked = join(dir, 'parent-log.txt');
    gh = await spawnGatehouse({
      // A parent that leaves descriptor 50 open on a file, not close-on-exec, as a shell redirection does.
      // (Node itself marks a few low descriptors close-on-exec at start-up, but not the others.)
      wrap: ['/bin/bash', '-c', 'exec 50>>"$0"; exec "$@"', leaked],
      servers: {
        boxed: { type: 'stdio', command: process.execPath, args: [CRM] },
        plain: { type: 'stdio', command: process.execPath, args: [CRM], sandbox: 'off' },
      },
    });
    await eventually(async () => (await gh.status()).servers.every((s) => s.state === 'ready'), 20_000, 'both servers to be ready');
  }, 60_000);

  afterAll(async () => {
    await gh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('are closed at start, said in the log, and held by no server, confined or not', async () => {
    const daemon = gh.child.pid!;
    const processes = [daemon, ...descendantsOf(daemon)];
    expect(processes.length).toBeGreaterThan(3);
    for (const pid of processes) expect(openFiles(pid), `process ${pid}`).not.toContain(leaked);
    // The daemon did get it (as descriptor 50), and says it closed it.
    const line = gh
      .stderr()
      .split('\n')
      .find((l) => l.includes('daemon.descriptors_closed'));
    expect((JSON.parse(line ?? '{}') as { fds?: number[] }).fds).toContain(50);
  });
});

function openFiles(pid: number): string[] {
  const files: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      files.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // Closed meanwhile.
    }
  }
  return files;
}

function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = [];
  for (let queue = [pid]; queue.length > 0;) {
    const children = parents.get(queue.shift()!) ?? [];
    found.push(...children);
    queue.push(...children);
  }
  return found;
}
