/**
 * `${secret:NAME}` in server config: resolved from the OS keychain where a connection is made, for
 * that server only, and nowhere else. A stdio server gets the values in its environment at spawn;
 * an HTTP server's header values stay `Redacted` until the request is sent. Values never enter
 * the supervisor's config, call state, logs, the audit log or status; known values are scrubbed
 * from whatever a server writes to stderr or says in errors and log messages.
 *
 * User secrets live in the keychain under `secret/<NAME>`, apart from Gatehouse's own items
 * (the audit device key, the sign-in, the bridges' credentials).
 */
import type { ServerConfig } from '../../common/config.js';
import { GatehouseError } from '../../common/errors.js';
import { Redacted, secretName, type SecretName, type SecretStore } from '../../core/secrets.js';

export const USER_SECRET_PREFIX = 'secret/';
/** The names `${secret:NAME}` may use (kept equal to the config file's rule). */
export const USER_SECRET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const USER_SECRET_RULE = 'a secret name is 1-128 letters, digits, underscores, dots and hyphens, starting with a letter, digit or underscore';

const REFERENCE = /\$\{secret:([^}]*)\}/g;

export function userSecretItem(name: string): SecretName {
  if (!USER_SECRET_NAME.test(name)) throw new GatehouseError('invalid_secret_name', `"${name}" is not a valid secret name: ${USER_SECRET_RULE}`);
  return secretName(`${USER_SECRET_PREFIX}${name}`);
}

/** The names a server's config refers to (env values of a stdio server, headers of an HTTP server). */
export function secretReferences(config: ServerConfig): string[] {
  const values = config.type === 'stdio' ? Object.values(config.env) : Object.values(config.headers);
  const names = new Set<string>();
  for (const value of values) for (const match of value.matchAll(REFERENCE)) names.add(match[1]!);
  return [...names].sort();
}

/** Replaces every known secret value in text, as written and in the forms it takes inside JSON and URLs. */
export class SecretScrubber {
  readonly #values = new Map<string, string>();
  #pattern: RegExp | undefined;

  add(name: string, value: Redacted<string>): void {
    const plain = value.unwrap();
    if (plain.length === 0) return;
    const forms = new Set([plain, JSON.stringify(plain).slice(1, -1), encodeURIComponent(plain), Buffer.from(plain, 'utf8').toString('base64')]);
    let changed = false;
    for (const form of forms) {
      if (form.length > 0 && this.#values.get(form) !== name) {
        this.#values.set(form, name);
        changed = true;
      }
    }
    if (changed) this.#pattern = undefined;
  }

  /**
   * Replaces every value known under `name` with these (an upstream sign-in's current tokens: a
   * renewal retires old ones, so that the scrubber does not grow with every renewal).
   */
  set(name: string, values: readonly Redacted<string>[]): void {
    for (const [form, owner] of this.#values) if (owner === name) this.#values.delete(form);
    this.#pattern = undefined;
    for (const value of values) this.add(name, value);
  }

  get size(): number {
    return this.#values.size;
  }

  scrub(text: string): string {
    if (this.#values.size === 0 || text.length === 0) return text;
    this.#pattern ??= new RegExp(
      [...this.#values.keys()]
        .sort((a, b) => b.length - a.length)
        .map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('|'),
      'g',
    );
    return text.replace(this.#pattern, (found) => `[secret ${this.#values.get(found) ?? ''} redacted]`);
  }

  /** The same for an error, keeping its class and code. */
  scrubError(error: unknown): unknown {
    if (!(error instanceof Error)) return typeof error === 'string' ? this.scrub(error) : error;
    const clean = this.scrub(error.message);
    if (clean === error.message) return error;
    const copy = new Error(clean);
    const code = (error as { code?: unknown }).code;
    if (code !== undefined) Object.assign(copy, { code });
    return copy;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretScrubber(${this.#values.size} forms)`;
  }

  toJSON(): string {
    return '[redacted]';
  }
}

/** What a connection needs: the stdio env to spawn with, the HTTP headers to send. */
export interface ResolvedSecrets {
  /** Env values with references replaced: handed to spawn and dropped. */
  env: Record<string, string>;
  /** Header values; those that carried a reference stay redacted until the request. */
  headers: Record<string, string | Redacted<string>>;
}

export class SecretResolver {
  constructor(
    private readonly store: SecretStore,
    readonly scrubber: SecretScrubber,
  ) {}

  /**
   * Resolves the references of one server's config. A missing secret or an unreachable keychain
   * fails the connection with a message that names the secret and says how to fix it; a reference
   * is never passed on as text.
   */
  async resolve(server: string, config: ServerConfig): Promise<ResolvedSecrets> {
    const names = secretReferences(config);
    const values = new Map<string, Redacted<string>>();
    for (const name of names) {
      if (!USER_SECRET_NAME.test(name))
        throw new GatehouseError('invalid_secret_name', `server "${server}" refers to "\${secret:${name}}": ${USER_SECRET_RULE}`);
      const value = await this.store.get(userSecretItem(name));
      if (value === undefined) {
        throw new GatehouseError(
          'secret_missing',
          `server "${server}" needs the secret "${name}", which is not in the keychain; add it with \`gatehouse secrets set ${name}\` (the server starts at its next retry)`,
        );
      }
      this.scrubber.add(name, value);
      values.set(name, value);
    }
    const substitute = (text: string): string => text.replace(REFERENCE, (_, name: string) => values.get(name)!.unwrap());
    if (config.type === 'stdio') {
      return { env: Object.fromEntries(Object.entries(config.env).map(([k, v]) => [k, substitute(v)])), headers: {} };
    }
    const headers: Record<string, string | Redacted<string>> = {};
    for (const [k, v] of Object.entries(config.headers)) headers[k] = v.includes('${secret:') ? new Redacted(substitute(v)) : v;
    return { env: {}, headers };
  }
}
