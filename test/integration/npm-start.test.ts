/**
 * `npm start` where the desktop app cannot run (main/start.ts, headless): the daemon it starts is
 * `gatehouse daemon --ui`, started by the bin script as a person would start it, so it gets the
 * same heap policy and the same hold of V8's optimizing compiler (issue 13; src/node/heap.ts,
 * src/node/optimizing-compiler.ts). Before, it ran the CLI in npm start's own process, and its
 * young generation grew to 32 MB where `gatehouse daemon`'s stops at 8.
 */
import { readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/common/status.js';
import { callControl } from '../../src/node/control/control-client.js';
import { HEAP_NODE_FLAGS, YOUNG_GENERATION_CAP_MB } from '../../src/node/heap.js';
import { BIN, REPO, eventually, makeHome, spawnOnTerminal, type TerminalDaemon } from './support/gatehouse.js';

const START = join(REPO, 'dist', 'main', 'start.js');

const started: { terminal: TerminalDaemon; home: string }[] = [];
afterEach(async () => {
  for (const { terminal, home } of started.splice(0)) {
    await terminal.stop();
    rmSync(home, { recursive: true, force: true });
  }
});

/** Runs `script args` on a terminal with a fresh home (its first start writes the default config), until its daemon is ready. */
async function onTerminal(script: string, args: string[]): Promise<{ terminal: TerminalDaemon; status: () => Promise<DaemonStatus>; daemonPid: number }> {
  const { home, paths, env } = makeHome();
  const terminal = spawnOnTerminal(args, { ...env, GATEHOUSE_HEADLESS: '1' }, paths, script);
  started.push({ terminal, home });
  await eventually(() => terminal.screen().includes('is running'), 30_000, `${script} to start the daemon:\n${terminal.screen()}`);
  const status = async () => (await callControl(paths.controlSocketPath, 'status', {})) as DaemonStatus;
  return { terminal, status, daemonPid: (await status()).pid };
}

/** A process's command line, as the kernel holds it: the executable, its own options, the script and the script's arguments. */
const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
/** The Node binary a process runs, and its arguments after the executable's name. */
const invocation = (pid: number) => ({ node: realpathSync(`/proc/${pid}/exe`), argv: commandLine(pid).slice(1) });
/** The pid of a process's parent (the fourth field of /proc/PID/stat, after the name in parentheses). */
const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);

describe.skipIf(process.platform !== 'linux')('`npm start` headless', () => {
  it('runs its daemon with the same node, options, script and arguments as `gatehouse daemon --ui` typed in a terminal, and its young generation stays capped', async () => {
    const npmStart = await onTerminal(START, []);
    const gatehouseDaemon = await onTerminal(BIN, ['daemon', '--ui']);
    // The bin script run as a command names `node` (found in PATH) and its options on its first line; npm start names this Node.
    expect(invocation(npmStart.daemonPid)).toEqual(invocation(gatehouseDaemon.daemonPid));
    expect(invocation(npmStart.daemonPid)).toEqual({ node: realpathSync(process.execPath), argv: [...HEAP_NODE_FLAGS, BIN, 'daemon', '--ui'] });
    // A process of its own, the child of npm start's.
    expect(commandLine(parentOf(npmStart.daemonPid))).toEqual([process.execPath, START]);
    // What the heap policy does, as each daemon reports it (the CLI run in npm start's process had 32 MB here).
    for (const daemon of [npmStart, gatehouseDaemon]) expect((await daemon.status()).memory?.youngGenerationMb).toBeLessThanOrEqual(YOUNG_GENERATION_CAP_MB);
  });

  // npm runs the script through `sh -c`, and that shell dies of the same Ctrl-C, so npm itself exits with 130 at once while the daemon finishes stopping.
  it("shows the console's one-time link on its terminal, and one Ctrl-C there stops the daemon cleanly and ends the script npm start runs with code 0", async () => {
    const { terminal } = await onTerminal(START, []);
    expect(terminal.screen()).toContain('Starting Gatehouse headless with its console: GATEHOUSE_HEADLESS=1 asks for it.');
    expect(terminal.screen()).toMatch(/open http:\/\/127\.0\.0\.1:\d+\/login and type the sign-in code [A-Z0-9]{4}-[A-Z0-9]{4}/);
    const exited = new Promise<number | null>((resolve) => terminal.child.once('exit', (code) => resolve(code)));
    // The terminal sends SIGINT to its foreground group: npm start's process and the daemon each get one.
    terminal.child.stdin!.write('\x03');
    expect(await exited).toBe(0);
    expect(terminal.screen()).toContain('daemon.stopped');
  });

  it('passes SIGTERM sent to its own process on to the daemon, which stops cleanly', async () => {
    const { terminal, daemonPid } = await onTerminal(START, []);
    const exited = new Promise<number | null>((resolve) => terminal.child.once('exit', (code) => resolve(code)));
    process.kill(parentOf(daemonPid), 'SIGTERM');
    expect(await exited).toBe(0);
    expect(terminal.screen()).toContain('daemon.stopped');
  });

  it('exits with the code and the message of a daemon that cannot start, as `gatehouse daemon --ui` does', async () => {
    const run = async (argv: string[]) => {
      const { home, paths, env } = makeHome();
      try {
        writeFileSync(paths.configFile, '{ "servers": 12 }');
        const child = spawn(process.execPath, argv, { env: { ...env, GATEHOUSE_HEADLESS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
        return {
          code,
          error: stderr
            .replaceAll(home, 'HOME')
            .split('\n')
            .filter((line) => line.includes('servers')),
        };
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    };
    const npmStart = await run([START]);
    const gatehouseDaemon = await run([BIN, 'daemon', '--ui']);
    expect(gatehouseDaemon.code).not.toBe(0);
    expect(gatehouseDaemon.error).not.toEqual([]);
    expect(npmStart).toEqual(gatehouseDaemon);
  });
});
