/** The SANDBOX section of `gatehouse status`: how each stdio server is confined, or why it is not (docs/sandbox.md). */
import type { ConfinementStatus, LimitStatus } from '../common/sandbox.js';
import type { DaemonStatus } from '../common/status.js';

export function sandboxLines(s: DaemonStatus, table: (header: string[], rows: string[][]) => string[]): string[] {
  const rows = s.servers.filter((v) => v.confinement !== undefined).map((v) => [v.name, ...describe(v.confinement!)]);
  if (rows.length === 0) return [];
  return ['', 'SANDBOX', ...table(['NAME', 'CONFINEMENT', 'NETWORK', 'WRITE', 'LIMITS OR REASON'], rows)];
}

function describe(c: ConfinementStatus): string[] {
  const required = c.required ? ' (required)' : '';
  if (c.state === 'refused') return [`REFUSED${required}`, '-', '-', c.reason ?? ''];
  if (c.state === 'unconfined') return [`UNCONFINED${required}`, 'host', 'anything you can', c.reason ?? ''];
  const network = c.network?.mode === 'allow' ? `allow ${(c.network.allow ?? []).join(', ')}` : (c.network?.mode ?? 'none');
  const limits = c.limits
    ? [`processes ${limit(c.limits.processes)}`, `memory ${limit(c.limits.memoryMb, ' MiB')}`, `files ${limit(c.limits.openFiles)}`].join(', ')
    : (c.reason ?? '');
  const files = c.fileDenials ? (c.fileDenials.audited ? '; refused file calls audited' : `; refused file calls NOT AUDITED: ${c.fileDenials.note}`) : '';
  return [
    `${c.mechanism ?? 'confined'}${c.source ? ` (${c.source} profile)` : ''}${required}`,
    network,
    c.write && c.write.length > 0 ? c.write.join(', ') : 'nothing',
    limits + files,
  ];
}

function limit(l: LimitStatus, unit = ''): string {
  return l.enforcedBy === 'none' ? `${l.max}${unit} NOT ENFORCED` : `${l.max}${unit} (${l.enforcedBy})`;
}
