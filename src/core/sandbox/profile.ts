/**
 * From a server's sandbox setting to a plan the launchers carry out, and whether to confine at all.
 *
 * `decideConfinement` answers the policy question (confine, run unconfined and say why, or refuse);
 * `planSandbox` turns a profile into the exact set of paths a confined server sees, with the
 * paths no server may see (Gatehouse's own directories, the session's runtime directory, the
 * agents' sockets) hidden even under a broad grant, and grants inside them refused. Facts about the
 * machine (where the server's code lives, which of those paths exist) come in from the adapter, so
 * everything here is pure and unit-tested.
 */
import {
  DEFAULT_SANDBOX_PROFILE,
  parseDestination,
  type Destination,
  type SandboxProfile,
  type SandboxRequirement,
  type SandboxSetting,
} from '../../common/sandbox.js';
import { byDepth, expandHome, isWithin, normalize } from './posix-path.js';

/** Whether this machine can confine a given profile, and with what. */
export type SandboxSupport = { ok: true; mechanism: 'bubblewrap' | 'sandbox-exec' } | { ok: false; reason: string };

export type ConfinementDecision = { kind: 'confine'; profile: SandboxProfile } | { kind: 'unconfined'; reason: string } | { kind: 'refuse'; reason: string };

/**
 * The policy question. A profile is confined where the machine can; where it cannot, a `required`
 * policy refuses the start and a `preferred` one runs the server unconfined with the reason shown.
 * `"off"` is honoured only where the policy does not require confinement.
 */
export function decideConfinement(setting: SandboxSetting | undefined, requirement: SandboxRequirement, support: SandboxSupport): ConfinementDecision {
  if (setting === 'off') {
    if (requirement === 'required') {
      return {
        kind: 'refuse',
        reason: 'the policy requires confinement (sandbox: "required"), but this server\'s configuration turns it off (sandbox: "off")',
      };
    }
    return { kind: 'unconfined', reason: 'its configuration turns confinement off (sandbox: "off")' };
  }
  if (!support.ok) {
    if (requirement === 'required')
      return { kind: 'refuse', reason: `it cannot be confined on this machine (${support.reason}), and the policy requires confinement` };
    return { kind: 'unconfined', reason: `it cannot be confined on this machine: ${support.reason}` };
  }
  return { kind: 'confine', profile: setting ?? DEFAULT_SANDBOX_PROFILE };
}

/** A path no server may see, and what it is (for the reason a grant inside it is refused). */
export interface NamedPath {
  path: string;
  what: string;
}

export interface PlanInput {
  profile: SandboxProfile;
  /** Where the server's code lives (its package directory, its interpreter's install), found by the adapter. */
  codeRoots: readonly string[];
  /** The server's configured working directory; it is made visible read-only if no grant covers it. */
  cwd?: string;
  home?: string;
  /** Never visible: hidden under any grant, and a grant inside one is refused. */
  protectedPaths: readonly NamedPath[];
  /** Hidden under a broader grant, visible when granted themselves (`~/.ssh` for a git server that needs it). */
  sensitivePaths: readonly NamedPath[];
  /** Directories inside a protected path that may still be granted (the data directory, when it lies inside the configuration directory). */
  exceptions?: readonly string[];
}

export type PlannedNetwork = { mode: 'none' } | { mode: 'host' } | { mode: 'allow'; destinations: Destination[] };

export interface SandboxPlan {
  /** Visible read-only: code roots, `read` grants, the working directory. */
  read: string[];
  /** Visible read-write. */
  write: string[];
  /** Protected or sensitive paths under a grant, covered with something empty. */
  hidden: string[];
  /** The user's home: an empty private directory inside, under which only grants appear. */
  home?: string;
  /** The working directory inside; a private temporary directory when none is configured. */
  cwd: string;
  network: PlannedNetwork;
  limits: { processes: number; memoryBytes: number; openFiles: number };
}

/** Mount points the sandbox manages itself; a grant cannot replace them. */
const MANAGED = ['/proc', '/dev', '/run/gatehouse'];
/** The private temporary directory every confined server gets. */
export const SANDBOX_TMP = '/tmp';

