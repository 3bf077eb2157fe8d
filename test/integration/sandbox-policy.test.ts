/**
 * Issue 15: a bundle can require confinement (`"sandbox": "required"` in catalog.json), and what
 * Gatehouse does on a machine that cannot confine. "Cannot" is made real, not pretended: the daemon
 * runs inside a bubblewrap of the test's own that forbids creating user namespaces, so its own
 * bubblewrap probe fails exactly as it would on a kernel or distribution that forbids them. For the
 * managed case the test's bubblewrap also puts the managed directory at /etc/gatehouse, on a
 * private /etc that shows the host's entries and nothing written to the host.
 */
import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseBundleFiles } from '../../src/node/policy/content.js';
import { makeKey, sampleFiles, signFiles, type CatalogJson, type TestKey } from '../support/policy.js';
import { auditEvents, writeManagedDir } from './support/approvals.js';
import { runGatehouse } from './support/clients.js';
import { eventually, spawnGatehouse, type RunningGatehouse } from './support/gatehouse.js';
import { startManaged, type ManagedGatehouse } from './support/policy.js';
import { fileURLToPath } from 'node:url';

const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-server.mjs', import.meta.url));
const NO_USERNS = ['bwrap', '--dev-bind', '/', '/', '--unshare-user', '--disable-userns', '--die-with-parent'];

/** A private /etc with every host entry bound back, and `extra` mounted over it. Nothing is written to the host's /etc. */
function privateEtc(extra: string[]): string[] {
  const args = ['--tmpfs', '/etc'];
  for (const name of readdirSync('/etc')) {
    const path = join('/etc', name);
    const info = lstatSync(path);
    if (info.isSymbolicLink()) args.push('--symlink', readlinkSync(path), path);
    else args.push('--dev-bind', path, path);
  }
  return [...args, ...extra];
}

function sampleWith(edit: (catalog: CatalogJson) => void): Map<string, Buffer> {
  return sampleFiles({ catalog: edit });
}

let root: TestKey;
beforeAll(async () => {
  root = await makeKey();
});

describe.runIf(process.platform === 'linux')('a bundle that requires confinement (issue 15)', () => {
  let gh: ManagedGatehouse;
  afterEach(async () => {
    await gh?.stop();
  });

  it('confines the catalogue servers where it can, and says the policy requires it', async () => {
    const bundle = await signFiles(
      sampleWith((c) => (c.sandbox = 'required')),
      { version: 1, keys: [root] },
    );
    gh = await startManaged({ roots: [root], bundle, settings: { required: true } });
    const s = await gh.until((s) => s.servers.find((v) => v.name === 'crm')?.state === 'ready', 'the CRM to be ready', 20_000);
    expect(s.servers.find((v) => v.name === 'crm')?.confinement).toMatchObject({
      state: 'confined',
      mechanism: 'bubblewrap',
      source: 'default',
      required: true,
    });
  });

  it('stops an unconfined server when a new bundle requires confinement, and refuses to start it, saying why', async () => {
    const off = (c: CatalogJson) => ((c.servers.crm!.launch as Record<string, unknown>)['sandbox'] = 'off');
    gh = await startManaged({ roots: [root], bundle: await signFiles(sampleWith(off), { version: 1, keys: [root] }), settings: { required: true } });
    const before = await gh.until((s) => s.servers.find((v) => v.name === 'crm')?.state === 'ready', 'the CRM to be ready', 20_000);
    expect(before.servers.find((v) => v.name === 'crm')?.confinement).toMatchObject({
      state: 'unconfined',
      reason: 'its configuration turns confinement off (sandbox: "off")',
    });

    gh.writeBundle(
      await signFiles(
        sampleWith((c) => (off(c), (c.sandbox = 'required'))),
        { version: 2, keys: [root] },
      ),
    );
    const after = await gh.until(
      (s) => s.servers.find((v) => v.name === 'crm')?.confinement?.state === 'refused' && s.servers.find((v) => v.name === 'crm')?.state !== 'ready',
      'the CRM to be refused',
      20_000,
    );
    const crm = after.servers.find((v) => v.name === 'crm')!;
    expect(crm.lastError).toBe(
      'failed to start: not started: the policy requires confinement (sandbox: "required"), but this server\'s configuration turns it off (sandbox: "off")',
    );
    expect(crm.confinement).toMatchObject({ state: 'refused', required: true });
    expect(auditEvents(gh.paths, 'sandbox.refused').map((e) => e.server)).toContain('crm');
  });

  it('refuses a catalogue whose sandbox setting is not one it knows, or whose profile grants a relative path', () => {
    const parsed = parseBundleFiles(
      sampleWith((c) => (c.sandbox = 'mandatory')),
      { dataDir: '/data' },
    );
    expect(parsed.ok).toBe(false);
    expect((parsed as { errors: string[] }).errors).toEqual(['catalog.json: sandbox: Invalid option: expected one of "required"|"preferred"']);
    const relative = parseBundleFiles(
      sampleWith((c) => ((c.servers.crm!.launch as Record<string, unknown>)['sandbox'] = { write: ['logs'] })),
      { dataDir: '/data' },
    );
    expect((relative as { errors: string[] }).errors[0]).toMatch(/^catalog\.json: servers\.crm\.launch\.sandbox\.write\[0\]: "logs" must be an absolute path/);
  });

  it('expands ${dataDir} in a catalogue profile on the desktop', () => {
    const parsed = parseBundleFiles(
      sampleWith((c) => ((c.servers.crm!.launch as Record<string, unknown>)['sandbox'] = { write: ['${dataDir}/crm'] })),
      { dataDir: '/data' },
    );
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    expect(parsed.content.catalog.servers.get('crm')?.launch).toMatchObject({ sandbox: { write: ['/data/crm'] } });
  });
});

