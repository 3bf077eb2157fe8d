/**
 * Getting policy to the desktop and keeping it right: bundles from the managed location and from
 * an HTTPS URL applied live (with list_changed to connected clients), every kind of bad bundle
 * refused while the last good one stays in force, failing closed when a bundle is required and
 * none is valid, tool pinning against a changed server, and local restrictions that narrow but
 * never widen. Real daemon, real socket, bundles signed at test time.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bundleJson, CRM_FIXTURE, makeKey, sampleFiles, signFiles, type TestKey } from '../support/policy.js';
import { eventually } from './support/gatehouse.js';
import { closeAll, connectBridge, textOf, type Connected } from './support/clients.js';
import { startManaged, type ManagedGatehouse } from './support/policy.js';

let root: TestKey;
let stranger: TestKey;
let v1: Buffer;
let v2: Buffer;

/** v2 also lets analysts refund up to 10.00 EUR. */
const ANALYST_REFUNDS = `@id("analysts-small-refunds")
permit (principal in Role::"analyst", action == Action::"call_tool", resource == Tool::"crm__refund")
when { context.args has amount && context.args.amount <= 1000 };`;

beforeAll(async () => {
  root = await makeKey();
  stranger = await makeKey();
  v1 = await signFiles(sampleFiles(), { version: 1, keys: [root] });
  v2 = await signFiles(sampleFiles({ files: { 'analysts.cedar': ANALYST_REFUNDS } }), { version: 2, keys: [root] });
});
afterEach(closeAll);

async function toolNames(c: Connected): Promise<string[]> {
  return (await c.client.listTools()).tools.map((t) => t.name).sort();
}

async function watch(gh: ManagedGatehouse): Promise<{ connected: Connected; changes: () => number }> {
  const connected = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
  let changes = 0;
  connected.client.setNotificationHandler('notifications/tools/list_changed', () => void changes++);
  return { connected, changes: () => changes };
}

function reencode(bytes: Buffer, edit: (doc: ReturnType<typeof bundleJson>) => void): Buffer {
  const doc = bundleJson(bytes);
  edit(doc);
  return Buffer.from(JSON.stringify(doc));
}

describe('a bundle in the managed location', () => {
  let gh: ManagedGatehouse;
  beforeAll(async () => {
    gh = await startManaged({ roots: [root], bundle: v1, identity: { user: 'ann', groups: ['crm-analysts'] }, settings: { required: true } });
  });
  afterAll(async () => gh?.stop());

  it('applies a newer bundle live, and connected clients get tools/list_changed', async () => {
    const { connected, changes } = await watch(gh);
    await eventually(async () => (await toolNames(connected)).length === 2, 20_000, 'the CRM tools');
    gh.writeBundle(v2);
    await gh.until((s) => s.policy.version === '2', 'bundle v2 in force');
    await eventually(() => changes() >= 1, 10_000, 'tools/list_changed');
    expect(await toolNames(connected)).toEqual(['crm__get_contact', 'crm__refund', 'crm__search_contacts']);
    expect(textOf(await connected.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 9.99, currency: 'EUR' } }))).toMatch(
      /refunded 9.99 EUR/,
    );
  });

  const refusals: [string, string, () => Promise<Buffer>][] = [
    [
      'a file changed after signing',
      'tampered_file',
      async () =>
        reencode(
          await signFiles(sampleFiles(), { version: 3, keys: [root] }),
          (d) => void (d.files['roles.json'] = Buffer.from('{"groups":{"crm-analysts":["admin"]}}').toString('base64')),
        ),
    ],
    [
      'an extra unsigned file',
      'extra_file',
      async () =>
        reencode(
          await signFiles(sampleFiles(), { version: 3, keys: [root] }),
          (d) => void (d.files['all.cedar'] = Buffer.from('permit (principal, action, resource);').toString('base64')),
        ),
    ],
    [
      'a bad signature',
      'bad_signature',
      async () =>
        reencode(
          await signFiles(sampleFiles(), { version: 3, keys: [root] }),
          (d) => void (d.manifest.signatures[0]!.signature = Buffer.alloc(64, 7).toString('base64url')),
        ),
    ],
    ['an untrusted key', 'untrusted_key', () => signFiles(sampleFiles(), { version: 3, keys: [stranger] })],
    ['a lower version', 'rollback', async () => v1],
    [
      'an expired bundle',
      'expired',
      () =>
        signFiles(sampleFiles(), { version: 3, keys: [root], issuedAt: new Date(Date.now() - 7 * 86_400_000), expiresAt: new Date(Date.now() - 86_400_000) }),
    ],
    [
      'invalid Cedar',
      'invalid_cedar',
      () =>
        signFiles(sampleFiles({ files: { 'policies.cedar': 'permit (principal, action, resource) when { resource.nope };' } }), { version: 3, keys: [root] }),
    ],
  ];

  it.each(refusals)('refuses %s (%s), says why, and keeps the last good bundle in force', async (_what, code, make) => {
    await gh.until((s) => s.policy.version === '2', 'bundle v2 in force');
    gh.writeBundle(await make());
    const status = await gh.until((s) => s.policy.lastRejection?.code === code && s.policy.lastRejection.at !== undefined, `a ${code} rejection`);
    expect(status.policy).toMatchObject({
      mode: 'managed',
      state: 'enforcing',
      version: '2',
      lastRejection: { code, source: join(gh.managedDir, 'policy.bundle') },
    });
    expect(gh.logs.some((l) => l.includes('"policy.rejected"') && l.includes(`"code":"${code}"`))).toBe(true);
    const connected = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
    expect(await toolNames(connected)).toEqual(['crm__get_contact', 'crm__refund', 'crm__search_contacts']);
    // Put the good one back for the next case (the same v2 again is accepted).
    gh.writeBundle(v2);
    await gh.until((s) => s.policy.lastRejection?.code !== code || s.policy.version === '2', 'v2 again');
  });

  it('keeps the last good bundle across a restart of the daemon, when the managed file is bad', async () => {
    gh.writeBundle(await signFiles(sampleFiles(), { version: 9, keys: [stranger] }));
    await gh.until((s) => s.policy.lastRejection?.code === 'untrusted_key', 'the rejection');
    await gh.daemon.stop();
    // Same home, same managed directory: a new daemon process would find the last good copy in its state directory.
    const { startDaemon } = await import('../../src/node/daemon.js');
    const { MemorySecretStore } = await import('../../src/core/secrets.js');
    const again = await startDaemon({
      paths: gh.paths,
      env: gh.env,
      secrets: new MemorySecretStore(),
      managedDir: gh.managedDir,
      testIdentity: { user: 'ann', groups: ['crm-analysts'] },
      logger: { log: () => undefined },
    });
    try {
      expect(again.status().policy).toMatchObject({ state: 'enforcing', version: '2', lastRejection: { code: 'untrusted_key' } });
    } finally {
      await again.stop();
    }
  });
});

