/**
 * A bundle's files and what is in them: which files a bundle may hold, reading a bundle
 * directory (for `gatehouse policy sign`), and parsing the JSON files into the core's types with
 * errors that name the file and the field. The Cedar files are parsed by the core's compiler.
 *
 *   schema.cedarschema   required   the Cedar schema (start from resources/policy/schema.cedarschema)
 *   *.cedar              any        policies
 *   catalog.json         required   approved servers: launch spec, tools with pinned hashes and attributes
 *   roles.json           optional   IdP group → roles
 *   quotas.json          optional   rate limits and write quotas (docs/approvals.md)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ServerConfigSchema, formatPath, type ServerConfig } from '../../common/config.js';
import { SERVER_NAME_PATTERN, SERVER_NAME_RULE, TOOL_NAME_PATTERN } from '../../common/names.js';
import { SANDBOX_REQUIREMENTS } from '../../common/sandbox.js';
import { CATALOG_META_KEY, CatalogExtensionSchema, ServerJsonSchema } from '../../common/catalog.js';
import type { CatalogEntry } from '../../core/catalog/entry.js';
import type { BundleContent, Catalog, CatalogServer, CatalogTool, RoleMapping } from '../../core/policy/model.js';
import { parseRate, type Dimension, type QuotaSettings, type ToolSelector } from '../../core/quotas/settings.js';
import { resolveBundledBin } from '../config-file.js';
import { packageRoot } from '../version.js';

export const SCHEMA_FILE = 'schema.cedarschema';
export const CATALOG_FILE = 'catalog.json';
export const ROLES_FILE = 'roles.json';
export const QUOTAS_FILE = 'quotas.json';
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
/** Largest file a bundle may hold, and the largest bundle. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export function isBundleFileName(name: string): boolean {
  return FILE_NAME.test(name) && (name === SCHEMA_FILE || name === CATALOG_FILE || name === ROLES_FILE || name === QUOTAS_FILE || name.endsWith('.cedar'));
}

const BUNDLE_FILES_HELP = `a bundle holds ${SCHEMA_FILE}, *.cedar, ${CATALOG_FILE}, ${ROLES_FILE} and ${QUOTAS_FILE}`;

/**
 * Reads a bundle source directory; refuses files a bundle cannot hold, so that nothing is signed by
 * mistake. Sub-directories and dotfiles are skipped.
 */
