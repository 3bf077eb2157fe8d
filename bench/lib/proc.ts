/**
 * Processes the benchmark starts: each one is tracked by its pid and stopped by the run that
 * started it (SIGTERM, then SIGKILL after a grace period), and measured through /proc (Linux).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync, realpathSync } from 'node:fs';
import { createServer } from 'node:net';

export interface Tracked {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote to stdout and stderr (capped), for error messages. */
  output(): string;
  exited: Promise<void>;
}

const started = new Set<Tracked>();
const MAX_OUTPUT = 64 * 1024;

export function startProcess(name: string, command: string, args: string[], options: SpawnOptions = {}): Tracked {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  let out = '';
  const keep = (chunk: Buffer): void => {
    out += chunk.toString('utf8');
    if (out.length > MAX_OUTPUT) out = out.slice(-MAX_OUTPUT / 2);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const tracked: Tracked = { name, child, pid: child.pid, output: () => out, exited };
  started.add(tracked);
  void exited.then(() => started.delete(tracked));
  return tracked;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(p: Tracked, graceMs = 5_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, graceMs);
  await p.exited;
  clearTimeout(timer);
}

/** Stops every process this run started and that is still running (the last line of defence). */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((p) => stopProcess(p, 3_000)));
}

export function sleep(msValue: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msValue));
}

/** Thrown from a `waitFor` check to stop waiting at once (the process being waited for has died). */
export class FatalError extends Error {}

/** Polls `check` every 25 ms until it returns a truthy value; throws after `timeoutMs`, or at once on a FatalError. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      if (error instanceof FatalError) throw error;
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(25);
  }
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until something accepts HTTP on the port (any status counts). */
export async function waitForHttp(url: string, timeoutMs: number, child?: Tracked): Promise<void> {
  await waitFor(
    `HTTP on ${url}`,
    async () => {
      if (child && (child.child.exitCode !== null || child.child.signalCode !== null)) {
        throw new FatalError(`${child.name} exited early:\n${child.output().slice(-2000)}`);
      }
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 1_000);
      try {
        const response = await fetch(url, { method: 'GET', signal: controller.signal, headers: { accept: 'application/json' } });
        await response.body?.cancel();
        return true;
      } catch (error) {
        if ((error as Error).name === 'AbortError') return true; // An SSE endpoint answered and held the stream open.
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    timeoutMs,
  );
}

// --- /proc -------------------------------------------------------------------------------------

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux on x86-64 and arm64.

/** CPU time (user + system) a process has used so far, in milliseconds; undefined once it is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

export function sumCpuMs(pids: readonly number[]): number {
  return pids.reduce((total, pid) => total + (cpuMs(pid) ?? 0), 0);
}

/** Resident set size in MB (VmRSS), or undefined once the process is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where a process's resident memory is, by kind of mapping (/proc/PID/smaps), in MB. The parts add
 * up to its RSS. Undefined where there is no /proc or the process is gone.
 */
export interface MemoryMap {
  /** Pages of the Node executable itself (V8's and Node's code, the builtins' sources, ICU data): shared with every Node process, counted in each one's RSS. */
  nodeBinaryMb: number;
  /** Other mapped files: shared libraries and native addons (SQLite, the keyring), database files. */
  otherFilesMb: number;
  /** glibc's main heap (`[heap]`): the main thread's malloc (SQLite's page cache, Node's buffers, V8's own allocations). */
  mainHeapMb: number;
  /** Every anonymous mapping: V8's heap and its compiled code, the other threads' malloc arenas, stacks. */
  anonymousMb: number;
}

export function memoryMap(pid: number, nodeBinary = realpathSync(process.execPath)): MemoryMap | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = { nodeBinary: 0, otherFiles: 0, mainHeap: 0, anonymous: 0 };
  let kind: keyof typeof kb = 'anonymous';
  for (const line of text.split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const path = mapping[1]!;
      kind = path === nodeBinary ? 'nodeBinary' : path === '[heap]' ? 'mainHeap' : path.startsWith('/') ? 'otherFiles' : 'anonymous';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[kind] += Number(rss[1]);
  }
  const mb = (value: number) => value / 1024;
  return { nodeBinaryMb: mb(kb.nodeBinary), otherFilesMb: mb(kb.otherFiles), mainHeapMb: mb(kb.mainHeap), anonymousMb: mb(kb.anonymous) };
}

/** Direct children of a process. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // Gone, or no such file on this kernel.
  }
  return out;
}

/** Every descendant of a process (children, their children, ...). */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  for (let guard = 0; queue.length > 0 && guard < 10_000; guard++) {
    const next = queue.shift()!;
    for (const child of childrenOf(next)) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/**
 * Waits until a process and its descendants rest: at most `busyShare` of one CPU over a window of
 * `windowMs`, or `maxMs` have passed. A daemon reports its servers ready before the last of them
 * (and their sandboxes) finish starting; a measurement taken at once measures that start-up, not the
 * request. Resolves with how long it waited and whether the tree came to rest.
 */
export async function settle(
  pid: number,
  options: { windowMs?: number; busyShare?: number; maxMs?: number } = {},
): Promise<{ waitedMs: number; rested: boolean }> {
  const windowMs = options.windowMs ?? 500;
  const busyShare = options.busyShare ?? 0.05;
  const maxMs = options.maxMs ?? 15_000;
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs) {
    const tree = [pid, ...descendantsOf(pid)];
    const before = sumCpuMs(tree);
    await sleep(windowMs);
    if (sumCpuMs(tree) - before <= windowMs * busyShare) return { waitedMs: performance.now() - t0, rested: true };
  }
  return { waitedMs: performance.now() - t0, rested: false };
}
