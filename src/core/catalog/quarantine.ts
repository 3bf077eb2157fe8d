/**
 * Quarantine: a tool whose live definition differs from its pin in the signed catalogue is hidden
 * and refused (BundlePolicy does that on every list and call), recorded once per definition in the
 * audit log (`tool.drift`), and listed in status until a bundle pins the new definition.
 */
import type { QuarantinedTool } from '../../common/catalog.js';
import type { ToolItem } from '../ports.js';
import { toolDefinitionHash } from '../policy/tool-hash.js';

export interface QuarantineInput {
  /** Running servers and their tools. */
  servers: { name: string; tools: readonly ToolItem[] }[];
  /** The pinned hash of a tool, by server (as the catalogue names it) and tool; undefined when not pinned. */
  pin(server: string, tool: string): string | undefined;
  /** When each (server, tool, live hash) was first seen changed. */
  since(server: string, tool: string, actual: string): string;
}

export function quarantinedTools(input: QuarantineInput): QuarantinedTool[] {
  const out: QuarantinedTool[] = [];
  for (const server of input.servers) {
    for (const tool of server.tools) {
      const expected = input.pin(server.name, tool.name);
      if (expected === undefined) continue;
      const actual = toolDefinitionHash(tool);
      if (actual !== expected) out.push({ server: server.name, tool: tool.name, expected, actual, since: input.since(server.name, tool.name, actual) });
    }
  }
  return out;
}
