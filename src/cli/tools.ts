/**
 * `gatehouse tools cost`: what each client's tool list costs a model in tokens, in the aggregate and
 * in the search view, as the running daemon sees it (the same figures as the console's Clients
 * screen). docs/search.md.
 */
import type { ToolCostReport } from '../common/console-api.js';
import { GatehouseError } from '../common/errors.js';
import { callControl } from '../node/control/control-client.js';
import type { GatehousePaths } from '../node/paths.js';
import { parseFlags } from './args.js';
import type { Io } from './login.js';

export const TOOLS_HELP = `Usage: gatehouse tools cost [--json]

How many tokens each client's tool list costs a model before the user says a word: the tools/list
result it receives, counted with the o200k_base tokenizer, in the aggregate (every tool) and in the
search view (find_tools, call_tool and the client's pinned tools). One row per paired client and per
client with settings in the config, after a row for a client with all of your tools. The view each
client gets is set with \`gatehouse connect --view\`, in the config (clients.<name>.view) or in the
console's Clients screen.`;

export async function toolsCommand(args: string[], io: Io, paths: GatehousePaths): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(TOOLS_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'cost') throw new GatehouseError('usage', `unknown tools command "${sub}"; see gatehouse tools --help`);
  const { values } = parseFlags(rest, { json: { type: 'boolean' } });
  if (values.help) {
    io.out(TOOLS_HELP + '\n');
    return 0;
  }
  const report = (await callControl(paths.controlSocketPath, 'tools.cost', {}, 30_000)) as ToolCostReport;
  if (values.json) {
    io.out(JSON.stringify(report, null, 2) + '\n');
    return 0;
  }
  io.out(formatCost(report).join('\n') + '\n');
  return 0;
}

/** The report as a table a person reads: tools and tokens in each view, and how much the search view saves. */
export function formatCost(report: ToolCostReport): string[] {
  const header = ['CLIENT', 'VIEW', 'AGGREGATE', 'SEARCH VIEW', 'SAVED'];
  const rows = report.clients.map((c) => [
    c.name ?? '(any client with all of your tools)',
    c.view,
    `${c.aggregate.tools} tools, ${c.aggregate.tokens.toLocaleString('en-US')} tokens`,
    `${c.search.tools} tools, ${c.search.tokens.toLocaleString('en-US')} tokens`,
    c.aggregate.tokens > 0 ? `${Math.round((1 - c.search.tokens / c.aggregate.tokens) * 1000) / 10} %` : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const lines = [header, ...rows].map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  return [...lines, '', `Tokens of the tools/list result as JSON, counted with ${report.encoding}.`];
}
