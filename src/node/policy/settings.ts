/**
 * The managed location: where an organisation's device management puts Gatehouse's policy
 * settings. It is the only source of trust anchors and of the `required` flag; nothing in the
 * user's config or environment can name another location or add a key.
 *
 *   Linux    /etc/gatehouse
 *   macOS    /Library/Application Support/Gatehouse
 *   Windows  C:\ProgramData\Gatehouse
 *
 * policy.json there:
 *   {
 *     "trust": ["root-2026.pub"],       root public keys (PEM files in this directory)
 *     "required": true,                 no valid bundle → fail closed (default false)
 *     "bundle": "policy.bundle",        a bundle file in this directory (default policy.bundle)
 *     "url": "https://...",             and/or a URL polled for bundles, with ETag
 *     "pollSeconds": 300,
 *     "ca": "corp-root.pem",            an extra CA for the URL (PEM file in this directory)
 *     "keystore": { "fileStore": "forbidden" }
 *                                       no credential or key is ever kept in a file (default "allowed")
 *     "telemetry": { "mode": "on", "endpoint": "https://otel.example.com", "headers": {...} }
 *                                       traces and metrics to the organisation's collector, whatever the
 *                                       user's config says; { "mode": "off" } forbids them (docs/telemetry.md)
 *   }
 *
 * On POSIX systems the directory, policy.json and every file it names must be owned by root and
 * not writable by group or others; otherwise the settings are refused, since a user who can write
 * them could trust their own key.
 */
import { lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { formatPath, TelemetrySchema, type TelemetryConfig } from '../../common/config.js';
import { publicKeyFromPem, type PublicKeyInfo } from './keys.js';

export const SETTINGS_FILE = 'policy.json';
export const DEFAULT_BUNDLE_FILE = 'policy.bundle';

/** The platform's managed location. Deliberately not derived from environment variables (a user sets those). */
export function managedDirFor(platform: NodeJS.Platform): string {
  if (platform === 'win32') return 'C:\\ProgramData\\Gatehouse';
  if (platform === 'darwin') return '/Library/Application Support/Gatehouse';
  return '/etc/gatehouse';
}

const LocalFile = z
  .string()
  .min(1)
  .max(255)
  .refine((v) => !v.includes('/') && !v.includes('\\') && v !== '.' && v !== '..', 'a file name in the managed directory (no path)');

/** Whether Gatehouse may keep credentials and keys in its user-only file store where no OS keychain answers. */
const KeyStoreSettings = z.object({ fileStore: z.enum(['allowed', 'forbidden']).default('allowed') }).strict();

const SettingsSchema = z
  .object({
    trust: z.array(LocalFile).min(1, 'name at least one root public key file').max(16),
    required: z.boolean().default(false),
    bundle: LocalFile.default(DEFAULT_BUNDLE_FILE),
    url: z
      .string()
      .url()
      .refine((u) => u.startsWith('https://'), 'the bundle URL must be https://')
      .optional(),
    pollSeconds: z.number().int().min(1).max(86_400).default(300),
    ca: LocalFile.optional(),
    keystore: KeyStoreSettings.optional(),
    /** Checked on its own by readTelemetryPolicy, so that it applies even before a bundle is set up. */
    telemetry: z.unknown().optional(),
  })
  .strict();

export interface ManagedSettings {
  dir: string;
  roots: PublicKeyInfo[];
  required: boolean;
  bundleFile: string;
  url?: URL;
  pollMs: number;
  /** PEM of an extra certificate authority for the URL. */
  ca?: string;
}

export type SettingsResult = { kind: 'absent' } | { kind: 'ok'; settings: ManagedSettings } | { kind: 'invalid'; error: string };

export interface SettingsOptions {
  /** Defaults to process.platform; ownership is not checked on Windows (ACLs). */
  platform?: NodeJS.Platform;
}

/**
 * Why a file (or directory) of the managed location could have been written by someone other than
 * root, with the command that fixes it; undefined when it could not. `risk` says what such a user
 * could do. Not checked on Windows (ACLs).
 */
export function managedFileProblem(file: string, platform: NodeJS.Platform, risk: string): string | undefined {
  if (platform === 'win32') return undefined;
  const info = lstatSync(file);
  if (info.isSymbolicLink()) return `${file} is a symbolic link; managed settings must be plain files (replace the link with the file itself)`;
  if (info.uid !== 0) return `${file} is owned by uid ${info.uid}, not root; ${risk}; fix: sudo chown root ${shellQuote(file)}`;
  if ((info.mode & 0o022) !== 0) {
    return `${file} is writable by group or others (mode ${(info.mode & 0o777).toString(8)}); ${risk}; fix: sudo chmod go-w ${shellQuote(file)}`;
  }
  return undefined;
}

/** A path as it can be pasted into a shell. */
function shellQuote(file: string): string {
  return /^[\w./@+-]+$/.test(file) ? file : `'${file.replaceAll("'", "'\\''")}'`;
}

/** Refuses a file a non-root user could have written. */
function checkOwnership(file: string, platform: NodeJS.Platform): string | undefined {
  return managedFileProblem(file, platform, 'a user who can change it could trust their own signing key');
}

export async function readManagedSettings(dir: string, options: SettingsOptions = {}): Promise<SettingsResult> {
  const platform = options.platform ?? process.platform;
  const file = path.join(dir, SETTINGS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'invalid', error: `${file}: cannot read (${code ?? String(error)})` };
  }
  try {
    for (const checked of [dir, file]) {
      const problem = checkOwnership(checked, platform);
      if (problem) return { kind: 'invalid', error: problem };
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      return { kind: 'invalid', error: `${file}: not valid JSON (${(error as Error).message})` };
    }
    const parsed = SettingsSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return { kind: 'invalid', error: `${file}: ${formatPath(issue.path)}: ${issue.message.replace(/^Invalid input: /, '')}` };
    }
    const s = parsed.data;
    const roots: PublicKeyInfo[] = [];
    for (const name of s.trust) {
      const keyFile = path.join(dir, name);
      const problem = checkOwnership(keyFile, platform);
      if (problem) return { kind: 'invalid', error: problem };
      roots.push(await publicKeyFromPem(readFileSync(keyFile, 'utf8'), keyFile));
    }
    let ca: string | undefined;
    if (s.ca !== undefined) {
      const caFile = path.join(dir, s.ca);
      const problem = checkOwnership(caFile, platform);
      if (problem) return { kind: 'invalid', error: problem };
      ca = readFileSync(caFile, 'utf8');
    }
    return {
      kind: 'ok',
      settings: {
        dir,
        roots,
        required: s.required,
        bundleFile: path.join(dir, s.bundle),
        ...(s.url !== undefined ? { url: new URL(s.url) } : {}),
        pollMs: s.pollSeconds * 1000,
        ...(ca !== undefined ? { ca } : {}),
      },
    };
  } catch (error) {
    return { kind: 'invalid', error: `${file}: ${(error as Error).message}` };
  }
}

