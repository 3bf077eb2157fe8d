/**
 * The file backend of the key store, for machines where no OS keychain answers (a headless box, a
 * devcontainer, a minimal desktop): one file per item, mode 0600, in a directory of the state
 * directory that only this user may use (0700, owned by them; `ensureUserOnlyDir`), as `gh` and
 * `docker` keep their credentials. It protects against other local users, not against processes
 * of the same user: SECURITY.md says so, and a managed policy can forbid it.
 *
 * Writes are atomic (a private temporary file, fsync, rename), so a crash leaves the old value or
 * the new one. A file that is a link, is not this user's, or is open to group or others is
 * refused (fail closed), never read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstat, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { KeyStoreBackend } from '../../core/keystore/keystore.js';
import { Redacted, isSecretName, secretName, type SecretName } from '../../core/secrets.js';
import { ensureUserOnlyDir } from '../paths.js';

export const KEYS_DIR = 'keys';
const SUFFIX = '.item';
/** Items are small (a token, a PKCS#8 key, a refresh token with a few fields). */
const MAX_ITEM_BYTES = 64 * 1024;

const ItemSchema = z.object({ v: z.literal(1), name: z.string(), value: z.string().min(1) }).strict();

export interface FileKeyStoreOptions {
  /** Defaults to `process.platform`; modes and owners are not checked on Windows (ACLs). */
  platform?: NodeJS.Platform;
  uid?: number;
}

/** The directory the file backend uses inside a state directory. */
export function fileKeyStoreDir(stateDir: string): string {
  return join(stateDir, KEYS_DIR);
}

/**
 * The file that holds `name`: the name itself where it makes a safe, short file name ("/" and ":"
 * escaped), else a hash of it. The item's name is also inside the file, and checked on read.
 */
export function itemFileName(name: string): string {
  const escaped = name.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return escaped.length <= 200 ? `${escaped}${SUFFIX}` : `h-${createHash('sha256').update(name).digest('hex')}${SUFFIX}`;
}

export class FileKeyStore implements KeyStoreBackend {
  readonly kind = 'file';
  readonly description: string;
  private readonly platform: NodeJS.Platform;
  private readonly uid: number | undefined;

  constructor(
    readonly location: string,
    options: FileKeyStoreOptions = {},
  ) {
    this.platform = options.platform ?? process.platform;
    this.uid = options.uid ?? process.getuid?.();
    this.description = `file store (${location})`;
  }

  async probe(): Promise<void> {
    await this.ready();
  }

  async get(name: SecretName): Promise<Redacted<string> | undefined> {
    secretName(name);
    await this.ready();
    const item = await this.read(join(this.location, itemFileName(name)));
    if (item === undefined) return undefined;
    if (item.name !== name)
      throw new GatehouseError('keystore_item_invalid', `${join(this.location, itemFileName(name))} holds another item ("${item.name}"); delete the file`);
    return new Redacted(item.value);
  }

  async set(name: SecretName, value: string): Promise<void> {
    secretName(name);
    if (typeof value !== 'string' || value.length === 0) throw new GatehouseError('invalid_secret', 'a secret value must be a non-empty string');
    const body = JSON.stringify({ v: 1, name, value }) + '\n';
    if (Buffer.byteLength(body) > MAX_ITEM_BYTES) throw new GatehouseError('invalid_secret', `a key store item is at most ${MAX_ITEM_BYTES} bytes`);
    await this.ready();
    const target = join(this.location, itemFileName(name));
    const temp = join(this.location, `.${randomBytes(8).toString('hex')}.tmp`);
    try {
      // O_EXCL with mode 0600: the file is private from its first byte, and nothing pre-planted is reused.
      const handle = await open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(body, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw new GatehouseError('keystore_write_failed', `could not write ${target}: ${errorMessage(error)}`, { cause: error });
    }
    await this.syncDir();
  }

  async delete(name: SecretName): Promise<boolean> {
    secretName(name);
    await this.ready();
    try {
      await unlink(join(this.location, itemFileName(name)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new GatehouseError('keystore_write_failed', `could not delete ${join(this.location, itemFileName(name))}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    await this.syncDir();
    return true;
  }

  async list(): Promise<SecretName[]> {
    await this.ready();
    const names: SecretName[] = [];
    for (const entry of await readdir(this.location)) {
      if (!entry.endsWith(SUFFIX)) continue;
      const item = await this.read(join(this.location, entry));
      if (item && isSecretName(item.name)) names.push(item.name);
    }
    return names.sort();
  }

  /** The directory exists, is this user's, and is private (ensureUserOnlyDir makes it so or refuses). */
  private async ready(): Promise<void> {
    try {
      await ensureUserOnlyDir(this.location, { platform: this.platform, ...(this.uid !== undefined ? { uid: this.uid } : {}) });
    } catch (error) {
      throw new GatehouseError('keychain_unavailable', `the file store cannot be used: ${errorMessage(error)}`, { cause: error });
    }
  }

  private async read(file: string): Promise<{ name: string; value: string } | undefined> {
    let info;
    try {
      info = await lstat(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (this.platform !== 'win32') {
      if (!info.isFile()) throw new GatehouseError('keystore_unsafe', `${file} is not a plain file (a link?); it is not read. Delete it`);
      if (this.uid !== undefined && info.uid !== this.uid)
        throw new GatehouseError('keystore_unsafe', `${file} belongs to uid ${info.uid}, not to you; it is not read. Delete it`);
      if ((info.mode & 0o077) !== 0) {
        throw new GatehouseError(
          'keystore_unsafe',
          `${file} is open to other users (mode 0${(info.mode & 0o777).toString(8)}); it is not read. Anyone could have read it: replace the item (revoke or rotate it) and delete the file`,
        );
      }
    }
    if (info.size > MAX_ITEM_BYTES) throw new GatehouseError('keystore_item_invalid', `${file} is larger than any key store item; delete it`);
    const parsed = ItemSchema.safeParse(safeJson(await readFile(file, 'utf8')));
    if (!parsed.success) throw new GatehouseError('keystore_item_invalid', `${file} is not a key store item; delete it`);
    return parsed.data;
  }

  private async syncDir(): Promise<void> {
    if (this.platform === 'win32') return;
    const handle = await open(this.location, 'r').catch(() => undefined);
    if (!handle) return;
    await handle.sync().catch(() => undefined);
    await handle.close();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
