/**
 * What to paste into each IDE so it connects through Gatehouse's bridge, for a person who prefers
 * to edit by hand (the Set up buttons write the same entry). Pure: the client name and the command
 * (the absolute path the daemon reports, so it works under an IDE's minimal PATH) are the inputs,
 * quoted as JSON (or for a shell) before they land in a snippet.
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
    where: 'Run this once in a terminal (it adds Gatehouse for every project).',
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

/** `self`: how Gatehouse is run (an absolute command and the arguments before `connect`). */
export function snippetFor(id: SnippetId | string, client: string, self: readonly string[] = ['gatehouse']): string {
  const command = self[0] ?? 'gatehouse';
  const args = [...self.slice(1), 'connect', '--client', client];
  switch (id) {
    case 'claude-code':
      return `claude mcp add --scope user gatehouse -- ${[command, ...args].map(shellQuote).join(' ')}`;
    case 'vscode':
      return JSON.stringify({ servers: { gatehouse: { type: 'stdio', command, args } } }, null, 2);
    default:
      return JSON.stringify({ mcpServers: { gatehouse: { command, args } } }, null, 2);
  }
}
