/**
 * The bundle file: one JSON document that carries a bundle's files and the signed manifest that
 * vouches for them.
 *
 *   {
 *     "format": "gatehouse-policy-bundle/1",
 *     "manifest": { "payload": "<base64url>", "signatures": [{ "protected": "...", "signature": "..." }] },
 *     "keyList": "<compact JWS>",                  (optional: signing keys vouched for by a root key)
 *     "files": { "policies.cedar": "<base64>", ... }
 *   }
 *
 * The manifest is a JWS in the general JSON serialization (RFC 7515 §7.2.1), so that one bundle can
 * carry several signatures (during a key rotation, old and new key). Its payload:
 *
 *   { "format": "gatehouse-policy-manifest/1", "version": 7, "issuedAt": "...", "expiresAt": "...",
 *     "files": { "policies.cedar": "<sha256 hex>", ... } }
 *
 * Every signature header is { alg: "Ed25519", kid: <JWK thumbprint>, typ: "gatehouse-manifest+jws" };
 * the key list's is the same with typ "gatehouse-keylist+jws", so that neither can be passed off as
 * the other. Verification order and reasons are in `verifyBundle` below and in docs/policy.md.
 */
import { createHash } from 'node:crypto';
import { base64url, CompactSign, compactVerify, decodeProtectedHeader, flattenedVerify, GeneralSign, type GeneralJWS } from 'jose';
import { compileBundle, type CompiledBundle } from '../../core/policy/compile.js';
import type { BundleManifest, CedarPort } from '../../core/policy/model.js';
import { isBundleFileName, MAX_BUNDLE_BYTES, parseBundleFiles } from './content.js';
import { ALG, publicKeyFromJwk, type PublicKeyInfo, type SigningKey } from './keys.js';
import { isPlainObject } from '../../common/objects.js';

export const BUNDLE_FORMAT = 'gatehouse-policy-bundle/1';
export const MANIFEST_FORMAT = 'gatehouse-policy-manifest/1';
export const KEYLIST_FORMAT = 'gatehouse-policy-keylist/1';
export const MANIFEST_TYP = 'gatehouse-manifest+jws';
export const KEYLIST_TYP = 'gatehouse-keylist+jws';
/** How far in the future an issue time may lie (clock skew between the signer and the desktop). */
export const ISSUED_AT_SKEW_MS = 5 * 60 * 1000;
const MAX_SIGNATURES = 16;
const MAX_LISTED_KEYS = 64;

export type RejectCode =
  | 'malformed'
  | 'tampered_file'
  | 'missing_file'
  | 'extra_file'
  | 'bad_signature'
  | 'untrusted_key'
  | 'rollback'
  | 'expired'
  | 'not_yet_valid'
  | 'invalid_content'
  | 'invalid_cedar';

export interface Rejection {
  code: RejectCode;
  reason: string;
}

export interface KeyList {
  version: number;
  /** SHA-256 (hex) of the signed payload: two key lists of one version must be the same list. */
  digest: string;
  issuedAt: string;
  expiresAt: string;
  keys: PublicKeyInfo[];
  signedBy: string;
}

/** What a desktop remembers between bundles (policy state in the state dir). */
export interface TrustState {
  /** Highest bundle version accepted so far, and the digest of that bundle. */
  version?: number;
  digest?: string;
  /** Highest key list version accepted so far, and the digest of that key list (pinned like the bundle's). */
  keyListVersion?: number;
  keyListDigest?: string;
}

export type VerifyResult = { ok: true; bundle: CompiledBundle; keyList?: KeyList } | ({ ok: false } & Rejection);

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function reject(code: RejectCode, reason: string): { ok: false } & Rejection {
  return { ok: false, code, reason };
}

