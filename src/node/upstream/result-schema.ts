/**
 * The result schema Gatehouse gives the SDK client for each governed request, so that the SDK checks
 * results exactly as it would by itself (the negotiated era's own schema, through the era codec's
 * `validateResult`) without its per-request probe: asked without a schema, `request()` first checks
 * that the method exists in the era by validating `undefined` against the result schema, which fails
 * and formats a zod error message only to be thrown away. That probe cost more than the validation
 * itself, on every call (BENCHMARKS.md).
 *
 * The codec is reached through the client's `_wireCodec()`, the accessor the SDK keeps for its role
 * classes; if a later SDK drops it, this returns undefined and requests go the SDK's own way.
 */
import type { Client, StandardSchemaV1 } from '@modelcontextprotocol/client';

type Validation = { ok: true; value: unknown } | { ok: false; reason: string; message?: string };
interface EraCodec {
  validateResult(method: string, raw: unknown): Validation;
}

/** The methods the chain forwards; every era defines a result for each. */
const GOVERNED = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete']);

const schemas = new WeakMap<Client, Map<string, StandardSchemaV1<unknown, Record<string, unknown>>>>();

/** The era's result schema for `method` on this (connected) client, or undefined to let the SDK pick. */
export function eraResultSchema(client: Client, method: string): StandardSchemaV1<unknown, Record<string, unknown>> | undefined {
  if (!GOVERNED.has(method)) return undefined;
  let byMethod = schemas.get(client);
  const known = byMethod?.get(method);
  if (known) return known;
  const codec = (client as unknown as { _wireCodec?: () => EraCodec | undefined })._wireCodec?.();
  if (!codec || typeof codec.validateResult !== 'function') return undefined;
  const schema: StandardSchemaV1<unknown, Record<string, unknown>> = {
    '~standard': {
      version: 1,
      vendor: 'gatehouse',
      validate(value) {
        const outcome = codec.validateResult(method, value);
        if (outcome.ok) return { value: outcome.value as Record<string, unknown> };
        return { issues: [{ message: outcome.reason === 'invalid' ? (outcome.message ?? 'invalid') : `not-in-era: ${method}` }] };
      },
    },
  };
  if (!byMethod) schemas.set(client, (byMethod = new Map()));
  byMethod.set(method, schema);
  return schema;
}