export function planSandbox(input: PlanInput): { ok: true; plan: SandboxPlan } | { ok: false; reason: string } {
  const grants: { path: string; write: boolean; field: string }[] = [];
  for (const [field, list, write] of [
    ['read', input.profile.read, false],
    ['write', input.profile.write, true],
  ] as const) {
    for (const [index, raw] of list.entries()) {
      const where = `sandbox.${field}[${index}] (${raw})`;
      if (!raw.startsWith('/') && raw !== '~' && !raw.startsWith('~/')) return { ok: false, reason: `${where}: not an absolute path` };
      const path = expandHome(raw, input.home);
      if (path === undefined) return { ok: false, reason: `${where}: ~ needs a home directory, and HOME is not set` };
      const refused = refuseGrant(path, input.protectedPaths, input.exceptions ?? []);
      if (refused) return { ok: false, reason: `${where}: ${refused}` };
      grants.push({ path, write, field });
    }
  }
  for (const root of input.codeRoots) {
    const path = normalize(root);
    // Code Gatehouse installed itself (verified catalogue packages) lives in the data directory, an exception like a grant's.
    const inside = protectedContaining(path, input.protectedPaths, input.exceptions ?? []);
    if (inside) return { ok: false, reason: `the server's code at ${path} is inside ${inside.what} (${inside.path}), which no server may see` };
    grants.push({ path, write: false, field: 'code' });
  }

  const write = unique(grants.filter((g) => g.write).map((g) => g.path));
  const read = unique(grants.filter((g) => !g.write && !write.includes(g.path)).map((g) => g.path));
  let cwd = SANDBOX_TMP;
  if (input.cwd !== undefined) {
    cwd = normalize(input.cwd);
    const inside = input.protectedPaths.find((p) => isWithin(cwd, normalize(p.path)));
    if (inside) return { ok: false, reason: `the working directory ${cwd} is inside ${inside.what} (${inside.path}), which no server may see` };
    if (![...read, ...write].some((g) => isWithin(cwd, g))) read.push(cwd);
  }

  const granted = [...read, ...write];
  const hidden: string[] = [];
  for (const p of input.protectedPaths) {
    const path = normalize(p.path);
    if (granted.some((g) => isWithin(path, g))) hidden.push(path);
  }
  for (const p of input.sensitivePaths) {
    const path = normalize(p.path);
    const under = granted.some((g) => isWithin(path, g) && g !== path);
    const grantedItself = granted.some((g) => isWithin(g, path));
    if (under && !grantedItself) hidden.push(path);
  }

  const network = planNetwork(input.profile);
  if (!network.ok) return network;
  const home = input.home !== undefined && input.home.startsWith('/') && normalize(input.home) !== '/' ? normalize(input.home) : undefined;
  return {
    ok: true,
    plan: {
      read: read.sort(byDepth),
      write: write.sort(byDepth),
      hidden: unique(hidden).sort(byDepth),
      ...(home !== undefined ? { home } : {}),
      cwd,
      network: network.network,
      limits: {
        processes: input.profile.limits.processes,
        memoryBytes: input.profile.limits.memoryMb * 1024 * 1024,
        openFiles: input.profile.limits.openFiles,
      },
    },
  };
}

function refuseGrant(path: string, protectedPaths: readonly NamedPath[], exceptions: readonly string[]): string | undefined {
  if (path === '/') return 'the whole file system cannot be granted; grant the directories the server needs';
  const managed = MANAGED.find((m) => isWithin(path, m));
  if (managed) return `${managed} is provided by the sandbox itself and cannot be granted`;
  const inside = protectedContaining(path, protectedPaths, exceptions);
  if (inside) return `it is inside ${inside.what} (${inside.path}), which no server may see`;
  return undefined;
}

/** The protected path a path lies in, unless it lies in one of that path's exceptions (the data directory inside the configuration directory). */
function protectedContaining(path: string, protectedPaths: readonly NamedPath[], exceptions: readonly string[]): NamedPath | undefined {
  const excepted = (p: NamedPath): boolean =>
    exceptions.some((e) => isWithin(path, normalize(e)) && isWithin(normalize(e), normalize(p.path)) && normalize(e) !== normalize(p.path));
  return protectedPaths.find((p) => isWithin(path, normalize(p.path)) && !excepted(p));
}

function planNetwork(profile: SandboxProfile): { ok: true; network: PlannedNetwork } | { ok: false; reason: string } {
  const network = profile.network;
  if (network === 'none') return { ok: true, network: { mode: 'none' } };
  if (network === 'host') return { ok: true, network: { mode: 'host' } };
  const destinations: Destination[] = [];
  for (const [index, text] of network.allow.entries()) {
    const parsed = parseDestination(text);
    if (!parsed.ok) return { ok: false, reason: `sandbox.network.allow[${index}]: ${parsed.reason}` };
    const d = parsed.destination;
    if (!destinations.some((e) => e.host === d.host && e.port === d.port)) destinations.push(d);
  }
  return { ok: true, network: { mode: 'allow', destinations } };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** The system directories every confined server sees read-only (its interpreter and libraries live there). */
export const SYSTEM_ROOTS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * Which of `candidates` (absolute paths a server's arguments or environment name, that exist on the
 * host) the server would not see: neither a grant nor a system directory covers them, or they are
 * hidden. The launcher notes them in the server's log, so that a server failing on "no such file"
 * says which grant is missing.
 */
export function invisiblePaths(candidates: readonly string[], plan: SandboxPlan): string[] {
  const visible = [...plan.read, ...plan.write, ...SYSTEM_ROOTS];
  return unique(candidates.map(normalize).filter((path) => !visible.some((root) => isWithin(path, root)) || plan.hidden.some((h) => isWithin(path, h))));
}
