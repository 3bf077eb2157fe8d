/**
 * How each stdio server is started: confined with its profile (bubblewrap on Linux, sandbox-exec
 * on macOS), unconfined with the reason shown where this machine cannot confine it, or not at all
 * where the policy requires confinement and it cannot be had. The connector asks `prepare` before
 * every spawn; status asks `describe` for servers that are not running.
 *
 * What no server may see is decided here from the daemon's own paths and environment: Gatehouse's
 * directories and sockets, the session's runtime directory (session bus, agents), the agents'
 * sockets, and, under a broader grant, the credentials and keyrings in the home directory.
 */
import { accessSync, constants, existsSync, lstatSync, statSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { StdioServerConfig } from '../../common/config.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import {
  DEFAULT_SANDBOX_PROFILE,
  formatDestination,
  type ConfinementStatus,
  type FileDenialStatus,
  type SandboxProfile,
  type SandboxRequirement,
} from '../../common/sandbox.js';
import type { AuditRecord, Logger } from '../../core/ports.js';
import type { SandboxEvents } from '../../core/sandbox/events.js';
import { decideConfinement, invisiblePaths, planSandbox, type NamedPath, type SandboxPlan, type SandboxSupport } from '../../core/sandbox/profile.js';
import { ensureUserOnlyDir, entryExists, maxSocketPathBytes, type GatehousePaths } from '../paths.js';
import { packageRoot } from '../version.js';
import { findCodeRoots } from './code-roots.js';
import { prepareDarwinLaunch, probeDarwin } from './darwin.js';
import { prepareLinuxLaunch, probeLinux, type LinuxHost } from './linux.js';

/** What the connector starts instead of the configured command. */
export interface SandboxedLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  confinement: ConfinementStatus;
  /** Lines for the server's log (what it cannot see, why it runs unconfined). */
  notes: string[];
  /** Give the process this descriptor as its descriptor 3: the writing end of the pipe the sandbox's tracer reports into. */
  traceFd?: number;
  /** The process is running. */
  started(pid: number | undefined): void;
  /** The process has exited (or never started): close the proxy, read the last counters, remove the sandbox's files. */
  release(): Promise<void>;
}

/** The connector's view of the sandbox (src/node/upstream/connector.ts). */
export interface UpstreamSandbox {
  /** Throws, with the reason, when the server must not start. */
  prepare(name: string, config: StdioServerConfig, env: Record<string, string>): Promise<SandboxedLaunch>;
}

export interface SandboxLauncherOptions {
  paths: GatehousePaths;
  /** The daemon's environment: HOME, XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS, SSH_AUTH_SOCK. */
  env: NodeJS.ProcessEnv;
  /** The policy in force: does it require confinement? */
  requirement(): SandboxRequirement;
  /** Whether the server's configuration came from the signed catalogue. */
  fromCatalog(): boolean;
  events: SandboxEvents;
  record(entry: AuditRecord): void;
  logger: Logger;
  platform?: NodeJS.Platform;
  /** How often a running sandbox's cgroup counters are read (default 2 s). */
  pollMs?: number;
  /** Tests: the host as probed (to pretend bubblewrap is missing). */
  linuxHost?: Promise<LinuxHost>;
}

/** sandbox-exec refuses file access itself; its refusals go to the system log, which Gatehouse does not read yet. */
const DARWIN_FILE_DENIALS: FileDenialStatus = {
  audited: false,
  note: 'sandbox-exec refuses them; they appear in the macOS system log (log show --predicate \'sender == "Sandbox"\'), not in the audit',
};

/** Credentials and keyrings in the home directory: hidden under a broader grant, unless granted themselves. */
const SENSITIVE_IN_HOME = [
  '.ssh',
  '.gnupg',
  '.aws',
  '.azure',
  '.kube',
  '.docker',
  '.config/gcloud',
  '.config/gh',
  '.netrc',
  '.npmrc',
  '.pypirc',
  '.git-credentials',
  '.password-store',
  '.local/share/keyrings',
  '.mozilla',
  '.config/google-chrome',
  '.config/chromium',
];

