/**
 * Policy bundles for tests: keys made at test time (no private key is ever committed), the sample
 * bundle from resources/policy/ with its CRM server pointed at the test fixture, and signing with
 * the same code `gatehouse policy sign` uses.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { signBundle, signKeyList } from '../../src/node/policy/bundle-file.js';
import { readBundleDir } from '../../src/node/policy/content.js';
import { generateSigningKey, publicKeyFromPem, signingKeyFromPem, type PublicKeyInfo, type SigningKey } from '../../src/node/policy/keys.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const SAMPLE_DIR = resolve(REPO_ROOT, 'resources/policy');
export const CRM_FIXTURE = resolve(REPO_ROOT, 'resources/examples/crm-server.mjs');

export interface TestKey {
  signing: SigningKey;
  public: PublicKeyInfo;
  privatePem: string;
  publicPem: string;
}

export async function makeKey(): Promise<TestKey> {
  const generated = await generateSigningKey();
  return {
    signing: await signingKeyFromPem(generated.privatePem),
    public: await publicKeyFromPem(generated.publicPem),
    privatePem: generated.privatePem,
    publicPem: generated.publicPem,
  };
}

export interface SampleOptions {
  /** Extra arguments for the CRM fixture (`--log FILE`, `--rug-pull`). */
  crmArgs?: string[];
  /** Replaces or adds files (text). */
  files?: Record<string, string>;
  /** Edits the parsed catalog. */
  catalog?: (catalog: CatalogJson) => void;
}

export interface CatalogJson {
  /** `required`: servers that cannot be confined do not start (docs/sandbox.md). */
  sandbox?: string;
  servers: Record<string, { launch: Record<string, unknown>; tools: Record<string, Record<string, unknown>> }>;
}

/** The sample bundle's files, with the CRM launched from the fixture by this Node. */
export function sampleFiles(options: SampleOptions = {}): Map<string, Buffer> {
  const files = readBundleDir(SAMPLE_DIR);
  const catalog = JSON.parse(files.get('catalog.json')!.toString('utf8')) as CatalogJson;
  const args = options.crmArgs ?? [];
  const log = args.includes('--log') ? args[args.indexOf('--log') + 1] : undefined;
  // The CRM is confined like any catalogue server: it may write only the folder of its call log.
  const sandbox = log !== undefined ? { sandbox: { write: [dirname(log)] } } : {};
  catalog.servers.crm!.launch = { type: 'stdio', command: process.execPath, args: [CRM_FIXTURE, ...args], restart: { mode: 'never' }, ...sandbox };
  options.catalog?.(catalog);
  files.set('catalog.json', Buffer.from(JSON.stringify(catalog, null, 2)));
  for (const [name, text] of Object.entries(options.files ?? {})) files.set(name, Buffer.from(text));
  return files;
}

export interface SignOptions {
  version: number;
  keys: TestKey[];
  issuedAt?: Date;
  expiresAt?: Date;
  keyList?: string;
}

export async function signFiles(files: ReadonlyMap<string, Buffer>, options: SignOptions): Promise<Buffer> {
  const issuedAt = options.issuedAt ?? new Date();
  const text = await signBundle({
    files,
    keys: options.keys.map((k) => k.signing),
    version: options.version,
    issuedAt,
    expiresAt: options.expiresAt ?? new Date(issuedAt.getTime() + 86_400_000),
    ...(options.keyList !== undefined ? { keyList: options.keyList } : {}),
  });
  return Buffer.from(text);
}

export async function keyListOf(root: TestKey, keys: TestKey[], version: number, expiresAt = new Date(Date.now() + 86_400_000)): Promise<string> {
  return signKeyList({ root: root.signing, keys: keys.map((k) => k.public), version, issuedAt: new Date(), expiresAt });
}

/** A bundle file's JSON, for tampering with. */
export function bundleJson(bytes: Buffer): {
  format: string;
  manifest: { payload: string; signatures: { protected: string; signature: string }[] };
  keyList?: string;
  files: Record<string, string>;
} {
  return JSON.parse(bytes.toString('utf8')) as never;
}

export function readSample(name: string): string {
  return readFileSync(resolve(SAMPLE_DIR, name), 'utf8');
}