describe.runIf(process.platform === 'linux')('on a machine where bubblewrap cannot make a sandbox (issue 15)', () => {
  let gh: RunningGatehouse | undefined;
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'gh-nosandbox-'));
  });
  afterEach(async () => {
    await gh?.stop();
    gh = undefined;
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs a server unconfined when the policy does not require confinement, and says so in status, the CLI and the audit log', async () => {
    gh = await spawnGatehouse({ wrap: [...NO_USERNS, '--'], servers: { notes: { type: 'stdio', command: process.execPath, args: [HOSTILE] } } });
    await eventually(async () => (await gh!.status()).servers[0]?.state === 'ready', 20_000, 'the server to be ready');
    const notes = (await gh.status()).servers[0]!;
    expect(notes.confinement?.state).toBe('unconfined');
    expect(notes.confinement?.reason).toMatch(/^it cannot be confined on this machine: bubblewrap cannot create a sandbox here: /);
    const cli = await runGatehouse(['status'], gh.env as Record<string, string>);
    expect(cli.stdout).toMatch(
      /^notes\s+UNCONFINED\s+host\s+anything you can\s+it cannot be confined on this machine: bubblewrap cannot create a sandbox here/m,
    );
    expect(auditEvents(gh.paths, 'sandbox.unconfined').map((e) => [e.server, e.reason])).toEqual([['notes', notes.confinement!.reason]]);
  });

  it('refuses to start a catalogue server when the bundle requires confinement, and says why', async () => {
    const bundle = await signFiles(
      sampleWith((c) => (c.sandbox = 'required')),
      { version: 1, keys: [root] },
    );
    const managedDir = writeManagedDir(join(scratch, 'managed-home'), [root], bundle);
    gh = await spawnGatehouse({ wrap: [...NO_USERNS, ...privateEtc(['--bind', managedDir, '/etc/gatehouse']), '--'] });
    const crm = await eventually(
      async () => {
        const s = (await gh!.status()).servers.find((v) => v.name === 'crm');
        return s?.confinement?.state === 'refused' ? s : undefined;
      },
      20_000,
      'the CRM to be refused',
    );
    expect(crm.state).not.toBe('ready');
    expect(crm.lastError).toMatch(
      /^failed to start: not started: it cannot be confined on this machine \(bubblewrap cannot create a sandbox here: .+\), and the policy requires confinement$/,
    );
    expect(crm.confinement).toMatchObject({ state: 'refused', required: true });
    const status = await gh.status();
    expect(status.policy).toMatchObject({ mode: 'managed', state: 'enforcing' });
    expect(auditEvents(gh.paths, 'sandbox.refused').map((e) => e.server)).toContain('crm');
    const cli = await runGatehouse(['status'], gh.env as Record<string, string>);
    expect(cli.stdout).toMatch(/^crm\s+REFUSED \(required\)/m);
  });
});