function isoTime(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

// ---------------------------------------------------------------------------------------------
// Signing

export interface SignInput {
  files: ReadonlyMap<string, Buffer>;
  keys: SigningKey[];
  version: number;
  issuedAt: Date;
  expiresAt: Date;
  keyList?: string;
}

export async function signBundle(input: SignInput): Promise<string> {
  if (input.keys.length === 0) throw new Error('at least one signing key is needed');
  if (!Number.isSafeInteger(input.version) || input.version < 1) throw new Error('the version must be a whole number from 1 up');
  if (input.expiresAt.getTime() <= input.issuedAt.getTime()) throw new Error('the expiry must be after the issue time');
  const manifest: BundleManifest & { format: string } = {
    format: MANIFEST_FORMAT,
    version: input.version,
    issuedAt: input.issuedAt.toISOString(),
    expiresAt: input.expiresAt.toISOString(),
    files: Object.fromEntries([...input.files].map(([name, bytes]) => [name, sha256(bytes)])),
  };
  const signer = new GeneralSign(json(manifest));
  for (const key of input.keys) signer.addSignature(key.privateKey).setProtectedHeader({ alg: ALG, kid: key.kid, typ: MANIFEST_TYP });
  const jws = await signer.sign();
  const file = {
    format: BUNDLE_FORMAT,
    manifest: jws,
    ...(input.keyList !== undefined ? { keyList: input.keyList } : {}),
    files: Object.fromEntries([...input.files].map(([name, bytes]) => [name, bytes.toString('base64')])),
  };
  return JSON.stringify(file, null, 2) + '\n';
}

export interface KeyListInput {
  root: SigningKey;
  keys: PublicKeyInfo[];
  version: number;
  issuedAt: Date;
  expiresAt: Date;
}

export async function signKeyList(input: KeyListInput): Promise<string> {
  if (!Number.isSafeInteger(input.version) || input.version < 1) throw new Error('the version must be a whole number from 1 up');
  const payload = {
    format: KEYLIST_FORMAT,
    version: input.version,
    issuedAt: input.issuedAt.toISOString(),
    expiresAt: input.expiresAt.toISOString(),
    keys: input.keys.map((k) => ({ kid: k.kid, jwk: k.jwk })),
  };
  return new CompactSign(json(payload)).setProtectedHeader({ alg: ALG, kid: input.root.kid, typ: KEYLIST_TYP }).sign(input.root.privateKey);
}

// ---------------------------------------------------------------------------------------------
// Verifying

export interface VerifyOptions {
  /** Root keys: from the managed location only. */
  roots: readonly PublicKeyInfo[];
  state: TrustState;
  now: number;
  cedar: CedarPort;
  /** What `${dataDir}` expands to in the catalog's launch specs. */
  dataDir: string;
}

/**
 * Checks a bundle file as a desktop does before putting it in force, in this order, stopping at the
 * first problem: the file's shape; the key list (signed by a root, not expired, not older than the
 * last one accepted); the manifest's signatures (at least one by a root or listed key must verify);
 * the manifest (times, version not lower than the installed one); every file against its signed
 * hash, and no file the manifest does not name; the files' content; the Cedar policies.
 */
export async function verifyBundle(bytes: Uint8Array, options: VerifyOptions): Promise<VerifyResult> {
  if (bytes.byteLength > MAX_BUNDLE_BYTES) return reject('malformed', `the bundle is larger than ${MAX_BUNDLE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    return reject('malformed', `not a bundle file: ${(error as Error).message}`);
  }
  if (!isPlainObject(doc) || doc.format !== BUNDLE_FORMAT) return reject('malformed', `not a bundle file (expected "format": "${BUNDLE_FORMAT}")`);
  const manifestJws = doc.manifest;
  if (
    !isPlainObject(manifestJws) ||
    typeof manifestJws.payload !== 'string' ||
    !Array.isArray(manifestJws.signatures) ||
    manifestJws.signatures.length === 0 ||
    manifestJws.signatures.length > MAX_SIGNATURES ||
    !manifestJws.signatures.every((s) => isPlainObject(s) && typeof s.protected === 'string' && typeof s.signature === 'string')
  ) {
    return reject('malformed', `the manifest is not a JWS with 1 to ${MAX_SIGNATURES} signatures`);
  }
  if (!isPlainObject(doc.files) || !Object.values(doc.files).every((v) => typeof v === 'string')) {
    return reject('malformed', 'the bundle has no "files" object of base64 strings');
  }
  if (doc.keyList !== undefined && typeof doc.keyList !== 'string') return reject('malformed', '"keyList" must be a compact JWS string');

  // Which keys may sign: the roots, and the keys a root vouches for in the key list.
  const trusted = new Map<string, PublicKeyInfo>(options.roots.map((k) => [k.kid, k]));
  let keyList: KeyList | undefined;
  if (typeof doc.keyList === 'string') {
    const checked = await verifyKeyList(doc.keyList, options);
    if (!checked.ok) return checked;
    keyList = checked.keyList;
    for (const key of keyList.keys) if (!trusted.has(key.kid)) trusted.set(key.kid, key);
  }

  const signedBy: string[] = [];
  const presented: string[] = [];
  let failedTrusted: string | undefined;
  for (const signature of manifestJws.signatures as { protected: string; signature: string }[]) {
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(signature) as Record<string, unknown>;
    } catch {
      return reject('malformed', 'a manifest signature has an unreadable protected header');
    }
    const kid = typeof header.kid === 'string' ? header.kid : '(no kid)';
    presented.push(kid);
    const key = trusted.get(kid);
    if (!key) continue;
    if (header.alg !== ALG || header.typ !== MANIFEST_TYP) {
      failedTrusted ??= `the signature by key ${kid} has alg ${String(header.alg)} and typ ${String(header.typ)}, not ${ALG} and ${MANIFEST_TYP}`;
      continue;
    }
    try {
      await flattenedVerify({ payload: manifestJws.payload, protected: signature.protected, signature: signature.signature }, key.key, { algorithms: [ALG] });
      signedBy.push(kid);
    } catch {
      failedTrusted ??= `the manifest's signature by key ${kid} does not verify: the manifest was altered after signing, or the signature is not by that key`;
    }
  }
  if (signedBy.length === 0) {
    if (failedTrusted) return reject('bad_signature', failedTrusted);
    return reject(
      'untrusted_key',
      `signed by key ${presented.join(', ')}, which is not trusted here (trusted: ${[...trusted.keys()].join(', ') || 'none'}); ` +
        'a signing key must be a root key of the managed settings or listed in a key list signed by one',
    );
  }

  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(new TextDecoder().decode(base64url.decode(manifestJws.payload))) as Record<string, unknown>;
  } catch {
    return reject('malformed', 'the signed manifest is not JSON');
  }
  if (!isPlainObject(manifest) || manifest.format !== MANIFEST_FORMAT) return reject('malformed', `the signed manifest's format is not ${MANIFEST_FORMAT}`);
  const version = manifest.version;
  const issuedAt = isoTime(manifest.issuedAt);
  const expiresAt = isoTime(manifest.expiresAt);
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) return reject('malformed', 'the manifest has no valid version');
  if (issuedAt === undefined || expiresAt === undefined || expiresAt <= issuedAt) return reject('malformed', 'the manifest has no valid issuedAt/expiresAt');
  const fileEntry = ([n, h]: [string, unknown]) => isBundleFileName(n) && typeof h === 'string' && /^[0-9a-f]{64}$/.test(h);
  if (!isPlainObject(manifest.files) || !Object.entries(manifest.files).every(fileEntry)) {
    return reject('malformed', "the manifest's file list is not valid");
  }
  if (issuedAt > options.now + ISSUED_AT_SKEW_MS) {
    return reject('not_yet_valid', `bundle v${version} is issued at ${String(manifest.issuedAt)}, in the future; check this machine's clock and the signer's`);
  }
  if (expiresAt <= options.now) return reject('expired', `bundle v${version} expired at ${String(manifest.expiresAt)}`);
  const digest = sha256(manifestJws.payload);
  const installed = options.state.version;
  if (installed !== undefined && version < installed) {
    return reject('rollback', `bundle v${version} is older than v${installed}, which this machine already accepted; versions only go up`);
  }
  if (installed !== undefined && version === installed && options.state.digest !== undefined && digest !== options.state.digest) {
    return reject('rollback', `bundle v${version} differs from the v${installed} this machine already accepted; a changed bundle needs a higher version`);
  }

  return checkFilesAndCompile(doc.files as Record<string, string>, manifest, digest, signedBy, options, keyList);
}

