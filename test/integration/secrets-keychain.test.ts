/**
 * `${secret:NAME}` with a real Secret Service (gnome-keyring under a private D-Bus): values go in
 * with `gatehouse secrets set` (stdin, never argv), reach only the servers that declare them (a
 * child's environment at spawn, an HTTP server's headers per request), are scrubbed from what a
 * server writes, and a change restarts exactly the servers that use it. Missing secrets and a
 * missing keychain fail closed with the fix in the message.
 */
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';
import { CANARY_SERVER, startIdentityHome, type IdentityHome } from '../support/identity-home.js';
import { startHeaderServer, type HeaderServer } from '../support/header-server.js';
import { bridgeEnv, closeAll, connectHttp, runGatehouse, textOf } from './support/clients.js';
import { eventually } from './support/gatehouse.js';

const STRIPE = 'sk_live_canary_7f3a9b2c1d';
const ROTATED = 'sk_live_rotated_44e1aa09';
const HEADER = 'hdr-canary-5521be';

let keyring: TestKeyring;
let gh: IdentityHome;
let remote: HeaderServer;
let token: string;

const env = (extra: Record<string, string> = {}) => bridgeEnv(gh.env, { ...keyring.env, ...extra });
const set = (name: string, value: string) => runGatehouse(['secrets', 'set', name], env(), 30_000, value + '\n');
const server = (name: string) => gh.daemon.status().servers.find((s) => s.name === name)!;

beforeAll(async () => {
  if (!keyringAvailable()) throw new Error('gnome-keyring-daemon and dbus are needed (apt-get install gnome-keyring dbus)');
  keyring = await startKeyring();
  remote = await startHeaderServer(HEADER);
  // Planted before the daemon starts, through the command, as a user would.
  expect(
    (await runGatehouse(['secrets', 'set', 'stripe_key'], bridgeEnv({ GATEHOUSE_HOME: '/nonexistent-before' }, keyring.env), 30_000, STRIPE + '\n')).code,
  ).toBe(0);
  expect((await runGatehouse(['secrets', 'set', 'remote_token'], bridgeEnv({ GATEHOUSE_HOME: '/nonexistent-before' }, keyring.env), 30_000, HEADER)).code).toBe(
    0,
  );
  gh = await startIdentityHome({
    keychain: new KeychainSecretStore(),
    clients: { ide: {} },
    servers: {
      payments: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER], env: { CANARY_VAR: 'API_KEY', API_KEY: '${secret:stripe_key}' } },
      plain: { type: 'stdio', command: process.execPath, args: [CANARY_SERVER], env: { CANARY_VAR: 'API_KEY' } },
      needy: {
        type: 'stdio',
        command: process.execPath,
        args: [CANARY_SERVER],
        env: { TOKEN: 'Bearer ${secret:not_set_yet}' },
        restart: { initialDelayMs: 200, maxDelayMs: 500 },
      },
      remote: { type: 'http', url: remote.url, headers: { Authorization: 'Bearer ${secret:remote_token}' } },
    },
  });
  token = gh.tokens.ide!;
  await eventually(() => ['payments', 'plain', 'remote'].every((n) => server(n)?.state === 'ready'), 30_000, 'the servers');
});
afterAll(async () => {
  await closeAll();
  await gh?.stop();
  await remote?.stop();
  await keyring?.stop();
});

