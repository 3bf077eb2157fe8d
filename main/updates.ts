/**
 * Updates of the desktop app, decided here and carried out by electron-updater (main/update-provider.ts
 * hands it only what this module verified). Plain Node, no Electron: tested against a feed served on
 * loopback (test/integration/updates-feed.test.ts).
 *
 * The organisation controls the feed. Its managed settings (`updates.json` in the managed location,
 * root-owned like `policy.json`) name:
 *
 *   {
 *     "url": "https://updates.example.com/gatehouse/",   an electron-builder "generic" feed (https only)
 *     "trust": ["updates-2026.pub"],                      Ed25519 public keys (PEM files in the same directory)
 *     "channel": "latest",                                optional
 *     "pin": "1.4.2",                                     optional: offer this version and no other
 *     "deferDays": 7,                                     optional: offer a release only this long after its releaseDate
 *     "checkHours": 6                                     optional: how often to look
 *   }
 *
 * A check fetches the channel file (`latest-linux.yml`, `latest-mac.yml`, `latest.yml`) and its
 * detached signature (`<file>.sig`: the base64 Ed25519 signature of the file's exact bytes, by a
 * trusted key), refuses anything unsigned, badly signed, malformed or oversized, and only then reads
 * the version: newer than the running one (never a downgrade, so a replayed old feed does nothing),
 * the pinned one when a pin is set, and old enough when a deferral is set. The file's sha512 in the
 * signed manifest is checked again on the downloaded installer before it may be installed.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load as loadYaml, JSON_SCHEMA } from 'js-yaml';
import { z } from 'zod';

/** The managed settings file, beside policy.json. */
export const UPDATES_FILE = 'updates.json';
/** A channel file or its signature larger than this is refused before it is parsed. */
export const MAX_FEED_BYTES = 64 * 1024;

const LocalFile = z
  .string()
  .min(1)
  .max(255)
  .refine((v) => !v.includes('/') && !v.includes('\\') && v !== '.' && v !== '..', 'a file name in the managed directory (no path)');
const Version = z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, 'a version such as 1.4.2 or 1.5.0-beta.1');

export const UpdateSettingsSchema = z
  .object({
    url: z
      .string()
      .url()
      .refine((u) => u.startsWith('https://'), 'the update feed must be https://'),
    trust: z.array(LocalFile).min(1, 'name at least one public key that signs the feed').max(8),
    channel: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/)
      .default('latest'),
    pin: Version.optional(),
    deferDays: z.number().int().min(0).max(365).default(0),
    checkHours: z.number().min(0.25).max(168).default(6),
  })
  .strict();

export interface UpdateSettings {
  url: URL;
  keys: KeyObject[];
  channel: string;
  pin?: string;
  deferDays: number;
  checkMs: number;
}

export type UpdateSettingsResult = { kind: 'absent' } | { kind: 'ok'; settings: UpdateSettings } | { kind: 'invalid'; error: string };

/** Refuses a managed file a non-root user could have written (as policy.json's are). */
function ownershipProblem(file: string, platform: NodeJS.Platform): string | undefined {
  if (platform === 'win32') return undefined;
  const info = lstatSync(file);
  if (info.isSymbolicLink()) return `${file} is a symbolic link; managed settings must be plain files`;
  if (info.uid !== 0) return `${file} is owned by uid ${info.uid}, not root; a user who can change it could point updates at their own feed`;
  if ((info.mode & 0o022) !== 0) return `${file} is writable by group or others (mode ${(info.mode & 0o777).toString(8)})`;
  return undefined;
}

/** Reads `updates.json` from the managed location. Absent: the app does not update itself (the package manager or MDM does). */
export function readUpdateSettings(dir: string, platform: NodeJS.Platform = process.platform, options: { trustOwner?: boolean } = {}): UpdateSettingsResult {
  const file = join(dir, UPDATES_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'absent' } : { kind: 'invalid', error: `${file}: cannot read (${code ?? String(error)})` };
  }
  const owned = (f: string) => (options.trustOwner ? undefined : ownershipProblem(f, platform));
  const problem = owned(file);
  if (problem) return { kind: 'invalid', error: problem };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { kind: 'invalid', error: `${file}: not valid JSON (${(error as Error).message})` };
  }
  const parsed = UpdateSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { kind: 'invalid', error: `${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}` };
  }
  const keys: KeyObject[] = [];
  for (const name of parsed.data.trust) {
    const keyFile = join(dir, name);
    try {
      const keyProblem = owned(keyFile);
      if (keyProblem) return { kind: 'invalid', error: keyProblem };
      const key = createPublicKey(readFileSync(keyFile, 'utf8'));
      if (key.asymmetricKeyType !== 'ed25519') return { kind: 'invalid', error: `${keyFile}: not an Ed25519 public key` };
      keys.push(key);
    } catch (error) {
      return { kind: 'invalid', error: `${keyFile}: ${(error as Error).message}` };
    }
  }
  const s = parsed.data;
  const url = new URL(s.url.endsWith('/') ? s.url : `${s.url}/`);
  return {
    kind: 'ok',
    settings: { url, keys, channel: s.channel, ...(s.pin ? { pin: s.pin } : {}), deferDays: s.deferDays, checkMs: s.checkHours * 3_600_000 },
  };
}

