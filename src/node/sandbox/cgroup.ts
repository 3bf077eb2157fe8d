/**
 * Per-sandbox cgroups, where this process may create them: a child of the daemon's own cgroup in
 * each hierarchy that has the `pids` or `memory` controller (cgroup v1), or in the unified
 * hierarchy when the daemon's cgroup delegates those controllers to its children (v2). Never
 * anywhere else, so a sandbox stays inside whatever the daemon itself is accounted under.
 *
 * A cgroup holds a limit for the whole sandbox (every process and thread it starts, whatever their
 * user), and counts the times the limit refused something: `pids.events` (`max`) for forks,
 * `memory.oom_control` or `memory.events` (`oom_kill`) for processes killed at the memory limit.
 * Those counts are what the audit log reports. Root needs this: the kernel exempts root from
 * RLIMIT_NPROC, so without a cgroup a root daemon has no process limit for its servers.
 */
import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../../common/errors.js';

export type CgroupController = 'pids' | 'memory';

/** Where a controller's sandbox groups are made. */
export interface ControllerBase {
  version: 1 | 2;
  /** The daemon's own cgroup directory in that hierarchy. */
  dir: string;
}

export type CgroupSupport = Partial<Record<CgroupController, ControllerBase>> & {
  /** Why a controller is not available, for status. */
  problems: Partial<Record<CgroupController, string>>;
};

const ROOT = '/sys/fs/cgroup';

/** Reads /proc/self/cgroup and checks, by creating and removing a probe group, which controllers this process can use. */
export async function detectCgroups(root = ROOT, procSelfCgroup = '/proc/self/cgroup'): Promise<CgroupSupport> {
  const support: CgroupSupport = { problems: {} };
  let lines: string[];
  try {
    lines = readFileSync(procSelfCgroup, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
  } catch (error) {
    support.problems = { pids: `cannot read ${procSelfCgroup}: ${errorMessage(error)}`, memory: `cannot read ${procSelfCgroup}: ${errorMessage(error)}` };
    return support;
  }
  const unified = existsSync(path.join(root, 'cgroup.controllers'));
  for (const controller of ['pids', 'memory'] as const) {
    const base = unified ? v2Base(root, lines, controller) : v1Base(root, lines, controller);
    if (typeof base === 'string') {
      support.problems[controller] = base;
      continue;
    }
    const probe = path.join(base.dir, `gatehouse-probe-${process.pid}-${controller}`);
    try {
      await mkdir(probe);
      await rmdir(probe);
      support[controller] = base;
    } catch (error) {
      support.problems[controller] = `cannot create a cgroup under ${base.dir} (${(error as NodeJS.ErrnoException).code ?? errorMessage(error)})`;
    }
  }
  return support;
}

function v1Base(root: string, lines: string[], controller: CgroupController): ControllerBase | string {
  for (const line of lines) {
    const [, controllers, own] = line.split(':');
    if (controllers === undefined || own === undefined) continue;
    if (!controllers.split(',').includes(controller)) continue;
    const dir = path.join(root, controller, own);
    if (!existsSync(path.join(dir, 'cgroup.procs'))) return `the ${controller} hierarchy is not mounted at ${path.join(root, controller)}`;
    return { version: 1, dir };
  }
  return `no ${controller} controller in this process's cgroups`;
}

function v2Base(root: string, lines: string[], controller: CgroupController): ControllerBase | string {
  const own = lines.find((l) => l.startsWith('0::'))?.slice(3);
  if (own === undefined) return 'this process is not in the unified cgroup hierarchy';
  const dir = path.join(root, own);
  let delegated: string[];
  try {
    delegated = readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
  } catch (error) {
    return `cannot read ${path.join(dir, 'cgroup.subtree_control')}: ${errorMessage(error)}`;
  }
  if (!delegated.includes(controller)) return `the ${controller} controller is not delegated to the children of ${dir}`;
  return { version: 2, dir };
}

/** One sandbox's cgroups: made before the start, joined by its first process, removed after it exited. */
export class SandboxCgroup {
  /** Counts already reported, so each poll reports only what is new. */
  #seen = { forks: 0, oomKills: 0 };

  private constructor(private readonly groups: Partial<Record<CgroupController, { dir: string; version: 1 | 2 }>>) {}

  /** Makes the groups and writes the limits; a controller that fails is left out (the caller falls back to an rlimit). */
  static async create(support: CgroupSupport, name: string, limits: { processes: number; memoryBytes: number }): Promise<SandboxCgroup> {
    const groups: Partial<Record<CgroupController, { dir: string; version: 1 | 2 }>> = {};
    const made = new Set<string>();
    for (const controller of ['pids', 'memory'] as const) {
      const base = support[controller];
      if (!base) continue;
      const dir = path.join(base.dir, name);
      try {
        if (!made.has(dir)) await mkdir(dir);
        made.add(dir);
        if (controller === 'pids') await writeFile(path.join(dir, 'pids.max'), String(limits.processes));
        else if (base.version === 1) await writeFile(path.join(dir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        else {
          await writeFile(path.join(dir, 'memory.max'), String(limits.memoryBytes));
          await writeFile(path.join(dir, 'memory.swap.max'), '0').catch(() => undefined);
        }
        groups[controller] = { dir, version: base.version };
      } catch {
        // This controller stays unused; the caller sees it missing from `controllers` and uses an rlimit.
      }
    }
    return new SandboxCgroup(groups);
  }

  /** Which limits the cgroups hold. */
  get controllers(): CgroupController[] {
    return (Object.keys(this.groups) as CgroupController[]).filter((c) => this.groups[c] !== undefined);
  }

  /** The `cgroup.procs` files the sandbox's first process writes itself into (one per distinct group). */
  get procsFiles(): string[] {
    return [...new Set(Object.values(this.groups).map((g) => path.join(g.dir, 'cgroup.procs')))];
  }

  /** Forks refused and processes killed at the memory limit since the last call. */
  async newEvents(): Promise<{ forks: number; oomKills: number }> {
    const forks = this.groups.pids ? await counter(path.join(this.groups.pids.dir, 'pids.events'), 'max') : 0;
    const memory = this.groups.memory;
    const oomKills = memory ? await counter(path.join(memory.dir, memory.version === 1 ? 'memory.oom_control' : 'memory.events'), 'oom_kill') : 0;
    const fresh = { forks: Math.max(0, forks - this.#seen.forks), oomKills: Math.max(0, oomKills - this.#seen.oomKills) };
    this.#seen = { forks: Math.max(forks, this.#seen.forks), oomKills: Math.max(oomKills, this.#seen.oomKills) };
    return fresh;
  }

  /** Removes the groups once their processes are gone; the kernel may take a moment to release an emptied group. */
  async remove(): Promise<void> {
    for (const dir of new Set(Object.values(this.groups).map((g) => g.dir))) {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || attempt >= 50) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  }
}

async function counter(file: string, key: string): Promise<number> {
  try {
    const text = await readFile(file, 'utf8');
    const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Groups a daemon that was killed left behind under `base` (named `gatehouse-<pid>-...` for a pid no longer alive). */
export async function removeStaleGroups(support: CgroupSupport): Promise<void> {
  for (const base of new Set([support.pids?.dir, support.memory?.dir].filter((d): d is string => d !== undefined))) {
    let names: string[];
    try {
      names = await readdir(base);
    } catch {
      continue;
    }
    for (const name of names) {
      const match = /^gatehouse-(\d+)-/.exec(name);
      if (!match || isAlive(Number(match[1]))) continue;
      await rmdir(path.join(base, name)).catch(() => undefined);
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