/** Every signed file present and matching its hash, no unsigned file, then content and Cedar. */
function checkFilesAndCompile(
  present: Record<string, string>,
  manifest: Record<string, unknown>,
  digest: string,
  signedBy: string[],
  options: { cedar: CedarPort; dataDir: string },
  keyList?: KeyList,
): VerifyResult {
  const signedFiles = manifest.files as Record<string, string>;
  const files = new Map<string, Buffer>();
  for (const [name, expected] of Object.entries(signedFiles)) {
    const encoded = present[name];
    if (encoded === undefined) return reject('missing_file', `${name} is in the signed manifest but not in the bundle`);
    const bytes = Buffer.from(encoded, 'base64');
    if (sha256(bytes) !== expected) return reject('tampered_file', `${name} does not match its signed hash: it was changed after signing`);
    files.set(name, bytes);
  }
  for (const name of Object.keys(present)) {
    if (!Object.hasOwn(signedFiles, name)) return reject('extra_file', `${name} is in the bundle but not in the signed manifest (an unsigned file)`);
  }

  const content = parseBundleFiles(files, { dataDir: options.dataDir });
  if (!content.ok) return reject('invalid_content', content.errors.join('; '));
  const compiled = compileBundle(
    content.content,
    {
      manifest: { version: manifest.version as number, issuedAt: String(manifest.issuedAt), expiresAt: String(manifest.expiresAt), files: signedFiles },
      digest,
      signedBy,
    },
    options.cedar,
  );
  if (!compiled.ok) return reject('invalid_cedar', compiled.errors.slice(0, 10).join('; '));
  return { ok: true, bundle: compiled.bundle, ...(keyList ? { keyList } : {}) };
}