/**
 * One entry of policy.json read alone, even when the rest of the file is unusable (no bundle set up
 * yet), with the ownership checks of the whole file. `absent`: no policy.json; `untrusted`: one that
 * exists but cannot be read or trusted (the caller fails closed), with why; else the entry's raw value.
 */
type ManagedEntry = { kind: 'absent' } | { kind: 'untrusted'; problem: string } | { kind: 'read'; file: string; value: unknown };

function readManagedEntry(dir: string, key: string, risk: string, options: SettingsOptions): ManagedEntry {
  const platform = options.platform ?? process.platform;
  const file = path.join(dir, SETTINGS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'untrusted', problem: `${file} cannot be read (${code ?? String(error)})` };
  }
  try {
    for (const checked of [dir, file]) {
      const problem = managedFileProblem(checked, platform, risk);
      if (problem) return { kind: 'untrusted', problem };
    }
    const raw = JSON.parse(text) as Record<string, unknown> | null;
    return { kind: 'read', file, value: raw !== null && typeof raw === 'object' && Object.hasOwn(raw, key) ? raw[key] : undefined };
  } catch (error) {
    return { kind: 'untrusted', problem: `${file}: ${(error as Error).message}` };
  }
}

/**
 * The managed key store rule alone. A policy.json that exists but cannot be trusted or read forbids
 * the file store (fail closed); no policy.json allows it.
 */
export function readKeyStorePolicy(dir: string, options: SettingsOptions = {}): { fileStore: 'allowed' | 'forbidden'; forbiddenBy?: string } {
  const entry = readManagedEntry(dir, 'keystore', 'a user who can change it could trust their own signing key', options);
  if (entry.kind === 'absent') return { fileStore: 'allowed' };
  if (entry.kind === 'untrusted') return { fileStore: 'forbidden', forbiddenBy: entry.problem };
  const parsed = KeyStoreSettings.optional().safeParse(entry.value);
  if (!parsed.success) return { fileStore: 'forbidden', forbiddenBy: `${entry.file}: keystore: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  return parsed.data?.fileStore === 'forbidden' ? { fileStore: 'forbidden', forbiddenBy: entry.file } : { fileStore: 'allowed' };
}

/** The managed telemetry rule: forced on with the organisation's collector, forced off, or left to the user's config. */
const ManagedTelemetry = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('off') }).strict(),
  TelemetrySchema.extend({ mode: z.literal('on') }).strict(),
]);

export type TelemetryPolicy = { kind: 'unmanaged' } | { kind: 'off'; by: string } | { kind: 'on'; config: TelemetryConfig; by: string };

/**
 * The managed telemetry rule alone, read like the key store rule (even without a bundle), with the
 * same ownership checks. A policy.json that exists but cannot be trusted or read turns telemetry
 * off: a user who could write it could otherwise send the device's call metadata to their own
 * collector. No policy.json, or one without `telemetry`, leaves it to the user's config.
 */
export function readTelemetryPolicy(dir: string, options: SettingsOptions = {}): TelemetryPolicy {
  const entry = readManagedEntry(dir, 'telemetry', 'a user who can change it could send telemetry to their own collector', options);
  if (entry.kind === 'absent') return { kind: 'unmanaged' };
  if (entry.kind === 'untrusted') return { kind: 'off', by: entry.problem };
  if (entry.value === undefined) return { kind: 'unmanaged' };
  const parsed = ManagedTelemetry.safeParse(entry.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { kind: 'off', by: `${entry.file}: telemetry.${formatPath(issue.path)}: ${issue.message.replace(/^Invalid input: /, '')}` };
  }
  if (parsed.data.mode === 'off') return { kind: 'off', by: entry.file };
  const { mode: _mode, ...config } = parsed.data;
  return { kind: 'on', config, by: entry.file };
}
