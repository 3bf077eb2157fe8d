/**
 * The signed catalogue of approved servers (docs/catalog.md): one entry per server, in the MCP
 * Registry's `server.json` format, plus what that format has no field for, under
 * `_meta["com.gatehouse/catalog"]`: the integrity of each package, the secrets the server needs,
 * argument and environment templates, its sandbox profile. The tool pins stay where every
 * catalogue server keeps them (`catalog.json`, `servers.<name>.tools`), so policies and pins
 * read one shape whatever starts the server.
 *
 * Also here: what the CLI and the console are told about entries, installs, shadow servers and
 * quarantined tools (the control API's results).
 */
import { z } from 'zod';
import { SandboxSettingSchema } from './sandbox.js';

/** Where Gatehouse's own fields sit in a `server.json` (`_meta` takes reverse-DNS keys). */
export const CATALOG_META_KEY = 'com.gatehouse/catalog';

/** npm's Subresource Integrity string of a tarball (what `dist.integrity` holds). */
export const NPM_INTEGRITY = /^sha512-[A-Za-z0-9+/]{86}==$/;
/** A PyPI file's SHA-256, or an OCI image's digest. */
export const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name is letters, digits and underscores');
const secretName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'a secret name is 1-128 letters, digits, underscores, dots and hyphens');

/** An input a package or a remote declares (server.json `environmentVariables`, `headers`, arguments). */
const InputSchema = z
  .object({
    name: z.string().max(256).optional(),
    description: z.string().max(2000).optional(),
    isRequired: z.boolean().optional(),
    isSecret: z.boolean().optional(),
    default: z.string().max(4096).optional(),
    value: z.string().max(4096).optional(),
    type: z.string().max(32).optional(),
  })
  .loose();

export const REGISTRY_TYPES = ['npm', 'pypi', 'oci'] as const;
export type RegistryType = (typeof REGISTRY_TYPES)[number];

const PackageSchema = z
  .object({
    registryType: z.string().max(32),
    registryBaseUrl: z.string().url().max(2048).optional(),
    identifier: z.string().min(1).max(512),
    version: z.string().max(128).optional(),
    transport: z
      .object({ type: z.string().max(32), url: z.string().max(2048).optional() })
      .loose()
      .optional(),
    runtimeHint: z.string().max(64).optional(),
    runtimeArguments: z.array(InputSchema).max(64).optional(),
    packageArguments: z.array(InputSchema).max(64).optional(),
    environmentVariables: z.array(InputSchema).max(64).optional(),
    fileSha256: z.string().max(128).optional(),
  })
  .loose();

const RemoteSchema = z
  .object({
    type: z.string().max(32),
    url: z.string().max(2048),
    headers: z.array(InputSchema).max(64).optional(),
  })
  .loose();

/** Gatehouse's extension of an entry. */
export const CatalogExtensionSchema = z
  .object({
    /** Who vouches for the server, as people should read it (`Acme IT`, `Weather Inc.`). */
    publisher: z.string().max(200).optional(),
    /**
     * The exact bytes approved, per registry type: npm's SRI (`sha512-…`, the tarball's
     * `dist.integrity`), a PyPI file's or an OCI image's `sha256:…`.
     */
    integrity: z
      .object({
        npm: z.string().regex(NPM_INTEGRITY, "an npm integrity is sha512-<base64> (the tarball's dist.integrity)").optional(),
        pypi: z.string().regex(SHA256_DIGEST, 'a PyPI file hash is sha256:<64 hex digits>').optional(),
        oci: z.string().regex(SHA256_DIGEST, 'an OCI image digest is sha256:<64 hex digits>').optional(),
      })
      .strict()
      .default({}),
    /** The program of an npm package to run, when it has several `bin` entries. */
    bin: z.string().min(1).max(214).optional(),
    /** Secrets the server needs: the person is asked for each at install; they reach the server only through `env`. */
    secrets: z
      .array(z.object({ name: secretName, description: z.string().max(2000).default('') }).strict())
      .max(32)
      .default([]),
    /** Arguments after the program (`${dataDir}` expands; secrets are never arguments). */
    args: z.array(z.string().max(4096)).max(64).default([]),
    /** Environment of the server: literal values, `${dataDir}`, or `${secret:NAME}` of a declared secret. */
    env: z.record(envName, z.string().max(8192)).default({}),
    /** The sandbox profile (docs/sandbox.md); without it, the default profile. */
    sandbox: SandboxSettingSchema.optional(),
  })
  .strict();