export class SandboxLauncher implements UpstreamSandbox {
  readonly #platform: NodeJS.Platform;
  readonly #linux: Promise<LinuxHost> | undefined;
  readonly #last = new Map<string, ConfinementStatus>();
  #linuxNow: LinuxHost | undefined;
  #base: Promise<string> | undefined;
  #seq = 0;

  constructor(private readonly options: SandboxLauncherOptions) {
    this.#platform = options.platform ?? process.platform;
    this.#linux = this.#platform === 'linux' ? (options.linuxHost ?? probeLinux(options.env)) : undefined;
    this.#linux?.then(
      (host) => {
        this.#linuxNow = host;
        if (host.problem) options.logger.log('warn', 'sandbox.unavailable', { reason: host.problem });
        else
          options.logger.log('info', 'sandbox.available', {
            bwrap: host.bwrap,
            disableUserns: host.disableUserns,
            cgroups: Object.keys(host.cgroups).filter((k) => k !== 'problems'),
          });
      },
      () => undefined,
    );
  }

  /** The confinement a server has, or would have: its last start, or what a start now would decide. */
  describe(name: string, config: StdioServerConfig): ConfinementStatus {
    const last = this.#last.get(name);
    if (last) return last;
    const required = this.options.requirement() === 'required';
    const support = this.#supportNow(config.sandbox === 'off' ? undefined : config.sandbox);
    const decision = support ? decideConfinement(config.sandbox, required ? 'required' : 'preferred', support) : undefined;
    if (decision && decision.kind !== 'confine')
      return { state: decision.kind === 'refuse' ? 'refused' : 'unconfined', reason: decision.reason, ...(required ? { required } : {}) };
    const mechanism = support?.ok ? { mechanism: support.mechanism } : {};
    return { ...this.#summary(config.sandbox === 'off' ? undefined : config.sandbox, config), ...mechanism, ...(required ? { required } : {}) };
  }

  async prepare(name: string, config: StdioServerConfig, env: Record<string, string>): Promise<SandboxedLaunch> {
    const requirement = this.options.requirement();
    const support = await this.#support(config.sandbox === 'off' ? undefined : config.sandbox);
    const decision = decideConfinement(config.sandbox, requirement, support);
    const required = requirement === 'required';
    if (decision.kind === 'refuse') return this.#refuse(name, decision.reason, required);
    if (decision.kind === 'unconfined') {
      const confinement: ConfinementStatus = { state: 'unconfined', reason: decision.reason, ...(required ? { required } : {}) };
      this.#last.set(name, confinement);
      this.options.record({ type: 'sandbox.unconfined', at: new Date().toISOString(), server: name, reason: decision.reason });
      return {
        command: config.command,
        args: config.args,
        env,
        ...(config.cwd !== undefined ? { cwd: config.cwd } : {}),
        confinement,
        notes: [`runs unconfined: ${decision.reason}`],
        started: () => undefined,
        release: async () => undefined,
      };
    }

    // Inside the sandbox a missing program is bubblewrap's exit 127; say what is missing, as an unconfined start would.
    if (!commandExists(config.command, env['PATH'], config.cwd)) throw new Error(`spawn ${config.command} ENOENT: no such program (on the server's PATH)`);
    // The folders a server is told are its roots (`roots`, answered on roots/list) are folders it works in: granted read-write.
    const roots = (config.roots ?? []).filter((root) => !decision.profile.write.includes(root));
    const profile = roots.length > 0 ? { ...decision.profile, write: [...decision.profile.write, ...roots] } : decision.profile;
    const home = this.options.env['HOME'];
    const cwd = config.cwd !== undefined ? resolve(config.cwd) : undefined;
    const allow = profile.network !== 'none' && profile.network !== 'host';
    const codeRoots = findCodeRoots({
      command: config.command,
      args: config.args,
      pathVariable: env['PATH'],
      ...(cwd ? { cwd } : {}),
      ...(home ? { home } : {}),
    });
    if (allow) codeRoots.push(...findCodeRoots({ command: process.execPath, args: [], ...(home ? { home } : {}) }));
    const planned = planSandbox({
      profile,
      codeRoots,
      ...(cwd ? { cwd } : {}),
      ...(home ? { home } : {}),
      protectedPaths: this.#protectedPaths(),
      sensitivePaths: home ? SENSITIVE_IN_HOME.map((p) => ({ path: join(home, p), what: `~/${p}` })) : [],
      exceptions: [this.options.paths.dataDir],
    });
    // A profile that grants what no server may see is refused whatever the policy: it would not confine.
    if (!planned.ok) return this.#refuse(name, planned.reason, required);
    const plan = planned.plan;
    for (const dir of plan.write) await createMissingDir(dir);

    const notes: string[] = [];
    const hidden = invisiblePaths(pathsNamedIn(config, env), plan);
    for (const path of hidden) notes.push(`sandbox: ${path} is not visible to this server; grant it in sandbox.read or sandbox.write if it needs it`);
    const status = (limits: ConfinementStatus['limits'], mechanism: 'bubblewrap' | 'sandbox-exec', fileDenials: FileDenialStatus): ConfinementStatus => ({
      ...this.#summary(profile, config, plan),
      state: 'confined',
      mechanism,
      ...(required ? { required } : {}),
      ...(limits ? { limits } : {}),
      fileDenials,
    });
    const argv = [config.command, ...config.args];

    if (this.#platform === 'darwin') {
      const launch = await prepareDarwinLaunch({ server: name, plan, argv, events: this.options.events });
      const confinement = status(launch.limits, 'sandbox-exec', DARWIN_FILE_DENIALS);
      this.#last.set(name, confinement);
      return {
        command: launch.argv[0]!,
        args: launch.argv.slice(1),
        env: { ...env, ...launch.env },
        cwd: launch.cwd,
        confinement,
        notes,
        started: () => undefined,
        release: () => launch.release(),
      };
    }

    const host = await this.#linux!;
    const dir = await this.#sandboxDir();
    let launch;
    try {
      launch = await prepareLinuxLaunch({
        host,
        server: name,
        plan,
        argv,
        dir,
        decoys: this.#decoys(),
        ...(allow ? { relay: { node: process.execPath, script: join(packageRoot(), 'dist', 'src', 'node', 'sandbox', 'relay.js') } } : {}),
        events: this.options.events,
        userName: this.options.env['USER'] ?? 'user',
        pollMs: this.options.pollMs ?? 2_000,
        groupName: `gatehouse-${process.pid}-${name}-${this.#seq}`,
      });
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    const confinement = status(launch.limits, 'bubblewrap', launch.fileDenials);
    this.#last.set(name, confinement);
    const childEnv = { ...env };
    if (childEnv['TMPDIR'] !== undefined) childEnv['TMPDIR'] = '/tmp';
    return {
      command: launch.argv[0]!,
      args: launch.argv.slice(1),
      env: childEnv,
      confinement,
      notes,
      ...(launch.traceFd !== undefined ? { traceFd: launch.traceFd } : {}),
      started: (pid) => launch.started(pid),
      release: () => launch.release(),
    };
  }

  async #support(profile: SandboxProfile | undefined): Promise<SandboxSupport> {
    if (this.#platform === 'linux' && this.#linux) {
      try {
        this.#linuxNow = await this.#linux;
      } catch (error) {
        return { ok: false, reason: `probing bubblewrap failed: ${errorMessage(error)}` };
      }
    }
    return this.#supportNow(profile)!;
  }

  /** What `#support` says, without waiting: undefined while bubblewrap is still being probed. */
  #supportNow(profile: SandboxProfile | undefined): SandboxSupport | undefined {
    if (this.#platform === 'win32') return { ok: false, reason: 'Windows has no sandbox Gatehouse uses yet: servers run with your full rights' };
    if (this.#platform === 'darwin') {
      const probe = probeDarwin();
      return probe.problem ? { ok: false, reason: probe.problem } : { ok: true, mechanism: 'sandbox-exec' };
    }
    if (this.#platform !== 'linux' || !this.#linux) return { ok: false, reason: `no sandbox is available on ${this.#platform}` };
    const host = this.#linuxNow;
    if (!host) return undefined;
    if (host.problem) return { ok: false, reason: host.problem };
    const allow = profile !== undefined && profile.network !== 'none' && profile.network !== 'host';
    if (allow && !host.setpriv) return { ok: false, reason: 'an allow-listed network needs setpriv (util-linux), which is not installed' };
    if (allow && !existsSync(join(packageRoot(), 'dist', 'src', 'node', 'sandbox', 'relay.js'))) {
      return { ok: false, reason: 'an allow-listed network needs the sandbox relay, which is not built (npm run build)' };
    }
    return { ok: true, mechanism: 'bubblewrap' };
  }

  #refuse(name: string, reason: string, required: boolean): never {
    // The supervisor retries a failed start with backoff: one record per refusal, not one per retry.
    const previous = this.#last.get(name);
    if (previous?.state !== 'refused' || previous.reason !== reason) {
      this.options.record({ type: 'sandbox.refused', at: new Date().toISOString(), server: name, reason });
    }
    this.#last.set(name, { state: 'refused', reason, ...(required ? { required } : {}) });
    throw new GatehouseError('sandbox_refused', `not started: ${reason}`);
  }

  #summary(profile: SandboxProfile | undefined, config: StdioServerConfig, plan?: SandboxPlan): ConfinementStatus {
    const p = profile ?? DEFAULT_SANDBOX_PROFILE;
    const network = p.network === 'none' || p.network === 'host' ? { mode: p.network } : { mode: 'allow' as const, allow: p.network.allow };
    return {
      state: 'confined',
      source: config.sandbox === undefined ? 'default' : this.options.fromCatalog() ? 'catalog' : 'config',
      read: plan ? plan.read : p.read,
      write: plan ? plan.write : p.write,
      network: plan?.network.mode === 'allow' ? { mode: 'allow', allow: plan.network.destinations.map(formatDestination) } : network,
    };
  }

  #protectedPaths(): NamedPath[] {
    const { paths, env } = this.options;
    const list: NamedPath[] = [
      { path: paths.configDir, what: "Gatehouse's configuration directory" },
      { path: paths.stateDir, what: "Gatehouse's state directory (audit log, credentials)" },
      { path: paths.logDir, what: "Gatehouse's server logs" },
      { path: paths.runtimeDir, what: "Gatehouse's sockets" },
    ];
    const runtime = env['XDG_RUNTIME_DIR'];
    if (runtime && runtime.startsWith('/')) list.push({ path: runtime, what: "the session's runtime directory (session bus, agents)" });
    for (const decoy of this.#decoys()) list.push({ path: decoy.path, what: decoy.what });
    return list;
  }

  /** Sockets that exist on this machine and that a server must not reach: a decoy stands in each one's place. */
  #decoys(): { path: string; what: string }[] {
    const { paths, env } = this.options;
    const candidates: { path: string; what: string }[] = [
      { path: paths.socketPath, what: "Gatehouse's MCP socket" },
      { path: paths.controlSocketPath, what: "Gatehouse's control socket" },
    ];
    for (const bus of sessionBusPaths(env)) candidates.push({ path: bus, what: 'the D-Bus session bus' });
    if (env['SSH_AUTH_SOCK']?.startsWith('/')) candidates.push({ path: env['SSH_AUTH_SOCK'], what: 'the SSH agent' });
    const runtime = env['XDG_RUNTIME_DIR'];
    if (runtime?.startsWith('/')) candidates.push({ path: join(runtime, 'gnupg', 'S.gpg-agent'), what: 'the GPG agent' });
    if (env['HOME']?.startsWith('/')) candidates.push({ path: join(env['HOME'], '.gnupg', 'S.gpg-agent'), what: 'the GPG agent' });
    const seen = new Set<string>();
    return candidates.filter((c) => {
      if (seen.has(c.path) || !isSocket(c.path)) return false;
      seen.add(c.path);
      return true;
    });
  }

  /** Removes what the sandboxes left in the runtime directory (the daemon stops; every server has exited). */
  async close(): Promise<void> {
    if (this.#base) await rm(await this.#base, { recursive: true, force: true }).catch(() => undefined);
  }

  /** A fresh directory for one sandbox's files and sockets, short enough for unix socket paths. */
  async #sandboxDir(): Promise<string> {
    this.#base ??= (async () => {
      const runtime = this.options.paths.runtimeDir;
      const inRuntime = join(runtime, 'sb');
      const longest = join(inRuntime, 'zzzzzz', 'run', 'e.sock');
      const base =
        Buffer.byteLength(longest) <= maxSocketPathBytes(this.#platform)
          ? inRuntime
          : `/tmp/gatehouse-sb-${process.getuid?.() ?? 'user'}-${createHash('sha256').update(runtime).digest('hex').slice(0, 8)}`;
      // The daemon lock makes this daemon the only user of its runtime directory: what is here was left by one that died.
      await rm(base, { recursive: true, force: true });
      await ensureUserOnlyDir(base);
      return base;
    })();
    const base = await this.#base;
    const dir = join(base, (this.#seq++).toString(36));
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }
}

