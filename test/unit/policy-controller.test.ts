/**
 * The policy controller on its own (temporary directories, no daemon): which managed settings it
 * trusts, what it remembers between runs, and what happens when the bundle in force expires.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/ports.js';
import { BundlePolicy } from '../../src/core/policy/bundle-policy.js';
import { CedarEngine } from '../../src/node/policy/cedar.js';
import { PolicyController } from '../../src/node/policy/controller.js';
import { managedDirFor } from '../../src/node/policy/settings.js';
import { keyListOf, makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';

let root: TestKey;
const dirs: string[] = [];
const controllers: PolicyController[] = [];

beforeAll(async () => {
  root = await makeKey();
});
afterEach(() => {
  for (const c of controllers.splice(0)) c.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(settings: Record<string, unknown>, bundle?: Buffer) {
  const home = mkdtempSync(join(tmpdir(), 'gh-ctl-'));
  dirs.push(home);
  const managedDir = join(home, 'managed');
  mkdirSync(managedDir, { mode: 0o755 });
  chmodSync(managedDir, 0o755);
  writeFileSync(join(managedDir, 'root.pub'), root.publicPem, { mode: 0o644 });
  writeFileSync(join(managedDir, 'policy.json'), JSON.stringify({ trust: ['root.pub'], ...settings }), { mode: 0o644 });
  if (bundle) writeFileSync(join(managedDir, 'policy.bundle'), bundle, { mode: 0o644 });
  const stateDir = join(home, 'state');
  mkdirSync(stateDir);
  const audit: AuditRecord[] = [];
  let changes = 0;
  const make = () => {
    const policy = new BundlePolicy({ now: () => Date.now(), lists: () => undefined });
    const controller = new PolicyController({
      managedDir,
      stateDir,
      dataDir: home,
      policy,
      logger: { log: () => undefined },
      audit: { append: (r) => void audit.push(r) },
      onChange: () => void changes++,
      loadCedar: async () => new CedarEngine(),
    });
    controllers.push(controller);
    return { policy, controller };
  };
  return { managedDir, audit, changes: () => changes, make };
}

describe('the policy controller', () => {
  it('uses the platform locations, never a path from the environment', () => {
    expect(managedDirFor('linux')).toBe('/etc/gatehouse');
    expect(managedDirFor('darwin')).toBe('/Library/Application Support/Gatehouse');
    expect(managedDirFor('win32')).toBe('C:\\ProgramData\\Gatehouse');
  });

  it.skipIf(process.getuid?.() !== 0)('refuses managed settings that group or others can write, and fails closed', async () => {
    const t = setup({ required: true }, await signFiles(sampleFiles(), { version: 1, keys: [root] }));
    chmodSync(join(t.managedDir, 'policy.json'), 0o666);
    const { policy, controller } = t.make();
    await controller.start();
    expect(policy.state).toMatchObject({ kind: 'fail-closed', reason: expect.stringContaining('writable by group or others') });
    // The refusal gives the fix (issue 12, finding 9).
    expect(policy.state).toMatchObject({ reason: expect.stringMatching(/could trust their own signing key; fix: sudo chmod go-w \S+\/policy\.json$/) });
  });

  it.skipIf(process.getuid?.() !== 0)('refuses managed settings another user owns, and says how to give them to root', async () => {
    const t = setup({ required: true }, await signFiles(sampleFiles(), { version: 1, keys: [root] }));
    chownSync(join(t.managedDir, 'policy.json'), 4242, 4242);
    const { policy, controller } = t.make();
    await controller.start();
    expect(policy.state).toMatchObject({
      kind: 'fail-closed',
      reason: expect.stringMatching(/policy\.json is owned by uid 4242, not root; .*; fix: sudo chown root \S+\/policy\.json$/),
    });
  });

  it('remembers the accepted version across restarts, so an older bundle is refused later', async () => {
    const t = setup({ required: true }, await signFiles(sampleFiles(), { version: 5, keys: [root] }));
    const first = t.make();
    await first.controller.start();
    expect(first.policy.version).toBe('5');
    first.controller.stop();
    writeFileSync(join(t.managedDir, 'policy.bundle'), await signFiles(sampleFiles(), { version: 4, keys: [root] }));
    const second = t.make();
    await second.controller.start();
    // The older file is refused; the last good copy in the state directory stays in force.
    expect(second.policy.version).toBe('5');
    expect(second.controller.status().lastRejection).toMatchObject({ code: 'rollback' });
    expect(t.audit.some((r) => r.type === 'policy.rejected' && r.code === 'rollback')).toBe(true);
  });

  it('pins the accepted key list by digest across restarts: another list of the same version is refused later', async () => {
    const signer = await makeKey();
    const extra = await makeKey();
    const t = setup({ required: true }, await signFiles(sampleFiles(), { version: 1, keys: [signer], keyList: await keyListOf(root, [signer], 7) }));
    const first = t.make();
    await first.controller.start();
    expect(first.policy.version).toBe('1');
    first.controller.stop();
    writeFileSync(
      join(t.managedDir, 'policy.bundle'),
      await signFiles(sampleFiles(), { version: 2, keys: [extra], keyList: await keyListOf(root, [signer, extra], 7) }),
    );
    const second = t.make();
    await second.controller.start();
    expect(second.policy.version).toBe('1');
    expect(second.controller.status().lastRejection).toMatchObject({ code: 'rollback', reason: expect.stringContaining('key list v7 differs') });
  });

  it('fails closed when the bundle in force expires, even though a bundle is not required', async () => {
    const issuedAt = new Date();
    const t = setup(
      { required: false },
      await signFiles(sampleFiles(), { version: 1, keys: [root], issuedAt, expiresAt: new Date(issuedAt.getTime() + 1000) }),
    );
    const { policy, controller } = t.make();
    await controller.start();
    expect(policy.state.kind).toBe('enforcing');
    const before = t.changes();
    await new Promise((r) => setTimeout(r, 1400));
    expect(policy.state).toMatchObject({ kind: 'fail-closed', reason: expect.stringContaining('expired') });
    expect(t.changes()).toBeGreaterThan(before);
    expect(t.audit.some((r) => r.type === 'policy.changed' && String(r.reason).includes('failing closed'))).toBe(true);
  });

  it('runs unmanaged when there are no managed settings', async () => {
    const home = mkdtempSync(join(tmpdir(), 'gh-ctl-'));
    dirs.push(home);
    const policy = new BundlePolicy({ now: () => Date.now(), lists: () => undefined });
    const controller = new PolicyController({
      managedDir: join(home, 'nothing'),
      stateDir: home,
      dataDir: home,
      policy,
      logger: { log: () => undefined },
      audit: { append: () => undefined },
      onChange: () => undefined,
    });
    controllers.push(controller);
    await controller.start();
    expect(policy.mode).toBe('unmanaged');
    expect(controller.status()).toEqual({});
  });
});
