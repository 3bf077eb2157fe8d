/**
 * From a bundle's parsed files to something that answers questions: the Cedar policies parsed,
 * validated against the bundle's schema and prepared once (the full set for calls, and the probe
 * set that decides what does not depend on arguments), the argument types read from the schema,
 * and the policies' obligations read from their annotations. Every problem is reported with the
 * file it is in; a bundle with any problem is refused whole.
 */
import { createHash } from 'node:crypto';
import type { Principal } from '../principal.js';
import { buildRequest } from './entities.js';
import { argumentPaths, policyReadsArguments, probeSet } from './est.js';
import type { ArgType, BundleContent, BundleManifest, CedarPort, CedarValue, ItemKind, PolicyJson } from './model.js';
import { isPlainObject } from '../../common/objects.js';

export interface PolicyInfo {
  id: string;
  file: string;
  effect: 'permit' | 'forbid';
  /** `@approval("...")`: who must approve a call this policy permits. */
  approval?: string;
  /** `@quota("...")`: which quota (in quotas.json) a call this policy permits counts against. */
  quota?: string;
  readsArguments: boolean;
  /** Argument paths the conditions read (`amount`, `price.net`): highlighted when a person is asked to approve. */
  argsRead: string[];
}

export interface CompiledBundle {
  manifest: BundleManifest;
  /** SHA-256 of the signed manifest: tells two bundles of the same version apart. */
  digest: string;
  /** Key ids whose signatures were verified. */
  signedBy: string[];
  content: BundleContent;
  policies: ReadonlyMap<string, PolicyInfo>;
  argTypes: { tool: ArgType; prompt: ArgType };
  /** Prepared policy sets (handles for CedarPort.authorize). */
  handles: { policies: string; probe: string };
  /** What the policies can tell tools apart by (see `observations`). */
  observes: Observations;
}

/**
 * Which parts of a tool's identity any policy can see. Two tools that agree on everything the
 * policies can see get the same argument-free answer for the same principal, so it is computed once
 * (a catalog of thousands of tools usually has a few dozen kinds).
 */
export interface Observations {
  /** Tool ids named by an entity literal (`Tool::"crm__refund"`). */
  toolIds: ReadonlySet<string>;
  /** Server ids named by an entity literal (`Server::"crm"`). */
  serverIds: ReadonlySet<string>;
  /** Some policy reads `resource.name`. */
  toolName: boolean;
  /** Some policy reads `resource.server`. */
  serverAttribute: boolean;
}

export function observations(policies: Iterable<PolicyJson>): Observations {
  const toolIds = new Set<string>();
  const serverIds = new Set<string>();
  let toolName = false;
  let serverAttribute = false;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!isPlainObject(node)) return;
    if (typeof node.type === 'string' && typeof node.id === 'string') {
      if (node.type === 'Tool') toolIds.add(node.id);
      if (node.type === 'Server') serverIds.add(node.id);
    }
    const access = node['.'] ?? node.has;
    if (isPlainObject(access) && isPlainObject(access.left) && access.left.Var === 'resource') {
      if (access.attr === 'name') toolName = true;
      if (access.attr === 'server') serverAttribute = true;
    }
    for (const value of Object.values(node)) visit(value);
  };
  for (const policy of policies) visit(policy);
  return { toolIds, serverIds, toolName, serverAttribute };
}

export type CompileResult = { ok: true; bundle: CompiledBundle } | { ok: false; errors: string[] };

const SCHEMA_FILE = 'schema.cedarschema';