/** `unix:path=/run/user/1000/bus,guid=...;unix:abstract=...` → the paths; `$XDG_RUNTIME_DIR/bus` when unset. */
export function sessionBusPaths(env: NodeJS.ProcessEnv): string[] {
  const address = env['DBUS_SESSION_BUS_ADDRESS'];
  if (address === undefined || address === '') return env['XDG_RUNTIME_DIR']?.startsWith('/') ? [join(env['XDG_RUNTIME_DIR'], 'bus')] : [];
  const paths: string[] = [];
  for (const part of address.split(';')) {
    const match = /^unix:(?:.*,)?path=([^,]+)/.exec(part);
    if (match) paths.push(decodeURIComponent(match[1]!));
  }
  return paths;
}

/** Absolute paths the server's arguments and environment name, that exist on the host (or whose directory does). */
function pathsNamedIn(config: StdioServerConfig, env: Record<string, string>): string[] {
  const values = [
    ...config.args.slice(1),
    ...Object.entries(env)
      .filter(([k]) => !['PATH', 'HOME', 'TMPDIR', 'XDG_RUNTIME_DIR', 'SHELL'].includes(k))
      .map(([, v]) => v),
  ];
  const found: string[] = [];
  for (const value of values) {
    if (!value.startsWith('/') || value.includes('\n') || value.length > 4096) continue;
    if (entryExists(value)) found.push(value);
    else {
      const parent = value.slice(0, value.lastIndexOf('/')) || '/';
      if (parent !== '/' && entryExists(parent)) found.push(parent);
    }
  }
  return found;
}

async function createMissingDir(dir: string): Promise<void> {
  try {
    await stat(dir);
  } catch {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Whether `command` names an executable file: as a path, or found on `pathVariable`. */
function commandExists(command: string, pathVariable: string | undefined, cwd: string | undefined): boolean {
  const executable = (file: string): boolean => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes('/')) return executable(resolve(cwd ?? '.', command));
  return (pathVariable ?? '').split(':').some((dir) => dir !== '' && executable(join(dir, command)));
}
