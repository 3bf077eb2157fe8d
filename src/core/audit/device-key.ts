/**
 * The per-device Ed25519 key that signs audit checkpoints and the device's requests to the hub.
 * Its private half lives only in the keychain (`SecretStore`), as PKCS#8 DER in base64, under
 * `audit-device-key/<device>`; in memory it is a `KeyObject` wrapped in `Redacted`.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../../common/errors.js';
import { Redacted, secretName, type SecretName, type SecretStore } from '../secrets.js';
import { ed25519Signer, keyIdOf, rawPublicKey, type Signer } from './event.js';

export interface DeviceKey {
  device: string;
  /** Base64url of the 32 raw public key bytes. */
  publicKey: string;
  keyId: string;
  publicKeyObject: KeyObject;
  sign: Signer;
  /** The private half, for code that must hand it on (never printed). */
  privateKey: Redacted<KeyObject>;
  /** True when this call created the key. */
  created: boolean;
}

export function deviceKeyName(device: string): SecretName {
  return secretName(`audit-device-key/${device}`);
}

/**
 * Reads the device key from the keychain, creating it first when `create` is set and none exists.
 * Rejects with `keychain_unavailable` when the keychain cannot be reached, and with
 * `device_key_missing` when the key is absent and may not be created.
 */
export async function loadDeviceKey(store: SecretStore, device: string, options: { create: boolean }): Promise<DeviceKey> {
  const name = deviceKeyName(device);
  let stored = await store.get(name);
  let created = false;
  if (!stored) {
    if (!options.create) {
      throw new GatehouseError(
        'device_key_missing',
        `the keychain (${store.description}) holds no audit key for device ${device}; checkpoints cannot be signed`,
      );
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    await store.set(name, privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'));
    // Read back what the keychain holds, so that two processes creating at once end up with one key.
    stored = await store.get(name);
    if (!stored) throw new GatehouseError('keychain_unavailable', `the keychain (${store.description}) did not keep the audit key it was given`);
    created = true;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(stored.unwrap(), 'base64'), format: 'der', type: 'pkcs8' });
  } catch {
    throw new GatehouseError('device_key_invalid', `the keychain item ${name} does not hold an Ed25519 private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new GatehouseError('device_key_invalid', `the keychain item ${name} is not an Ed25519 key`);
  const publicKeyObject = createPublicKey(privateKey);
  const publicKey = rawPublicKey(publicKeyObject);
  return { device, publicKey, keyId: keyIdOf(publicKey), publicKeyObject, sign: ed25519Signer(privateKey), privateKey: new Redacted(privateKey), created };
}