/**
 * A bundle file read for `gatehouse policy test` and `explain`: the files must match the manifest,
 * but no signature, key, time or version is checked (`verify` does that).
 */
export function readBundleUnchecked(bytes: Uint8Array, options: { cedar: CedarPort; dataDir: string }): VerifyResult {
  let doc: Record<string, unknown>;
  let manifest: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    if (doc.format !== BUNDLE_FORMAT || !isPlainObject(doc.manifest) || typeof doc.manifest.payload !== 'string' || !isPlainObject(doc.files))
      throw new Error('shape');
    manifest = JSON.parse(new TextDecoder().decode(base64url.decode(doc.manifest.payload))) as Record<string, unknown>;
    if (!isPlainObject(manifest) || !isPlainObject(manifest.files) || typeof manifest.version !== 'number') throw new Error('manifest');
  } catch {
    return reject('malformed', `not a bundle file (expected "format": "${BUNDLE_FORMAT}" with a manifest)`);
  }
  const kids = peekBundle(bytes).kids;
  return checkFilesAndCompile(doc.files as Record<string, string>, manifest, sha256(doc.manifest.payload as string), kids, options);
}

async function verifyKeyList(jws: string, options: VerifyOptions): Promise<{ ok: true; keyList: KeyList } | ({ ok: false } & Rejection)> {
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(jws) as Record<string, unknown>;
  } catch {
    return reject('malformed', 'the key list is not a compact JWS');
  }
  const kid = typeof header.kid === 'string' ? header.kid : '(no kid)';
  const root = options.roots.find((k) => k.kid === kid);
  if (!root) return reject('untrusted_key', `the key list is signed by key ${kid}, which is not a root key of the managed settings`);
  if (header.alg !== ALG || header.typ !== KEYLIST_TYP) {
    return reject('bad_signature', `the key list's header has alg ${String(header.alg)} and typ ${String(header.typ)}, not ${ALG} and ${KEYLIST_TYP}`);
  }
  let payload: Record<string, unknown>;
  let digest: string;
  try {
    const verified = await compactVerify(jws, root.key, { algorithms: [ALG] });
    digest = sha256(verified.payload);
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
  } catch {
    return reject('bad_signature', `the key list's signature by root key ${kid} does not verify`);
  }
  const issuedAt = isoTime(payload.issuedAt);
  const expiresAt = isoTime(payload.expiresAt);
  const version = payload.version;
  if (
    !isPlainObject(payload) ||
    payload.format !== KEYLIST_FORMAT ||
    typeof version !== 'number' ||
    !Number.isSafeInteger(version) ||
    version < 1 ||
    issuedAt === undefined ||
    expiresAt === undefined ||
    !Array.isArray(payload.keys) ||
    payload.keys.length > MAX_LISTED_KEYS
  ) {
    return reject('malformed', `the key list is not a ${KEYLIST_FORMAT} document`);
  }
  if (issuedAt > options.now + ISSUED_AT_SKEW_MS) return reject('not_yet_valid', `the key list is issued at ${String(payload.issuedAt)}, in the future`);
  if (expiresAt <= options.now) return reject('expired', `the key list (v${version}) expired at ${String(payload.expiresAt)}`);
  if (options.state.keyListVersion !== undefined && version < options.state.keyListVersion) {
    return reject('rollback', `the key list is v${version}, older than v${options.state.keyListVersion}, which this machine already accepted`);
  }
  // Like bundles: at the version already accepted, only the very same list (another one could add a key or keep a dropped one).
  if (version === options.state.keyListVersion && options.state.keyListDigest !== undefined && digest !== options.state.keyListDigest) {
    return reject('rollback', `the key list v${version} differs from the v${version} this machine already accepted; a changed key list needs a higher version`);
  }
  const keys: PublicKeyInfo[] = [];
  for (const entry of payload.keys as unknown[]) {
    try {
      const key = await publicKeyFromJwk(isPlainObject(entry) ? entry.jwk : undefined);
      if (isPlainObject(entry) && entry.kid !== undefined && entry.kid !== key.kid)
        throw new Error(`its kid ${String(entry.kid)} is not its thumbprint ${key.kid}`);
      keys.push(key);
    } catch (error) {
      return reject('malformed', `a key in the key list is not valid: ${(error as Error).message}`);
    }
  }
  return { ok: true, keyList: { version, digest, issuedAt: String(payload.issuedAt), expiresAt: String(payload.expiresAt), keys, signedBy: kid } };
}

/** The manifest and signer key ids of a bundle file, unverified (for messages and `gatehouse policy verify`). */
export function peekBundle(bytes: Uint8Array): { version?: number; issuedAt?: string; expiresAt?: string; kids: string[] } {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as { manifest?: GeneralJWS };
    const manifest = JSON.parse(new TextDecoder().decode(base64url.decode(doc.manifest?.payload ?? ''))) as Record<string, unknown>;
    const kids = (doc.manifest?.signatures ?? []).map((s) => String((decodeProtectedHeader(s as never) as { kid?: string }).kid ?? '?'));
    return {
      ...(typeof manifest.version === 'number' ? { version: manifest.version } : {}),
      ...(typeof manifest.issuedAt === 'string' ? { issuedAt: manifest.issuedAt } : {}),
      ...(typeof manifest.expiresAt === 'string' ? { expiresAt: manifest.expiresAt } : {}),
      kids,
    };
  } catch {
    return { kids: [] };
  }
}