export type CatalogExtension = z.output<typeof CatalogExtensionSchema>;

/** A `server.json` as the MCP Registry publishes it; fields Gatehouse does not read are kept as they are. */
export const ServerJsonSchema = z
  .object({
    $schema: z.string().max(512).optional(),
    name: z.string().min(3).max(200),
    title: z.string().max(200).optional(),
    description: z.string().max(2000).default(''),
    version: z.string().max(128).optional(),
    websiteUrl: z.string().max(2048).optional(),
    repository: z
      .object({ url: z.string().max(2048).optional(), source: z.string().max(64).optional() })
      .loose()
      .optional(),
    packages: z.array(PackageSchema).max(16).default([]),
    remotes: z.array(RemoteSchema).max(16).default([]),
    _meta: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
export type ServerJson = z.output<typeof ServerJsonSchema>;
export type ServerJsonPackage = ServerJson['packages'][number];

// ---------------------------------------------------------------------------------------------
// What the CLI and the console are told

export interface CatalogEntryInfo {
  /** The entry's name in the catalogue (its server name once installed). */
  name: string;
  title: string;
  description: string;
  publisher?: string;
  /** The registry name (`io.github.acme/weather`). */
  registryName: string;
  version?: string;
  /** How it runs: an npm, PyPI or OCI package at an exact version, a remote URL, or a fixed launch spec. */
  source:
    { kind: 'package'; registryType: string; identifier: string; version: string; integrity?: string } | { kind: 'remote'; url: string } | { kind: 'launch' };
  /** The tools it will offer, as the catalogue pins them. */
  tools: { name: string; readOnly: boolean; destructive: boolean }[];
  secrets: { name: string; description: string; stored: boolean }[];
  /** Installed under these server names. */
  installedAs: string[];
  /** Whether this desktop can install it, and why not. */
  installable: boolean;
  notInstallable?: string;
}

export interface CatalogListing {
  /** No signed catalogue when unmanaged or failing closed. */
  mode: 'managed' | 'unmanaged' | 'fail-closed';
  version?: string;
  /** The user's own servers may run beside the catalogue's (`catalogOnly: false`). */
  catalogOnly: boolean;
  entries: CatalogEntryInfo[];
}

/** An install's state, in `gatehouse status` and the console. */
export interface InstallStatus {
  server: string;
  /** The catalogue entry, or absent for a local pin (an `npx -y` server resolved once). */
  catalog?: string;
  package: string;
  version?: string;
  state: 'ready' | 'installing' | 'refused' | 'not-in-catalogue';
  reason?: string;
  /** A newer version the catalogue names, being installed or refused beside the running one. */
  upgrade?: { version: string; state: 'installing' | 'refused'; reason?: string };
  dir?: string;
}

export interface InstallResult {
  server: string;
  package: string;
  version: string;
  integrity: string;
  dir: string;
  /** Secrets the entry needs that are not stored yet (the server does not start until they are). */
  missingSecrets: string[];
}

/** An MCP server a client runs itself, outside Gatehouse (no secret values: names of env keys only). */
export interface ShadowServer {
  client: string;
  file: string;
  name: string;
  type: 'stdio' | 'http';
  /** The command and its arguments (values that look like credentials replaced by `…`), or the URL without credentials. */
  target: string;
  envKeys: string[];
  /** A catalogue entry that offers the same package or URL, when there is one. */
  inCatalog?: string;
}

/** A tool whose live definition differs from its pin: hidden and refused until a bundle pins it. */
export interface QuarantinedTool {
  server: string;
  tool: string;
  expected: string;
  actual: string;
  since: string;
}
