/**
 * The pinned hash of a tool: SHA-256 over its canonical definition, which is the JSON object of
 * the fields that say what the tool is and does (`name`, `title`, `description`, `inputSchema`,
 * `outputSchema`, `annotations`), with object keys sorted at every depth, no whitespace, and absent
 * fields left out. Any change to one of them (a rug pull: new description, a widened schema, a
 * dropped `destructiveHint`) changes the hash, and the catalog's pin no longer matches.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../digest.js';
import type { ToolItem } from '../ports.js';

export const PINNED_TOOL_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

export function canonicalToolDefinition(tool: ToolItem): string {
  const subset: Record<string, unknown> = {};
  for (const field of PINNED_TOOL_FIELDS) {
    if (tool[field] !== undefined) subset[field] = tool[field];
  }
  return canonicalJson(subset);
}

export function toolDefinitionHash(tool: ToolItem): string {
  return createHash('sha256').update(canonicalToolDefinition(tool), 'utf8').digest('hex');
}
