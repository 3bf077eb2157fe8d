/**
 * The sandbox profile (issue 15): its schema, the confine-or-refuse decision, and the plan of what
 * a confined server sees. All pure; the launch itself is in test/integration/sandbox-*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { StdioServerSchema, parseConfig } from '../../src/common/config.js';
import {
  DEFAULT_SANDBOX_PROFILE,
  SandboxProfileSchema,
  SandboxSettingSchema,
  formatDestination,
  parseDestination,
  type SandboxProfile,
} from '../../src/common/sandbox.js';
import { decideConfinement, invisiblePaths, planSandbox, type PlanInput, type SandboxPlan } from '../../src/core/sandbox/profile.js';

const profile = (input: Record<string, unknown> = {}): SandboxProfile => SandboxProfileSchema.parse(input);
const HOME = '/home/sam';
const PROTECTED = [
  { path: '/home/sam/.config/gatehouse', what: "Gatehouse's configuration directory" },
  { path: '/home/sam/.local/state/gatehouse', what: "Gatehouse's state directory (audit log, credentials)" },
  { path: '/run/user/1000', what: "the session's runtime directory (session bus, agents)" },
];
const SENSITIVE = [
  { path: '/home/sam/.ssh', what: '~/.ssh' },
  { path: '/home/sam/.aws', what: '~/.aws' },
];

function plan(p: SandboxProfile, extra: Partial<PlanInput> = {}): SandboxPlan {
  const result = planSandbox({ profile: p, codeRoots: ['/opt/mcp/notes'], home: HOME, protectedPaths: PROTECTED, sensitivePaths: SENSITIVE, ...extra });
  if (!result.ok) throw new Error(result.reason);
  return result.plan;
}

function refusal(p: SandboxProfile, extra: Partial<PlanInput> = {}): string {
  const result = planSandbox({ profile: p, codeRoots: [], home: HOME, protectedPaths: PROTECTED, sensitivePaths: SENSITIVE, ...extra });
  if (result.ok) throw new Error('expected a refusal');
  return result.reason;
}

describe('the profile schema', () => {
  it('defaults to no grants, no network, and limits a Node server fits in', () => {
    expect(DEFAULT_SANDBOX_PROFILE).toEqual({ version: 1, read: [], write: [], network: 'none', limits: { processes: 256, memoryMb: 2048, openFiles: 1024 } });
  });

  it('accepts "off", a profile, and each network form', () => {
    expect(SandboxSettingSchema.parse('off')).toBe('off');
    expect(profile({ network: 'host' }).network).toBe('host');
    expect(profile({ network: { allow: ['api.github.com:443', '127.0.0.1:8080', '[::1]:9000', 'localhost:5432'] } }).network).toEqual({
      allow: ['api.github.com:443', '127.0.0.1:8080', '[::1]:9000', 'localhost:5432'],
    });
  });

  it('refuses relative paths, ".." segments and unknown fields, naming the field in the config', () => {
    const bad = (sandbox: unknown) => {
      const result = parseConfig({ servers: { notes: { type: 'stdio', command: 'node', sandbox } } });
      return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
    };
    expect(bad({ read: ['notes'] })).toEqual(['servers.notes.sandbox.read[0]: "notes" must be an absolute path, or start with ~/ for your home directory']);
    expect(bad({ write: ['/home/sam/../root'] })).toEqual(['servers.notes.sandbox.write[0]: "/home/sam/../root" must not contain ".." segments']);
    expect(bad({ writes: ['/tmp'] })[0]).toMatch(/^servers\.notes\.sandbox/);
    expect(bad({ limits: { processes: 2 } })).toEqual(['servers.notes.sandbox.limits.processes: Too small: expected number to be >=16']);
    expect(bad({ version: 2 })).toEqual(['servers.notes.sandbox: version: version must be 1, the profile format this Gatehouse reads']);
    expect(bad({ network: 'nope' })).toEqual(['servers.notes.sandbox: network: network is "none", "host", or { "allow": ["host:port", ...] }']);
    expect(bad('of')).toEqual([
      'servers.notes.sandbox: sandbox is "off" or a profile: { "read": [...], "write": [...], "network": ..., "limits": {...} } (docs/sandbox.md)',
    ]);
  });

  it('refuses an allow-list entry that is not host:port, or an address it cannot relay, and says why', () => {
    const reason = (text: string) => (parseDestination(text) as { reason: string }).reason;
    expect(reason('api.github.com')).toBe('"api.github.com" is not host:port (such as api.github.com:443 or 127.0.0.1:8080)');
    expect(reason('api.github.com:0')).toBe('"api.github.com:0": the port must be 1-65535');
    expect(reason('10.0.0.5:443')).toMatch(/only loopback ones \(127\.x\.x\.x\) can be relayed; name other hosts by their DNS name/);
    expect(reason('[2001:db8::1]:443')).toMatch(/of IPv6 addresses only \[::1\] can be relayed/);
    expect(reason('bad_name.example:443')).toBe('"bad_name.example:443": "bad_name.example" is not a valid host name');
    expect(SandboxProfileSchema.safeParse({ network: { allow: ['10.0.0.5:443'] } }).success).toBe(false);
  });

  it('reads host names case-insensitively and writes them back the same way', () => {
    expect(parseDestination('API.GitHub.com:443')).toEqual({ ok: true, destination: { host: 'api.github.com', port: 443, kind: 'name' } });
    expect(parseDestination('localhost:5432')).toEqual({ ok: true, destination: { host: '127.0.0.1', port: 5432, kind: 'loopback' } });
    expect(formatDestination({ host: '::1', port: 9000 })).toBe('[::1]:9000');
  });

  it('is the same field in a config file and in a catalogue launch spec', () => {
    const launch = StdioServerSchema.parse({ type: 'stdio', command: 'node', sandbox: { write: ['${dataDir}/notes'] } });
    expect(launch.sandbox).toMatchObject({ write: ['${dataDir}/notes'] });
  });
});

describe('decideConfinement', () => {
  const can = { ok: true, mechanism: 'bubblewrap' } as const;
  const cannot = { ok: false, reason: 'bubblewrap (bwrap) is not installed' } as const;

  it('confines with the default profile a server that declares none', () => {
    expect(decideConfinement(undefined, 'preferred', can)).toEqual({ kind: 'confine', profile: DEFAULT_SANDBOX_PROFILE });
  });

  it('runs a server unconfined, saying why, where this machine cannot confine it and the policy does not require it', () => {
    expect(decideConfinement(undefined, 'preferred', cannot)).toEqual({
      kind: 'unconfined',
      reason: 'it cannot be confined on this machine: bubblewrap (bwrap) is not installed',
    });
  });

  it('refuses to start it where the policy requires confinement (sandbox: "required")', () => {
    expect(decideConfinement(profile(), 'required', cannot)).toEqual({
      kind: 'refuse',
      reason: 'it cannot be confined on this machine (bubblewrap (bwrap) is not installed), and the policy requires confinement',
    });
  });

  it('honours "off" only where the policy does not require confinement', () => {
    expect(decideConfinement('off', 'preferred', can)).toEqual({ kind: 'unconfined', reason: 'its configuration turns confinement off (sandbox: "off")' });
    expect(decideConfinement('off', 'required', can).kind).toBe('refuse');
  });
});

describe('planSandbox', () => {
  it('shows the code read-only, the grants as declared, and gives an empty home and a private /tmp as working directory', () => {
    const p = plan(profile({ read: ['~/notes'], write: ['/srv/out'] }));
    expect(p.read).toEqual(['/home/sam/notes', '/opt/mcp/notes']);
    expect(p.write).toEqual(['/srv/out']);
    expect(p.home).toBe(HOME);
    expect(p.cwd).toBe('/tmp');
    expect(p.hidden).toEqual([]);
    expect(p.network).toEqual({ mode: 'none' });
    expect(p.limits).toEqual({ processes: 256, memoryBytes: 2048 * 1024 * 1024, openFiles: 1024 });
  });

  it('lets write win where a path is granted both ways', () => {
    const p = plan(profile({ read: ['/srv/data'], write: ['/srv/data'] }));
    expect(p.write).toEqual(['/srv/data']);
    expect(p.read).not.toContain('/srv/data');
  });

  it("refuses a grant inside Gatehouse's own directories or the session's runtime directory, naming it", () => {
    expect(refusal(profile({ read: ['~/.local/state/gatehouse/audit.db'] }))).toBe(
      "sandbox.read[0] (~/.local/state/gatehouse/audit.db): it is inside Gatehouse's state directory (audit log, credentials) (/home/sam/.local/state/gatehouse), which no server may see",
    );
    expect(refusal(profile({ write: ['/run/user/1000/bus'] }))).toMatch(
      /^sandbox\.write\[0\] \(\/run\/user\/1000\/bus\): it is inside the session's runtime directory/,
    );
  });

  it('refuses the whole file system and the mounts the sandbox provides itself', () => {
    expect(refusal(profile({ read: ['/'] }))).toBe('sandbox.read[0] (/): the whole file system cannot be granted; grant the directories the server needs');
    expect(refusal(profile({ write: ['/proc/1'] }))).toMatch(/\/proc is provided by the sandbox itself/);
  });

  it('hides protected directories under a broad grant, and credentials too unless granted themselves', () => {
    const broad = plan(profile({ read: ['~'] }));
    expect(broad.hidden).toEqual(['/home/sam/.aws', '/home/sam/.ssh', '/home/sam/.config/gatehouse', '/home/sam/.local/state/gatehouse']);
    const withSsh = plan(profile({ read: ['~', '~/.ssh'] }));
    expect(withSsh.hidden).not.toContain('/home/sam/.ssh');
    expect(withSsh.hidden).toContain('/home/sam/.aws');
  });

  it('allows a grant inside a protected directory only where it is an exception (the data directory under GATEHOUSE_HOME)', () => {
    const protectedPaths = [{ path: '/gh', what: "Gatehouse's configuration directory" }];
    const result = planSandbox({ profile: profile({ write: ['/gh/data/demo'] }), codeRoots: [], protectedPaths, sensitivePaths: [], exceptions: ['/gh/data'] });
    expect(result.ok).toBe(true);
    const refused = planSandbox({ profile: profile({ write: ['/gh/state'] }), codeRoots: [], protectedPaths, sensitivePaths: [], exceptions: ['/gh/data'] });
    expect(refused.ok).toBe(false);
  });

  it('refuses code that lives inside a protected directory', () => {
    expect(refusal(profile(), { codeRoots: ['/home/sam/.config/gatehouse/plugins/x'] })).toMatch(
      /^the server's code at .* is inside Gatehouse's configuration directory/,
    );
  });

  it('makes a configured working directory visible read-only when no grant covers it', () => {
    expect(plan(profile(), { cwd: '/srv/app' })).toMatchObject({ cwd: '/srv/app', read: ['/srv/app', '/opt/mcp/notes'] });
    expect(plan(profile({ write: ['/srv'] }), { cwd: '/srv/app' }).read).toEqual(['/opt/mcp/notes']);
  });

  it('needs a home for ~ and an absolute path otherwise', () => {
    expect(refusal(profile({ read: ['~/notes'] }), { home: undefined })).toBe('sandbox.read[0] (~/notes): ~ needs a home directory, and HOME is not set');
    expect(refusal(profile({ read: ['${dataDir}/x'] }))).toBe('sandbox.read[0] (${dataDir}/x): not an absolute path');
  });

  it('turns an allow-list into destinations, once each', () => {
    const p = plan(profile({ network: { allow: ['api.github.com:443', 'API.github.com:443', 'localhost:5432'] } }));
    expect(p.network).toEqual({
      mode: 'allow',
      destinations: [
        { host: 'api.github.com', port: 443, kind: 'name' },
        { host: '127.0.0.1', port: 5432, kind: 'loopback' },
      ],
    });
  });
});

describe('invisiblePaths', () => {
  it('names the paths a server is given in its arguments or environment but cannot see', () => {
    const p = plan(profile({ write: ['/srv/data'] }));
    expect(invisiblePaths(['/srv/data/notes.jsonl', '/srv/other', '/usr/share/dict/words', '/opt/mcp/notes/index.js', '/tmp/host-file'], p)).toEqual([
      '/srv/other',
      '/tmp/host-file',
    ]);
  });

  it('names a hidden path even when a grant covers it', () => {
    const p = plan(profile({ read: ['~'] }));
    expect(invisiblePaths(['/home/sam/.ssh/id_ed25519', '/home/sam/notes'], p)).toEqual(['/home/sam/.ssh/id_ed25519']);
  });
});