// ---------------------------------------------------------------------------------------------
// Versions

const VERSION = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/;

/** Semantic-version order: negative when a < b, 0 when equal, positive when a > b; throws on a malformed version. */
export function compareVersions(a: string, b: string): number {
  const pa = VERSION.exec(a);
  const pb = VERSION.exec(b);
  if (!pa || !pb) throw new Error(`not a version: ${JSON.stringify(pa ? b : a)}`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return Math.sign(d);
  }
  const [ra, rb] = [pa[4], pb[4]];
  if (ra === rb) return 0;
  if (ra === undefined) return 1;
  if (rb === undefined) return -1;
  const xa = ra.split('.');
  const xb = rb.split('.');
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    if (xa[i] === undefined) return -1;
    if (xb[i] === undefined) return 1;
    const na = /^\d+$/.test(xa[i]!);
    const nb = /^\d+$/.test(xb[i]!);
    if (na && nb && Number(xa[i]) !== Number(xb[i])) return Math.sign(Number(xa[i]) - Number(xb[i]));
    if (na !== nb) return na ? -1 : 1;
    if (xa[i] !== xb[i]) return xa[i]! < xb[i]! ? -1 : 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The feed

/** The channel file electron-builder writes for a platform (electron-updater's own naming). */
export function channelFile(channel: string, platform: NodeJS.Platform, arch: string): string {
  if (platform === 'darwin') return `${channel}-mac.yml`;
  if (platform === 'linux') return `${channel}-linux${arch === 'x64' ? '' : `-${arch}`}.yml`;
  return `${channel}.yml`;
}

const FeedFile = z
  .object({ url: z.string().min(1).max(1000), sha512: z.string().min(80).max(100), size: z.number().int().positive().optional() })
  .passthrough();
const FeedSchema = z
  .object({
    version: z.string().regex(VERSION, 'a semantic version'),
    files: z.array(FeedFile).min(1).max(32),
    path: z.string().optional(),
    sha512: z.string().optional(),
    releaseDate: z.string().refine((d) => !Number.isNaN(Date.parse(d)), 'a date'),
    releaseNotes: z.unknown().optional(),
    stagingPercentage: z.number().optional(),
  })
  .passthrough();
export type FeedInfo = z.infer<typeof FeedSchema>;

/** Fetches bytes over HTTPS (tests: loopback HTTP); at most `maxBytes`, never following a redirect. */
export interface FeedPort {
  get(url: URL, maxBytes: number): Promise<{ status: number; body: Buffer }>;
}

/** The feed port over Node's fetch: no redirects, no cache, a deadline, a size limit. */
export function fetchFeed(timeoutMs = 15_000): FeedPort {
  return {
    async get(url, maxBytes) {
      const response = await fetch(url, { redirect: 'error', headers: { 'cache-control': 'no-cache' }, signal: AbortSignal.timeout(timeoutMs) });
      const length = Number(response.headers.get('content-length') ?? '0');
      if (length > maxBytes) return { status: 413, body: Buffer.alloc(0) };
      const body = Buffer.from(await response.arrayBuffer());
      return { status: body.length > maxBytes ? 413 : response.status, body };
    },
  };
}

/** Whether `signature` (base64, as in the `.sig` file) is a trusted key's Ed25519 signature of exactly `data`. */
export function signedByTrustedKey(data: Buffer, signature: string, keys: KeyObject[]): boolean {
  const text = signature.trim();
  if (!/^[A-Za-z0-9+/]{86}==$/.test(text)) return false;
  const raw = Buffer.from(text, 'base64');
  return keys.some((key) => {
    try {
      return verify(null, data, key, raw);
    } catch {
      return false;
    }
  });
}

export type UpdateDecision =
  /** Nothing to do: the feed offers this version or an older one. */
  | { kind: 'current'; latest: string }
  /** A newer version, signed, allowed by the policy: download it. */
  | { kind: 'available'; version: string; info: FeedInfo; channelUrl: URL }
  /** Newer, signed, but held back by the managed policy (pinned to another version, or deferred until `until`). */
  | { kind: 'held'; version: string; reason: string; until?: string }
  /** The feed could not be trusted or read: nothing is downloaded. `code` is stable. */
  | { kind: 'refused'; code: 'unsigned' | 'bad_signature' | 'malformed' | 'too_large' | 'unreachable'; reason: string };

/** What the managed policy makes of a signed feed. Pure. */
export function decide(info: FeedInfo, settings: Pick<UpdateSettings, 'pin' | 'deferDays'>, current: string, now: number, channelUrl: URL): UpdateDecision {
  if (compareVersions(info.version, current) <= 0) return { kind: 'current', latest: info.version };
  if (settings.pin !== undefined && info.version !== settings.pin) {
    return { kind: 'held', version: info.version, reason: `your organisation pins Gatehouse to ${settings.pin}` };
  }
  const released = Date.parse(info.releaseDate);
  const until = released + settings.deferDays * 86_400_000;
  if (settings.deferDays > 0 && now < until) {
    return {
      kind: 'held',
      version: info.version,
      reason: `your organisation defers updates by ${settings.deferDays} day${settings.deferDays === 1 ? '' : 's'}`,
      until: new Date(until).toISOString(),
    };
  }
  return { kind: 'available', version: info.version, info, channelUrl };
}

/** Checks the organisation's feed and keeps the last verified manifest for electron-updater. */
export class UpdateGate {
  private verified: { info: FeedInfo; channelUrl: URL } | undefined;

  constructor(
    readonly settings: UpdateSettings,
    private readonly env: { current: string; platform: NodeJS.Platform; arch: string; feed: FeedPort; now?: () => number },
  ) {}

  /** The channel file's address. */
  channelUrl(): URL {
    return new URL(channelFile(this.settings.channel, this.env.platform, this.env.arch), this.settings.url);
  }

  async check(): Promise<UpdateDecision> {
    this.verified = undefined;
    const url = this.channelUrl();
    let manifest: { status: number; body: Buffer };
    let signature: { status: number; body: Buffer };
    try {
      [manifest, signature] = await Promise.all([this.env.feed.get(url, MAX_FEED_BYTES), this.env.feed.get(new URL(`${url.href}.sig`), 1024)]);
    } catch (error) {
      return { kind: 'refused', code: 'unreachable', reason: `the update feed ${url.origin} did not answer: ${(error as Error).message}` };
    }
    if (manifest.status === 413 || signature.status === 413)
      return { kind: 'refused', code: 'too_large', reason: `the update feed sent more than ${MAX_FEED_BYTES} bytes` };
    if (manifest.status !== 200) return { kind: 'refused', code: 'unreachable', reason: `the update feed answered ${manifest.status} for ${url.pathname}` };
    if (signature.status !== 200)
      return { kind: 'refused', code: 'unsigned', reason: `the update feed has no signature for ${url.pathname} (${signature.status})` };
    if (!signedByTrustedKey(manifest.body, signature.body.toString('utf8'), this.settings.keys)) {
      return { kind: 'refused', code: 'bad_signature', reason: `${url.pathname} is not signed by a key your organisation trusts for updates` };
    }
    let info: FeedInfo;
    try {
      const parsed = FeedSchema.safeParse(loadYaml(manifest.body.toString('utf8'), { schema: JSON_SCHEMA }));
      if (!parsed.success) throw new Error(`${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
      info = parsed.data;
    } catch (error) {
      return { kind: 'refused', code: 'malformed', reason: `${url.pathname} is signed but not a valid update manifest (${(error as Error).message})` };
    }
    const decision = decide(info, this.settings, this.env.current, (this.env.now ?? Date.now)(), url);
    if (decision.kind === 'available') this.verified = { info, channelUrl: url };
    return decision;
  }

  /** The manifest the last check verified and allowed; electron-updater gets this and nothing else. */
  verifiedInfo(): { info: FeedInfo; channelUrl: URL } | undefined {
    return this.verified;
  }

  /** Whether a downloaded installer is the one the signed manifest names (its sha512). */
  async verifyDownload(file: string): Promise<boolean> {
    const info = this.verified?.info;
    if (!info) return false;
    const digest = await new Promise<string>((resolve, reject) => {
      const hash = createHash('sha512');
      createReadStream(file)
        .on('data', (chunk) => hash.update(chunk))
        .on('error', reject)
        .on('end', () => resolve(hash.digest('base64')));
    });
    return info.files.some((f) => f.sha512 === digest);
  }
}

/** What the tray and the Overview say about updates. */
export type UpdateState =
  | { kind: 'idle' }
  | { kind: 'downloading'; version: string }
  | { kind: 'ready'; version: string }
  | { kind: 'held'; version: string; reason: string; until?: string }
  | { kind: 'refused'; reason: string };

export function stateOf(decision: UpdateDecision): UpdateState {
  switch (decision.kind) {
    case 'current':
      return { kind: 'idle' };
    case 'available':
      return { kind: 'downloading', version: decision.version };
    case 'held':
      return { kind: 'held', version: decision.version, reason: decision.reason, ...(decision.until ? { until: decision.until } : {}) };
    case 'refused':
      return { kind: 'refused', reason: decision.reason };
  }
}
