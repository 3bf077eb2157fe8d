/**
 * What to paste into each IDE so it connects through Gatehouse's bridge. Pure: the client name is
 * the only input, and it is quoted as JSON (or for a shell) before it lands in a snippet.
 */
export const SNIPPETS = [
  {
    id: 'claude-desktop',
    label: 'Claude Desktop',
    defaultClient: 'claude-desktop',
    where: 'Settings → Developer → Edit Config opens claude_desktop_config.json; merge this into it and restart Claude Desktop.',
  },
  {
    id: 'claude-code',
    label: 'Claude Code',
    defaultClient: 'claude-code',
    where: 'Run this once in a terminal (add --scope user to use it in every project).',
  },
  {
    id: 'cursor',
    label: 'Cursor',
    defaultClient: 'cursor',
    where: 'Put this in ~/.cursor/mcp.json (every project) or .cursor/mcp.json (this project).',
  },
  {
    id: 'vscode',
    label: 'VS Code',
    defaultClient: 'vscode',
    where: 'Put this in .vscode/mcp.json in your workspace (or run "MCP: Open User Configuration").',
  },
] as const;
export type SnippetId = (typeof SNIPPETS)[number]['id'];

/** Single-quotes a word for a POSIX shell. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9._-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function snippetFor(id: SnippetId | string, client: string): string {
  const args = ['connect', '--client', client];
  switch (id) {
    case 'claude-code':
      return `claude mcp add gatehouse -- gatehouse ${args.map(shellQuote).join(' ')}`;
    case 'vscode':
      return JSON.stringify({ servers: { gatehouse: { type: 'stdio', command: 'gatehouse', args } } }, null, 2);
    default:
      return JSON.stringify({ mcpServers: { gatehouse: { command: 'gatehouse', args } } }, null, 2);
  }
}