describe('failing closed', () => {
  it('lists nothing and calls nothing when a bundle is required and none is valid, says why, and recovers live', async () => {
    const tampered = reencode(v1, (d) => void (d.files['policies.cedar'] = Buffer.from('permit (principal, action, resource);').toString('base64')));
    const gh = await startManaged({ roots: [root], bundle: tampered, identity: { user: 'ada', groups: ['it-admins'] }, settings: { required: true } });
    try {
      expect(gh.status().policy).toMatchObject({
        mode: 'managed',
        state: 'fail-closed',
        reason: expect.stringContaining('policies.cedar does not match its signed hash'),
      });
      expect(gh.status().servers).toEqual([]);
      const { connected, changes } = await watch(gh);
      expect(await toolNames(connected)).toEqual([]);
      await expect(connected.client.callTool({ name: 'crm__search_contacts', arguments: { query: 'a' } })).rejects.toThrow(/Unknown tool/);
      gh.writeBundle(v1);
      await gh.until((s) => s.policy.state === 'enforcing', 'the valid bundle in force');
      await eventually(() => changes() >= 1, 10_000, 'tools/list_changed');
      await eventually(async () => (await toolNames(connected)).length === 4, 20_000, 'the CRM tools once the server is up');
    } finally {
      await gh.stop();
    }
  });

  it('shows an OS user without group claims nothing, and status says sign-in is needed', async () => {
    const gh = await startManaged({ roots: [root], bundle: v1, settings: { required: true } });
    try {
      const connected = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
      await gh.until((s) => s.servers.some((v) => v.state === 'ready'), 'the CRM server', 20_000);
      expect(await toolNames(connected)).toEqual([]);
      expect(gh.status().policy.notice).toMatch(/sign-in/);
    } finally {
      await gh.stop();
    }
  });

  it('runs unmanaged, and says so, while the settings do not require a bundle and none has arrived', async () => {
    const gh = await startManaged({
      roots: [root],
      settings: { required: false },
      config: { servers: { notes: { type: 'stdio', command: process.execPath, args: [CRM_FIXTURE] } } },
    });
    try {
      expect(gh.status().policy).toMatchObject({ mode: 'unmanaged', state: 'unmanaged', reason: expect.stringContaining('do not require a bundle') });
      const connected = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
      await eventually(async () => (await toolNames(connected)).length === 4, 20_000, "the user's own server");
    } finally {
      await gh.stop();
    }
  });
});

