/**
 * The key store's rules (src/core/keystore/keystore.ts), over in-memory backends standing behind
 * the backend port (the real keychain and file backends pass the same contract in
 * test/integration/keystore.test.ts): which backend an item goes to, when the file store may be
 * used, and what happens to items kept in a file during a keychain outage.
 */
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/common/errors.js';
import { KeyStore, chooseBackend, itemClass, type KeyStoreBackend, type KeyStorePolicy } from '../../src/core/keystore/keystore.js';
import { MemorySecretStore, secretName } from '../../src/core/secrets.js';

const allowed: KeyStorePolicy = { fileStore: 'allowed', userSecretsInFile: false };

function backend(kind: 'keychain' | 'file', failure?: { message: string; timedOut: boolean }): KeyStoreBackend & { items: MemorySecretStore } {
  const items = new MemorySecretStore();
  return {
    kind,
    location: kind === 'keychain' ? 'Secret Service' : '/state/keys',
    description: kind,
    items,
    probe: async () => {
      if (failure) throw Object.assign(new GatehouseError('keychain_unavailable', failure.message), { timedOut: failure.timedOut });
    },
    get: (n) => items.get(n),
    set: (n, v) => items.set(n, v),
    delete: (n) => items.delete(n),
    list: () => items.list(),
  };
}

const name = secretName('client-credential/0123');
const secret = secretName('secret/stripe_key');

describe('choosing a backend', () => {
  it("tells the user's secrets from Gatehouse's own items by their name", () => {
    expect(itemClass('secret/stripe_key')).toBe('user-secret');
    expect(itemClass('audit-device-key/dev_1')).toBe('gatehouse');
  });

  it('uses the keychain whenever it answers', () => {
    expect(chooseBackend({ reachable: true }, { fileStore: 'forbidden', userSecretsInFile: false }, 'gatehouse')).toEqual({ backend: 'keychain' });
  });

  it("uses the file store for Gatehouse's items where no keychain answers, and for the user's secrets only on their opt-in", () => {
    const down = { reachable: false, reason: 'no bus.', timedOut: false } as const;
    expect(chooseBackend(down, allowed, 'gatehouse')).toEqual({ backend: 'file' });
    expect(chooseBackend(down, allowed, 'user-secret')).toMatchObject({ backend: 'none', reason: expect.stringMatching(/only if you opt in/) });
    expect(chooseBackend(down, { ...allowed, userSecretsInFile: true }, 'user-secret')).toEqual({ backend: 'file' });
  });

  it('never uses a file when the managed policy forbids it, nor when the keychain exists but does not answer (a locked keyring)', () => {
    const down = { reachable: false, reason: 'no bus.', timedOut: false } as const;
    expect(chooseBackend(down, { fileStore: 'forbidden', forbiddenBy: '/etc/gatehouse/policy.json', userSecretsInFile: true }, 'gatehouse')).toMatchObject({
      backend: 'none',
      reason: expect.stringMatching(/forbidden by the managed policy \(\/etc\/gatehouse\/policy.json\)/),
    });
    expect(chooseBackend({ reachable: false, reason: 'no answer within 3000 ms', timedOut: true }, allowed, 'gatehouse')).toEqual({
      backend: 'none',
      reason: 'no answer within 3000 ms',
    });
  });
});

describe('the key store', () => {
  it('keeps items in the file store while no keychain answers, and names it in its status', async () => {
    const file = backend('file');
    const store = await KeyStore.open(backend('keychain', { message: 'no bus.', timedOut: false }), file, allowed);
    await store.set(name, 'ghc_token');
    expect((await file.items.get(name))?.unwrap()).toBe('ghc_token');
    expect(store.status()).toMatchObject({ backend: 'file', location: '/state/keys', reason: 'no bus.', userSecrets: 'none' });
    await expect(store.set(secret, 'sk')).rejects.toThrow(/only if you opt in/);
  });

  it('moves an item kept in a file during an outage into the keychain at its first read', async () => {
    const keychain = backend('keychain');
    const file = backend('file');
    await file.items.set(name, 'kept-during-outage');
    const store = await KeyStore.open(keychain, file, allowed);
    expect((await store.get(name))?.unwrap()).toBe('kept-during-outage');
    expect((await keychain.items.get(name))?.unwrap()).toBe('kept-during-outage');
    expect(await file.items.get(name)).toBeUndefined();
  });

  it("does not read the user's secrets from a file without their opt-in, even with a keychain", async () => {
    const file = backend('file');
    await file.items.set(secret, 'planted');
    const store = await KeyStore.open(backend('keychain'), file, allowed);
    expect(await store.get(secret)).toBeUndefined();
    expect(await store.list()).toEqual([]);
  });

  it('replaces a stale file copy when an item is written to the keychain, and deletes it from both', async () => {
    const keychain = backend('keychain');
    const file = backend('file');
    await file.items.set(name, 'stale');
    const store = await KeyStore.open(keychain, file, allowed);
    await store.set(name, 'fresh');
    expect(await file.items.get(name)).toBeUndefined();
    await file.items.set(name, 'stale again');
    expect(await store.delete(name)).toBe(true);
    expect(await keychain.items.get(name)).toBeUndefined();
    expect(await file.items.get(name)).toBeUndefined();
  });

  it('touches no file at all when the managed policy forbids the file store', async () => {
    const file = backend('file');
    await file.items.set(name, 'old file item');
    const store = await KeyStore.open(backend('keychain'), file, { fileStore: 'forbidden', userSecretsInFile: true });
    expect(await store.get(name)).toBeUndefined();
    expect(await store.list()).toEqual([]);
  });

  it('lists the names of both backends, sorted', async () => {
    const keychain = backend('keychain');
    const file = backend('file');
    await keychain.items.set(secretName('b'), 'x');
    await file.items.set(secretName('a'), 'y');
    expect(await (await KeyStore.open(keychain, file, allowed)).list()).toEqual(['a', 'b']);
  });
});