export function compileBundle(content: BundleContent, meta: { manifest: BundleManifest; digest: string; signedBy: string[] }, cedar: CedarPort): CompileResult {
  const errors: string[] = [];

  const schema = cedar.schemaToJson(content.schemaText);
  if (!schema.ok) return { ok: false, errors: schema.errors.map((e) => `${SCHEMA_FILE}: ${e}`) };
  const argTypes = readArgTypes(schema.value, errors);

  const policies = new Map<string, PolicyJson>();
  const infos = new Map<string, PolicyInfo>();
  for (const file of content.policyFiles) {
    const parsed = cedar.parsePolicies(file.text);
    if (!parsed.ok) {
      errors.push(...parsed.errors.map((e) => `${file.name}: ${e}`));
      continue;
    }
    parsed.value.forEach((policy, index) => {
      const annotations = policy.annotations ?? {};
      const id = annotations.id ?? `${file.name}#${index + 1}`;
      if (!/^[A-Za-z0-9_.:#/-]{1,128}$/.test(id)) {
        errors.push(`${file.name}: policy ${index + 1}: @id("${id}") must be 1-128 letters, digits and _ . : # / -`);
        return;
      }
      if (infos.has(id)) {
        errors.push(`${file.name}: policy id "${id}" is used twice (also in ${infos.get(id)!.file})`);
        return;
      }
      const info: PolicyInfo = { id, file: file.name, effect: policy.effect, readsArguments: policyReadsArguments(policy), argsRead: argumentPaths(policy) };
      for (const key of ['approval', 'quota'] as const) {
        if (!Object.hasOwn(annotations, key)) continue;
        const value = annotations[key];
        if (typeof value !== 'string' || value.trim() === '') {
          errors.push(`${file.name}: policy "${id}": @${key} needs a value, such as @${key}("${key === 'approval' ? 'user' : 'writes-per-day'}")`);
        } else if (policy.effect === 'forbid') {
          errors.push(
            `${file.name}: policy "${id}": @${key} on a forbid has no effect (a forbidden call is never asked about or counted); put it on the permit`,
          );
        } else if (key === 'quota' && !content.quotas.quotas.some((q) => q.id === value)) {
          errors.push(`${file.name}: policy "${id}": @quota("${value}") names no quota in quotas.json`);
        } else {
          info[key] = value;
        }
      }
      // The annotations are ours to read; Cedar need not carry them into the prepared set.
      const { annotations: _dropped, ...bare } = policy;
      policies.set(id, bare as PolicyJson);
      infos.set(id, info);
    });
  }
  if (errors.length > 0) return { ok: false, errors };

  const all = Object.fromEntries(policies);
  errors.push(...cedar.validate(content.schemaText, all).map((e) => `policies: ${e}`));
  if (errors.length > 0) return { ok: false, errors };

  // The schema must describe the entities and contexts Gatehouse supplies, or calls would fail at run time.
  for (const kind of ['tool', 'prompt', 'resource'] as const) {
    const sample = sampleRequest(kind, argTypes);
    for (const problem of cedar.checkRequest(content.schemaText, sample)) {
      errors.push(
        `${SCHEMA_FILE}: does not fit what Gatehouse supplies for ${kind === 'tool' ? 'call_tool' : kind === 'prompt' ? 'get_prompt' : 'read_resource'}: ${problem}`,
      );
    }
  }
  if (errors.length > 0) return { ok: false, errors };

  const main = cedar.prepare(all);
  if (!main.ok) return { ok: false, errors: main.errors.map((e) => `policies: ${e}`) };
  const probe = cedar.prepare(probeSet(policies));
  if (!probe.ok) return { ok: false, errors: probe.errors.map((e) => `policies (argument-free form): ${e}`) };

  return {
    ok: true,
    bundle: {
      ...meta,
      content,
      policies: infos,
      argTypes: { tool: argTypes.tool ?? EMPTY_RECORD, prompt: argTypes.prompt ?? EMPTY_RECORD },
      handles: { policies: main.value, probe: probe.value },
      observes: observations(policies.values()),
    },
  };
}

const EMPTY_RECORD: ArgType = { kind: 'record', attributes: new Map() };

/** A content-addressed name for a prepared policy set, so that preparing the same set again reuses it. */
export function policySetHandle(policies: Record<string, PolicyJson>): string {
  return 'pset-' + createHash('sha256').update(JSON.stringify(policies)).digest('hex').slice(0, 32);
}

// ---------------------------------------------------------------------------------------------
// Argument types from the schema

/** Reads `context.args` of call_tool and get_prompt from the schema's JSON form (empty namespace only). */
function readArgTypes(schemaJson: unknown, errors: string[]): { tool?: ArgType; prompt?: ArgType } {
  if (!isPlainObject(schemaJson)) {
    errors.push(`${SCHEMA_FILE}: not a schema`);
    return {};
  }
  const namespaces = Object.keys(schemaJson);
  if (namespaces.some((n) => n !== '')) {
    errors.push(`${SCHEMA_FILE}: declares namespace ${namespaces.filter((n) => n !== '').join(', ')}; Gatehouse's entities live in no namespace`);
    return {};
  }
  const ns = schemaJson[''];
  if (!isPlainObject(ns)) return {};
  const common = isPlainObject(ns.commonTypes) ? ns.commonTypes : {};
  const actions = isPlainObject(ns.actions) ? ns.actions : {};
  const out: { tool?: ArgType; prompt?: ArgType } = {};
  for (const [kind, action] of [
    ['tool', 'call_tool'],
    ['prompt', 'get_prompt'],
  ] as const) {
    const spec = actions[action];
    const context = isPlainObject(spec) && isPlainObject(spec.appliesTo) ? spec.appliesTo.context : undefined;
    const resolvedContext = context === undefined ? undefined : resolve(context, common, 0);
    if (!isPlainObject(resolvedContext) || resolvedContext.type !== 'Record' || !isPlainObject(resolvedContext.attributes)) continue;
    const args = resolvedContext.attributes.args;
    if (args === undefined) continue;
    const type = toArgType(args, common, `${action} context.args`, errors, 0);
    if (type) out[kind] = type;
  }
  return out;
}

function resolve(type: unknown, common: Record<string, unknown>, depth: number): unknown {
  if (depth > 32 || !isPlainObject(type)) return type;
  const name = type.type;
  if (typeof name === 'string' && Object.hasOwn(common, name)) return resolve(common[name], common, depth + 1);
  if (type.type === 'EntityOrCommon' && typeof type.name === 'string' && Object.hasOwn(common, type.name)) return resolve(common[type.name], common, depth + 1);
  return type;
}

function toArgType(raw: unknown, common: Record<string, unknown>, where: string, errors: string[], depth: number): ArgType | undefined {
  const type = resolve(raw, common, 0);
  if (!isPlainObject(type) || depth > 16) {
    errors.push(`${SCHEMA_FILE}: ${where}: unreadable type`);
    return undefined;
  }
  switch (type.type) {
    case 'Long':
      return { kind: 'long' };
    case 'String':
      return { kind: 'string' };
    case 'Boolean':
    case 'Bool':
      return { kind: 'bool' };
    case 'Set': {
      const element = toArgType(type.element, common, `${where}[]`, errors, depth + 1);
      return element ? { kind: 'set', element } : undefined;
    }
    case 'Record': {
      const attributes = new Map<string, { type: ArgType; required: boolean }>();
      for (const [name, attr] of Object.entries(isPlainObject(type.attributes) ? type.attributes : {})) {
        const child = toArgType(attr, common, `${where}.${name}`, errors, depth + 1);
        if (!child) return undefined;
        attributes.set(name, { type: child, required: !isPlainObject(attr) || attr.required !== false });
      }
      return { kind: 'record', attributes };
    }
    default:
      errors.push(
        `${SCHEMA_FILE}: ${where}: type ${JSON.stringify(type.type === 'Entity' || type.type === 'Extension' ? `${String(type.type)} ${String(type.name)}` : type.type)} cannot hold a call argument; use Long, String, Bool, Set or a record`,
      );
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The compatibility check's sample request

const SAMPLE_PRINCIPAL: Principal = {
  user: { id: 'sample-user', source: 'oidc', displayName: 'sample', groups: [], roles: [] },
  client: { id: 'client:sample', name: 'sample-client', verified: true, transport: 'socket' },
};

function sampleValue(type: ArgType): CedarValue {
  switch (type.kind) {
    case 'long':
      return 0;
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'set':
      return [];
    case 'record': {
      const out: Record<string, CedarValue> = {};
      for (const [name, attr] of type.attributes) if (attr.required) out[name] = sampleValue(attr.type);
      return out;
    }
  }
}

function sampleRequest(kind: ItemKind, argTypes: { tool?: ArgType; prompt?: ArgType }) {
  const args = kind === 'resource' ? undefined : (sampleValue(argTypes[kind] ?? EMPTY_RECORD) as Record<string, CedarValue>);
  const tool = { sha256: '', readOnly: true, destructive: false, tags: ['sample'], scale: {} };
  return buildRequest(SAMPLE_PRINCIPAL, ['sample-role'], kind, 'sample-server', 'sample', tool, args);
}
