/**
 * Secrets: a port for the OS keychain, and the wrapper that keeps a secret value out of every log,
 * audit record, error message and `util.inspect` by construction.
 *
 * The key store (`src/core/keystore/`) routes items to the OS keychain or the user-only file store
 * (adapters in `src/node/keystore/`); `MemorySecretStore` below is for tests and for nothing else
 * (it forgets everything when the process ends). One contract test
 * (`test/integration/keystore.test.ts`) runs the same cases against all three.
 */
import { inspect } from 'node:util';
import { GatehouseError } from '../common/errors.js';

/** A value that prints as `[redacted]` however it is printed. Only the code that needs it calls `unwrap()`. */
export class Redacted<T> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  /** The secret itself: call it at the last moment, where it is used, and never log the result. */
  unwrap(): T {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

/** Keychain item names: letters, digits, `.`, `_`, `-`, `:` and `/`, at most 200 characters. */
export type SecretName = string & { readonly __secretName: unique symbol };

const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
export const SECRET_NAME_RULE = 'a secret name starts with a letter or digit and has at most 200 letters, digits, ".", "_", "-", ":" or "/"';

export function isSecretName(value: string): value is SecretName {
  return SECRET_NAME.test(value);
}

export function secretName(value: string): SecretName {
  if (!isSecretName(value)) throw new GatehouseError('invalid_secret_name', `"${value}" is not a valid secret name: ${SECRET_NAME_RULE}`);
  return value;
}

/**
 * Where secrets live. Every method rejects with a `GatehouseError` whose code is
 * `keychain_unavailable` (and whose message says how to fix it) when no keychain can be reached;
 * an implementation never falls back to storing a value anywhere else.
 */
export interface SecretStore {
  /** A human-readable name for status and errors ("Secret Service (GNOME Keyring)", "memory"). */
  readonly description: string;
  get(name: SecretName): Promise<Redacted<string> | undefined>;
  set(name: SecretName, value: string): Promise<void>;
  /** True when there was something to delete. */
  delete(name: SecretName): Promise<boolean>;
  /** Names only, sorted. */
  list(): Promise<SecretName[]>;
}

/** For unit tests: a keychain that lives in this process only. */
export class MemorySecretStore implements SecretStore {
  readonly kind = 'memory';
  readonly description = 'memory (tests only)';
  readonly location = 'memory (tests only)';
  readonly #items = new Map<SecretName, string>();

  async probe(): Promise<void> {}
  async get(name: SecretName): Promise<Redacted<string> | undefined> {
    const value = this.#items.get(secretName(name));
    return value === undefined ? undefined : new Redacted(value);
  }
  async set(name: SecretName, value: string): Promise<void> {
    if (typeof value !== 'string' || value.length === 0) throw new GatehouseError('invalid_secret', 'a secret value must be a non-empty string');
    this.#items.set(secretName(name), value);
  }
  async delete(name: SecretName): Promise<boolean> {
    return this.#items.delete(secretName(name));
  }
  async list(): Promise<SecretName[]> {
    return [...this.#items.keys()].sort();
  }
}
