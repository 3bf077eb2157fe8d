/** Paths to the real MCP servers from npm that the integration tests launch with `node`, never through npx. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);

export function binOf(pkg: string): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : Object.values(manifest.bin ?? {})[0];
  if (!bin) throw new Error(`${pkg} has no bin`);
  return join(dirname(manifestPath), bin);
}

export const EVERYTHING = () => binOf('@modelcontextprotocol/server-everything');
export const MEMORY = () => binOf('@modelcontextprotocol/server-memory');
/** What the memory server itself calls its tools, to compare with what Gatehouse shows. */
export const MEMORY_TOOLS = [
  'add_observations',
  'create_entities',
  'create_relations',
  'delete_entities',
  'delete_observations',
  'delete_relations',
  'open_nodes',
  'read_graph',
  'search_nodes',
];
export const FILESYSTEM = () => binOf('@modelcontextprotocol/server-filesystem');