export function readBundleDir(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw new Error(`${dir}: cannot read the directory (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  for (const name of names) {
    const full = path.join(dir, name);
    const info = statSync(full);
    // Sub-directories (tests/, .git/) and dotfiles are the admin's own; they are never signed.
    if (info.isDirectory() || name.startsWith('.')) continue;
    if (!info.isFile()) throw new Error(`${full}: not a regular file; ${BUNDLE_FILES_HELP}`);
    if (!isBundleFileName(name)) throw new Error(`${full}: unexpected file; ${BUNDLE_FILES_HELP}`);
    if (info.size > MAX_FILE_BYTES) throw new Error(`${full}: larger than ${MAX_FILE_BYTES} bytes`);
    files.set(name, readFileSync(full));
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// The JSON files

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lower-case hex (64 characters); `gatehouse policy pin` prints it');

const ToolSchema = z
  .object({
    sha256: Sha256,
    readOnly: z.boolean().default(false),
    destructive: z.boolean().default(false),
    tags: z.array(z.string().min(1).max(64)).max(64).default([]),
    /** Decimal places of fractional arguments: { "amount": 2 } passes 12.34 as 1234. */
    scale: z
      .record(z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'an argument name, or a dotted path into a record'), z.number().int().min(0).max(15))
      .default({}),
    description: z.string().max(2000).optional(),
  })
  .strict();

const CatalogSchema = z
  .object({
    /** `required`: a server that cannot be confined on a desktop does not start there (docs/sandbox.md). */
    sandbox: z.enum(SANDBOX_REQUIREMENTS).optional(),
    /** `false`: the user's own servers run beside the catalogue's (docs/catalog.md). Default `true`. */
    catalogOnly: z.boolean().default(true),
    servers: z.record(
      z.string().regex(SERVER_NAME_PATTERN, SERVER_NAME_RULE),
      z
        .object({
          /** Started on every desktop. */
          launch: ServerConfigSchema.optional(),
          /** Installed by people who want it: an MCP Registry server.json, with Gatehouse's fields under _meta["com.gatehouse/catalog"]. */
          server: ServerJsonSchema.optional(),
          tools: z.record(z.string().regex(TOOL_NAME_PATTERN, 'a tool name is 1-128 letters, digits, _ . -'), ToolSchema).default({}),
          description: z.string().max(2000).optional(),
        })
        .strict()
        .refine((s) => (s.launch === undefined) !== (s.server === undefined), {
          message: 'a catalogue server has either launch (started everywhere) or server (a server.json people install)',
        }),
    ),
  })
  .strict();

const RolesSchema = z
  .object({
    groups: z
      .record(z.string().min(1).max(256), z.array(z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'a role name is 1-128 letters, digits, _ . : -')).max(64))
      .default({}),
  })
  .strict();

const RuleId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'a name is 1-64 letters, digits, _ . : -');
const DimensionSchema = z.enum(['user', 'client', 'server', 'tool']);
/** One dimension or several; the user is always part of the key. */
const PerSchema = z.union([DimensionSchema, z.array(DimensionSchema).min(1).max(4)]);
const ToolsSchema = z.union([
  z.enum(['all', 'writes', 'destructive']),
  z.array(z.string().regex(/^[a-z0-9*][a-z0-9*-]*__[A-Za-z0-9_.*-]+$/, 'a tool as clients see it, <server>__<tool>, with * as a wildcard')).max(256),
]);

const RateLimitSchema = z
  .object({
    per: PerSchema.default(['user', 'client', 'server', 'tool']),
    rate: z.string().refine((text) => parseRate(text) !== undefined, 'a rate such as "30/min" (calls per s, min, h or day)'),
    burst: z.number().int().min(1).max(1_000_000).optional(),
    tools: ToolsSchema.default('all'),
    description: z.string().max(2000).optional(),
  })
  .strict();

const QuotaSchema = z
  .object({
    window: z.enum(['day', 'session']),
    per: PerSchema.default('user'),
    limit: z.number().int().min(0).max(1_000_000_000),
    approvalAfter: z.number().int().min(0).max(1_000_000_000).optional(),
    tools: ToolsSchema.default('writes'),
    description: z.string().max(2000).optional(),
  })
  .strict()
  .refine((q) => q.approvalAfter === undefined || q.approvalAfter < q.limit, {
    message: 'approvalAfter must be below limit (calls after approvalAfter need approval, calls after limit are refused)',
    path: ['approvalAfter'],
  });

const QuotasSchema = z
  .object({
    rateLimits: z.record(RuleId, RateLimitSchema).default({}),
    quotas: z.record(RuleId, QuotaSchema).default({}),
  })
  .strict();

function perOf(per: Dimension | Dimension[]): Dimension[] {
  return [...new Set(['user' as Dimension, ...(Array.isArray(per) ? per : [per])])];
}

function selectorOf(tools: 'all' | 'writes' | 'destructive' | string[]): ToolSelector {
  return Array.isArray(tools) ? { kind: 'names', patterns: tools } : { kind: tools };
}

function quotaSettings(parsed: z.output<typeof QuotasSchema>): QuotaSettings {
  return {
    rateLimits: Object.entries(parsed.rateLimits).map(([id, r]) => {
      const rate = parseRate(r.rate)!;
      return { id, per: perOf(r.per), calls: rate.calls, intervalMs: rate.intervalMs, burst: r.burst ?? rate.calls, tools: selectorOf(r.tools) };
    }),
    quotas: Object.entries(parsed.quotas).map(([id, q]) => ({
      id,
      window: q.window,
      per: perOf(q.per),
      limit: q.limit,
      ...(q.approvalAfter !== undefined ? { approvalAfter: q.approvalAfter } : {}),
      tools: selectorOf(q.tools),
    })),
  };
}

export interface ParseOptions {
  /** What `${dataDir}` expands to in launch specs. */
  dataDir: string;
  /** What `${examples}` expands to: the example servers shipped with Gatehouse (default: its resources/examples). */
  examplesDir?: string;
}

/** Where the example servers shipped with Gatehouse are (the sample bundle's CRM). */
export function examplesDir(): string {
  return path.join(packageRoot(), 'resources', 'examples');
}

export type ContentResult = { ok: true; content: BundleContent } | { ok: false; errors: string[] };

function jsonFile<T>(name: string, bytes: Buffer | undefined, schema: z.ZodType<T>, errors: string[], fallback: unknown): T | undefined {
  let raw: unknown = fallback;
  if (bytes !== undefined) {
    try {
      raw = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      errors.push(`${name}: not valid JSON (${(error as Error).message})`);
      return undefined;
    }
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues.slice(0, 20)) {
      const message = issue.code === 'invalid_key' && issue.issues[0] ? issue.issues[0].message : issue.message;
      errors.push(`${name}: ${formatPath(issue.path)}: ${message.replace(/^Invalid input: /, '')}`);
    }
    return undefined;
  }
  return result.data;
}

/** Parses a bundle's files (already checked against the signed manifest). */
export function parseBundleFiles(files: ReadonlyMap<string, Buffer>, options: ParseOptions): ContentResult {
  const errors: string[] = [];
  for (const name of files.keys()) if (!isBundleFileName(name)) errors.push(`${name}: unexpected file; ${BUNDLE_FILES_HELP}`);
  const schema = files.get(SCHEMA_FILE);
  if (!schema) errors.push(`${SCHEMA_FILE}: missing; copy resources/policy/${SCHEMA_FILE} and extend it`);
  if (!files.has(CATALOG_FILE)) errors.push(`${CATALOG_FILE}: missing; it lists the approved servers and their tools`);
  const catalog = jsonFile(CATALOG_FILE, files.get(CATALOG_FILE), CatalogSchema, errors, { servers: {} });
  const roles = jsonFile(ROLES_FILE, files.get(ROLES_FILE), RolesSchema, errors, {});
  const quotas = jsonFile(QUOTAS_FILE, files.get(QUOTAS_FILE), QuotasSchema, errors, {});
  const policyFiles = [...files.entries()].filter(([name]) => name.endsWith('.cedar')).map(([name, bytes]) => ({ name, text: bytes.toString('utf8') }));
  if (errors.length > 0 || !schema || !catalog || !roles || !quotas) return { ok: false, errors };

  const servers = new Map<string, CatalogServer>();
  for (const [name, server] of Object.entries(catalog.servers)) {
    const tools = new Map<string, CatalogTool>(
      Object.entries(server.tools).map(([tool, t]) => [
        tool,
        { sha256: t.sha256, readOnly: t.readOnly, destructive: t.destructive, tags: t.tags, scale: t.scale },
      ]),
    );
    if (server.launch) servers.set(name, { launch: expandLaunch(server.launch, options, `${CATALOG_FILE}: servers.${name}.launch`, errors), tools });
    else {
      const entry = catalogEntry(name, server.server!, errors);
      if (entry) servers.set(name, { entry, tools });
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  const mapping: RoleMapping = { groups: new Map(Object.entries(roles.groups)) };
  const parsedCatalog: Catalog = { servers, catalogOnly: catalog.catalogOnly };
  const sandbox = catalog.sandbox !== undefined ? { sandbox: catalog.sandbox } : {};
  return {
    ok: true,
    content: { schemaText: schema.toString('utf8'), policyFiles, roles: mapping, catalog: parsedCatalog, quotas: quotaSettings(quotas), ...sandbox },
  };
}

/** A catalogue entry's Gatehouse fields, checked like the rest of catalog.json (`${dataDir}` expands when it is installed). */
function catalogEntry(name: string, server: z.output<typeof ServerJsonSchema>, errors: string[]): CatalogEntry | undefined {
  const where = `${CATALOG_FILE}: servers.${name}.server._meta["${CATALOG_META_KEY}"]`;
  const parsed = CatalogExtensionSchema.safeParse(server._meta?.[CATALOG_META_KEY] ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues.slice(0, 10)) errors.push(`${where}.${formatPath(issue.path)}: ${issue.message.replace(/^Invalid input: /, '')}`);
    return undefined;
  }
  return { name, server, ext: parsed.data };
}

/**
 * `${dataDir}`, `${bundled:PACKAGE}` and `$$` in a launch spec's command, args, cwd and sandbox
 * paths, as in the user's config, and `${examples}` (the example servers shipped with Gatehouse);
 * `${secret:NAME}` stays for the connector (which refuses it until the keychain store exists).
 */
function expandLaunch(launch: ServerConfig, options: ParseOptions, where: string, errors: string[]): ServerConfig {
  const expand = (value: string): string =>
    value.replace(/\$\$|\$\{([^}]*)\}/g, (token, body: string | undefined) => {
      if (token === '$$') return '$';
      if (body === 'dataDir') return options.dataDir;
      if (body === 'examples') return options.examplesDir ?? examplesDir();
      if (body?.startsWith('bundled:')) {
        try {
          return resolveBundledBin(body.slice('bundled:'.length));
        } catch (error) {
          errors.push(`${where}: ${token}: ${(error as Error).message}`);
          return token;
        }
      }
      if (body?.startsWith('secret:')) return token;
      errors.push(`${where}: ${token}: unknown variable; the variables are \${dataDir}, \${examples}, \${bundled:PACKAGE} and \${secret:NAME}`);
      return token;
    });
  if (launch.type === 'stdio') {
    const sandbox =
      launch.sandbox && launch.sandbox !== 'off'
        ? { sandbox: { ...launch.sandbox, read: launch.sandbox.read.map(expand), write: launch.sandbox.write.map(expand) } }
        : {};
    return {
      ...launch,
      command: expand(launch.command),
      args: launch.args.map(expand),
      ...(launch.cwd !== undefined ? { cwd: expand(launch.cwd) } : {}),
      ...sandbox,
    };
  }
  return { ...launch, url: expand(launch.url) };
}
