/**
 * Confinement on macOS with `sandbox-exec` and a profile generated from the same plan as on Linux
 * (src/core/sandbox/seatbelt.ts). Written and type-checked here, but not run: these machines are
 * Linux, so the generator is unit-tested and this launcher is not. docs/sandbox.md says what macOS
 * confinement covers and what it does not (no process or memory limit, no private /tmp, host names
 * reached only through HTTPS_PROXY).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LimitStatus } from '../../common/sandbox.js';
import type { SandboxEvents } from '../../core/sandbox/events.js';
import { SANDBOX_TMP, type SandboxPlan } from '../../core/sandbox/profile.js';
import { seatbeltProfile } from '../../core/sandbox/seatbelt.js';
import { EgressProxy } from './egress-proxy.js';

export const SANDBOX_EXEC = '/usr/bin/sandbox-exec';

export function probeDarwin(): { problem?: string } {
  return existsSync(SANDBOX_EXEC) ? {} : { problem: `${SANDBOX_EXEC} is missing` };
}

export interface DarwinLaunch {
  argv: string[];
  env: Record<string, string>;
  /** The working directory: the configured one, or the private temporary directory. */
  cwd: string;
  limits: { processes: LimitStatus; memoryMb: LimitStatus; openFiles: LimitStatus };
  release(): Promise<void>;
}

export async function prepareDarwinLaunch(input: { server: string; plan: SandboxPlan; argv: string[]; events: SandboxEvents }): Promise<DarwinLaunch> {
  const { plan } = input;
  const tmp = await mkdtemp(path.join(tmpdir(), 'gatehouse-sb-'));
  const names = plan.network.mode === 'allow' && plan.network.destinations.some((d) => d.kind === 'name');
  const proxy =
    names && plan.network.mode === 'allow'
      ? new EgressProxy({ server: input.server, destinations: plan.network.destinations, decoys: [], events: input.events, httpConnect: true })
      : undefined;
  await proxy?.listen();
  const profile = seatbeltProfile(plan, { tmp, ...(proxy?.connectPort !== undefined ? { proxyPort: proxy.connectPort } : {}) });
  const env: Record<string, string> = { TMPDIR: tmp };
  if (proxy?.connectPort !== undefined) {
    const url = `http://127.0.0.1:${proxy.connectPort}`;
    Object.assign(env, {
      HTTPS_PROXY: url,
      https_proxy: url,
      HTTP_PROXY: url,
      http_proxy: url,
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
    });
  }
  const files = plan.limits.openFiles;
  const argv = [
    SANDBOX_EXEC,
    '-p',
    profile,
    '/bin/sh',
    '-c',
    'ulimit -n "$1" || exit 125; shift; exec "$@"',
    'gatehouse-sandbox',
    String(files),
    ...input.argv,
  ];
  return {
    argv,
    env,
    cwd: plan.cwd === SANDBOX_TMP ? tmp : plan.cwd,
    limits: {
      processes: { max: plan.limits.processes, enforcedBy: 'none', note: 'not enforced on macOS (RLIMIT_NPROC counts all your processes there)' },
      memoryMb: {
        max: plan.limits.memoryBytes / 1024 / 1024,
        enforcedBy: 'none',
        note: 'not enforced on macOS (the kernel ignores data and address-space limits)',
      },
      openFiles: { max: files, enforcedBy: 'rlimit', note: 'per process' },
    },
    async release() {
      input.events.flush(input.server);
      await proxy?.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
