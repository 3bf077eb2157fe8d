/**
 * A server's sandbox profile: what a confined stdio server may read and write, which network it
 * has, and its resource limits. One schema for the user's config (`servers.<name>.sandbox`) and
 * for a signed catalogue entry's launch spec, so a profile means the same wherever it comes from.
 * Profiles carry a `version`; a later format gets a new number and the old one keeps parsing.
 * docs/sandbox.md documents every field; src/core/sandbox turns a profile into a launch plan.
 */
import { z } from 'zod';

/** The profile format this build writes and reads. */
export const SANDBOX_PROFILE_VERSION = 1;

/** Defaults of `limits`: room for a Node server and its helpers, not for a fork bomb or a runaway heap. */
export const DEFAULT_SANDBOX_LIMITS = { processes: 256, memoryMb: 2048, openFiles: 1024 } as const;

/** A destination a server may reach through Gatehouse's egress proxy. */
export interface Destination {
  /** Lower-case host name, or a loopback address (`127.0.0.1`, `::1`). */
  host: string;
  port: number;
  /** `loopback`: an address on this machine's loopback; `name`: a host name the proxy resolves. */
  kind: 'loopback' | 'name';
}

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `api.github.com:443`, `127.0.0.1:8080`, `[::1]:8080`, `localhost:5432` → a destination, or why not. */
export function parseDestination(text: string): { ok: true; destination: Destination } | { ok: false; reason: string } {
  const match = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (!match) return { ok: false, reason: `"${text}" is not host:port (such as api.github.com:443 or 127.0.0.1:8080)` };
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return { ok: false, reason: `"${text}": the port must be 1-65535` };
  const raw = match[1]!.toLowerCase();
  if (raw.startsWith('[')) {
    const inner = raw.slice(1, -1);
    if (inner === '::1') return { ok: true, destination: { host: '::1', port, kind: 'loopback' } };
    return { ok: false, reason: `"${text}": of IPv6 addresses only [::1] can be relayed; name other hosts by their DNS name` };
  }
  const v4 = IPV4.exec(raw);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    if (octets.some((o) => o > 255)) return { ok: false, reason: `"${text}" is not a valid IPv4 address` };
    if (octets[0] === 127) return { ok: true, destination: { host: raw, port, kind: 'loopback' } };
    return { ok: false, reason: `"${text}": of IP addresses only loopback ones (127.x.x.x) can be relayed; name other hosts by their DNS name` };
  }
  if (raw === 'localhost') return { ok: true, destination: { host: '127.0.0.1', port, kind: 'loopback' } };
  if (raw.length > 253 || !raw.split('.').every((label) => HOST_LABEL.test(label)) || /^[\d.]+$/.test(raw)) {
    return { ok: false, reason: `"${text}": "${raw}" is not a valid host name` };
  }
  return { ok: true, destination: { host: raw, port, kind: 'name' } };
}

/** How a destination is written back in status and audit records. */
export function formatDestination(d: Pick<Destination, 'host' | 'port'>): string {
  return d.host.includes(':') ? `[${d.host}]:${d.port}` : `${d.host}:${d.port}`;
}

const destination = z
  .string()
  .max(300)
  .superRefine((text, ctx) => {
    const parsed = parseDestination(text);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
  });

/**
 * An absolute path, or one under the user's home (`~/notes`). In a config file `${dataDir}` and
 * `${configDir}` are expanded before this check; a signed catalogue's launch spec is checked first
 * and expanded on the desktop, so `${dataDir}/...` passes as written. No `..` segments: a grant
 * says exactly which directory it opens.
 */
const sandboxPath = z
  .string()
  .min(1)
  .max(4096)
  .superRefine((text, ctx) => {
    if (!(text.startsWith('/') || text === '~' || text.startsWith('~/') || text === '${dataDir}' || text.startsWith('${dataDir}/'))) {
      ctx.addIssue({ code: 'custom', message: `"${text}" must be an absolute path, or start with ~/ for your home directory` });
    } else if (text.split('/').some((part) => part === '..')) {
      ctx.addIssue({ code: 'custom', message: `"${text}" must not contain ".." segments` });
    } else if (/[\0\n]/.test(text)) {
      ctx.addIssue({ code: 'custom', message: 'a path must not contain NUL or newline characters' });
    }
  });

/**
 * `none`: the server's own loopback only, nothing outside the sandbox. `host`: the machine's
 * network, unconfined. `{ allow: [...] }`: only these destinations, each through Gatehouse's
 * egress proxy, which checks and audits every connection.
 */
export const SandboxNetworkSchema = z.union([z.literal('none'), z.literal('host'), z.object({ allow: z.array(destination).min(1).max(64) }).strict()], {
  error: 'network is "none", "host", or { "allow": ["host:port", ...] }',
});
export type SandboxNetwork = z.infer<typeof SandboxNetworkSchema>;

export const SandboxLimitsSchema = z
  .object({
    /** Processes and threads (the kernel counts tasks) the server and everything it starts may have at once. */
    processes: z.number().int().min(16).max(65_536).default(DEFAULT_SANDBOX_LIMITS.processes),
    /** Memory in MiB: the whole sandbox's where a cgroup is available, each process's data segment otherwise. */
    memoryMb: z.number().int().min(64).max(1_048_576).default(DEFAULT_SANDBOX_LIMITS.memoryMb),
    /** Open files per process. */
    openFiles: z.number().int().min(64).max(1_048_576).default(DEFAULT_SANDBOX_LIMITS.openFiles),
  })
  .strict();
