/**
 * Keeps the right policy in force. It reads the managed settings, gathers candidate bundles (the
 * managed location's bundle file, the last good bundle kept in the state directory, and what the
 * URL last served), verifies each, and puts the newest valid one in force. Whatever fails is
 * refused with its reason (logged, audited, shown in `gatehouse status`) and the last good bundle
 * stays. It runs again when the managed directory changes, when the URL serves something new, when
 * the bundle in force expires, and once a minute.
 *
 * What is in force when nothing valid is available:
 *   - no managed settings                                  → unmanaged
 *   - settings, `required`: false, no bundle ever accepted → unmanaged (labelled, with the reason)
 *   - otherwise                                            → fail closed: nothing listed, nothing callable
 * An expired bundle is never used, and once a machine has accepted a bundle it does not fall back
 * to unmanaged on its own: expiry means "do not use past this date", and unmanaged would widen.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { ServerConfig } from '../../common/config.js';
import { errorMessage } from '../../common/errors.js';
import type { AuditSink, Logger } from '../../core/ports.js';
import type { BundlePolicy, PolicyState } from '../../core/policy/bundle-policy.js';
import { BundleEvaluator } from '../../core/policy/evaluator.js';
import type { CedarPort } from '../../core/policy/model.js';
import { verifyBundle, type KeyList, type Rejection, type TrustState } from './bundle-file.js';
import { fetchBundle } from './https-source.js';
import { readManagedSettings, SETTINGS_FILE, type ManagedSettings } from './settings.js';
import type { PolicyStatus } from '../../common/status.js';

export interface PolicyControllerOptions {
  managedDir: string;
  stateDir: string;
  dataDir: string;
  policy: BundlePolicy;
  logger: Logger;
  audit: AuditSink;
  /** Called after the policy in force changed. */
  onChange: () => void;
  now?: () => number;
  platform?: NodeJS.Platform;
  /** Loads the Cedar engine (a wasm module: loaded only when a managed policy needs it). */
  loadCedar?: () => Promise<CedarPort>;
  /** How often the managed location is checked even without a change event. */
  recheckMs?: number;
}

/** What the controller reports; the fields are the status contract's own (`PolicyStatus`). */
export type PolicyStatusDetail = Required<Pick<PolicyStatus, 'state' | 'managedDir'>> &
  Pick<PolicyStatus, 'reason' | 'required' | 'version' | 'source' | 'issuedAt' | 'expiresAt' | 'signedBy' | 'url' | 'lastFetch' | 'lastRejection'>;

interface Candidate {
  source: string;
  bytes: Buffer;
}

interface PersistedState extends TrustState {
  etag?: string;
  url?: string;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class PolicyController {
  private readonly now: () => number;
  private readonly dir: string;
  private cedar: CedarPort | undefined;
  private settings: ManagedSettings | undefined;
  private trust: PersistedState = {};
  private inForce: { bytes: Buffer; source: string; evaluator: BundleEvaluator } | undefined;
  private fetched: Candidate | undefined;
  private fingerprint = '';
  private rejected = new Map<string, string>();
  private lastRejection: PolicyStatusDetail['lastRejection'];
  private lastFetch: PolicyStatusDetail['lastFetch'];
  private running: Promise<void> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly options: PolicyControllerOptions) {
    this.now = options.now ?? Date.now;
    this.dir = path.join(options.stateDir, 'policy');
  }

  /** Reads what is there and puts it in force; the first URL fetch is awaited when nothing else is valid. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.trust = this.readState();
    await this.reconcile(true);
    if (this.settings?.url) {
      if (this.options.policy.state.kind !== 'enforcing') await this.poll(false);
      else this.schedulePoll();
    }
    this.watch();
    const recheck = setInterval(() => void this.reconcile(false), this.options.recheckMs ?? 60_000);
    recheck.unref();
    this.timers.add(recheck as unknown as ReturnType<typeof setTimeout>);
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    for (const t of this.timers) clearTimeout(t);
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
  }

  /** Checks again now: the managed location, and the URL if there is one. */
  async refresh(): Promise<void> {
    await this.reconcile(true);
    if (this.settings?.url) await this.poll(false);
  }

