/**
 * The admin's command line, run as the real `gatehouse` binary: keys, signing the sample bundle,
 * checking it as a desktop would, decision cases for the admins' CI, explaining one decision,
 * key lists for rotation; each command's --help, one-line errors and exit codes.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_DIR } from '../support/policy.js';
import { runGatehouse } from './support/clients.js';

let dir: string;
let env: Record<string, string>;
const gatehouse = (...args: string[]) => runGatehouse(['policy', ...args], env, 30_000);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gh-policy-cli-'));
  env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, GATEHOUSE_HOME: join(dir, 'home') };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gatehouse policy', () => {
  it('keygen writes a private key only its owner can read, and a public key, and prints the key id', async () => {
    const result = await gatehouse('keygen', '--out', join(dir, 'keys'), '--name', 'root');
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(join(dir, 'keys', 'root.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'keys', 'root.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect((await gatehouse('keygen', '--out', join(dir, 'keys'), '--name', 'other')).code).toBe(0);
  });

  it('keygen never overwrites a key', async () => {
    const result = await gatehouse('keygen', '--out', join(dir, 'keys'), '--name', 'root');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^gatehouse policy: .*root\.key exists; keys are never overwritten\n$/);
  });

  it('sign turns the sample directory into one bundle file, and verify accepts it with the right key', async () => {
    const signed = await gatehouse(
      'sign',
      SAMPLE_DIR,
      '--key',
      join(dir, 'keys', 'root.key'),
      '--version',
      '4',
      '--expires',
      '7d',
      '--out',
      join(dir, 'v4.bundle'),
    );
    expect(signed.code).toBe(0);
    expect(signed.stdout).toMatch(/signed bundle v4 \(catalog\.json, policies\.cedar, quotas\.json, roles\.json, schema\.cedarschema\)/);
    const verified = await gatehouse('verify', join(dir, 'v4.bundle'), '--trust', join(dir, 'keys', 'root.pub'));
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^accepted: bundle v4, .* 7 policies, 1 servers in the catalog\n$/);
  });

  it('verify exits 1 with the reason code for an untrusted key, a tampered file and a rollback', async () => {
    const untrusted = await gatehouse('verify', join(dir, 'v4.bundle'), '--trust', join(dir, 'keys', 'other.pub'));
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^gatehouse policy verify: rejected \(untrusted_key\): signed by key .*\n$/);

    const doc = JSON.parse(readFileSync(join(dir, 'v4.bundle'), 'utf8')) as { files: Record<string, string> };
    doc.files['roles.json'] = Buffer.from('{"groups":{"everyone":["admin"]}}').toString('base64');
    writeFileSync(join(dir, 'tampered.bundle'), JSON.stringify(doc));
    const tampered = await gatehouse('verify', join(dir, 'tampered.bundle'), '--trust', join(dir, 'keys', 'root.pub'));
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/rejected \(tampered_file\): roles\.json does not match its signed hash/);

    const rollback = await gatehouse('verify', join(dir, 'v4.bundle'), '--trust', join(dir, 'keys', 'root.pub'), '--installed', '5');
    expect(rollback.code).toBe(1);
    expect(rollback.stderr).toMatch(/rejected \(rollback\): bundle v4 is older than v5/);
  });

  it('sign refuses a directory a desktop would refuse, before signing anything', async () => {
    const bad = join(dir, 'bad-bundle');
    const { mkdirSync, cpSync } = await import('node:fs');
    mkdirSync(bad);
    cpSync(SAMPLE_DIR, bad, { recursive: true });
    writeFileSync(join(bad, 'policies.cedar'), 'permit (principal, action, resource) when { resource.read_onyl };');
    const result = await gatehouse('sign', bad, '--key', join(dir, 'keys', 'root.key'), '--version', '1', '--out', join(dir, 'bad.bundle'));
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(result.stderr).toMatch(/read_onyl/);
    expect(() => statSync(join(dir, 'bad.bundle'))).toThrow();
  });

  it('test runs the sample cases against the signed bundle and exits 0 when all pass', async () => {
    const result = await gatehouse('test', join(dir, 'v4.bundle'), '--cases', join(SAMPLE_DIR, 'tests', 'cases.json'));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^9 cases: 9 passed, 0 failed$/m);
  });

  it('test exits 1 and says which case failed and why', async () => {
    writeFileSync(
      join(dir, 'wrong.json'),
      JSON.stringify([
        { name: 'support deletes', user: 'sam', groups: ['crm-support'], client: 'cursor', tool: 'crm__delete_contact', args: { id: 'c-1' }, expect: 'allow' },
      ]),
    );
    const result = await gatehouse('test', join(dir, 'v4.bundle'), '--cases', join(dir, 'wrong.json'));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^FAIL {2}support deletes: expected allow, got deny \(this tool is forbidden by policy only-admins-delete; policies: only-admins-delete\)$/m,
    );
  });

  it('explain names the decision, the policies and the arguments as Cedar sees them', async () => {
    const result = await gatehouse(
      'explain',
      join(dir, 'v4.bundle'),
      '--user',
      'sam',
      '--groups',
      'crm-support',
      '--client',
      'cursor',
      '--tool',
      'crm__refund',
      '--args',
      '{"contact_id":"c-1","amount":150,"currency":"EUR"}',
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^decision: {2}approval/m);
    expect(result.stdout).toMatch(/^policies: {2}support-refund-large \(policies\.cedar, permit, @approval\("user"\)\)$/m);
    expect(result.stdout).toMatch(/^arguments: \{"amount":15000,"currency":"EUR"\} as context\.args$/m);
    const json = await gatehouse(
      'explain',
      join(dir, 'v4.bundle'),
      '--user',
      'ann',
      '--groups',
      'crm-analysts',
      '--client',
      'cursor',
      '--tool',
      'crm__delete_contact',
      '--json',
    );
    expect(JSON.parse(json.stdout)).toMatchObject({ decision: 'deny', visible: false, policies: ['only-admins-delete'], roles: ['analyst'] });
  });

  it('keylist lets a root key vouch for a separate signing key (rotation without reinstalling)', async () => {
    expect((await gatehouse('keygen', '--out', join(dir, 'keys'), '--name', 'signer')).code).toBe(0);
    const list = await gatehouse(
      'keylist',
      '--root',
      join(dir, 'keys', 'root.key'),
      '--key',
      join(dir, 'keys', 'signer.pub'),
      '--version',
      '1',
      '--out',
      join(dir, 'keys.jws'),
    );
    expect(list.code).toBe(0);
    expect(
      (
        await gatehouse(
          'sign',
          SAMPLE_DIR,
          '--key',
          join(dir, 'keys', 'signer.key'),
          '--keylist',
          join(dir, 'keys.jws'),
          '--version',
          '5',
          '--out',
          join(dir, 'v5.bundle'),
        )
      ).code,
    ).toBe(0);
    const verified = await gatehouse('verify', join(dir, 'v5.bundle'), '--trust', join(dir, 'keys', 'root.pub'));
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/\(key list v1 from root /);
    // Without the key list, the signing key alone is not trusted.
    expect((await gatehouse('sign', SAMPLE_DIR, '--key', join(dir, 'keys', 'signer.key'), '--version', '6', '--out', join(dir, 'v6.bundle'))).code).toBe(0);
    expect((await gatehouse('verify', join(dir, 'v6.bundle'), '--trust', join(dir, 'keys', 'root.pub'))).code).toBe(1);
  });

  it('has --help for every command', async () => {
    for (const sub of ['keygen', 'sign', 'keylist', 'verify', 'test', 'explain', 'pin']) {
      const result = await gatehouse(sub, '--help');
      expect(result.code, sub).toBe(0);
      expect(result.stdout, sub).toMatch(new RegExp(`^Usage: gatehouse policy ${sub}`));
    }
    expect((await gatehouse('--help')).stdout).toMatch(/^Usage: gatehouse policy <command>/);
  });

  it('answers a usage mistake with one line and exit code 2', async () => {
    const missing = await gatehouse('sign', SAMPLE_DIR, '--version', '1', '--out', join(dir, 'x.bundle'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('gatehouse policy: --key is required\n');
    const badDuration = await gatehouse('sign', SAMPLE_DIR, '--key', 'k', '--version', '1', '--expires', 'soon', '--out', join(dir, 'x.bundle'));
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toBe('gatehouse policy: --expires takes a duration such as 12h, 30d or 8w\n');
    const unknown = await gatehouse('frobnicate');
    expect(unknown.code).toBe(2);
  });
});

describe('the sample bundle', () => {
  /** A copy of the sample bundle directory, with its catalog edited. */
  function sampleCopy(name: string, edit: (catalog: { servers: { crm: { launch: unknown; tools: Record<string, { sha256: string }> } } }) => void): string {
    const copy = join(dir, name);
    mkdirSync(copy);
    cpSync(SAMPLE_DIR, copy, { recursive: true });
    const catalog = JSON.parse(readFileSync(join(copy, 'catalog.json'), 'utf8')) as Parameters<typeof edit>[0];
    edit(catalog);
    writeFileSync(join(copy, 'catalog.json'), JSON.stringify(catalog));
    return copy;
  }

  // Issue 12, finding 9: the sample's catalog started /opt/crm-mcp/crm-server.mjs, which nothing installs.
  it('starts the CRM it ships with, and pins the tool definitions it actually serves (gatehouse policy pin, as it is)', async () => {
    const result = await gatehouse('pin', SAMPLE_DIR);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(
      result.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ).toEqual(['crm__delete_contact same', 'crm__get_contact same', 'crm__refund same', 'crm__search_contacts same']);
  });

  it('exits 1 when a catalog server does not start, saying which and why', async () => {
    const copy = sampleCopy('pin-missing', (catalog) => {
      catalog.servers.crm.launch = { type: 'stdio', command: process.execPath, args: [join(dir, 'not-installed', 'crm-server.mjs')] };
    });
    const result = await gatehouse('pin', copy);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^gatehouse policy: server "crm" did not start: .*Cannot find module/m);
    expect(result.stderr).toMatch(/1 of 1 catalog server\(s\) did not start \(crm\): nothing was checked for them\n$/);
  });

  it('exits 1 when a tool differs from its pin, and 0 once --write has recorded it', async () => {
    const copy = sampleCopy('pin-drift', (catalog) => {
      catalog.servers.crm.tools.refund!.sha256 = '0'.repeat(64);
    });
    const drifted = await gatehouse('pin', copy);
    expect(drifted.code).toBe(1);
    expect(drifted.stdout).toMatch(/^crm__refund\s+changed\s/m);
    expect(drifted.stderr).toContain('1 tool(s) do not match the catalog');
    expect((await gatehouse('pin', copy, '--write')).code).toBe(0);
    expect((await gatehouse('pin', copy)).code).toBe(0);
  });
});
