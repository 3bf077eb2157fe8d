/**
 * The launcher's decisions where nothing is launched (issue 15): Windows runs servers unconfined
 * and says so; a machine whose bubblewrap cannot work runs them unconfined, or refuses them where
 * the policy requires confinement; a refusal is recorded once, not at every retry.
 */
import { describe, expect, it } from 'vitest';
import { StdioServerSchema } from '../../src/common/config.js';
import type { AuditRecord } from '../../src/core/ports.js';
import { systemClock } from '../../src/core/ports.js';
import { SandboxEvents } from '../../src/core/sandbox/events.js';
import { SandboxLauncher, type SandboxLauncherOptions } from '../../src/node/sandbox/launcher.js';
import type { LinuxHost } from '../../src/node/sandbox/linux.js';
import { resolvePaths } from '../../src/node/paths.js';

const paths = resolvePaths({ platform: 'linux', env: { GATEHOUSE_HOME: '/gh' }, homedir: '/home/sam', uid: 1000 });
const server = StdioServerSchema.parse({ type: 'stdio', command: 'node', args: ['/opt/notes/server.js'] });
const env = { PATH: '/usr/bin', HOME: '/home/sam' };

function launcher(options: Partial<SandboxLauncherOptions> & { required?: boolean }): { launcher: SandboxLauncher; records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  const events = new SandboxEvents({ clock: systemClock, append: (r) => records.push(r) });
  return {
    records,
    launcher: new SandboxLauncher({
      paths,
      env,
      requirement: () => (options.required ? 'required' : 'preferred'),
      fromCatalog: () => false,
      events,
      record: (r) => records.push(r),
      logger: { log: () => undefined },
      ...options,
    }),
  };
}

const brokenHost = Promise.resolve({ problem: 'bubblewrap cannot create a sandbox here: bwrap: No permissions to create a new namespace' } as LinuxHost);

describe('SandboxLauncher, where nothing can be confined', () => {
  it('runs a server unconfined on Windows, with the reason in its status and the audit log', async () => {
    const { launcher: l, records } = launcher({ platform: 'win32' });
    const launch = await l.prepare('notes', server, env);
    expect(launch).toMatchObject({ command: 'node', args: ['/opt/notes/server.js'], env });
    expect(launch.confinement).toEqual({
      state: 'unconfined',
      reason: 'it cannot be confined on this machine: Windows has no sandbox Gatehouse uses yet: servers run with your full rights',
    });
    expect(launch.notes).toEqual([
      'runs unconfined: it cannot be confined on this machine: Windows has no sandbox Gatehouse uses yet: servers run with your full rights',
    ]);
    expect(records).toEqual([expect.objectContaining({ type: 'sandbox.unconfined', server: 'notes', reason: launch.confinement.reason })]);
    expect(l.describe('notes', server)).toEqual(launch.confinement);
  });

  it('refuses it on Windows where the policy requires confinement', async () => {
    const { launcher: l } = launcher({ platform: 'win32', required: true });
    await expect(l.prepare('notes', server, env)).rejects.toThrow(/^not started: it cannot be confined on this machine \(Windows has no sandbox/);
    expect(l.describe('notes', server)).toMatchObject({ state: 'refused', required: true });
  });

  it('says why bubblewrap cannot confine here, and records a refusal once however often the start is retried', async () => {
    const { launcher: l, records } = launcher({ platform: 'linux', linuxHost: brokenHost, required: true });
    for (let i = 0; i < 3; i++) await expect(l.prepare('notes', server, env)).rejects.toThrow(/bubblewrap cannot create a sandbox here/);
    expect(records.filter((r) => r.type === 'sandbox.refused')).toHaveLength(1);
  });

  it('describes a server that has not started yet from what this machine can do', async () => {
    const { launcher: l } = launcher({ platform: 'linux', linuxHost: brokenHost });
    await brokenHost;
    await new Promise((resolve) => setImmediate(resolve));
    expect(l.describe('notes', server)).toEqual({
      state: 'unconfined',
      reason: 'it cannot be confined on this machine: bubblewrap cannot create a sandbox here: bwrap: No permissions to create a new namespace',
    });
    expect(l.describe('off', { ...server, sandbox: 'off' })).toMatchObject({
      state: 'unconfined',
      reason: 'its configuration turns confinement off (sandbox: "off")',
    });
  });
});
