/**
 * Reading a server's tools the way the daemon will see them, to pin their hashes in a catalog:
 * the same connector (and so the same SDK parsing) as the daemon, the same canonical hash.
 */
import type { ServerConfig } from '../../common/config.js';
import type { ToolItem } from '../../core/ports.js';
import { toolDefinitionHash } from '../../core/policy/tool-hash.js';
import { NodeUpstreamConnector } from '../upstream/connector.js';
import { VERSION } from '../version.js';

export interface PinnedTool {
  name: string;
  sha256: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  tool: ToolItem;
}

/** Starts the server, lists its tools, stops it. */
export async function readLiveTools(name: string, launch: ServerConfig, timeoutMs = 30_000): Promise<PinnedTool[]> {
  const connector = new NodeUpstreamConnector({ version: VERSION, maxMessageBytes: 16 * 1024 * 1024 });
  const signal = AbortSignal.timeout(timeoutMs);
  const stderr: string[] = [];
  let connection;
  try {
    connection = await connector.connect(
      name,
      launch,
      {
        listChanged: () => undefined,
        resourceUpdated: () => undefined,
        serverRequest: async () => {
          throw new Error('not available while pinning');
        },
        stderr: (line) => void (stderr.length < 20 && stderr.push(line)),
      },
      signal,
    );
  } catch (error) {
    throw new Error(`server "${name}" did not start: ${(error as Error).message}${stderr.length ? ` (stderr: ${stderr.join(' | ')})` : ''}`);
  }
  try {
    const lists = await connection.listAll(signal);
    return lists.tools
      .map((tool) => {
        const annotations = (tool.annotations ?? {}) as { readOnlyHint?: boolean; destructiveHint?: boolean };
        return {
          name: tool.name,
          sha256: toolDefinitionHash(tool),
          ...(annotations.readOnlyHint !== undefined ? { readOnlyHint: annotations.readOnlyHint } : {}),
          ...(annotations.destructiveHint !== undefined ? { destructiveHint: annotations.destructiveHint } : {}),
          tool,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  } finally {
    await connection.close().catch(() => undefined);
  }
}
