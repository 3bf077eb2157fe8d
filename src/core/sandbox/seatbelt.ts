/**
 * The macOS sandbox profile (SBPL, for `sandbox-exec -p`) for a sandbox plan: the same grants as
 * on Linux, written as Seatbelt rules. Pure and unit-tested; src/node/sandbox/darwin.ts runs it.
 *
 * What differs from Linux, and is documented in docs/sandbox.md: there is no private file system
 * view, so the rules deny by default and allow reading the system, the code roots and the grants;
 * file metadata (names, sizes, times) stays readable everywhere, because path resolution needs it;
 * there is no private loopback, so `none` denies all networking, and an allow-list reaches listed
 * loopback ports directly and listed host names through Gatehouse's proxy (HTTP CONNECT on a
 * loopback port, named to the server in HTTPS_PROXY and HTTP_PROXY); the last matching rule wins,
 * so hidden paths come after the grants.
 */
import type { SandboxPlan } from './profile.js';

export interface SeatbeltHost {
  /** The sandbox's private temporary directory (TMPDIR inside). */
  tmp: string;
  /** Gatehouse's proxy for an allow-list with host names: a loopback port. */
  proxyPort?: number;
}

/** System locations a process needs to start and run on macOS. */
const SYSTEM_READ = [
  '/usr',
  '/bin',
  '/sbin',
  '/System',
  '/Library/Apple',
  '/Library/Preferences/Logging',
  '/private/var/db/timezone',
  '/private/etc',
  '/dev',
  '/opt/homebrew',
  '/usr/local',
];

/** Quotes a path as an SBPL string literal. */
export function sbplString(text: string): string {
  return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

export function seatbeltProfile(plan: SandboxPlan, host: SeatbeltHost): string {
  const lines = [
    '(version 1)',
    '(deny default)',
    '(allow process-exec process-fork)',
    '(allow signal (target same-sandbox))',
    '(allow process-info* (target same-sandbox))',
    '(allow sysctl-read)',
    '(allow file-read-metadata)',
    '(allow mach-lookup (global-name "com.apple.system.logger") (global-name "com.apple.system.notification_center"))',
    '(allow ipc-posix-shm-read-data ipc-posix-shm-write-data (ipc-posix-name-regex #"^/tmp/"))',
    `(allow file-read* ${SYSTEM_READ.map((p) => `(subpath ${sbplString(p)})`).join(' ')})`,
    '(allow file-write-data (literal "/dev/null") (literal "/dev/zero") (literal "/dev/dtracehelper"))',
    `(allow file-read* file-write* (subpath ${sbplString(host.tmp)}))`,
  ];
  if (plan.read.length > 0) lines.push(`(allow file-read* ${plan.read.map((p) => `(subpath ${sbplString(p)})`).join(' ')})`);
  if (plan.write.length > 0) lines.push(`(allow file-read* file-write* ${plan.write.map((p) => `(subpath ${sbplString(p)})`).join(' ')})`);
  lines.push(...networkRules(plan, host));
  // Last: what stays hidden under a broader grant.
  if (plan.hidden.length > 0) lines.push(`(deny file-read* file-write* ${plan.hidden.map((p) => `(subpath ${sbplString(p)})`).join(' ')})`);
  return lines.join('\n') + '\n';
}

function networkRules(plan: SandboxPlan, host: SeatbeltHost): string[] {
  const network = plan.network;
  if (network.mode === 'none') return [];
  if (network.mode === 'host') {
    return [
      '(allow network*)',
      '(allow mach-lookup (global-name "com.apple.dnssd.service") (global-name "com.apple.SystemConfiguration.configd") (global-name "com.apple.trustd.agent"))',
    ];
  }
  const rules: string[] = [];
  const loopbackPorts = [...new Set(network.destinations.filter((d) => d.kind === 'loopback').map((d) => d.port))];
  // Seatbelt names loopback as "localhost"; an IPv6 ::1 destination is the same rule.
  for (const port of loopbackPorts) rules.push(`(allow network-outbound (remote ip ${sbplString(`localhost:${port}`)}))`);
  if (network.destinations.some((d) => d.kind === 'name')) {
    if (host.proxyPort === undefined) throw new Error('an allow-list with host names needs the proxy port');
    rules.push(`(allow network-outbound (remote ip ${sbplString(`localhost:${host.proxyPort}`)}))`);
    rules.push('(allow mach-lookup (global-name "com.apple.trustd.agent"))');
  }
  return rules;
}