  /** The servers to run: the catalog's in managed mode, the user's own when unmanaged, none when failing closed. */
  servers(userServers: Record<string, ServerConfig>): Record<string, ServerConfig> {
    const state = this.options.policy.state;
    if (state.kind === 'unmanaged') return userServers;
    if (state.kind === 'fail-closed') return {};
    const catalog = state.evaluator.bundle.content.catalog;
    const launched: Record<string, ServerConfig> = {};
    for (const [name, s] of catalog.servers) if (s.launch) launched[name] = s.launch;
    // `catalogOnly: false`: the user's own servers run too, under names the catalogue does not use.
    if (!catalog.catalogOnly) for (const [name, s] of Object.entries(userServers)) if (!catalog.servers.has(name)) launched[name] = s;
    return launched;
  }

  /** Empty when there are no managed settings (plain unmanaged mode). */
  status(): Partial<PolicyStatusDetail> {
    const state = this.options.policy.state;
    if (!this.settings && state.kind === 'unmanaged' && !this.lastRejection) return {};
    const detail: PolicyStatusDetail = { state: state.kind, managedDir: this.options.managedDir };
    if (state.kind === 'unmanaged' && state.reason) detail.reason = state.reason;
    if (state.kind === 'fail-closed') detail.reason = state.reason;
    if (this.settings) detail.required = this.settings.required;
    if (state.kind === 'enforcing' && this.inForce) {
      const m = state.evaluator.bundle.manifest;
      Object.assign(detail, {
        version: String(m.version),
        source: this.inForce.source,
        issuedAt: m.issuedAt,
        expiresAt: m.expiresAt,
        signedBy: state.evaluator.bundle.signedBy,
      });
    }
    if (this.settings?.url) detail.url = this.settings.url.href;
    if (this.lastFetch) detail.lastFetch = this.lastFetch;
    if (this.lastRejection) detail.lastRejection = this.lastRejection;
    return detail;
  }

  // -------------------------------------------------------------------------------------------

  private reconcile(force: boolean): Promise<void> {
    this.running = this.running
      .then(() => this.reconcileNow(force))
      .catch((error) => {
        this.options.logger.log('error', 'policy.reconcile_failed', { error: errorMessage(error) });
      });
    return this.running;
  }

