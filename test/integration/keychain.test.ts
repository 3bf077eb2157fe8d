/**
 * The SecretStore contract, run as one set of cases against the in-memory store and against the
 * real OS keychain (a private GNOME Keyring over a private D-Bus session). Then what only the real
 * keychain can show: no fallback when no Secret Service is reachable, and the device key living there.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDeviceKey, deviceKeyName } from '../../src/core/audit/device-key.js';
import { MemorySecretStore, Redacted, secretName, type SecretStore } from '../../src/core/secrets.js';
import { KeychainSecretStore } from '../../src/node/keychain-secret-store.js';
import { keyringAvailable, startKeyring, type TestKeyring } from '../support/keyring.js';

const REPO = resolve(import.meta.dirname, '../..');
let keyring: TestKeyring | undefined;

beforeAll(async () => {
  if (keyringAvailable()) keyring = await startKeyring();
});
afterAll(async () => {
  await keyring?.stop();
});

const stores: [string, () => SecretStore][] = [
  ['the in-memory store', () => new MemorySecretStore()],
  ['the OS keychain (Secret Service)', () => new KeychainSecretStore({ service: `gatehouse-test-${randomUUID().slice(0, 8)}` })],
];

describe.each(stores)('SecretStore contract: %s', (label, make) => {
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
  it('fails with an error that says how to fix it, and stores nothing elsewhere', () => {
    const script = `
      import { KeychainSecretStore } from ${JSON.stringify(join(REPO, 'dist/src/node/keychain-secret-store.js'))};
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
      expect(out[op]?.message).toMatch(/never falls back/);
    }
  });
});
