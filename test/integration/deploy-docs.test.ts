/**
 * docs/deploy.md, run where it can be (issue 17): every block IT copies from it is checked by the
 * tool that would run it, where that tool exists on Linux. PowerShell, installer, msiexec, Jamf,
 * Intune and ansible-playbook do not; the page says so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { UpdateSettingsSchema } from '../../main/updates.js';
import { REPO } from './support/gatehouse.js';

const page = readFileSync(join(REPO, 'docs', 'deploy.md'), 'utf8');
const blocks = (lang: string) => [...page.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === lang).map((m) => m[2]!);

describe('docs/deploy.md', () => {
  it('has the blocks IT needs: shell, PowerShell, the Ansible playbook, the configuration profile, the JSON settings', () => {
    expect(blocks('sh').length).toBeGreaterThanOrEqual(5);
    expect(blocks('powershell')).toHaveLength(2);
    expect(blocks('yaml')).toHaveLength(1);
    expect(blocks('xml')).toHaveLength(1);
    expect(blocks('json')).toHaveLength(2);
  });

  it('gives JSON settings that parse, and an updates.json its schema accepts', () => {
    const [policy, updates] = blocks('json').map((b) => JSON.parse(b) as Record<string, unknown>);
    expect(policy).toMatchObject({ trust: ['root-2026.pub'], required: true });
    expect(UpdateSettingsSchema.safeParse(updates).success).toBe(true);
  });

  it('gives shell that sh accepts', () => {
    for (const block of blocks('sh')) {
      const check = spawnSync('sh', ['-n'], { input: block, encoding: 'utf8' });
      expect(check.status, `${block}\n${check.stderr}`).toBe(0);
    }
  });

  it('installs the managed files root-owned and read-only for others, as the Linux script says', () => {
    const script = blocks('sh').find((b) => b.includes('MANAGED="${MANAGED:-/etc/gatehouse}"'))!;
    const work = mkdtempSync(join(tmpdir(), 'gh-deploy-'));
    try {
      for (const file of ['policy.json', 'root-2026.pub', 'policy.bundle']) writeFileSync(join(work, file), `${file}\n`, { mode: 0o666 });
      const managed = join(work, 'managed');
      const isRoot = process.getuid?.() === 0;
      // As root, exactly the script; otherwise without the owner flags, which only root may use.
      const body = isRoot ? script : script.replaceAll(' -o root -g root', '');
      const out = execFileSync('sh', ['-c', body], { cwd: work, env: { PATH: process.env.PATH, MANAGED: managed }, encoding: 'utf8' });
      expect(out).toBe(`managed files installed in ${managed}\n`);
      expect(statSync(managed).mode & 0o777).toBe(0o755);
      for (const file of ['policy.json', 'root-2026.pub', 'policy.bundle']) {
        const info = statSync(join(managed, file));
        expect(info.mode & 0o777, file).toBe(0o644);
        if (isRoot) expect(info.uid, file).toBe(0);
      }
      expect(() => statSync(join(managed, 'identity.json'))).toThrow();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('gives an Ansible playbook that parses, installs the package and places every managed file root-owned', () => {
    const [playbook] = load(blocks('yaml')[0]!) as [
      { hosts: string; become: boolean; vars: { gatehouse_files: string[] }; tasks: Record<string, Record<string, unknown>>[] },
    ];
    expect(playbook.hosts).toBe('desktops');
    expect(playbook.become).toBe(true);
    const modules = playbook.tasks.map((t) => Object.keys(t).find((k) => k.startsWith('ansible.builtin.')));
    expect(modules).toEqual(['ansible.builtin.apt', 'ansible.builtin.dnf', 'ansible.builtin.file', 'ansible.builtin.copy']);
    const copy = playbook.tasks[3]!['ansible.builtin.copy'] as Record<string, string>;
    expect(copy).toMatchObject({ owner: 'root', group: 'root', mode: '0644' });
    expect(playbook.vars.gatehouse_files).toEqual(['policy.json', 'root-2026.pub', 'policy.bundle', 'identity.json', 'updates.json', 'updates-2026.pub']);
  });

  it("gives a configuration profile that parses as a property list, for the app's bundle id", () => {
    const python = spawnSync(
      'python3',
      ['-c', 'import plistlib,sys,json; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps([c["PayloadType"] for c in p["PayloadContent"]]))'],
      { input: blocks('xml')[0]!, encoding: 'utf8' },
    );
    expect(python.status, python.stderr).toBe(0);
    expect(JSON.parse(python.stdout)).toEqual(['com.apple.notificationsettings', 'com.apple.servicemanagement']);
    const builder = readFileSync(join(REPO, 'electron-builder.yml'), 'utf8');
    expect(builder).toContain('appId: com.gatehouse.desktop');
    expect(blocks('xml')[0]).toContain('<string>com.gatehouse.desktop</string>');
  });

  it('signs the update feed with the very command the update test runs', () => {
    const test = readFileSync(join(REPO, 'test', 'integration', 'updates-feed.test.ts'), 'utf8');
    const [command] = blocks('sh').filter((b) => b.startsWith('openssl pkeyutl'));
    expect(command).toBeDefined();
    expect(test).toContain(command!.trim());
  });
});