  private async reconcileNow(force: boolean): Promise<void> {
    if (this.stopped) return;
    const fingerprint = this.managedFingerprint();
    if (!force && fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;

    const read = await readManagedSettings(this.options.managedDir, this.options.platform ? { platform: this.options.platform } : {});
    if (read.kind === 'absent') {
      this.settings = undefined;
      this.put({ kind: 'unmanaged' }, undefined);
      return;
    }
    if (read.kind === 'invalid') {
      this.recordRejection(SETTINGS_FILE, read.error, { code: 'invalid_settings', reason: read.error });
      // The bundle in force was verified under the previous settings; it stays until they are readable again.
      if (!this.inForce) this.put({ kind: 'fail-closed', reason: `the managed settings cannot be used: ${read.error}` }, undefined);
      return;
    }
    const settings = read.settings;
    if (this.settings?.url?.href !== settings.url?.href) this.fetched = undefined;
    this.settings = settings;
    this.cedar ??= await (this.options.loadCedar ?? defaultCedar)();

    const candidates: Candidate[] = [];
    const managed = readIfPresent(settings.bundleFile);
    if (managed) candidates.push({ source: settings.bundleFile, bytes: managed });
    if (this.fetched) candidates.push(this.fetched);
    const kept = this.inForce?.bytes ?? readIfPresent(this.lastGoodFile());
    if (kept) candidates.push({ source: this.inForce?.source ?? 'last good bundle (state directory)', bytes: kept });

    let best: { candidate: Candidate; evaluator: BundleEvaluator; keyList?: KeyList } | undefined;
    let firstProblem: Rejection | undefined;
    const seen = new Set<string>();
    for (const candidate of candidates) {
      const digest = digestOf(candidate.bytes);
      if (seen.has(digest)) continue;
      seen.add(digest);
      const result = await verifyBundle(candidate.bytes, {
        roots: settings.roots,
        state: this.trust,
        now: this.now(),
        cedar: this.cedar,
        dataDir: this.options.dataDir,
      });
      if (!result.ok) {
        firstProblem ??= result;
        // The kept copy of an expired bundle is not news every time it is checked again.
        if (candidate.bytes !== kept || result.code !== 'expired' || this.inForce) this.recordRejection(candidate.source, digest, result);
        continue;
      }
      if (!best || result.bundle.manifest.version > best.evaluator.version) {
        best = { candidate, evaluator: new BundleEvaluator(result.bundle, this.cedar), ...(result.keyList ? { keyList: result.keyList } : {}) };
      }
    }

    if (best) {
      const same = this.inForce && this.inForce.evaluator.bundle.digest === best.evaluator.bundle.digest && this.options.policy.state.kind === 'enforcing';
      if (same) return;
      const bundle = best.evaluator.bundle;
      this.trust = {
        ...this.trust,
        version: bundle.manifest.version,
        digest: bundle.digest,
        ...keyListTrust(best.keyList, this.trust),
      };
      this.writeState();
      writeAtomic(this.lastGoodFile(), best.candidate.bytes);
      this.inForce = { bytes: best.candidate.bytes, source: best.candidate.source, evaluator: best.evaluator };
      this.options.logger.log('info', 'policy.applied', {
        version: bundle.manifest.version,
        source: best.candidate.source,
        signedBy: bundle.signedBy,
        expiresAt: bundle.manifest.expiresAt,
      });
      this.audit({
        type: 'policy.changed',
        reason: `bundle v${bundle.manifest.version} in force`,
        detail: { version: bundle.manifest.version, source: best.candidate.source, signedBy: bundle.signedBy, expiresAt: bundle.manifest.expiresAt },
      });
      this.put({ kind: 'enforcing', evaluator: best.evaluator }, bundle.manifest.expiresAt);
      return;
    }

    this.inForce = undefined;
    const why = firstProblem
      ? `no valid policy bundle: ${firstProblem.reason}`
      : `no policy bundle found (looked for ${settings.bundleFile}${settings.url ? ` and ${settings.url.href}` : ''})`;
    if (!settings.required && this.trust.version === undefined)
      this.put({ kind: 'unmanaged', reason: `${why}; the managed settings do not require a bundle, so Gatehouse runs unmanaged until one arrives` }, undefined);
    else this.put({ kind: 'fail-closed', reason: why }, undefined);
  }

  /** Puts a state in force if it differs from the current one, and tells the daemon. */
  private put(state: PolicyState, expiresAt: string | undefined): void {
    const policy = this.options.policy;
    const current = policy.state;
    const unchanged =
      current.kind === state.kind &&
      (state.kind !== 'enforcing' || (current as { evaluator: BundleEvaluator }).evaluator === state.evaluator) &&
      (state.kind !== 'fail-closed' || (current as { reason: string }).reason === state.reason) &&
      (state.kind !== 'unmanaged' || (current as { reason?: string }).reason === state.reason);
    if (unchanged) return;
    const wasPermissive = current.kind !== 'fail-closed';
    policy.install(state);
    if (state.kind === 'fail-closed') {
      this.options.logger.log('error', 'policy.fail_closed', { reason: state.reason });
      if (wasPermissive) this.audit({ type: 'policy.changed', reason: `failing closed: ${state.reason}`, detail: { state: 'fail-closed' } });
    } else if (state.kind === 'unmanaged' && current.kind !== 'unmanaged') {
      this.options.logger.log('warn', 'policy.unmanaged', { reason: state.reason ?? 'no managed settings' });
      this.audit({ type: 'policy.changed', reason: state.reason ?? 'no managed settings: unmanaged mode', detail: { state: 'unmanaged' } });
    }
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (expiresAt !== undefined) {
      const at = Date.parse(expiresAt);
      const arm = (): void => {
        const left = at - this.now();
        this.expiryTimer = setTimeout(() => (at - this.now() > 0 ? arm() : void this.reconcile(true)), Math.min(Math.max(left + 50, 0), MAX_TIMER_MS));
        this.expiryTimer.unref();
      };
      arm();
    }
    try {
      this.options.onChange();
    } catch (error) {
      this.options.logger.log('error', 'policy.on_change_failed', { error: errorMessage(error) });
    }
  }

  private recordRejection(source: string, key: string, rejection: { code: string; reason: string }): void {
    if (this.rejected.get(source) === `${key}\0${rejection.code}`) return;
    this.rejected.set(source, `${key}\0${rejection.code}`);
    this.lastRejection = { at: new Date(this.now()).toISOString(), source, code: rejection.code, reason: rejection.reason };
    this.options.logger.log('error', 'policy.rejected', { source, code: rejection.code, reason: rejection.reason });
    this.audit({ type: 'policy.rejected', code: rejection.code, reason: rejection.reason, detail: { source } });
  }

  private audit(record: { type: 'policy.changed' | 'policy.rejected'; reason: string; code?: string; detail?: Record<string, unknown> }): void {
    try {
      this.options.audit.append({ at: new Date(this.now()).toISOString(), ...record });
    } catch (error) {
      this.options.logger.log('error', 'policy.audit_failed', { error: errorMessage(error) });
    }
  }

  // -------------------------------------------------------------------------------------------
  // The URL

  private schedulePoll(): void {
    if (this.stopped || !this.settings?.url) return;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => void this.poll(true), this.settings.pollMs);
    this.pollTimer.unref();
  }