describe('a bundle from an HTTPS URL', () => {
  let dir: string;
  let server: Server;
  let served: Buffer;
  let conditional = 0;
  let notModified = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-https-'));
    const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    run(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=Gatehouse test CA',
    );
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
    served = v1;
    server = createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) }, (req, res) => {
      const etag = `"${createHash('sha256').update(served).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] !== undefined) conditional++;
      if (req.headers['if-none-match'] === etag) {
        notModified++;
        res.writeHead(304).end();
        return;
      }
      res.writeHead(200, { etag, 'content-type': 'application/json' }).end(served);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('fetches the bundle at start, polls with ETag, and applies a newer one live', async () => {
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/gatehouse/policy.bundle`;
    const gh = await startManaged({
      roots: [root],
      identity: { user: 'ann', groups: ['crm-analysts'] },
      settings: { required: true, url, pollSeconds: 1, ca: 'corp-ca.pem' },
      extraFiles: { 'corp-ca.pem': readFileSync(join(dir, 'ca.pem'), 'utf8') },
    });
    try {
      expect(gh.status().policy).toMatchObject({ state: 'enforcing', version: '1', source: url, url });
      await eventually(() => notModified >= 1, 10_000, 'a 304 for an unchanged bundle');
      expect(conditional).toBeGreaterThanOrEqual(1);
      served = v2;
      await gh.until((s) => s.policy.version === '2', 'v2 from the URL', 10_000);
      expect(gh.status().policy.lastFetch).toMatchObject({ ok: true });
    } finally {
      await gh.stop();
    }
  });

  it('refuses a plain-http URL in the managed settings, and fails closed', async () => {
    const gh = await startManaged({
      roots: [root],
      identity: { user: 'ann', groups: ['crm-analysts'] },
      settings: { required: true, url: 'http://127.0.0.1:9/policy.bundle' },
    });
    try {
      expect(gh.status().policy).toMatchObject({ state: 'fail-closed', reason: expect.stringContaining('must be https://') });
    } finally {
      await gh.stop();
    }
  });
});

describe('pinned tool definitions', () => {
  it('hides a tool whose server now describes it differently than the catalog pinned', async () => {
    const rugPull = await signFiles(sampleFiles({ crmArgs: ['--rug-pull'] }), { version: 1, keys: [root] });
    const gh = await startManaged({ roots: [root], bundle: rugPull, identity: { user: 'sam', groups: ['crm-support'] } });
    try {
      const connected = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
      await eventually(async () => (await toolNames(connected)).length > 0, 20_000, 'the CRM tools');
      expect(await toolNames(connected)).toEqual(['crm__get_contact', 'crm__search_contacts']);
      await expect(connected.client.callTool({ name: 'crm__refund', arguments: { contact_id: 'c-1', amount: 1, currency: 'EUR' } })).rejects.toThrow(
        /Unknown tool/,
      );
      expect(gh.logs.some((l) => l.includes('"policy.tool_definition_changed"') && l.includes('"tool":"refund"'))).toBe(true);
    } finally {
      await gh.stop();
    }
  });
});

describe('local restrictions', () => {
  it("narrow for everyone and for one client, never widen, and cannot swap the catalog's server", async () => {
    const gh = await startManaged({
      roots: [root],
      bundle: v1,
      identity: { user: 'ada', groups: ['it-admins'] },
      clients: ['ide', 'briefing'],
      config: {
        // The user's own idea of "crm" (a server serving changed definitions) and an unapproved server: neither runs.
        servers: {
          crm: { type: 'stdio', command: process.execPath, args: [CRM_FIXTURE, '--rug-pull'] },
          rogue: { type: 'stdio', command: process.execPath, args: [CRM_FIXTURE] },
        },
        restrict: { disable: ['crm__refund'], clients: { briefing: { disable: ['crm__delete_*'] } } },
      },
    });
    try {
      await gh.until((s) => s.servers.some((v) => v.name === 'crm' && v.state === 'ready'), 'the CRM server', 20_000);
      expect(gh.status().servers.map((s) => s.name)).toEqual(['crm']);
      const ide = await connectBridge(gh.env, { era: 'legacy', client: 'ide', token: gh.tokens.ide! });
      const briefing = await connectBridge(gh.env, { era: 'legacy', client: 'briefing', token: gh.tokens.briefing! });
      expect(await toolNames(ide)).toEqual(['crm__delete_contact', 'crm__get_contact', 'crm__search_contacts']);
      expect(await toolNames(briefing)).toEqual(['crm__get_contact', 'crm__search_contacts']);
      // Lifting the restriction gives back exactly what the managed policy allows, live.
      let changes = 0;
      ide.client.setNotificationHandler('notifications/tools/list_changed', () => void changes++);
      await gh.writeConfig({ restrict: { disable: [] } });
      await eventually(() => changes >= 1, 10_000, 'tools/list_changed');
      expect(await toolNames(ide)).toEqual(['crm__delete_contact', 'crm__get_contact', 'crm__refund', 'crm__search_contacts']);
    } finally {
      await gh.stop();
    }
  });
});