describe('gatehouse secrets', () => {
  it('reads the value from stdin, never from the command line', async () => {
    const argv = await runGatehouse(['secrets', 'set', 'from_argv', 'the-value'], env());
    expect(argv.code).toBe(2);
    expect(argv.stderr).toMatch(/give exactly one secret NAME \(the value is read from stdin, never from the command line\)/);
    expect(await new KeychainSecretStore().get('secret/from_argv' as never)).toBeUndefined();
    const empty = await runGatehouse(['secrets', 'set', 'empty_one'], env(), 15_000, '');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/the value is empty; nothing was stored/);
  });

  it('lists names only, with the servers that use each and the ones that are missing', async () => {
    const list = await runGatehouse(['secrets', 'list', '--json'], env());
    expect(JSON.parse(list.stdout)).toEqual(
      expect.arrayContaining([
        { name: 'stripe_key', stored: true, usedBy: ['payments'] },
        { name: 'remote_token', stored: true, usedBy: ['remote'] },
        { name: 'not_set_yet', stored: false, usedBy: ['needy'] },
      ]),
    );
    expect(list.stdout).not.toContain(STRIPE);
  });

  it('a secret reaches only the server that declares it, at spawn', async () => {
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    expect(textOf(await client.callTool({ name: 'payments__has_secret', arguments: {} }))).toMatch(new RegExp(`^set=true length=${STRIPE.length} `));
    expect(textOf(await client.callTool({ name: 'plain__has_secret', arguments: {} }))).toMatch(/^set=false length=0 /);
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8');
    expect(environ(server('payments').pid!)).toContain(`API_KEY=${STRIPE}`);
    expect(environ(server('plain').pid!)).not.toContain(STRIPE);
    expect(environ(process.pid)).not.toContain(STRIPE);
    // The configured value stays a reference everywhere Gatehouse reports it.
    expect(JSON.stringify(gh.daemon.status())).not.toContain(STRIPE);
  });

  it('an HTTP server gets its secret header on every request, and the value is nowhere else', async () => {
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    expect(textOf(await client.callTool({ name: 'remote__whoami', arguments: {} }))).toBe('the key was accepted');
    expect(remote.seen.length).toBeGreaterThan(1);
    expect(remote.seen.every((h) => h === `Bearer ${HEADER}`)).toBe(true);
    expect(JSON.stringify(gh.daemon.status())).not.toContain(HEADER);
  });

  it('scrubs a known secret from what a server writes to stderr, from its errors and its log messages', async () => {
    const { client } = await connectHttp(gh.daemon.httpUrl!, { era: 'legacy', token });
    await client.callTool({ name: 'payments__leak_stderr', arguments: {} });
    await expect(client.callTool({ name: 'payments__leak_error', arguments: {} })).resolves.toMatchObject({ isError: true });
    await client.callTool({ name: 'payments__leak_log', arguments: {} });
    await eventually(async () => (await runGatehouse(['logs', 'payments'], env())).stdout.includes('my key is'), 10_000, 'the stderr line');
    const logs = (await runGatehouse(['logs', 'payments'], env())).stdout;
    expect(logs).toContain('my key is [secret stripe_key redacted]');
    expect(logs).toContain('"key":"[secret stripe_key redacted]"');
    expect(logs).not.toContain(STRIPE);
    const files = readdirSync(gh.paths.logDir)
      .map((f) => readFileSync(join(gh.paths.logDir, f), 'utf8'))
      .join('\n');
    expect(files).toContain('[secret stripe_key redacted]');
    expect(files).not.toContain(STRIPE);
  });

  it('a server whose secret is missing does not start, says which and how to fix it, and starts once it is set', async () => {
    await eventually(() => /needs the secret "not_set_yet"/.test(server('needy').lastError ?? ''), 10_000, 'the needy server to fail');
    expect(server('needy').lastError).toMatch(
      /server "needy" needs the secret "not_set_yet", which is not in the keychain; add it with `gatehouse secrets set not_set_yet`/,
    );
    const result = await set('not_set_yet', 'late-value-123');
    expect(result.code).toBe(0);
    await eventually(() => server('needy').state === 'ready', 15_000, 'the needy server to start');
  });

  it('changing a secret restarts exactly the servers that use it', async () => {
    const before = Object.fromEntries(['payments', 'plain', 'remote', 'needy'].map((n) => [n, { pid: server(n).pid, restarts: server(n).restarts }]));
    const result = await set('stripe_key', ROTATED);
    expect(result).toMatchObject({ code: 0, stdout: 'stored "stripe_key" in the OS keychain (Secret Service (GNOME Keyring or KWallet)); used by payments\n' });
    expect(result.stderr).toContain('restarted: payments');
    await eventually(() => server('payments').state === 'ready' && server('payments').pid !== before.payments!.pid, 15_000, 'payments to restart');
    expect(readFileSync(`/proc/${server('payments').pid}/environ`, 'utf8')).toContain(`API_KEY=${ROTATED}`);
    for (const other of ['plain', 'remote', 'needy']) expect(server(other).restarts, other).toBe(before[other]!.restarts);
    expect(server('plain').pid).toBe(before.plain!.pid);
  });

  it('deletes a secret; the server that used it fails closed at its next start', async () => {
    const deleted = await runGatehouse(['secrets', 'delete', 'not_set_yet'], env());
    expect(deleted).toMatchObject({ code: 0, stdout: 'deleted "not_set_yet"\n' });
    await eventually(() => server('needy').state !== 'ready', 15_000, 'needy to stop');
    const again = await runGatehouse(['secrets', 'delete', 'not_set_yet'], env());
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no secret named "not_set_yet" is stored/);
  });
});

describe('without a keychain', () => {
  const noBus = () => bridgeEnv(gh.env, { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' });
  const plainFiles = () =>
    readdirSync(gh.home, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => readFileSync(join(e.parentPath, e.name)).toString('latin1'))
      .join('');

  it("`secrets set` refuses without the user's opt-in to the file store, with the fix, and writes the value nowhere", async () => {
    const result = await runGatehouse(['secrets', 'set', 'orphan'], noBus(), 30_000, 'plain-text-canary-9931\n');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^gatehouse secrets: the keychain \(Secret Service \(GNOME Keyring or KWallet\)\) could not read: .*dbus-run-session.*/s);
    expect(result.stderr).toContain('Your own secrets go to the file store only if you opt in: set "keystore": { "userSecretsInFile": true } in config.json.');
    expect(plainFiles()).not.toContain('plain-text-canary-9931');
  });

  it('with the opt-in, keeps the secret in the user-only file store, and says so', async () => {
    const config = JSON.parse(readFileSync(gh.paths.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(gh.paths.configFile, JSON.stringify({ ...config, keystore: { userSecretsInFile: true } }, null, 2));
    try {
      const result = await runGatehouse(['secrets', 'set', 'filed'], noBus(), 30_000, 'file-canary-4412\n');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`stored "filed" in the file store in ${join(gh.paths.stateDir, 'keys')}; no server refers to it yet\n`);
      const file = join(gh.paths.stateDir, 'keys', 'secret%2Ffiled.item');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const listed = await runGatehouse(['secrets', 'list', '--json'], noBus(), 30_000);
      expect(JSON.parse(listed.stdout)).toContainEqual({ name: 'filed', stored: true, usedBy: [] });
    } finally {
      writeFileSync(gh.paths.configFile, JSON.stringify(config, null, 2));
      rmSync(join(gh.paths.stateDir, 'keys', 'secret%2Ffiled.item'), { force: true });
    }
  });
});