export type SandboxLimits = z.infer<typeof SandboxLimitsSchema>;

export const SandboxProfileSchema = z
  .object({
    version: z
      .literal(SANDBOX_PROFILE_VERSION, { error: `version must be ${SANDBOX_PROFILE_VERSION}, the profile format this Gatehouse reads` })
      .default(SANDBOX_PROFILE_VERSION),
    /** Paths the server may read (and run code from). Its own package directory is added without being listed. */
    read: z.array(sandboxPath).max(256).default([]),
    /** Paths the server may read and write. A missing directory is created (mode 0700) before the start. */
    write: z.array(sandboxPath).max(256).default([]),
    network: SandboxNetworkSchema.default('none'),
    limits: SandboxLimitsSchema.default(SandboxLimitsSchema.parse({})),
  })
  .strict();
export type SandboxProfile = z.infer<typeof SandboxProfileSchema>;

/** A server's `sandbox` field: a profile, or `"off"` to run it unconfined (refused where the policy requires confinement). */
export const SandboxSettingSchema = z.union([SandboxProfileSchema, z.literal('off')], {
  // An object that is not a valid profile: say what is wrong inside it, not only that it is neither form.
  error: (issue) => {
    const first = (issue as { errors?: { path: PropertyKey[]; message: string }[][] }).errors?.[0]?.[0];
    if (typeof issue.input === 'object' && issue.input !== null && first) return `${first.path.map(String).join('.') || 'the profile'}: ${first.message}`;
    return 'sandbox is "off" or a profile: { "read": [...], "write": [...], "network": ..., "limits": {...} } (docs/sandbox.md)';
  },
});
export type SandboxSetting = z.infer<typeof SandboxSettingSchema>;

/** The profile a server without a `sandbox` field gets: its code, a private temporary directory, no network. */
export const DEFAULT_SANDBOX_PROFILE: SandboxProfile = SandboxProfileSchema.parse({});

/**
 * Whether a policy bundle demands confinement. `required`: a server that cannot be confined on
 * this machine does not start. `preferred` (the default): it starts unconfined, and status says why.
 */
export const SANDBOX_REQUIREMENTS = ['required', 'preferred'] as const;
export type SandboxRequirement = (typeof SANDBOX_REQUIREMENTS)[number];

// ---------------------------------------------------------------------------------------------
// What status reports (`gatehouse status`, the console)

/** How a limit is held: a cgroup of the sandbox, a per-process rlimit, or not at all on this machine. */
export type LimitMechanism = 'cgroup' | 'rlimit' | 'none';

export interface LimitStatus {
  max: number;
  enforcedBy: LimitMechanism;
  /** What the mechanism means here ("per process", "not available: ..."). */
  note?: string;
}

/** How a sandbox's refused file reads and writes reach the audit log (the tracer on Linux), or why they do not. */
export interface FileDenialStatus {
  audited: boolean;
  note: string;
}

export interface ConfinementStatus {
  /** `confined`: under the OS sandbox; `unconfined`: with the user's full rights; `refused`: not started, because the policy requires confinement. */
  state: 'confined' | 'unconfined' | 'refused';
  mechanism?: 'bubblewrap' | 'sandbox-exec';
  /** Why the server runs unconfined or was refused. */
  reason?: string;
  /** Where the profile came from: the server's config, the signed catalogue, or the documented default. */
  source?: 'config' | 'catalog' | 'default';
  /** The policy in force requires confinement. */
  required?: boolean;
  read?: string[];
  write?: string[];
  network?: { mode: 'none' | 'host' | 'allow'; allow?: string[] };
  limits?: { processes: LimitStatus; memoryMb: LimitStatus; openFiles: LimitStatus };
  fileDenials?: FileDenialStatus;
}

/**
 * One line that says how a server is confined, for people: the console's server page. The CLI's
 * SANDBOX table (src/cli/sandbox.ts) shows the same facts in columns.
 */
export function describeConfinement(c: ConfinementStatus): string {
  const required = c.required ? ' (required by policy)' : '';
  if (c.state === 'refused') return `not started${required}: ${c.reason ?? 'confinement cannot be had here'}`;
  if (c.state === 'unconfined') return `UNCONFINED, with your full rights${required}: ${c.reason ?? 'no sandbox here'}`;
  const network = c.network?.mode === 'allow' ? `only ${(c.network.allow ?? []).join(', ')}` : c.network?.mode === 'host' ? "the machine's" : 'none';
  const writes = c.write && c.write.length > 0 ? c.write.join(', ') : 'nothing';
  const parts = [`${c.mechanism ?? 'confined'}${c.source ? ` (${c.source} profile)` : ''}${required}`, `network ${network}`, `writes ${writes}`];
  if (c.limits) {
    const unenforced = (['processes', 'memoryMb', 'openFiles'] as const).filter((k) => c.limits![k].enforcedBy === 'none');
    if (unenforced.length > 0)
      parts.push(`NOT ENFORCED: ${unenforced.map((k) => (k === 'memoryMb' ? 'memory' : k === 'openFiles' ? 'open files' : k)).join(', ')} limit`);
  }
  if (c.fileDenials) parts.push(c.fileDenials.audited ? 'refused file calls audited' : `refused file calls NOT audited: ${c.fileDenials.note}`);
  return parts.join('; ');
}