  private async poll(reschedule: boolean): Promise<void> {
    const settings = this.settings;
    if (!settings?.url || this.stopped) return;
    const url = settings.url;
    try {
      const etag = this.trust.url === url.href ? this.trust.etag : undefined;
      const result = await fetchBundle(url, { ...(etag && this.fetched ? { etag } : {}), ...(settings.ca ? { ca: settings.ca } : {}), timeoutMs: 15_000 });
      this.lastFetch = { at: new Date(this.now()).toISOString(), ok: true };
      if (result.status === 'ok') {
        const changed = !this.fetched || !this.fetched.bytes.equals(result.body);
        this.fetched = { source: url.href, bytes: result.body };
        this.trust = { ...this.trust, url: url.href, ...(result.etag ? { etag: result.etag } : {}) };
        if (!result.etag) delete this.trust.etag;
        this.writeState();
        if (changed) await this.reconcile(true);
      }
    } catch (error) {
      this.lastFetch = { at: new Date(this.now()).toISOString(), ok: false, error: errorMessage(error) };
      this.options.logger.log('warn', 'policy.fetch_failed', { url: url.href, error: errorMessage(error) });
      if (!this.inForce && this.options.policy.state.kind !== 'enforcing') await this.reconcile(true);
    } finally {
      if (reschedule || !this.pollTimer) this.schedulePoll();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Files

  private watch(): void {
    try {
      let debounce: ReturnType<typeof setTimeout> | undefined;
      this.watcher = watch(this.options.managedDir, () => {
        if (debounce) clearTimeout(debounce);
        debounce = setTimeout(() => void this.reconcile(false), 100);
        debounce.unref();
      });
      this.watcher.on('error', () => this.watcher?.close());
      this.watcher.unref();
    } catch {
      // No managed directory (yet): the periodic check notices when one appears.
    }
  }

  /** Size, time and inode of every file in the managed directory: a change means "look again". */
  private managedFingerprint(): string {
    const dir = this.options.managedDir;
    try {
      const parts: string[] = [];
      for (const name of readDirNames(dir)) {
        const s = statSync(path.join(dir, name), { throwIfNoEntry: false });
        if (s) parts.push(`${name}:${s.size}:${s.mtimeMs}:${s.ino}:${s.mode}:${s.uid}`);
      }
      return parts.join('|');
    } catch {
      return 'absent';
    }
  }

  private lastGoodFile(): string {
    return path.join(this.dir, 'last-good.bundle');
  }

  private readState(): PersistedState {
    try {
      const raw = JSON.parse(readFileSync(path.join(this.dir, 'state.json'), 'utf8')) as PersistedState;
      const out: PersistedState = {};
      if (Number.isSafeInteger(raw.version)) out.version = raw.version!;
      if (typeof raw.digest === 'string') out.digest = raw.digest;
      if (Number.isSafeInteger(raw.keyListVersion)) out.keyListVersion = raw.keyListVersion!;
      if (typeof raw.keyListDigest === 'string') out.keyListDigest = raw.keyListDigest;
      if (typeof raw.etag === 'string') out.etag = raw.etag;
      if (typeof raw.url === 'string') out.url = raw.url;
      return out;
    } catch {
      return {};
    }
  }

  private writeState(): void {
    writeAtomic(path.join(this.dir, 'state.json'), Buffer.from(JSON.stringify(this.trust, null, 2) + '\n'));
  }
}

async function defaultCedar(): Promise<CedarPort> {
  const { CedarEngine } = await import('./cedar.js');
  return new CedarEngine();
}

/**
 * What to remember of the key list a newly accepted bundle carries: its version and digest when it
 * is the newest seen (verification already refused an older one, or another at the same version).
 */
function keyListTrust(keyList: KeyList | undefined, trust: TrustState): Pick<TrustState, 'keyListVersion' | 'keyListDigest'> {
  if (!keyList || (trust.keyListVersion !== undefined && keyList.version < trust.keyListVersion)) return {};
  return { keyListVersion: keyList.version, keyListDigest: keyList.digest };
}

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

function readDirNames(dir: string): string[] {
  return statSync(dir).isDirectory() ? readdirSync(dir).sort() : [];
}

function digestOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function writeAtomic(file: string, bytes: Buffer): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, bytes, { mode: 0o600 });
  renameSync(temp, file);
}
