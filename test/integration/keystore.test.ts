/**
 * The key store contract, run as one set of cases against the in-memory store, the real OS keychain
 * (a private GNOME Keyring over a private D-Bus session) and the user-only file store. Then what only
 * the real backends can show: the file store's modes and refusals, the keychain adapter without a
 * Secret Service, and the key store choosing (and forbidding) the file store in a real process.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDeviceKey, deviceKeyName } from '../../src/core/audit/device-key.js';
import { MemorySecretStore, Redacted, secretName, type SecretStore } from '../../src/core/secrets.js';
import { KeychainSecretStore } from '../../src/node/keystore/keychain.js';
import { FileKeyStore, itemFileName } from '../../src/node/keystore/file.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';

const REPO = resolve(import.meta.dirname, '../..');
let keyring: TestKeyring | undefined;
const scratch = mkdtempSync(join(tmpdir(), 'gh-keystore-'));

beforeAll(async () => {
  if (keyringAvailable()) keyring = await startKeyring();
});
afterAll(async () => {
  await keyring?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const stores: [string, () => SecretStore][] = [
  ['the in-memory store', () => new MemorySecretStore()],
  ['the OS keychain (Secret Service)', () => new KeychainSecretStore({ service: `gatehouse-test-${randomUUID().slice(0, 8)}` })],
  ['the file store', () => new FileKeyStore(join(scratch, randomUUID(), 'keys'))],
];

describe.each(stores)('key store contract: %s', (label, make) => {
  const needsKeyring = label.includes('keychain');
  const store = () => {
    if (needsKeyring && !keyring) throw new Error('gnome-keyring and dbus are not installed (apt-get install gnome-keyring dbus)');
    return make();
  };

  it('returns undefined for a secret that was never set', async () => {
    expect(await store().get(secretName('never-set'))).toBeUndefined();
  });

  it('gives back what was set, wrapped so that printing it shows [redacted]', async () => {
    const s = store();
    await s.set(secretName('stripe_key'), 'sk_canary_8f3a');
    const value = await s.get(secretName('stripe_key'));
    expect(value).toBeInstanceOf(Redacted);
    expect(value!.unwrap()).toBe('sk_canary_8f3a');
    expect(String(value)).toBe('[redacted]');
    expect(JSON.stringify({ value })).toBe('{"value":"[redacted]"}');
    expect(inspect(value)).toBe('[redacted]');
    expect(`${value}`).not.toContain('canary');
  });

  it('replaces a value on a second set', async () => {
    const s = store();
    await s.set(secretName('token'), 'first');
    await s.set(secretName('token'), 'second');
    expect((await s.get(secretName('token')))!.unwrap()).toBe('second');
  });

  it('lists names only, sorted, and forgets deleted ones', async () => {
    const s = store();
    await s.set(secretName('b-name'), 'x');
    await s.set(secretName('a-name'), 'y');
    expect(await s.list()).toEqual(['a-name', 'b-name']);
    expect(await s.delete(secretName('a-name'))).toBe(true);
    expect(await s.delete(secretName('a-name'))).toBe(false);
    expect(await s.list()).toEqual(['b-name']);
    expect(await s.get(secretName('a-name'))).toBeUndefined();
  });

  it('refuses an empty value and an invalid name', async () => {
    const s = store();
    await expect(s.set(secretName('empty'), '')).rejects.toThrow(/non-empty/);
    expect(() => secretName('../etc/passwd')).toThrow(/not a valid secret name/);
  });

  it('keeps a device key whose public half signs and whose private half never prints', async () => {
    const s = store();
    const first = await loadDeviceKey(s, 'dev_abcdefghijklmnopqrstuvwxyz', { create: true });
    const again = await loadDeviceKey(s, 'dev_abcdefghijklmnopqrstuvwxyz', { create: false });
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.publicKey).toBe(first.publicKey);
    expect(inspect(again.privateKey)).toBe('[redacted]');
    expect(await s.list()).toContain(deviceKeyName('dev_abcdefghijklmnopqrstuvwxyz'));
  });

  it('says a device key is missing rather than making one when told not to', async () => {
    await expect(loadDeviceKey(store(), 'dev_zzzzzzzzzzzzzzzzzzzzzzzzzz', { create: false })).rejects.toThrow(/holds no audit key/);
  });
});

describe('the keychain adapter without a Secret Service', () => {
  // In a child process: the library keeps its D-Bus connection for the life of a process.
  it('fails with an error that says how to fix it, and writes nothing anywhere itself', () => {
    const script = `
      import { KeychainSecretStore } from ${JSON.stringify(join(REPO, 'dist/src/node/keystore/keychain.js'))};
      const store = new KeychainSecretStore({ service: 'gatehouse-test-nobus', timeoutMs: 5000 });
      const out = {};
      for (const [op, run] of [['set', () => store.set('x', 'value')], ['get', () => store.get('x')], ['list', () => store.list()]]) {
        try { await run(); out[op] = 'succeeded'; } catch (e) { out[op] = { code: e.code, message: e.message }; }
      }
      console.log(JSON.stringify(out));`;
    const env: NodeJS.ProcessEnv = { ...process.env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/gatehouse-test-bus' };
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8', timeout: 30_000 });
    const out = JSON.parse(run.stdout) as Record<string, { code: string; message: string }>;
    for (const op of ['set', 'get', 'list']) {
      expect(out[op]?.code, op).toBe('keychain_unavailable');
      expect(out[op]?.message).toMatch(/Secret Service/);
      expect(out[op]?.message).toMatch(/gnome-keyring-daemon --unlock/);
    }
  });
});

describe('the file store', () => {
  const fresh = () => join(scratch, randomUUID(), 'keys');

  it('keeps each item in a 0600 file in a 0700 directory, with the value nowhere else in the directory listing', async () => {
    const dir = fresh();
    const store = new FileKeyStore(dir);
    await store.set(secretName('client-credential/abc'), 'ghc_canary_value');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toEqual([itemFileName('client-credential/abc')]);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    expect(files.join(' ')).not.toContain('canary');
  });

  it('makes a directory that was opened to others private again before using it', async () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    await new FileKeyStore(dir).set(secretName('x'), 'v');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('refuses an item file that is open to other users, and a planted link, rather than read them', async () => {
    const dir = fresh();
    const store = new FileKeyStore(dir);
    await store.set(secretName('token'), 'value');
    chmodSync(join(dir, itemFileName('token')), 0o644);
    await expect(store.get(secretName('token'))).rejects.toThrow(/is open to other users \(mode 0644\); it is not read/);
    const elsewhere = join(scratch, `planted-${randomUUID()}`);
    writeFileSync(elsewhere, JSON.stringify({ v: 1, name: 'linked', value: 'planted' }), { mode: 0o600 });
    symlinkSync(elsewhere, join(dir, itemFileName('linked')));
    await expect(store.get(secretName('linked'))).rejects.toThrow(/is not a plain file \(a link\?\)/);
  });

  it('refuses a file that holds another item than its name says, and one that is not an item', async () => {
    const dir = fresh();
    const store = new FileKeyStore(dir);
    await store.set(secretName('a'), 'value-a');
    // An item copied over another's file name.
    writeFileSync(join(dir, itemFileName('b')), readFileSync(join(dir, itemFileName('a'))), { mode: 0o600 });
    await expect(store.get(secretName('b'))).rejects.toThrow(/holds another item \("a"\)/);
    writeFileSync(join(dir, itemFileName('c')), 'not json', { mode: 0o600 });
    await expect(store.get(secretName('c'))).rejects.toThrow(/is not a key store item/);
  });

  it('leaves no temporary file behind and keeps the old value when a write cannot happen', async () => {
    const dir = fresh();
    const store = new FileKeyStore(dir);
    await store.set(secretName('kept'), 'old');
    await expect(store.set(secretName('kept'), 'x'.repeat(70 * 1024))).rejects.toThrow(/at most 65536 bytes/);
    expect((await store.get(secretName('kept')))!.unwrap()).toBe('old');
    expect(readdirSync(dir)).toEqual([itemFileName('kept')]);
  });
});

describe('the key store in a process without a Secret Service', () => {
  /** Runs the key store as the bridge and the daemon open it, in a child (the D-Bus connection lives as long as a process). */
  const run = (stateDir: string, managedDir: string, script: string) => {
    const code = `
      import { openKeyStore } from ${JSON.stringify(join(REPO, 'dist/src/node/keystore/open.js'))};
      const store = await openKeyStore({ stateDir: ${JSON.stringify(stateDir)}, managedDir: ${JSON.stringify(managedDir)}, timeoutMs: 3000 });
      const out = { status: store.status() };
      ${script}
      console.log(JSON.stringify(out));`;
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: scratch, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/gatehouse-test-bus' };
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8', timeout: 30_000 });
    if (result.status !== 0) throw new Error(result.stderr);
    return JSON.parse(result.stdout) as Record<string, unknown> & { status: Record<string, unknown> };
  };

  it("keeps Gatehouse's own items in the file store and says so, but not the user's secrets without their opt-in", () => {
    const state = join(scratch, randomUUID());
    const out = run(
      state,
      join(scratch, 'no-managed'),
      `
      await store.set('client-credential/abc', 'ghc_value');
      out.got = (await store.get('client-credential/abc')).unwrap();
      try { await store.set('secret/stripe_key', 'sk'); out.secret = 'stored'; } catch (e) { out.secret = e.message; }`,
    );
    expect(out.status).toMatchObject({ backend: 'file', fileStore: 'allowed', userSecrets: 'none', location: join(state, 'keys') });
    expect(out.status.description).toBe(`the file store in ${join(state, 'keys')} (no OS keychain answered)`);
    expect(out.got).toBe('ghc_value');
    expect(out.secret).toMatch(/Your own secrets go to the file store only if you opt in: set "keystore": \{ "userSecretsInFile": true \}/);
  });

  it('keeps nothing in a file when the managed policy forbids the file store', () => {
    const managed = join(scratch, randomUUID());
    mkdirSync(managed, { recursive: true, mode: 0o755 });
    writeFileSync(join(managed, 'policy.json'), JSON.stringify({ trust: ['root.pub'], keystore: { fileStore: 'forbidden' } }), { mode: 0o644 });
    const state = join(scratch, randomUUID());
    const out = run(state, managed, `try { await store.set('client-credential/abc', 'v'); out.set = 'stored'; } catch (e) { out.set = e.message; }`);
    expect(out.status).toMatchObject({ backend: 'none', fileStore: 'forbidden' });
    expect(out.set).toMatch(/The file store is forbidden by the managed policy/);
    expect(() => readdirSync(join(state, 'keys'))).toThrow(/ENOENT/);
  });
});
