/**
 * What a managed policy is made of, once a bundle has been verified and parsed, and the port
 * through which the core asks Cedar questions. The Cedar engine itself (a wasm module that reads
 * its binary from disk) is an adapter in src/node/policy/cedar.ts; the core only builds requests
 * and reads answers.
 */
import type { ServerConfig } from '../../common/config.js';
import type { SandboxRequirement } from '../../common/sandbox.js';
import type { QuotaSettings } from '../quotas/settings.js';
import type { CatalogEntry } from '../catalog/entry.js';

// ---------------------------------------------------------------------------------------------
// The bundle's content

/** One approved tool: its pinned definition hash and the attributes policies see. */
export interface CatalogTool {
  /** SHA-256 (hex) of the tool's canonical definition (see tool-hash.ts). */
  sha256: string;
  readOnly: boolean;
  destructive: boolean;
  tags: string[];
  /**
   * Decimal places of fractional arguments, by argument path (`amount`, `price.net`): the value
   * reaches Cedar as an integer in those units (EUR 12.34 with scale 2 is 1234).
   */
  scale: Record<string, number>;
}

export interface CatalogServer {
  /** How Gatehouse starts the server on every desktop in managed mode; the user's config does not override it. */
  launch?: ServerConfig;
  /** An entry people install (`gatehouse servers install`): a `server.json` with its verified package. */
  entry?: CatalogEntry;
  tools: ReadonlyMap<string, CatalogTool>;
}

export interface Catalog {
  servers: ReadonlyMap<string, CatalogServer>;
  /** Only catalogue servers run (the default); `false` lets the user's own servers run beside them. */
  catalogOnly: boolean;
}

/** IdP group claim → Gatehouse roles (Cedar `Role` entities). */
export interface RoleMapping {
  groups: ReadonlyMap<string, readonly string[]>;
}

/** The signed statement at the top of a bundle. */
export interface BundleManifest {
  version: number;
  issuedAt: string;
  expiresAt: string;
  /** File name → SHA-256 (hex) of its bytes. */
  files: Record<string, string>;
}

/** A bundle's files, parsed but not yet compiled. */
export interface BundleContent {
  schemaText: string;
  policyFiles: { name: string; text: string }[];
  roles: RoleMapping;
  catalog: Catalog;
  /** Rate limits and write quotas (quotas.json). */
  quotas: QuotaSettings;
  /** `required`: a catalogue server that cannot be confined on a desktop does not start there (catalog.json `sandbox`). */
  sandbox?: SandboxRequirement;
}

// ---------------------------------------------------------------------------------------------
// Cedar, as the core sees it

export interface EntityUid {
  type: string;
  id: string;
}

/** Cedar's JSON value form. An object with a single `__entity` key is an entity reference. */
export type CedarValue = boolean | number | string | CedarValue[] | { [key: string]: CedarValue };

export interface CedarEntity {
  uid: EntityUid;
  attrs: Record<string, CedarValue>;
  parents: EntityUid[];
}

export interface CedarRequest {
  principal: EntityUid;
  action: EntityUid;
  resource: EntityUid;
  context: Record<string, CedarValue>;
  entities: CedarEntity[];
}

export interface CedarAnswer {
  decision: 'allow' | 'deny';
  /** Ids of the policies that determined the decision (satisfied permits on allow, satisfied forbids on deny). */
  reasons: string[];
  /** Policies that could not be evaluated: `id: message`. */
  errors: { policyId: string; message: string }[];
}

/** A policy in Cedar's JSON form (EST). Only the parts the core reads are typed. */
export interface PolicyJson {
  effect: 'permit' | 'forbid';
  principal: unknown;
  action: unknown;
  resource: unknown;
  conditions: { kind: 'when' | 'unless'; body: unknown }[];
  annotations?: Record<string, string | null>;
}

export type CedarResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

/** The questions the core asks of Cedar. Implemented over @cedar-policy/cedar-wasm in src/node. */
export interface CedarPort {
  /** Splits a policy file into policies, in their JSON form (annotations included); templates are refused. */
  parsePolicies(text: string): CedarResult<PolicyJson[]>;
  /** The schema in Cedar's JSON form, with common types resolved. */
  schemaToJson(schemaText: string): CedarResult<unknown>;
  /** Strict validation of the policies against the schema: one message per problem, empty when valid. */
  validate(schemaText: string, policies: Record<string, PolicyJson>): string[];
  /** Checks that a request and its entities conform to the schema (the shapes Gatehouse supplies). */
  checkRequest(schemaText: string, request: CedarRequest): string[];
  /** Parses a policy set once and keeps it; `authorize` then refers to it by the returned handle. */
  prepare(policies: Record<string, PolicyJson>): CedarResult<string>;
  /** Evaluates one request against a prepared policy set. Throws if Cedar cannot evaluate the request at all. */
  authorize(handle: string, request: CedarRequest): CedarAnswer;
}

// ---------------------------------------------------------------------------------------------
// Arguments as the schema types them

/** The type of `context.args` (or a part of it), read from the bundle's schema. */
export type ArgType =
  | { kind: 'long' }
  | { kind: 'string' }
  | { kind: 'bool' }
  | { kind: 'set'; element: ArgType }
  | { kind: 'record'; attributes: ReadonlyMap<string, { type: ArgType; required: boolean }> };

export const CEDAR_ACTIONS = { tool: 'call_tool', resource: 'read_resource', prompt: 'get_prompt' } as const;
export type ItemKind = keyof typeof CEDAR_ACTIONS;
